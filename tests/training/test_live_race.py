"""Seeds trained at once share DVCLive's VS Code signal file; losing the race to delete it is not a failure."""

from __future__ import annotations

import errno

import pytest

from amad_suite.training.loop import _end_live


class _Live:
    def __init__(self, error: OSError | None) -> None:
        self.error = error
        self.ended = False

    def end(self) -> None:
        self.ended = True
        if self.error is not None:
            raise self.error


def test_a_signal_file_removed_by_another_seed_is_ignored() -> None:
    gone = FileNotFoundError(errno.ENOENT, "No such file or directory", "/r/.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED")
    live = _Live(gone)
    _end_live(live)  # type: ignore[arg-type]
    assert live.ended


def test_any_other_missing_file_still_fails() -> None:
    with pytest.raises(FileNotFoundError):
        _end_live(_Live(FileNotFoundError(errno.ENOENT, "No such file or directory", "/r/dvclive/metrics.json")))  # type: ignore[arg-type]
