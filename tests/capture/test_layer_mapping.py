"""Student <-> teacher layer mapping strategies."""

from __future__ import annotations

import pytest

from amad.capture import map_layers
from amad.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize(
    ("teacher", "student", "expected"),
    [
        (12, 4, [(0, 2), (1, 5), (2, 8), (3, 11)]),  # TinyBERT's (l + 1) * 3 - 1
        (12, 6, [(0, 1), (1, 3), (2, 5), (3, 7), (4, 9), (5, 11)]),
        (6, 6, [(l, l) for l in range(6)]),
        (12, 5, [(0, 2), (1, 4), (2, 7), (3, 9), (4, 11)]),  # non-integer ratio 2.4: ceil((l + 1) * 2.4) - 1
        (4, 3, [(0, 1), (1, 2), (2, 3)]),
        (2, 4, [(0, 0), (1, 0), (2, 1), (3, 1)]),  # a deeper student shares teacher layers
        (12, 1, [(0, 11)]),
    ],
)
def test_uniform(teacher: int, student: int, expected: list[tuple[int, int]]) -> None:
    pairs = map_layers("uniform", teacher, student)
    assert pairs == expected
    assert pairs[-1] == (student - 1, teacher - 1)


def test_uniform_is_monotone_and_in_range_for_many_depths() -> None:
    for teacher in range(1, 25):
        for student in range(1, 25):
            targets = [t for _, t in map_layers("uniform", teacher, student)]
            assert targets == sorted(targets) and targets[0] >= 0 and targets[-1] == teacher - 1
            if student <= teacher:
                assert len(set(targets)) == student  # no teacher layer is used twice


def test_last() -> None:
    assert map_layers("last", 12, 6) == [(5, 11)]
    assert map_layers("last", 1, 1) == [(0, 0)]


def test_explicit_keeps_order_and_accepts_yaml_lists() -> None:
    assert map_layers("explicit", 12, 6, pairs=[[5, 11], [0, 3], (0, 4)]) == [(5, 11), (0, 3), (0, 4)]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (None, "layer mapping 'explicit' needs pairs"),
        ([], "layer mapping 'explicit' needs pairs"),
        ([[6, 0]], r"layer pair \[6, 0\] is out of range: student layers are 0..5, teacher layers 0..11"),
        ([[0, 12]], r"layer pair \[0, 12\] is out of range"),
        ([[-1, 0]], r"layer pair \[-1, 0\] is out of range"),
        ([[0, 1], [0, 1]], r"layer pair \[0, 1\] is listed twice"),
        ([[0, 1, 2]], "is not \\[student_layer, teacher_layer\\]"),
        ([[0, 1.0]], "is not \\[student_layer, teacher_layer\\]"),
        (["01"], "is not \\[student_layer, teacher_layer\\]"),
    ],
)
def test_explicit_errors(pairs, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        map_layers("explicit", 12, 6, pairs=pairs)


def test_other_errors() -> None:
    with pytest.raises(UnknownNameError, match="unknown layer mapping strategy 'unifrom': did you mean 'uniform'"):
        map_layers("unifrom", 12, 6)
    with pytest.raises(ConfigError, match="student_layers must be a positive int, got 0"):
        map_layers("uniform", 12, 0)
    with pytest.raises(ConfigError, match="layer pairs are only used by strategy 'explicit', not 'last'"):
        map_layers("last", 12, 6, pairs=[[0, 0]])
