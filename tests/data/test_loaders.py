"""load_examples: dispatch, option checks, and fetch-from-mirror followed by loading (the mini-suite path)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from shared_data import SHARED_MULTI30K, needs_multi30k

from amad.data import load_examples
from amad_suite.fetch.download import fetch_all
from amad_suite.fetch.manifest import load_manifest
from amad.registry import unknown_name
from amad.errors import ConfigError, DataError, UnknownNameError
from amad.types import Example


def write_vqa(root: Path) -> None:
    root.mkdir(parents=True)
    q = {
        "data_type": "easy-vqa",
        "data_subtype": "test",
        "questions": [{"image_id": 7, "question": "What shape is in the image?", "question_id": 70}],
    }
    a = {
        "data_type": "easy-vqa",
        "data_subtype": "test",
        "annotations": [
            {
                "question_id": 70,
                "image_id": 7,
                "question_type": "what",
                "answer_type": "other",
                "multiple_choice_answer": "circle",
                "answers": [{"answer": "circle", "answer_confidence": "yes", "answer_id": i + 1} for i in range(10)],
            }
        ],
    }
    (root / "questions_test.json").write_text(json.dumps(q))
    (root / "annotations_test.json").write_text(json.dumps(a))


def test_dispatch_to_each_task(tmp_path):
    write_vqa(tmp_path / "vqa")
    ex = load_examples("vqa", tmp_path / "vqa", "test", train=False)
    answers = (("circle", 1.0),)  # the candidates of VL-T5's sampled targets
    assert ex == [Example("70", "7", "What shape is in the image?", "circle", ["circle"] * 10, 1.0, "other", answers)]
    cap = {"images": [{"filename": "7.png", "split": "test", "sentences": [{"raw": "a circle", "sentid": 3}]}]}
    (tmp_path / "cap").mkdir()
    (tmp_path / "cap" / "dataset_coco.json").write_text(json.dumps(cap))
    assert load_examples("caption", str(tmp_path / "cap"), "test", train=True)[0].uid == "7#3"
    raw = tmp_path / "mt" / "task1" / "raw"
    raw.mkdir(parents=True)
    for lang, text in (("en", "a circle\n"), ("de", "ein Kreis\n")):
        (raw / f"val.{lang}.gz").write_bytes(gzip.compress(text.encode()))
    assert load_examples("translation", tmp_path / "mt", "val", train=True)[0].target == "ein Kreis"


def test_unknown_task_and_option(tmp_path):
    with pytest.raises(UnknownNameError, match="unknown task 'captions': did you mean 'caption'"):
        load_examples("captions", tmp_path, "val", train=True)
    with pytest.raises(ConfigError, match="unknown option 'max_word' for task 'translation'"):
        load_examples("translation", tmp_path, "val", train=True, max_word=5)
    with pytest.raises(ConfigError, match="limit must be a non-negative integer"):
        write_vqa(tmp_path / "vqa")
        load_examples("vqa", tmp_path / "vqa", "test", train=True, limit=-1)


def test_unknown_name_message_is_one_line():
    err = unknown_name("split", "tets", ["train", "val", "test"])
    assert str(err) == "unknown split 'tets': did you mean 'test'? choose one of: test, train, val"


def test_missing_data_points_at_the_stage(tmp_path):
    with pytest.raises(DataError, match=r"download stage .* mini-data stage"):
        load_examples("caption", tmp_path, "val", train=False)


@needs_multi30k
def test_fetch_from_shared_mirror_then_load(tmp_path, monkeypatch):
    monkeypatch.setenv("AMAD_DATA_MIRROR", str(SHARED_MULTI30K))  # as CI sets it
    entries = [e for e in load_manifest().group("translation") if "/val." in e.path or e.path.endswith("/val.txt")]
    paths = fetch_all(entries, tmp_path / "data", progress=False)
    assert [p.relative_to(tmp_path / "data").as_posix() for p in paths] == [e.path for e in entries]
    ex = load_examples("translation", tmp_path / "data" / "multi30k", "val", train=False, limit=2)
    assert [e.uid for e in ex] == ["val:0", "val:1"]
    assert ex[0].source == "A group of men are loading cotton onto a truck"
