"""BLIP image cache: preprocessing, uint8 h5 round trip, resume, reuse, transformers' processor, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from PIL import Image

import amad.data.visual.images as images_mod
from amad.data.visual.h5stream import partial_path
from amad.data.visual.images import CLIP_MEAN, CLIP_STD, ImageStore, cache_images, preprocess_image, resize_image
from amad.errors import ConfigError, DataError

KEYS = ["a", "b", "c", "d", "e"]


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for key in KEYS:
        Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(folder / f"{key}.png")
    Image.new("RGB", (20, 20), "white").save(folder / "white.png")
    return folder


def test_preprocess_golden_on_a_white_image():
    pixels = preprocess_image(Image.new("RGB", (10, 7), "white"), 4, CLIP_MEAN, CLIP_STD)
    assert pixels.shape == (3, 4, 4) and pixels.dtype == np.float32
    expected = (1 - np.array(CLIP_MEAN)) / np.array(CLIP_STD)  # about (1.930, 2.075, 2.146)
    np.testing.assert_allclose(pixels[:, 2, 3], expected, rtol=1e-6)


def test_cache_round_trip(image_dir, tmp_path):
    out = tmp_path / "pixels.h5"
    summary = cache_images(image_dir, [*KEYS, "white"], out, image_size=16, batch_size=2, progress=False)
    assert summary == {"images": 6, "resumed": 0, "image_size": 16, "kept": False}
    with h5py.File(out, "r") as h5:
        assert h5["b"]["pixels"].dtype == np.uint8 and h5["b"]["pixels"].shape == (3, 16, 16)
    store = ImageStore(out)
    assert store.image_size == 16 and len(store) == 6 and "white" in store and "zzz" not in store
    pixels = store.get("b")
    assert pixels.shape == (3, 16, 16) and pixels.dtype == np.float32
    with Image.open(image_dir / "b.png") as image:
        expected = preprocess_image(image.convert("RGB"), 16, CLIP_MEAN, CLIP_STD)
    np.testing.assert_array_equal(pixels, expected)  # uint8 pixels, normalised when read: exact
    np.testing.assert_allclose(store.get("white")[:, 0, 0], (1 - np.array(CLIP_MEAN)) / np.array(CLIP_STD), atol=1e-6)
    pixels[:] = 0  # callers get copies: the cached pixels are not changed
    np.testing.assert_array_equal(store.get("b"), expected)
    with pytest.raises(DataError, match=rf"'zzz' is not in image cache {out}"):
        store.get("zzz")


def test_matches_transformers_blip_processor_from_a_local_folder(image_dir, tmp_path):
    from transformers.models.blip import BlipImageProcessorPil

    folder = tmp_path / "processor"
    BlipImageProcessorPil(size={"height": 24, "width": 24}).save_pretrained(folder)
    ours, theirs = tmp_path / "ours.h5", tmp_path / "theirs.h5"
    cache_images(image_dir, KEYS, ours, image_size=24, progress=False)
    cache_images(image_dir, KEYS, theirs, image_size=24, progress=False, processor=folder)
    for key in KEYS:
        np.testing.assert_allclose(ImageStore(ours).get(key), ImageStore(theirs).get(key), atol=1e-5)
    with pytest.raises(ConfigError, match="resizes to 24 px but image_size is 32"):
        cache_images(image_dir, KEYS, tmp_path / "x.h5", image_size=32, progress=False, processor=folder)


def test_interrupted_cache_resumes_to_the_same_content(image_dir, tmp_path, monkeypatch):
    reference, out = tmp_path / "reference.h5", tmp_path / "out.h5"
    cache_images(image_dir, KEYS, reference, image_size=8, batch_size=2, progress=False)
    real, calls = images_mod.resize_image, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(images_mod, "resize_image", flaky)
    with pytest.raises(RuntimeError, match="power cut"):
        cache_images(image_dir, KEYS, out, image_size=8, batch_size=2, progress=False)
    assert not out.exists() and partial_path(out).exists()
    monkeypatch.setattr(images_mod, "resize_image", real)
    assert cache_images(image_dir, KEYS, out, image_size=8, batch_size=2, progress=False)["resumed"] == 2
    for key in KEYS:
        np.testing.assert_array_equal(ImageStore(out).get(key), ImageStore(reference).get(key))


def test_bad_input(image_dir, tmp_path):
    with pytest.raises(DataError, match=r"missing\.png \(key 'missing'\) not found"):
        cache_images(image_dir, ["a", "missing"], tmp_path / "x.h5", image_size=8, progress=False)
    with pytest.raises(ConfigError, match="image_size >= 1"):
        cache_images(image_dir, KEYS, tmp_path / "x.h5", image_size=0, progress=False)
    (image_dir / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match=r"broken\.png is unreadable"):
        cache_images(image_dir, ["broken"], tmp_path / "x.h5", image_size=8, progress=False)
    (tmp_path / "bad.h5").write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match=r"image cache .*bad\.h5 is corrupt"):
        ImageStore(tmp_path / "bad.h5")
    assert not (tmp_path / "x.h5").exists()


def test_unchanged_cache_is_kept_and_changed_settings_rebuild(image_dir, tmp_path):
    out = tmp_path / "pixels.h5"
    cache_images(image_dir, KEYS, out, image_size=8, progress=False)
    mtime = out.stat().st_mtime_ns
    assert cache_images(image_dir, KEYS, out, image_size=8, batch_size=3, progress=False)["kept"] is True
    assert out.stat().st_mtime_ns == mtime
    assert cache_images(image_dir, KEYS[:2], out, image_size=8, progress=False)["kept"] is False
    assert ImageStore(out).keys() == KEYS[:2]
    assert cache_images(image_dir, KEYS[:2], out, image_size=4, progress=False)["kept"] is False
    assert ImageStore(out).image_size == 4


def test_store_reads_float_caches_of_the_old_format(tmp_path):
    pixels = np.random.default_rng(1).standard_normal((3, 4, 4)).astype(np.float16)
    with h5py.File(tmp_path / "old.h5", "w") as h5:
        h5.attrs["image_size"] = 4
        h5.create_group("k")["pixels"] = pixels
    got = ImageStore(tmp_path / "old.h5").get("k")
    assert got.dtype == np.float32 and np.array_equal(got, pixels.astype(np.float32))


def test_resize_is_uint8_channel_first():
    out = resize_image(Image.new("RGB", (10, 7), (255, 0, 10)), 4)
    assert out.dtype == np.uint8 and out.shape == (3, 4, 4) and out[:, 1, 1].tolist() == [255, 0, 10]
