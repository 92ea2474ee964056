"""VQA training targets per family recipe (amad.data.targets) on a tiny Karpathy annotation, with golden values."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from amad.data.formats.vqa import load_vqa
from amad.data.targets import RECIPES, all_answers, resolve_mode, training_targets
from amad.errors import ConfigError
from amad.types import Example


def _answers(*pairs: tuple[str, int]) -> list[dict]:
    flat = [a for a, n in pairs for _ in range(n)]
    return [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(flat)]


RECORDS = [  # VL-T5's karpathy_train.json: LXMERT's label (normalised, 3,129-answer vocabulary) per question
    {"img_id": "COCO_train2014_000000000001", "sent": "What color is the bus?", "question_id": 10,
     "label": {"red": 1.0, "dark red": 0.3}, "answer_type": "other"},
    {"img_id": "COCO_train2014_000000000001", "sent": "How many dogs?", "question_id": 11,
     "label": {"2": 0.9, "3": 0.3}, "answer_type": "number"},
    {"img_id": "COCO_train2014_000000000002", "sent": "What is it?", "question_id": 12, "label": {},
     "answer_type": "other"},
]  # fmt: skip
ANNOTATIONS = [  # the official human answers of the same questions
    {"question_id": 10, "answers": _answers(("red", 7), ("dark red", 1), ("maroon", 2)), "answer_type": "other"},
    {"question_id": 11, "answers": _answers(("2", 3), ("two", 4), ("3", 1), ("4", 2)), "answer_type": "number"},
    {"question_id": 12, "answers": _answers(("thingamajig", 1), ("gizmo", 1), ("doohickey", 8)), "answer_type": "other"},
]


@pytest.fixture
def examples(tmp_path: Path) -> list[Example]:
    (tmp_path / "karpathy_train.json").write_text(json.dumps(RECORDS))
    (tmp_path / "v2_mscoco_train2014_annotations.json").write_text(json.dumps({"annotations": ANNOTATIONS}))
    return load_vqa(tmp_path, "train", train=True, format="karpathy")


def test_the_loader_keeps_vlt5s_label_as_answer_scores(examples):
    assert [e.answer_scores for e in examples] == [
        (("dark red", 0.3), ("red", 1.0)),
        (("2", 0.9), ("3", 0.3)),
        (),  # no answer in the vocabulary
    ]
    assert [(e.target, e.target_weight) for e in examples] == [("red", 1.0), ("two", 1.0), ("doohickey", 1.0)]


def test_official_files_score_every_distinct_answer(tmp_path):
    meta = {"data_type": "mscoco", "data_subtype": "val2014"}
    questions = [{"image_id": 1, "question": "What color?", "question_id": 10}]
    (tmp_path / "questions_val.json").write_text(json.dumps({**meta, "questions": questions}))
    (tmp_path / "annotations_val.json").write_text(json.dumps({**meta, "annotations": ANNOTATIONS[:1]}))
    (example,) = load_vqa(tmp_path, "val", train=True)
    assert example.answer_scores == (("dark red", pytest.approx(1 / 3)), ("maroon", pytest.approx(2 / 3)), ("red", 1.0))


def test_top_keeps_the_examples(examples):
    assert training_targets(examples, [0, 1, 2], "top", seed=0, epoch=3) == examples


def test_sample_draws_one_scored_answer_per_epoch_golden(examples):
    draws = [
        [(e.target, e.target_weight) for e in training_targets(examples, [0, 1, 2], "sample", seed=0, epoch=epoch)]
        for epoch in range(6)
    ]
    assert draws == [
        [("red", 1.0), ("2", 0.9), ("doohickey", 0.0)],
        [("red", 1.0), ("2", 0.9), ("doohickey", 0.0)],
        [("red", 1.0), ("3", 0.3), ("doohickey", 0.0)],
        [("dark red", 0.3), ("2", 0.9), ("doohickey", 0.0)],
        [("red", 1.0), ("3", 0.3), ("doohickey", 0.0)],
        [("red", 1.0), ("3", 0.3), ("doohickey", 0.0)],
    ]  # an empty label keeps the top answer at weight 0: no loss, as VL-T5's "" with score 0


def test_sample_follows_the_scores_and_depends_only_on_seed_epoch_and_index(examples):
    counts = Counter(training_targets(examples[:1], [0], "sample", seed=0, epoch=k)[0].target for k in range(4000))
    assert counts["red"] / 4000 == pytest.approx(1.0 / 1.3, abs=0.02)  # P(red) = 1.0 / (1.0 + 0.3)
    alone = training_targets(examples[1:2], [1], "sample", seed=5, epoch=2)
    together = training_targets(examples, [0, 1, 2], "sample", seed=5, epoch=2)
    assert alone[0] == together[1]  # the batch around an example does not change its draw


def test_sample_without_loader_scores_uses_the_human_answers():
    hand_made = Example("q", "1", "what?", "a", ["b"] * 6 + ["a"] * 4)  # answer_scores None
    drawn = {training_targets([hand_made], [0], "sample", seed=0, epoch=k)[0].target_weight for k in range(50)}
    assert drawn == {1.0}  # both answers score min(1, n / 3) = 1


def test_all_gives_every_distinct_answer_with_weight_count_over_n_golden(examples):
    chosen = training_targets(examples, [0, 1, 2], "all", seed=0, epoch=0)
    assert [e.targets for e in chosen] == [
        (("red", 0.7), ("dark red", 0.1), ("maroon", 0.2)),
        (("2", 0.3), ("two", 0.4), ("3", 0.1), ("4", 0.2)),
        (("thingamajig", 0.1), ("gizmo", 0.1), ("doohickey", 0.8)),
    ]  # BLIP's vqa_dataset.py: answer_weight[a] += 1 / len(answers)
    assert all(sum(w for _, w in e.targets) == pytest.approx(1.0) for e in chosen)
    assert all_answers([" yes", "yes ", "no"]) == (("yes", pytest.approx(2 / 3)), ("no", pytest.approx(1 / 3)))


def test_recipe_resolves_per_family():
    assert RECIPES == {"vlt5": "sample", "blip": "all"}
    assert [resolve_mode("recipe", f) for f in ("vlt5", "blip")] == ["sample", "all"]
    assert resolve_mode("top", "blip") == "top"
    with pytest.raises(ConfigError, match="vqa_targets must be one of top, sample, all, recipe"):
        resolve_mode("every", "blip")
