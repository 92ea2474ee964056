"""Mini VQA: easy-vqa converted to the official VQA-2.0 question/annotation format."""

from __future__ import annotations

import json
from pathlib import Path

import easy_vqa
import pytest

from amad.data import load_examples
from amad_suite.mini.vqa import build_mini_vqa, question_type, staged_dir
from amad.errors import ConfigError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("vqa") / "vqa"
    summary = build_mini_vqa(root, n_train=6, n_val=2, n_test=3, seed=7)
    return root, summary


def _load(root, kind, split):
    return json.loads((root / f"{kind}_{split}.json").read_text())


def test_files_follow_the_official_vqa_format(built):
    root, summary = built
    for split in ("train", "val", "test"):
        questions, annotations = _load(root, "questions", split), _load(root, "annotations", split)
        assert questions["task_type"] == "Open-Ended" and questions["data_type"] == "easy-vqa"
        assert questions["data_subtype"] == split == annotations["data_subtype"]
        assert {"info", "license"} <= set(questions) and {"info", "license"} <= set(annotations)
        qs, anns = questions["questions"], annotations["annotations"]
        assert len(qs) == len(anns) == summary[split]["questions"] > 0
        assert [q["question_id"] for q in qs] == [a["question_id"] for a in anns]
        for q, a in zip(qs, anns):
            assert set(q) == {"image_id", "question", "question_id"} and isinstance(q["image_id"], int)
            assert a["image_id"] == q["image_id"]
            assert a["question_type"] == question_type(q["question"])
            answers = a["answers"]
            assert [x["answer_id"] for x in answers] == list(range(1, 11))
            assert {x["answer"] for x in answers} == {a["multiple_choice_answer"]}
            assert {x["answer_confidence"] for x in answers} == {"yes"}
            expected_type = "yes/no" if a["multiple_choice_answer"] in ("yes", "no") else "other"
            assert a["answer_type"] == expected_type


def test_splits_are_by_image_with_unique_ids_and_copied_images(built):
    root, summary = built
    images = {
        split: {q["image_id"] for q in _load(root, "questions", split)["questions"]}
        for split in summary
        if split != "answers"
    }
    assert {split: len(ids) for split, ids in images.items()} == {"train": 6, "val": 2, "test": 3}
    assert not images["train"] & images["val"] and not images["test"] & (images["train"] | images["val"])
    assert all(10000 <= i < 14000 for i in images["train"] | images["val"])
    assert all(20000 <= i < 21000 for i in images["test"])
    all_qids = [q["question_id"] for s in images for q in _load(root, "questions", s)["questions"]]
    assert len(all_qids) == len(set(all_qids))
    files = sorted(p.name for p in (root / "images").iterdir())
    assert files == sorted(f"{i}.png" for ids in images.values() for i in ids)
    test_id = min(images["test"])
    source = easy_vqa.get_test_image_paths()[test_id - 20000]
    assert (root / "images" / f"{test_id}.png").read_bytes() == Path(source).read_bytes()


def test_questions_and_answers_match_the_easy_vqa_source(built):
    root, _ = built
    texts, answers, image_ids = easy_vqa.get_test_questions()
    image_id = min(q["image_id"] for q in _load(root, "questions", "test")["questions"])
    expected = [(t, a) for t, a, i in zip(texts, answers, image_ids) if i == image_id - 20000]
    got_q = [q for q in _load(root, "questions", "test")["questions"] if q["image_id"] == image_id]
    got_a = {a["question_id"]: a["multiple_choice_answer"] for a in _load(root, "annotations", "test")["annotations"]}
    assert [(q["question"], got_a[q["question_id"]]) for q in got_q] == expected
    assert [q["question_id"] for q in got_q] == [image_id * 100 + k for k in range(len(expected))]


def test_deterministic_for_a_seed_and_different_for_another(tmp_path, built):
    root, _ = built
    build_mini_vqa(tmp_path / "again", n_train=6, n_val=2, n_test=3, seed=7)
    build_mini_vqa(tmp_path / "other", n_train=6, n_val=2, n_test=3, seed=8)
    for name in ("questions_train.json", "annotations_val.json", "questions_test.json"):
        assert (tmp_path / "again" / name).read_bytes() == (root / name).read_bytes()
    assert (tmp_path / "other" / "questions_train.json").read_bytes() != (root / "questions_train.json").read_bytes()


def test_question_types():
    assert question_type("what color is the shape?") == "what color is the"
    assert question_type("does the image not contain a gray shape?") == "does the image not contain"
    assert question_type("is there a triangle in the image?") == "is there a"
    assert question_type("how many shapes?") == "how many"


def test_too_many_images_is_a_config_error_and_keeps_old_output(built):
    root, _ = built
    before = (root / "questions_train.json").read_bytes()
    with pytest.raises(ConfigError, match="lower n_train"):
        build_mini_vqa(root, n_train=4000, n_val=1, n_test=1, seed=0)
    assert (root / "questions_train.json").read_bytes() == before


def test_staged_dir_keeps_the_old_folder_when_the_build_fails(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "good.txt").write_text("good")
    with pytest.raises(RuntimeError), staged_dir(out) as stage:
        (stage / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert [p.name for p in out.iterdir()] == ["good.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_vqa_loader_reads_the_mini_files(built):
    root, summary = built
    examples = load_examples("vqa", root, "val", train=False, image_key_format="{image_id}")
    assert len(examples) == summary["val"]["questions"]
    assert all((root / "images" / f"{e.image_id}.png").is_file() for e in examples)
    assert all(e.references == [e.target] * 10 and e.target_weight == 1.0 for e in examples)
