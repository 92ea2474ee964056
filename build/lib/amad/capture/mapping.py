"""Student <-> teacher layer mapping: which teacher layer each student layer learns from.

Every strategy returns a list of ``(student_layer, teacher_layer)`` pairs of 0-based indices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amad.errors import ConfigError
from amad.registry import Registry

LayerPairs = list[tuple[int, int]]
LAYER_MAPS: Registry[Callable[[int, int, Sequence[Sequence[int]] | None], LayerPairs]] = Registry(
    "layer mapping strategy"
)


@LAYER_MAPS.register("uniform")
def uniform(teacher_layers: int, student_layers: int, pairs: Sequence[Sequence[int]] | None = None) -> LayerPairs:
    """Student layer l learns from teacher layer ceil((l + 1) * r) - 1, with r = teacher_layers / student_layers.

    For an integer ratio this is TinyBERT's (l + 1) * r - 1 (12 -> 4: 2, 5, 8, 11). For a non-integer ratio each
    student layer takes the shallowest teacher layer at or beyond its own relative depth (12 -> 5: 2, 4, 7, 9, 11),
    so the last layers always pair up. A deeper student maps several of its layers onto one teacher layer.
    """
    # ceil(a / b) = -(-a // b), in integers so that no float rounding can shift a layer.
    return [(l, -(-(l + 1) * teacher_layers // student_layers) - 1) for l in range(student_layers)]


@LAYER_MAPS.register("last")
def last(teacher_layers: int, student_layers: int, pairs: Sequence[Sequence[int]] | None = None) -> LayerPairs:
    """Only the final layers: [(student_layers - 1, teacher_layers - 1)]."""
    return [(student_layers - 1, teacher_layers - 1)]


@LAYER_MAPS.register("explicit")
def explicit(teacher_layers: int, student_layers: int, pairs: Sequence[Sequence[int]] | None = None) -> LayerPairs:
    """The given ``[[student, teacher], ...]`` pairs, validated (in range, no duplicates), in the given order."""
    if not pairs:
        raise ConfigError("layer mapping 'explicit' needs pairs: give a non-empty list of [student, teacher] layers")
    out: LayerPairs = []
    for pair in pairs:
        if (
            isinstance(pair, (str, bytes))
            or not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in pair)
        ):
            raise ConfigError(f"layer pair {pair!r} is not [student_layer, teacher_layer] (two ints)")
        student, teacher = int(pair[0]), int(pair[1])
        if not (0 <= student < student_layers and 0 <= teacher < teacher_layers):
            raise ConfigError(
                f"layer pair [{student}, {teacher}] is out of range: student layers are 0..{student_layers - 1}, "
                f"teacher layers 0..{teacher_layers - 1}"
            )
        if (student, teacher) in out:
            raise ConfigError(f"layer pair [{student}, {teacher}] is listed twice: remove the duplicate")
        out.append((student, teacher))
    return out


def map_layers(
    strategy: str, teacher_layers: int, student_layers: int, pairs: Sequence[Sequence[int]] | None = None
) -> LayerPairs:
    """Pair student layers with teacher layers.

    Args:
        strategy: ``uniform``, ``last`` or ``explicit`` (unknown names list near matches).
        teacher_layers: number of teacher layers (>= 1).
        student_layers: number of student layers (>= 1).
        pairs: ``[[student, teacher], ...]``, only for ``explicit``.

    Returns:
        ``[(student_layer, teacher_layer), ...]``, 0-based.
    """
    fn = LAYER_MAPS.get(strategy)
    for name, value in (("teacher_layers", teacher_layers), ("student_layers", student_layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive int, got {value!r}")
    if pairs is not None and strategy != "explicit":
        raise ConfigError(f"layer pairs are only used by strategy 'explicit', not {strategy!r}: drop them")
    return fn(teacher_layers, student_layers, pairs)
