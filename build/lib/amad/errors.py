"""User-facing errors. Each message is one line that names the problem and the fix."""


class AmadError(Exception):
    """Base class for errors a user can fix (bad params, missing files, wrong checkpoints)."""


class ConfigError(AmadError, ValueError):
    """A params value or key is wrong."""


class UnknownNameError(AmadError, KeyError):
    """A registry lookup failed; the message lists near matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DataError(AmadError):
    """A data file is missing, corrupt or in the wrong layout."""


class ChecksumError(DataError):
    """A file's checksum does not match the manifest."""


class CheckpointError(AmadError):
    """A checkpoint has wrong shapes, missing keys, or comes from the wrong family."""


class CaptureError(AmadError, RuntimeError):
    """Attention capture cannot produce the requested maps."""


class TrainingError(AmadError, RuntimeError):
    """Training cannot go on: a non-finite loss or gradient, or a weight that cannot be calibrated."""
