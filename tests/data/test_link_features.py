"""The feature index over official h5 files: lookups, one handle per file and process, relocation, workers."""

from __future__ import annotations

import multiprocessing
import pickle
import shutil

import numpy as np
import pytest

import amad.data.visual.link_features as link_mod
from amad.data.visual.features import FeatureStore, write_features
from amad.data.visual.link_features import link_features
from amad.errors import DataError


def official(path, keys, value):
    boxes = np.array([[0, 0, 10, 20]] * 3, dtype=np.float32)
    write_features(path, [(k, np.full((3, 4), value, np.float32), boxes, 10, 20) for k in keys])
    return path


@pytest.fixture
def root(tmp_path):
    raw = tmp_path / "data" / "raw" / "features" / "coco"
    raw.mkdir(parents=True)
    official(raw / "train2014_obj36.h5", ["COCO_train2014_1", "COCO_train2014_2", "shared"], 1.0)
    official(raw / "val2014_obj36.h5", ["COCO_val2014_1", "shared"], 2.0)
    return tmp_path / "data"


def index(root):
    raw = root / "raw" / "features" / "coco"
    out = root / "features" / "vqa.h5"
    assert link_features(out, [raw / "train2014_obj36.h5", raw / "val2014_obj36.h5"]) == 4
    return out


def test_lookups_go_to_the_file_holding_the_key(root):
    with FeatureStore(index(root)) as store:
        assert len(store) == 4 and "COCO_val2014_1" in store and "nope" not in store
        assert sorted(store.keys()) == ["COCO_train2014_1", "COCO_train2014_2", "COCO_val2014_1", "shared"]
        assert store.get("COCO_val2014_1")[0][0, 0] == 2.0 and store.get("shared")[0][0, 0] == 1.0  # first wins
        np.testing.assert_allclose(store.get("COCO_train2014_2")[1], [[0, 0, 1, 1]] * 3)
        assert store.feature_dim == 4 and store.num_boxes == 3
        with pytest.raises(DataError, match="in none of the feature files"):
            store.get("nope")


def test_each_official_file_is_opened_once_per_process(root, monkeypatch):
    opened = []
    real = link_mod.open_h5
    monkeypatch.setattr(link_mod, "open_h5", lambda path, **kw: opened.append(path.name) or real(path, **kw))
    store = FeatureStore(index(root), cache_mb=0)
    for _ in range(5):
        for key in ("COCO_train2014_1", "COCO_val2014_1", "COCO_train2014_2"):
            store.get(key)
    assert sorted(opened) == ["train2014_obj36.h5", "val2014_obj36.h5"]


def test_index_survives_moving_the_data_root(root, tmp_path):
    out = index(root)
    shutil.move(root, tmp_path / "moved")
    with FeatureStore(tmp_path / "moved" / out.relative_to(root)) as store:
        assert store.get("COCO_val2014_1")[0][0, 0] == 2.0


def _read_in_child(store, queue):
    queue.put(float(store.get("COCO_val2014_1")[0][0, 0]))


def test_store_is_safe_in_forked_and_pickled_workers(root):
    store = FeatureStore(index(root))
    store.get("COCO_val2014_1")  # the parent holds open handles now
    clone = pickle.loads(pickle.dumps(store))
    assert clone._index._handles == {} and clone.get("COCO_val2014_1")[0][0, 0] == 2.0
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_read_in_child, args=(store, queue))
    child.start()
    child.join(30)
    assert queue.get(timeout=5) == 2.0 and child.exitcode == 0


def test_missing_official_file(root):
    with pytest.raises(DataError, match=r"official feature file .*nope\.h5 not found"):
        link_features(root / "features" / "x.h5", [root / "nope.h5"])
    assert not (root / "features" / "x.h5").exists()
