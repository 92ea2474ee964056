"""Visual region/patch features in VL-T5's h5 layout: reading, weight-free grid extraction, LXMERT tsv conversion.

Layout (one group per image key, as VL-T5's ``*_obj36.h5`` / ``*_boxes36.h5``):
    <key>/features  float32 (N, D)
    <key>/boxes     float32 (N, 4) pixel x1, y1, x2, y2
    <key>/img_w, <key>/img_h  scalars
    (official files also carry obj_id, obj_conf, attr_id, attr_conf (N,), which are ignored)

The mini suite has no detector weights, so :func:`extract_grid_features` cuts each image into a ``grid x grid``
lattice of patches (N = grid**2) and describes every patch by its average-pooled pixels (``pool x pool x 3``
values in [0, 1]) and a joint colour histogram (``bins**3`` fractions): D = 3 * pool**2 + bins**3.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from amad.data.visual.h5stream import H5Store, find_image, load_rgb, stream_to_h5, write_h5_atomic
from amad.data.visual.link_features import INDEX_KIND, FeatureIndex
from amad.errors import DataError

__all__ = [
    "FeatureStore",
    "convert_lxmert_tsv",
    "extract_grid_features",
    "grid_boxes",
    "grid_features",
    "write_features",
]

FEATURE_DATASETS = ("features", "boxes", "img_w", "img_h")


class FeatureStore(H5Store):
    """Read-only access to a VL-T5-layout feature h5 file (official obj36/boxes36 files or our grid features), or
    to an index over official files written by :func:`amad.data.visual.link_features.link_features`.

    Files are opened lazily and once per process, so a store can be handed to DataLoader worker processes.
    """

    what = "feature file"

    def __init__(self, path: str | Path, *, cache_mb: float | None = None) -> None:
        super().__init__(path, cache_mb=cache_mb)
        h5 = self._file()
        self._index = FeatureIndex(self.path, h5) if h5.attrs.get("kind") == INDEX_KIND else None

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Features and normalised boxes of one image.

        Returns:
            features: float32 (N, D); boxes: float32 (N, 4) as x1/img_w, y1/img_h, x2/img_w, y2/img_h in [0, 1].
        """
        features, boxes = self._cached(key)
        return features, boxes

    def _group(self, key: str) -> h5py.Group:
        return self._index.group(key) if self._index is not None else super()._group(key)

    def _read(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        group = self._group(key)
        try:
            features = np.asarray(group["features"][()], dtype=np.float32)  # (N, D)
            boxes = np.array(group["boxes"][()], dtype=np.float32)  # (N, 4) pixels
            img_w = float(group["img_w"][()])
            img_h = float(group["img_h"][()])
        except (KeyError, OSError) as exc:
            raise DataError(
                f"image {key!r} in {self.path} lacks features/boxes/img_w/img_h or is corrupt ({exc}): "
                "delete the file and re-run the extract_features stage"
            ) from None
        boxes[:, (0, 2)] /= img_w
        boxes[:, (1, 3)] /= img_h
        np.clip(boxes, 0.0, 1.0, out=boxes)
        return features, boxes

    def _first(self) -> h5py.Group:
        if self._index is not None:
            return self._index.first()
        for key in self._file():
            return self._file()[key]
        raise DataError(f"feature file {self.path} holds no images: delete it and re-run the extract_features stage")

    def keys(self) -> list[str]:
        return self._index.keys() if self._index is not None else super().keys()

    def __contains__(self, key: object) -> bool:
        if self._index is not None:
            return key in self._index.where
        return super().__contains__(key)

    def __len__(self) -> int:
        return len(self._index.where) if self._index is not None else super().__len__()

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        super().close()

    @property
    def feature_dim(self) -> int:
        """D of ``features`` (2048 for the official Faster R-CNN files)."""
        return int(self._first()["features"].shape[1])

    @property
    def num_boxes(self) -> int:
        """N of the first image (36 for the official files, grid**2 for grid features)."""
        return int(self._first()["features"].shape[0])


def write_features(
    out_path: str | Path,
    records: Iterable[tuple[str, np.ndarray, np.ndarray, int, int]],
    *,
    attrs: dict | None = None,
) -> int:
    """Write ``(key, features (N, D), pixel boxes (N, 4), img_w, img_h)`` records to a VL-T5 h5 file atomically.

    Returns:
        The number of images written.
    """

    def groups():
        for key, features, boxes, img_w, img_h in records:
            yield key, _feature_group(features, boxes, img_w, img_h)

    return write_h5_atomic(out_path, groups(), attrs=attrs or {})


def _feature_group(features: np.ndarray, boxes: np.ndarray, img_w: int, img_h: int, **extra) -> dict:
    features = np.asarray(features, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32)
    if features.ndim != 2 or boxes.shape != (features.shape[0], 4):
        raise ValueError(f"features must be (N, D) and boxes (N, 4); got {features.shape} and {boxes.shape}")
    return {"features": features, "boxes": boxes, "img_w": np.int64(img_w), "img_h": np.int64(img_h), **extra}


def grid_boxes(width: int, height: int, grid: int) -> np.ndarray:
    """Pixel boxes of a ``grid x grid`` lattice, row-major. Returns float32 (grid**2, 4) x1, y1, x2, y2."""
    xs = np.linspace(0, width, grid + 1)
    ys = np.linspace(0, height, grid + 1)
    boxes = [(xs[j], ys[i], xs[j + 1], ys[i + 1]) for i in range(grid) for j in range(grid)]
    return np.asarray(boxes, dtype=np.float32)


def grid_features(image, *, grid: int = 4, pool: int = 8, bins: int = 3) -> np.ndarray:
    """Weight-free patch features of one PIL image.

    Returns:
        float32 (grid**2, 3 * pool**2 + bins**3), rows in row-major patch order: the patch's pixels average-pooled
        to ``pool x pool`` (RGB, scaled to [-1, 1] so that a plain background is not a large constant offset), then
        the fraction of its pixels in each joint colour bin.
    """
    from PIL import Image

    width, height = image.size
    side = grid * pool
    small = np.asarray(image.resize((side, side), Image.Resampling.BOX), dtype=np.float32) / 127.5 - 1.0  # (S, S, 3)
    # (S, S, 3) -> (grid, pool, grid, pool, 3) -> (grid, grid, pool, pool, 3) -> (N, 3 * pool**2)
    pooled = small.reshape(grid, pool, grid, pool, 3).transpose(0, 2, 1, 3, 4).reshape(grid * grid, -1)
    pixels = np.asarray(image, dtype=np.int64)  # (H, W, 3)
    levels = np.minimum(pixels * bins // 256, bins - 1)  # (H, W, 3) per-channel bin
    joint = (levels[..., 0] * bins + levels[..., 1]) * bins + levels[..., 2]  # (H, W)
    xs = np.linspace(0, width, grid + 1).round().astype(int)
    ys = np.linspace(0, height, grid + 1).round().astype(int)
    hists = np.zeros((grid * grid, bins**3), dtype=np.float32)
    for i in range(grid):
        for j in range(grid):
            cell = joint[ys[i] : ys[i + 1], xs[j] : xs[j + 1]].ravel()
            hists[i * grid + j] = np.bincount(cell, minlength=bins**3) / max(cell.size, 1)
    return np.concatenate([pooled, hists], axis=1)  # (N, 3 * pool**2 + bins**3)


def extract_grid_features(
    image_dir: str | Path,
    keys: Sequence[str],
    out_path: str | Path,
    *,
    grid: int = 4,
    pool: int = 8,
    bins: int = 3,
    batch_size: int = 64,
    progress: bool = True,
) -> dict:
    """Extract :func:`grid_features` for ``<image_dir>/<key>.png`` (or .jpg) into a VL-T5 h5 file.

    Streams in batches (tqdm on a terminal, log lines otherwise), keeps finished images in ``<out>.partial.h5``
    so an interrupted run resumes where it stopped, and renames the complete file into place at the end.

    Returns:
        {"images": n, "num_boxes": grid**2, "feature_dim": D, "resumed": images found in the partial file}.
    """
    if grid < 1 or pool < 1 or bins < 1:
        raise DataError(f"grid, pool and bins must be >= 1 (got {grid}, {pool}, {bins}): fix the extract params")
    image_dir = Path(image_dir)
    for key in keys:
        find_image(image_dir, key)  # a missing image fails before any work is done

    def compute(batch: list[str]) -> dict[str, dict]:
        out = {}
        for key in batch:
            image = load_rgb(image_dir, key)
            feats = grid_features(image, grid=grid, pool=pool, bins=bins)  # (N, D)
            out[key] = _feature_group(feats, grid_boxes(*image.size, grid), *image.size)
        return out

    config = {"kind": "grid", "grid": grid, "pool": pool, "bins": bins, "feature_dim": 3 * pool**2 + bins**3}
    summary = stream_to_h5(
        out_path,
        keys,
        compute,
        config=config,
        required=FEATURE_DATASETS,
        batch_size=batch_size,
        progress=progress,
        desc="grid features",
    )
    return {**summary, "num_boxes": grid * grid, "feature_dim": config["feature_dim"]}


def convert_lxmert_tsv(
    tsv_path: str | Path, out_path: str | Path, *, keys: Iterable[str] | None = None, progress: bool = False
) -> int:
    """LXMERT obj36 tsv (or zip) -> VL-T5 h5; see :func:`amad.data.visual.lxmert.convert_lxmert_tsv`."""
    from amad.data.visual.lxmert import convert_lxmert_tsv as convert

    return convert(tsv_path, out_path, keys=keys, progress=progress)
