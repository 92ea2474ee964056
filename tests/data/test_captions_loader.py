"""Caption loader on a small file in Karpathy's dataset_coco.json format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amad.data.formats.captions import load_captions
from amad.errors import DataError, UnknownNameError


def image(imgid: int, split: str, captions: list[str], folder: str = "val2014") -> dict:
    cocoid = 100 + imgid
    name = f"COCO_{folder}_{cocoid:012d}.jpg"
    sents = [
        {"raw": c, "tokens": c.lower().split(), "imgid": imgid, "sentid": 10 * imgid + i}
        for i, c in enumerate(captions)
    ]
    return {
        "filepath": folder,
        "filename": name,
        "imgid": imgid,
        "cocoid": cocoid,
        "split": split,
        "sentences": sents,
        "sentids": [s["sentid"] for s in sents],
    }


IMAGES = [
    image(0, "train", ["A dog runs.", "A brown dog running. "], folder="train2014"),
    image(1, "restval", ["Two cats sleep."]),
    image(2, "test", ["A red bus.", "A bus on a road.", "Red bus parked."]),
    image(3, "val", ["A man surfs."]),
]


def write(root: Path, images=IMAGES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_coco.json").write_text(json.dumps({"dataset": "coco", "images": images}))
    return root


def test_train_has_one_example_per_caption_including_restval(tmp_path):
    ex = load_captions(write(tmp_path), "train", train=True)
    assert [e.uid for e in ex] == [
        "COCO_train2014_000000000100#0",
        "COCO_train2014_000000000100#1",
        "COCO_val2014_000000000101#10",
    ]
    assert ex[1].target == "A brown dog running."
    assert ex[0].references == ["A dog runs.", "A brown dog running."]
    assert ex[0].image_id == "COCO_train2014_000000000100" and ex[0].source == ""


def test_eval_has_one_example_per_image(tmp_path):
    ex = load_captions(write(tmp_path), "test", train=False)
    assert len(ex) == 1
    assert (ex[0].uid, ex[0].target) == ("COCO_val2014_000000000102", "A red bus.")
    assert ex[0].references == ["A red bus.", "A bus on a road.", "Red bus parked."]
    assert [e.uid for e in load_captions(tmp_path, "train", train=False)] == [
        "COCO_train2014_000000000100",
        "COCO_val2014_000000000101",
    ]


def test_mini_style_png_keys_and_limit(tmp_path):
    mini = [{**image(7, "val", ["A red square."]), "filepath": "images", "filename": "7.png"}]
    ex = load_captions(write(tmp_path, mini), "val", train=True, limit=1)
    assert (ex[0].uid, ex[0].image_id) == ("7#70", "7")
    assert load_captions(tmp_path, "val", train=True, limit=0) == []


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match=r"missing caption file .*dataset_coco.json"):
        load_captions(tmp_path, "val", train=True)
    (tmp_path / "dataset_coco.json").write_text("{not json")
    with pytest.raises(DataError, match="is not valid JSON"):
        load_captions(tmp_path, "val", train=True)
    write(tmp_path, [{"filename": "x.jpg", "split": "val"}])
    with pytest.raises(DataError, match="not in the Karpathy"):
        load_captions(tmp_path, "val", train=True)
    write(tmp_path, [image(5, "val", [])])
    with pytest.raises(DataError, match="has no captions"):
        load_captions(tmp_path, "val", train=True)
    with pytest.raises(UnknownNameError, match="did you mean 'test'"):
        load_captions(tmp_path, "tset", train=True)
