"""Visual features: VL-T5 h5 layout, grid extraction, resume, official files, bad input."""

from __future__ import annotations

import base64
import pickle

import h5py
import numpy as np
import pytest
from PIL import Image

import amad.data.visual.features as features_mod
from amad.data.visual.features import (
    FeatureStore,
    convert_lxmert_tsv,
    extract_grid_features,
    grid_boxes,
    grid_features,
    write_features,
)
from amad.data.visual.h5stream import partial_path
from amad.errors import DataError

KEYS = [str(100 + i) for i in range(7)]


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for key in KEYS:
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / f"{key}.png")
    return folder


def _content(path):
    with h5py.File(path, "r") as h5:
        attrs = {k: np.asarray(v).tolist() for k, v in h5.attrs.items()}
        return attrs, {key: {n: d[()].tolist() for n, d in group.items()} for key, group in h5.items()}


def test_grid_features_golden():
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    pixels[:, :2] = (255, 0, 0)  # left half red
    pixels[:, 2:] = (0, 0, 255)  # right half blue
    feats = grid_features(Image.fromarray(pixels), grid=2, pool=1, bins=2)
    assert feats.shape == (4, 3 + 8) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[0, :3], [1, -1, -1])  # pooled RGB scaled to [-1, 1]
    np.testing.assert_allclose(feats[3, :3], [-1, -1, 1])
    red_bin, blue_bin = (1 * 2 + 0) * 2 + 0, (0 * 2 + 0) * 2 + 1
    assert feats[0, 3 + red_bin] == 1.0 and feats[1, 3 + blue_bin] == 1.0 and feats[:, 3:].sum() == 4.0
    np.testing.assert_allclose(
        grid_boxes(48, 40, 2), [[0, 0, 24, 20], [24, 0, 48, 20], [0, 20, 24, 40], [24, 20, 48, 40]]
    )


def test_extract_and_read_round_trip(image_dir, tmp_path):
    out = tmp_path / "feats.h5"
    summary = extract_grid_features(image_dir, KEYS, out, grid=4, pool=2, bins=3, batch_size=3, progress=False)
    assert summary == {"images": 7, "resumed": 0, "num_boxes": 16, "feature_dim": 3 * 4 + 27}
    assert not partial_path(out).exists()
    with h5py.File(out, "r") as h5:
        group = h5[KEYS[0]]
        assert group["boxes"].dtype == np.float32 and int(group["img_w"][()]) == 48 and int(group["img_h"][()]) == 40
        np.testing.assert_allclose(group["boxes"][1], [12, 0, 24, 10])  # pixel x1, y1, x2, y2
    with FeatureStore(out) as store:
        assert sorted(store.keys()) == sorted(KEYS) and KEYS[3] in store and "nope" not in store
        assert store.feature_dim == 39 and store.num_boxes == 16 and len(store) == 7
        feats, boxes = store.get(KEYS[2])
        with Image.open(image_dir / f"{KEYS[2]}.png") as image:
            np.testing.assert_array_equal(feats, grid_features(image.convert("RGB"), grid=4, pool=2, bins=3))
        np.testing.assert_allclose(boxes[0], [0, 0, 0.25, 0.25])
        np.testing.assert_allclose(boxes[-1], [0.75, 0.75, 1, 1])
        with pytest.raises(DataError, match=rf"'nope' is not in feature file {out}"):
            store.get("nope")
        copy = pickle.loads(pickle.dumps(store))  # what DataLoader workers receive: reopens lazily
        np.testing.assert_array_equal(copy.get(KEYS[2])[0], feats)


def test_interrupted_extraction_resumes_to_the_same_file(image_dir, tmp_path, monkeypatch):
    reference = tmp_path / "reference.h5"
    extract_grid_features(image_dir, KEYS, reference, grid=2, pool=2, batch_size=2, progress=False)
    out = tmp_path / "out" / "feats.h5"
    out.parent.mkdir()
    out.write_bytes(b"previous good output")
    calls = {"n": 0}
    real = features_mod.grid_features

    def flaky(image, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(image, **kwargs)

    monkeypatch.setattr(features_mod, "grid_features", flaky)
    with pytest.raises(KeyboardInterrupt):
        extract_grid_features(image_dir, KEYS, out, grid=2, pool=2, batch_size=2, progress=False)
    assert out.read_bytes() == b"previous good output"
    with h5py.File(partial_path(out), "r") as h5:
        assert len(h5) == 4  # two finished batches of 2
    monkeypatch.setattr(features_mod, "grid_features", real)
    summary = extract_grid_features(image_dir, KEYS, out, grid=2, pool=2, batch_size=2, progress=False)
    assert summary["resumed"] == 4 and not partial_path(out).exists()
    assert _content(out) == _content(reference)
    assert out.read_bytes() == reference.read_bytes()  # same batch_size: byte-identical
    assert sorted(p.name for p in out.parent.iterdir()) == ["feats.h5"]


def test_partial_file_from_other_settings_or_corrupt_is_discarded(image_dir, tmp_path):
    out = tmp_path / "feats.h5"
    reference = tmp_path / "reference.h5"
    extract_grid_features(image_dir, KEYS, reference, grid=2, pool=1, progress=False)
    extract_grid_features(image_dir, KEYS[:3], tmp_path / "x.h5", grid=3, pool=1, progress=False)
    (tmp_path / "x.h5").rename(partial_path(out))  # a partial file written with grid=3
    summary = extract_grid_features(image_dir, KEYS, out, grid=2, pool=1, progress=False)
    assert summary["resumed"] == 0 and _content(out) == _content(reference)
    partial_path(out).write_bytes(b"garbage")
    assert extract_grid_features(image_dir, KEYS, out, grid=2, pool=1, progress=False)["resumed"] == 0
    assert _content(out) == _content(reference)


def test_missing_image_is_named_and_nothing_is_written(image_dir, tmp_path):
    out = tmp_path / "feats.h5"
    with pytest.raises(DataError, match=r"images/999\.png \(key '999'\) not found"):
        extract_grid_features(image_dir, [*KEYS, "999"], out, progress=False)
    assert not out.exists() and not partial_path(out).exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_h5_is_a_one_line_data_error(image_dir, tmp_path, damage):
    path = tmp_path / "feats.h5"
    extract_grid_features(image_dir, KEYS, path, grid=2, pool=1, progress=False)
    data = path.read_bytes()
    path.write_bytes(b"not an h5 file at all" * 10 if damage == "garbage" else data[: len(data) // 2])
    with pytest.raises(DataError, match=rf"feature file {path} is corrupt .*delete it and re-run the extract") as err:
        FeatureStore(path).get(KEYS[0])
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="not found"):
        FeatureStore(tmp_path / "absent.h5")


def test_reads_official_obj36_layout(tmp_path):
    path = tmp_path / "val2014_obj36.h5"
    rng = np.random.default_rng(1)
    feats = rng.random((36, 2048), dtype=np.float32)
    boxes = np.tile(np.array([[64.0, 48.0, 320.0, 480.5]], dtype=np.float32), (36, 1))  # y2 a bit past img_h
    with h5py.File(path, "w") as h5:
        group = h5.create_group("COCO_val2014_000000391895")
        group["features"], group["boxes"] = feats, boxes
        group["img_w"], group["img_h"] = 640, 480
        group["obj_id"], group["attr_id"] = np.arange(36), np.arange(36)
        group["obj_conf"], group["attr_conf"] = np.ones(36, np.float32), np.ones(36, np.float32)
    store = FeatureStore(path)
    got_feats, got_boxes = store.get("COCO_val2014_000000391895")
    np.testing.assert_array_equal(got_feats, feats)
    np.testing.assert_allclose(got_boxes[0], [0.1, 0.1, 0.5, 1.0])
    assert store.feature_dim == 2048 and store.num_boxes == 36


def test_lxmert_tsv_conversion(tmp_path):
    rng = np.random.default_rng(2)
    rows, expected = [], {}
    for key, n in (("COCO_val2014_000000000042", 3), ("COCO_val2014_000000000073", 2)):
        feats = rng.random((n, 8), dtype=np.float32)
        boxes = np.array([[0, 0, 10, 20]] * n, dtype=np.float32)
        expected[key] = feats
        fields = [np.arange(n, dtype=np.int64), np.ones(n, np.float32), np.arange(n, dtype=np.int64)]
        encoded = [base64.b64encode(a.tobytes()).decode() for a in (*fields, np.ones(n, np.float32), boxes, feats)]
        obj_id, obj_conf, attr_id, attr_conf, b64_boxes, b64_feats = encoded
        rows.append("\t".join([key, "20", "10", obj_id, obj_conf, attr_id, attr_conf, str(n), b64_boxes, b64_feats]))
    tsv = tmp_path / "val2014_obj36.tsv"
    tsv.write_text("\n".join(rows) + "\n")
    assert convert_lxmert_tsv(tsv, tmp_path / "out.h5") == 2
    store = FeatureStore(tmp_path / "out.h5")
    for key, feats in expected.items():
        got_feats, got_boxes = store.get(key)
        np.testing.assert_array_equal(got_feats, feats)
        np.testing.assert_allclose(got_boxes, [[0, 0, 1, 1]] * len(feats))
    with h5py.File(tmp_path / "out.h5", "r") as h5:
        assert h5["COCO_val2014_000000000042"]["obj_id"][()].tolist() == [0, 1, 2]
    tsv.write_text("COCO_x\t20\t10\tnot-base64\n")
    with pytest.raises(DataError, match="line 1 is not an LXMERT obj36 row"):
        convert_lxmert_tsv(tsv, tmp_path / "bad.h5")
    assert not (tmp_path / "bad.h5").exists()


def test_write_features_rejects_bad_shapes(tmp_path):
    with pytest.raises(ValueError, match=r"boxes \(N, 4\)"):
        write_features(tmp_path / "x.h5", [("a", np.zeros((3, 2)), np.zeros((2, 4)), 10, 10)])
    assert not (tmp_path / "x.h5").exists()
    assert write_features(tmp_path / "y.h5", [("a", np.zeros((3, 2)), np.zeros((3, 4)), 10, 10)]) == 1
