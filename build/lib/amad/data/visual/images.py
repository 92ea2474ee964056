"""BLIP image cache: images resized once and stored as uint8 ``<key>/pixels`` (3, S, S); normalised when read.

Storing the resized uint8 pixels instead of normalised floats keeps the cache at S*S*3 bytes per image (COCO at
384 px: 0.44 MB, about 54 GB for the 123,287 Karpathy images, against 109 GB in float16) and lets the in-memory
cache of the stores (AMAD_H5_CACHE_MB) hold four times as many images. :class:`ImageStore` returns exactly what
the float cache held: float32 (3, S, S), ``(pixels / 255 - mean) / std`` with the mean/std written in the file.

Mini scale uses our own PIL bicubic resize (the same operation as BLIP's image processor). Paper scale can pass
``processor=<local folder or hub id>`` to resize with transformers' ``BlipImageProcessorPil`` (the PIL backend;
torchvision is not needed) and take its mean/std (BLIP: 384 px, bicubic, OpenAI-CLIP mean/std).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from amad.data.visual.h5stream import H5Store, find_image, load_rgb, stream_to_h5
from amad.errors import ConfigError, DataError

__all__ = ["CLIP_MEAN", "CLIP_STD", "ImageStore", "cache_images", "normalise", "preprocess_image", "resize_image"]

# OpenAI-CLIP normalisation, used by BLIP's image processor.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def normalise(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 (3, S, S) -> float32 (3, S, S) scaled to [0, 1] and normalised per channel."""
    scaled = pixels.astype(np.float32) / np.float32(255.0)  # (3, S, S)
    mean_ = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    std_ = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    return (scaled - mean_) / std_


class ImageStore(H5Store):
    """Read-only access to an image cache written by :func:`cache_images`; opened lazily (DataLoader-safe).

    The in-memory cache keeps the uint8 pixels; every ``get`` normalises a fresh float32 copy.
    """

    what = "image cache"

    def __init__(self, path: str | Path, *, cache_mb: float | None = None) -> None:
        super().__init__(path, cache_mb=cache_mb)
        attrs = self._file().attrs
        self.mean = tuple(float(v) for v in attrs.get("mean", CLIP_MEAN))
        self.std = tuple(float(v) for v in attrs.get("std", CLIP_STD))

    def get(self, key: str) -> np.ndarray:
        """Normalised pixels of one image: float32 (3, S, S)."""
        (pixels,) = self._cached(key)
        if pixels.dtype != np.uint8:  # a cache written before the uint8 format holds normalised floats
            return pixels.astype(np.float32)
        return normalise(pixels, self.mean, self.std)

    def _cached(self, key: str) -> tuple[np.ndarray, ...]:
        arrays = self._cache.get(key)
        if arrays is None:
            return super()._cached(key)
        return arrays  # normalise() copies, so the cached uint8 array is never handed out

    def _read(self, key: str) -> tuple[np.ndarray]:
        group = self._group(key)
        try:
            return (np.asarray(group["pixels"][()]),)  # (3, S, S) uint8
        except (KeyError, OSError) as exc:
            raise DataError(
                f"image {key!r} in {self.path} has no readable 'pixels' ({exc}): delete the file and re-run the "
                "extract_features stage"
            ) from None

    @property
    def image_size(self) -> int:
        """S, the side of the cached square images."""
        h5 = self._file()
        if "image_size" in h5.attrs:
            return int(h5.attrs["image_size"])
        for key in h5:
            return int(h5[key]["pixels"].shape[-1])
        raise DataError(f"image cache {self.path} holds no images: delete it and re-run the extract_features stage")


def resize_image(image, image_size: int) -> np.ndarray:
    """A PIL RGB image resized to (S, S) with bicubic resampling (as BLIP's processor). Returns uint8 (3, S, S)."""
    from PIL import Image

    resized = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1)  # (S, S, 3) -> (3, S, S)


def preprocess_image(image, image_size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Resize (bicubic), scale to [0, 1] and normalise a PIL RGB image. Returns float32 (3, S, S)."""
    return normalise(resize_image(image, image_size), mean, std)


def _load_processor(processor: str | Path, image_size: int):
    from transformers.models.blip import BlipImageProcessorPil

    try:
        proc = BlipImageProcessorPil.from_pretrained(str(processor))
    except OSError as exc:
        raise ConfigError(
            f"cannot load a BLIP image processor from {processor!r} ({str(exc).splitlines()[0]}): "
            "pass a local folder holding preprocessor_config.json"
        ) from None
    side = getattr(proc.size, "height", None)
    if side is None and isinstance(proc.size, dict):
        side = proc.size.get("height")
    if side != image_size:
        raise ConfigError(
            f"image processor {processor!r} resizes to {side} px but image_size is {image_size}: make them equal"
        )
    return proc


def _complete(out_path: Path, config: dict, keys: Sequence[str]) -> bool:
    """True when ``out_path`` already holds exactly these keys, written with this config (nothing to redo)."""
    if not out_path.is_file():
        return False
    try:
        with h5py.File(out_path, "r") as h5:
            return h5.attrs.get("amad_config") == json.dumps(config, sort_keys=True) and set(h5.keys()) == set(keys)
    except OSError:
        return False


def cache_images(
    image_dir: str | Path,
    keys: Sequence[str],
    out_path: str | Path,
    *,
    image_size: int = 384,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    batch_size: int = 32,
    progress: bool = True,
    processor: str | Path | None = None,
    workers: int | None = None,
) -> dict:
    """Resize ``<image_dir>/<key>.png|jpg`` for BLIP into a uint8 h5 cache (streamed, resumable, atomic).

    An existing cache with the same keys and settings is kept as it is.

    Args:
        image_size: side S of the square output (BLIP: 384 captioning, 480 VQA; mini: e.g. 64).
        mean, std: per-channel normalisation applied when reading (default OpenAI-CLIP, as BLIP).
        processor: a local folder or hub id with a BLIP ``preprocessor_config.json``; None = own PIL path.
        workers: threads decoding and resizing images (PIL releases the GIL); default min(8, CPUs).

    Returns:
        {"images": n, "resumed": images reused from an interrupted run, "image_size": S, "kept": bool}.
    """
    if image_size < 1 or len(mean) != 3 or len(std) != 3:
        raise ConfigError("image cache needs image_size >= 1 and 3-value mean/std: fix the stage params")
    image_dir, out_path = Path(image_dir), Path(out_path)
    keys = list(dict.fromkeys(keys))
    for key in keys:
        find_image(image_dir, key)
    proc = _load_processor(processor, image_size) if processor is not None else None
    config = {
        "kind": "blip-pixels-uint8",
        "image_size": image_size,
        "mean": list(map(float, mean)) if proc is None else list(map(float, proc.image_mean)),
        "std": list(map(float, std)) if proc is None else list(map(float, proc.image_std)),
        "processor": str(processor) if processor is not None else "pil-bicubic",
    }
    if _complete(out_path, config, keys):
        return {"images": len(keys), "resumed": 0, "image_size": image_size, "kept": True}
    pool = ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1))

    def resize(key: str) -> np.ndarray:
        image = load_rgb(image_dir, key)
        if proc is not None:
            return proc([image], do_rescale=False, do_normalize=False, return_tensors="np")["pixel_values"][0]
        return resize_image(image, image_size)  # (3, S, S) uint8

    def compute(batch: list[str]) -> dict[str, dict]:
        pixels = list(pool.map(resize, batch))
        return {key: {"pixels": np.asarray(p, dtype=np.uint8)} for key, p in zip(batch, pixels)}

    try:
        summary = stream_to_h5(
            out_path,
            keys,
            compute,
            config=config,
            required=("pixels",),
            batch_size=batch_size,
            progress=progress,
            desc="image cache",
        )
    finally:
        pool.shutdown()
    return {**summary, "image_size": image_size, "kept": False}
