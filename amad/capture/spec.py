"""Which attention maps to record: a plain-data spec, validated against a model's layout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from amad.errors import ConfigError, UnknownNameError
from amad.registry import did_you_mean

# kind -> (number of layers, number of heads), as returned by ``attention_layout(model)``.
Layout = dict[str, tuple[int, int]]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class CaptureSpec:
    """Attention kinds and layer indices to record.

    Args:
        layers: kind -> layer indices, or None for every layer of that kind, e.g.
            ``{"encoder_self": [0, 2], "cross": None}``. Negative indices count from the last layer.
        check_rows: check after each capture that every recorded row sums to 1 (one pass over the maps and one
            device sync). A training loop checks its first step and then turns this off.
        values: also record each selected layer's per-head value-output circuits X_i = V_i W_O^i (B, H, K, D),
            detached, in ``maps.values`` (amad.capture.circuits); Squeezing-Heads Distillation needs the teacher's.
    """

    layers: Mapping[str, Sequence[int] | None]
    check_rows: bool = True
    values: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.layers, Mapping) or not self.layers:
            raise ConfigError(
                f"CaptureSpec.layers must be a non-empty mapping kind -> layer indices (or None), got {self.layers!r}"
            )
        frozen: dict[str, tuple[int, ...] | None] = {}
        for kind, indices in self.layers.items():
            if not isinstance(kind, str):
                raise ConfigError(f"CaptureSpec kinds must be strings, got {kind!r}")
            if indices is None:
                frozen[kind] = None
                continue
            if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence):
                raise ConfigError(f"CaptureSpec layers for {kind!r} must be a list of ints or None, got {indices!r}")
            if not indices or not all(_is_int(i) for i in indices):
                raise ConfigError(
                    f"CaptureSpec layers for {kind!r} must be a non-empty list of ints (None = all layers), "
                    f"got {list(indices)!r}"
                )
            frozen[kind] = tuple(indices)
        object.__setattr__(self, "layers", frozen)
        if not isinstance(self.values, bool):
            raise ConfigError(f"CaptureSpec.values must be true or false, got {self.values!r}")

    @classmethod
    def all_layers(cls, layout: Mapping[str, tuple[int, int]]) -> CaptureSpec:
        """A spec for every layer of every kind in ``layout`` (from ``attention_layout(model)``)."""
        return cls(layers={kind: None for kind in layout})

    def resolve(self, layout: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, ...]]:
        """Check the spec against a model layout and return kind -> sorted, non-negative, unique layer indices.

        Raises:
            UnknownNameError: a kind the model does not have (the message lists the kinds it has).
            ConfigError: a layer index outside ``[-num_layers, num_layers)``.
        """
        resolved: dict[str, tuple[int, ...]] = {}
        for kind, indices in self.layers.items():
            if kind not in layout:
                raise UnknownNameError(
                    f"unknown attention kind {kind!r} for this model{did_you_mean(kind, layout)}: it has "
                    f"{', '.join(sorted(layout))}"
                )
            num_layers = layout[kind][0]
            if indices is None:
                resolved[kind] = tuple(range(num_layers))
                continue
            bad = [i for i in indices if not -num_layers <= i < num_layers]
            if bad:
                raise ConfigError(
                    f"layer {bad[0]} is out of range for attention kind {kind!r}: the model has {num_layers} layers "
                    f"(use 0..{num_layers - 1}, or negative indices from the end)"
                )
            resolved[kind] = tuple(sorted({i % num_layers for i in indices}))
        return resolved
