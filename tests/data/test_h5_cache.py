"""The in-memory cache of h5 stores: same arrays as a cold read, a byte budget, copies out, empty in workers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from amad.data.visual.features import FeatureStore, write_features
from amad.data.visual.h5stream import write_h5_atomic
from amad.data.visual.images import ImageStore
from amad.errors import DataError

N, D = 4, 5
KEYS = ["a", "b", "c"]
IMAGE_BYTES = N * D * 4 + N * 4 * 4  # features (N, D) + boxes (N, 4), float32


@pytest.fixture
def feature_file(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for key in KEYS:
        boxes = np.array([[0, 0, 10, 20]] * N, dtype=np.float32)
        records.append((key, rng.normal(size=(N, D)).astype(np.float32), boxes, 10, 20))
    path = tmp_path / "feats.h5"
    write_features(path, records)
    return path


def _counting(store):
    reads = []
    original = store._read

    def read(key):
        reads.append(key)
        return original(key)

    store._read = read
    return reads


def test_cached_reads_equal_cold_reads_and_hit_the_disk_once(feature_file):
    cold = FeatureStore(feature_file, cache_mb=0)
    warm = FeatureStore(feature_file)
    reads = _counting(warm)
    for _ in range(3):
        for key in KEYS:
            for got, want in zip(warm.get(key), cold.get(key), strict=True):
                np.testing.assert_array_equal(got, want)
    assert reads == KEYS


def test_returned_arrays_are_copies(feature_file):
    store = FeatureStore(feature_file)
    feats, boxes = store.get("a")
    before = feats.copy()
    feats[:] = 99.0
    boxes[:] = -1.0
    again, again_boxes = store.get("a")
    np.testing.assert_array_equal(again, before)
    np.testing.assert_allclose(again_boxes[0], [0, 0, 1, 1])  # normalised once, not twice


def test_budget_keeps_the_first_images_only(feature_file):
    store = FeatureStore(feature_file, cache_mb=1.5 * IMAGE_BYTES / 2**20)  # room for one image
    reads = _counting(store)
    for key in KEYS * 2:
        store.get(key)
    assert reads == ["a", "b", "c", "b", "c"]
    off = FeatureStore(feature_file, cache_mb=0)
    reads = _counting(off)
    off.get("a"), off.get("a")
    assert reads == ["a", "a"]


def test_env_sets_the_budget_and_bad_values_are_one_line_errors(feature_file, monkeypatch):
    monkeypatch.setenv("AMAD_H5_CACHE_MB", "0")
    store = FeatureStore(feature_file)
    reads = _counting(store)
    store.get("a"), store.get("a")
    assert reads == ["a", "a"]
    monkeypatch.setenv("AMAD_H5_CACHE_MB", "lots")
    with pytest.raises(DataError, match=r"AMAD_H5_CACHE_MB='lots' is not a number"):
        FeatureStore(feature_file)
    with pytest.raises(DataError, match=r">= 0 MiB"):
        FeatureStore(feature_file, cache_mb=-1)


def test_pickled_store_starts_with_an_empty_cache(feature_file):
    store = FeatureStore(feature_file)
    store.get("a")
    copy = pickle.loads(pickle.dumps(store))  # what a DataLoader worker receives
    assert copy._cache == {} and copy._cache_left == store._cache_bytes
    reads = _counting(copy)
    np.testing.assert_array_equal(copy.get("a")[0], store.get("a")[0])
    assert reads == ["a"]


def test_image_store_is_cached_too(tmp_path):
    pixels = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    path = tmp_path / "images.h5"
    write_h5_atomic(path, [("x", {"pixels": pixels})], attrs={"image_size": 2})
    store = ImageStore(path)
    reads = _counting(store)
    first = store.get("x")
    first[:] = 0.0
    np.testing.assert_array_equal(store.get("x"), pixels)
    assert reads == ["x"]
