"""VQA loaders on small files in the official VQA-2.0 and VL-T5 Karpathy formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amad.data.formats.vqa import load_vqa, select_target, soft_score
from amad.errors import ConfigError, DataError, UnknownNameError


def answers(*pairs: tuple[str, int]) -> list[dict]:
    flat = [a for a, n in pairs for _ in range(n)]
    return [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(flat)]


QUESTIONS = [
    {"image_id": 391895, "question": "What color is the bus?", "question_id": 3918950},
    {"image_id": 391895, "question": "How many dogs?", "question_id": 3918951},
    {"image_id": 42, "question": "Is it raining?", "question_id": 420},
]
ANNOTATIONS = [
    {
        "question_id": 3918950,
        "image_id": 391895,
        "question_type": "what color",
        "answer_type": "other",
        "multiple_choice_answer": "red",
        "answers": answers(("red", 4), ("blue", 4), ("dark red", 2)),
    },
    {
        "question_id": 3918951,
        "image_id": 391895,
        "question_type": "how many",
        "answer_type": "number",
        "multiple_choice_answer": "2",
        "answers": answers(("2", 2), ("3", 1), ("two", 1), ("4", 6)),
    },
    {
        "question_id": 420,
        "image_id": 42,
        "question_type": "is it",
        "answer_type": "yes/no",
        "multiple_choice_answer": "no",
        "answers": answers(("no", 1), ("yes", 1), ("maybe", 1), ("nope", 7)),
    },
]


def write_official(root: Path, split: str = "val", *, data_type: str = "mscoco", anns=ANNOTATIONS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    meta = {"info": {}, "license": {}, "data_type": data_type, "data_subtype": f"{split}2014"}
    q = {**meta, "task_type": "Open-Ended", "questions": QUESTIONS}
    (root / f"questions_{split}.json").write_text(json.dumps(q))
    (root / f"annotations_{split}.json").write_text(json.dumps({**meta, "annotations": anns}))
    return root


@pytest.mark.parametrize(
    ("given", "target", "score"),
    [
        (["red"] * 4 + ["blue"] * 4 + ["dark red"] * 2, "blue", 1.0),  # tie at score 1 and count 4: alphabetical
        (["yes"] * 3 + ["no"] * 7, "no", 1.0),  # both score 1: the most frequent wins
        (["cat", "dog", "dog"], "dog", 2 / 3),
        (["b", "a"], "a", 1 / 3),
        ([" cat ", "cat"], "cat", 2 / 3),
    ],
)
def test_select_target(given, target, score):
    assert select_target(given) == (target, pytest.approx(score))


def test_soft_score_values():
    assert [soft_score(n) for n in range(5)] == [0.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 1.0, 1.0]


def test_official_format_loads_examples(tmp_path):
    ex = load_vqa(write_official(tmp_path), "val", train=True)
    assert [e.uid for e in ex] == ["3918950", "3918951", "420"]
    first = ex[0]
    assert first.image_id == "COCO_val2014_000000391895"
    assert first.source == "What color is the bus?"
    assert (first.target, first.target_weight, first.answer_type) == ("blue", 1.0, "other")
    assert len(first.references) == 10 and first.references.count("dark red") == 2
    assert (ex[1].target, ex[1].answer_type) == ("4", "number")
    assert (ex[2].target, ex[2].image_id) == ("nope", "COCO_val2014_000000000042")


def test_image_key_format(tmp_path):
    write_official(tmp_path / "mini", data_type="easy-vqa")
    assert load_vqa(tmp_path / "mini", "val", train=False)[0].image_id == "391895"
    custom = load_vqa(tmp_path / "mini", "val", train=False, image_key_format="img{image_id}_{data_subtype}")
    assert custom[2].image_id == "img42_val2014"
    with pytest.raises(ConfigError, match="image_key_format"):
        load_vqa(tmp_path / "mini", "val", train=False, image_key_format="{imageid}")


def test_limit_keeps_first_examples(tmp_path):
    assert [e.uid for e in load_vqa(write_official(tmp_path), "val", train=True, limit=2)] == ["3918950", "3918951"]


def test_karpathy_format_takes_answers_from_official_files(tmp_path):
    records = [
        {
            "img_id": "COCO_val2014_000000391895",
            "sent": "What color is the bus?",
            "question_id": 3918950,
            "label": {"red": 1.0, "blue": 1.0},
            "answer_type": "other",
            "question_type": "what color",
        },
        {
            "img_id": "COCO_train2014_000000000042",
            "sent": "Is it raining?",
            "question_id": 420,
            "label": {"nope": 1.0},
            "answer_type": "yes/no",
            "question_type": "is it",
        },
    ]
    (tmp_path / "karpathy_test.json").write_text(json.dumps(records))
    (tmp_path / "v2_mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": ANNOTATIONS[:2]}))
    (tmp_path / "v2_mscoco_train2014_annotations.json").write_text(json.dumps({"annotations": ANNOTATIONS[2:]}))
    ex = load_vqa(tmp_path, "test", train=False, format="karpathy")
    assert [(e.uid, e.image_id, e.target) for e in ex] == [
        ("3918950", "COCO_val2014_000000391895", "blue"),
        ("420", "COCO_train2014_000000000042", "nope"),
    ]
    assert ex[1].references.count("nope") == 7 and ex[1].answer_type == "yes/no"
    (tmp_path / "v2_mscoco_train2014_annotations.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(DataError, match="question 420 has no annotations"):
        load_vqa(tmp_path, "test", train=False, format="karpathy")


def test_question_without_annotations(tmp_path):
    write_official(tmp_path, anns=ANNOTATIONS[:2])
    with pytest.raises(DataError, match=r"question 420 has no annotations in .*annotations_val.json"):
        load_vqa(tmp_path, "val", train=True)


def test_empty_answers_list(tmp_path):
    write_official(tmp_path, anns=[*ANNOTATIONS[:2], {**ANNOTATIONS[2], "answers": []}])
    with pytest.raises(DataError, match="question 420 has an empty answers list"):
        load_vqa(tmp_path, "val", train=True)


def test_missing_corrupt_and_wrong_format_files(tmp_path):
    with pytest.raises(DataError, match=r"missing VQA questions file .*questions_val.json: .*stage"):
        load_vqa(tmp_path, "val", train=True)
    write_official(tmp_path)
    (tmp_path / "annotations_val.json").write_text('{"annotations": [')
    with pytest.raises(DataError, match=r"annotations_val.json is not valid JSON"):
        load_vqa(tmp_path, "val", train=True)
    (tmp_path / "annotations_val.json").write_text('{"questions": []}')
    with pytest.raises(DataError, match=r"not in the VQA-2\.0 annotations"):
        load_vqa(tmp_path, "val", train=True)
    (tmp_path / "karpathy_val.json").write_text('[{"img_id": "x"}]')
    with pytest.raises(DataError, match="not in the VL-T5 karpathy"):
        load_vqa(tmp_path, "val", train=True, format="karpathy")


def test_unknown_split_and_format(tmp_path):
    with pytest.raises(UnknownNameError, match="did you mean 'val'"):
        load_vqa(tmp_path, "vall", train=True)
    with pytest.raises(UnknownNameError, match="did you mean 'karpathy'"):
        load_vqa(tmp_path, "val", train=True, format="karpathi")
