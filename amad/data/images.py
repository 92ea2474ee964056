"""BLIP image cache: images resized and normalised once, stored in h5 as ``<key>/pixels`` (3, S, S).

Mini scale uses our own PIL bicubic resize + mean/std normalisation (the same operations as BLIP's image
processor). Paper scale can pass ``processor=<local folder or hub id>`` to use transformers'
``BlipImageProcessorPil`` (the PIL backend; torchvision is not needed) with that folder's
``preprocessor_config.json`` (BLIP: 384 px, bicubic, OpenAI-CLIP mean/std).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from amad.data.h5stream import H5Store, find_image, load_rgb, stream_to_h5
from amad.errors import ConfigError, DataError

__all__ = ["CLIP_MEAN", "CLIP_STD", "ImageStore", "cache_images", "preprocess_image"]

# OpenAI-CLIP normalisation, used by BLIP's image processor.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ImageStore(H5Store):
    """Read-only access to an image cache written by :func:`cache_images`; opened lazily (DataLoader-safe)."""

    what = "image cache"

    def get(self, key: str) -> np.ndarray:
        """Normalised pixels of one image: float32 (3, S, S)."""
        return self._cached(key)[0]

    def _read(self, key: str) -> tuple[np.ndarray]:
        group = self._group(key)
        try:
            return (np.asarray(group["pixels"][()], dtype=np.float32),)  # (3, S, S)
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


def preprocess_image(image, image_size: int, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Resize a PIL RGB image to (S, S) with bicubic resampling, scale to [0, 1] and normalise.

    Returns:
        float32 (3, S, S).
    """
    from PIL import Image

    resized = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    pixels = np.asarray(resized, dtype=np.float32) / 255.0  # (S, S, 3)
    pixels = (pixels - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return pixels.transpose(2, 0, 1)  # (S, S, 3) -> (3, S, S)


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


def cache_images(
    image_dir: str | Path,
    keys: Sequence[str],
    out_path: str | Path,
    *,
    image_size: int = 384,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
    dtype: str = "float16",
    batch_size: int = 32,
    progress: bool = True,
    processor: str | Path | None = None,
) -> dict:
    """Preprocess ``<image_dir>/<key>.png|jpg`` for BLIP and cache them in an h5 file (streamed, resumable, atomic).

    Args:
        image_size: side S of the square output (BLIP: 384 captioning, 480 VQA; mini: e.g. 64).
        mean, std: per-channel normalisation (default OpenAI-CLIP, as BLIP).
        dtype: "float16" (half the disk) or "float32".
        processor: a local folder or hub id with a BLIP ``preprocessor_config.json``; None = own PIL/numpy path.

    Returns:
        {"images": n, "resumed": images reused from an interrupted run, "image_size": S}.
    """
    if dtype not in ("float16", "float32"):
        raise ConfigError(f"image cache dtype must be 'float16' or 'float32', not {dtype!r}: fix the stage params")
    if image_size < 1 or len(mean) != 3 or len(std) != 3:
        raise ConfigError("image cache needs image_size >= 1 and 3-value mean/std: fix the stage params")
    image_dir = Path(image_dir)
    for key in keys:
        find_image(image_dir, key)
    proc = _load_processor(processor, image_size) if processor is not None else None

    def compute(batch: list[str]) -> dict[str, dict]:
        images = [load_rgb(image_dir, key) for key in batch]
        if proc is not None:
            pixels = proc(images, return_tensors="np")["pixel_values"]  # (B, 3, S, S)
        else:
            pixels = np.stack([preprocess_image(im, image_size, mean, std) for im in images])  # (B, 3, S, S)
        return {key: {"pixels": pixels[i].astype(dtype)} for i, key in enumerate(batch)}

    config = {
        "kind": "blip-pixels",
        "image_size": image_size,
        "mean": list(map(float, mean)) if proc is None else list(map(float, proc.image_mean)),
        "std": list(map(float, std)) if proc is None else list(map(float, proc.image_std)),
        "dtype": dtype,
        "processor": str(processor) if processor is not None else "pil-bicubic",
    }
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
    return {**summary, "image_size": image_size}
