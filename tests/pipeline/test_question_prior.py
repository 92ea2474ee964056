"""The blind VQA reference: the most frequent training answer to the same question."""

from __future__ import annotations

import pytest

from amad import evaluation
from amad.errors import DataError
from amad.types import Example


def _vqa(uid: str, question: str, answer: str = "", references: list[str] | None = None) -> Example:
    refs = references if references is not None else [answer] * 10
    return Example(uid, f"img{uid}", question, answer, refs, 1.0, "yes/no" if answer in ("yes", "no") else "other")


TRAIN = [
    _vqa("t0", "Is there a circle?", "no"),
    _vqa("t1", "Is there a circle?", "yes"),
    _vqa("t2", "is there a  circle ?", "yes"),  # the same question after case, '?' and space folding
    _vqa("t3", "What color is the shape?", "red"),
    _vqa("t4", "What color is the shape?", "blue"),  # a tie: broken by text, so "blue"
    _vqa("t5", "What shape is in the image?", "circle"),
    _vqa("t6", "Is there a square?", "no"),
    _vqa("t7", "Is there a triangle?", "no"),
]


def test_question_prior_answers_by_question_with_an_overall_fallback():
    test = [
        _vqa("q0", "IS THERE A CIRCLE?"),
        _vqa("q1", "What color is the shape?"),
        _vqa("q2", "What shape is in the image?"),
        _vqa("q3", "How many shapes are there?"),  # never asked in training: the overall top answer
    ]
    assert evaluation.question_prior(TRAIN, test) == {"q0": "yes", "q1": "blue", "q2": "circle", "q3": "no"}


def test_question_prior_scores_with_the_official_vqa_accuracy():
    test = [
        _vqa("q0", "Is there a circle?", references=["yes"] * 10),
        _vqa("q1", "What color is the shape?", references=["red"] * 8 + ["blue"] * 2),
    ]
    scores = evaluation.score("vqa", test, evaluation.question_prior(TRAIN, test))
    # q0 right (1.0); q1 "blue" matches 2 of 10 humans: min(1, 2/3) averaged over the 10 leave-one-out subsets
    assert scores["accuracy"] == pytest.approx(100 * (1.0 + 0.6) / 2)


def test_question_prior_needs_training_answers():
    with pytest.raises(DataError, match="no training answers for the question prior"):
        evaluation.question_prior([], [_vqa("q0", "Is there a circle?")])
