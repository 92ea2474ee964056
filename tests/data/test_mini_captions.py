"""Mini captions: rendered scenes in the Karpathy dataset_coco.json format."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

from amad.data import load_examples
from amad_suite.mini.captions import build_mini_captions
from amad_suite.mini.scenes import COLOURS, describe_scene, render_scene, sample_scene
from amad.errors import ConfigError


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cap") / "captions"
    summary = build_mini_captions(root, n_train=8, n_val=3, n_test=2, seed=1)
    return root, summary, json.loads((root / "dataset_coco.json").read_text())


def test_karpathy_format(built):
    root, summary, data = built
    assert data["dataset"] == "coco"
    images = data["images"]
    assert [im["split"] for im in images] == ["train"] * 8 + ["val"] * 3 + ["test"] * 2
    assert [im["imgid"] for im in images] == list(range(13))
    sentids = []
    for im in images:
        assert im["filepath"] == "images" and im["filename"] == f"{im['cocoid']}.png"
        assert len(im["sentences"]) == 5 and len({s["raw"] for s in im["sentences"]}) == 5
        for s in im["sentences"]:
            assert s["tokens"] == s["raw"].split() and s["imgid"] == im["imgid"]
        assert im["sentids"] == [s["sentid"] for s in im["sentences"]]
        sentids += im["sentids"]
        with Image.open(root / im["filepath"] / im["filename"]) as image:
            assert image.mode == "RGB" and image.size == (64, 64)
    assert sorted(sentids) == list(range(65))
    assert len({im["cocoid"] for im in images}) == 13
    assert summary["test"] == {"images": 2, "captions": 10}


def test_caption_language_is_small(built):
    _, summary, _ = built
    assert 20 < len(summary["vocabulary"]) < 60
    assert {"red", "circle", "left", "above"} <= set(summary["vocabulary"])


def test_deterministic_and_split_streams_are_independent(tmp_path, built):
    root, _, data = built
    build_mini_captions(tmp_path / "again", n_train=8, n_val=3, n_test=2, seed=1)
    assert (tmp_path / "again" / "dataset_coco.json").read_bytes() == (root / "dataset_coco.json").read_bytes()
    assert (tmp_path / "again" / "images" / "100004.png").read_bytes() == (root / "images" / "100004.png").read_bytes()
    build_mini_captions(tmp_path / "more_test", n_train=8, n_val=3, n_test=5, seed=1)
    more = json.loads((tmp_path / "more_test" / "dataset_coco.json").read_text())
    assert more["images"][:13] == data["images"]


def test_captions_describe_what_is_drawn():
    rng = random.Random(0)
    layouts = set()
    for _ in range(40):
        scene = sample_scene(rng, 64)
        layouts.add(scene.layout)
        pixels = np.asarray(render_scene(scene), dtype=int)
        for obj in scene.objects:
            centre = pixels[int(obj.cy), int(obj.cx)]
            assert np.abs(centre - np.array(COLOURS[obj.colour])).max() <= 20
        if scene.layout == "horizontal":
            assert scene.objects[0].cx < scene.objects[1].cx
        if scene.layout == "vertical":
            assert scene.objects[0].cy < scene.objects[1].cy
        for caption in describe_scene(scene, rng, 5):
            for obj in scene.objects:
                assert f"{obj.colour} {obj.shape}" in caption
            if "left of" in caption:
                a, b = scene.objects
                assert caption.index(f"{a.colour} {a.shape}") < caption.index(f"{b.colour} {b.shape}")
            if "below" in caption:
                a, b = scene.objects
                assert caption.index(f"{b.colour} {b.shape}") < caption.index(f"{a.colour} {a.shape}")
    assert layouts == {"single", "horizontal", "vertical"}


def test_bad_sizes_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="image_size"):
        build_mini_captions(tmp_path / "x", n_train=1, n_val=1, n_test=1, image_size=8)


def test_the_caption_loader_reads_the_mini_file(built):
    root, _, data = built
    train = load_examples("caption", root, "train", train=True)
    test = load_examples("caption", root, "test", train=False)
    assert len(train) == 8 * 5 and len(test) == 2
    assert test[0].image_id == str(data["images"][11]["cocoid"]) and len(test[0].references) == 5
    assert all((root / "images" / f"{e.image_id}.png").is_file() for e in train)
