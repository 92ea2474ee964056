"""Official VQA accuracy: normalisation rules, leave-one-out values, the agreeing-answers quirk, bad input."""

from __future__ import annotations

import pytest

from amad.errors import DataError
from amad.metrics import vqa_accuracy, vqa_score
from amad.metrics.vqa_normalize import CONTRACTIONS, normalize_answer, process_digit_article, process_punctuation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,000", "1000"),  # digit-comma-digit: the comma is deleted
        ("red,blue", "red blue"),  # other commas become spaces
        ("1,000-2", "10002"),  # a digit comma anywhere deletes every punctuation mark
        ("yes , no", "yes  no"),  # a mark touching a space is deleted, not spaced
        ("10.5", "10.5"),  # a period before a digit stays
        ("yes.", "yes"),
        ("yes!", "yes "),  # a mark not touching a space becomes one (split() drops it later)
        ("x-ray", "x ray"),
        ("what's", "what's"),  # the apostrophe is not in the punctuation list
    ],
)
def test_process_punctuation(raw: str, expected: str) -> None:
    assert process_punctuation(raw) == expected


def test_period_strip_keeps_official_count_quirk() -> None:
    # The official call passes re.UNICODE (32) as `count`: only the first 32 periods go.
    assert process_punctuation("." * 40) == "." * 8


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("dont", "don't"),
        ("Two", "2"),
        ("none", "0"),
        ("ten dogs", "10 dogs"),
        ("the cat", "cat"),
        ("a an the", ""),
        ("an apple", "apple"),
        ("Im", "im"),  # capitalised keys of the official map never match after lower-casing
        ("thats a dog", "that's dog"),
    ],
)
def test_process_digit_article(raw: str, expected: str) -> None:
    assert process_digit_article(raw) == expected


def test_normalize_answer_chain() -> None:
    assert normalize_answer("  Two\tdogs.\n") == "2 dogs"
    assert normalize_answer("The 1,000 men!") == "1000 men"
    assert normalize_answer("yes!") == "yes"
    assert len(CONTRACTIONS) == 120 and CONTRACTIONS["dont"] == "don't"


OTHER = ["cat"] * 10


@pytest.mark.parametrize(("matches", "expected"), [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)])
def test_leave_one_out_values(matches: int, expected: float) -> None:
    answers = ["dog"] * matches + OTHER[matches:]
    assert vqa_score("dog", answers) == pytest.approx(expected)


def test_leave_one_out_over_fewer_answers() -> None:
    # 5 answers, 2 match: two subsets hold 1 match (1/3), three hold 2 (2/3) -> 8/15.
    assert vqa_score("dog", ["dog", "dog", "cat", "cat", "cow"]) == pytest.approx(8 / 15)
    # 2 identical answers can only reach 1/3.
    assert vqa_score("dog", ["dog", "dog"]) == pytest.approx(1 / 3)


def test_normalisation_applies_only_when_human_answers_disagree() -> None:
    agree = ["yes"] * 10
    disagree = ["yes"] * 9 + ["no"]
    assert vqa_score("yes", agree) == 1.0
    assert vqa_score("Yes", agree) == 0.0  # raw comparison: no lower-casing
    assert vqa_score("yes.", agree) == 0.0  # raw comparison: no punctuation rule
    assert vqa_score(" yes\n", agree) == 1.0  # whitespace is always cleaned
    assert vqa_score("Yes.", disagree) == 1.0
    assert vqa_score("two", ["2"] * 9 + ["3"]) == 1.0
    assert vqa_score("two", ["2"] * 10) == 0.0
    assert vqa_score("1,000", ["1000"] * 4 + ["100"] * 6) == 1.0
    assert vqa_score("dont know", ["don't know"] * 2 + ["no"] * 8) == pytest.approx(0.6)


def test_vqa_accuracy_overall_and_per_type() -> None:
    answers = {
        1: ["yes"] * 10,
        2: ["2"] * 2 + ["3"] * 8,
        3: ["red"] * 1 + ["blue"] * 9,
        4: ["dog"] * 10,
    }
    types = {1: "yes/no", 2: "number", 3: "other", 4: "other"}
    preds = {"1": "yes", 2: "two", 3: "red", 4: "cat"}  # ids match by str()
    result = vqa_accuracy(preds, answers, types)
    assert result == pytest.approx(
        {"overall": 100 * (1 + 0.6 + 0.3 + 0) / 4, "yes/no": 100.0, "number": 60.0, "other": 15.0}
    )
    assert vqa_accuracy(preds, answers) == pytest.approx({"overall": 47.5})


def test_empty_predictions() -> None:
    with pytest.raises(DataError, match="predictions are empty") as info:
        vqa_accuracy({}, {1: ["yes"] * 10})
    assert "\n" not in str(info.value)


def test_prediction_without_annotations_names_question() -> None:
    with pytest.raises(DataError, match=r"question 77 .*has no annotations"):
        vqa_accuracy({1: "yes", 77: "no"}, {1: ["yes"] * 10})


def test_annotated_questions_without_prediction_are_counted() -> None:
    with pytest.raises(DataError, match=r"2 of 3 annotated questions have no prediction"):
        vqa_accuracy({1: "yes"}, {1: ["yes"] * 10, 2: ["no"] * 10, 3: ["no"] * 10})


def test_too_few_answers_and_missing_types() -> None:
    with pytest.raises(DataError, match=r"question 1 has 1 human answers"):
        vqa_accuracy({1: "yes"}, {1: ["yes"]})
    with pytest.raises(DataError, match=r"question 1 has 0 human answers"):
        vqa_accuracy({1: "yes"}, {1: []})
    with pytest.raises(DataError, match=r"no answer type \(e\.g\. question 2\)"):
        vqa_accuracy({1: "yes", 2: "no"}, {1: ["yes"] * 10, 2: ["no"] * 10}, {1: "yes/no"})
    with pytest.raises(DataError, match=r"question 1 is a NoneType"):
        vqa_accuracy({1: None}, {1: ["yes"] * 10})
