"""Streaming, resumable, atomic writes of per-image h5 groups (shared by feature extraction and the image cache).

:func:`stream_to_h5` computes groups batch by batch into ``<out>.partial.h5`` (flushed after every batch). A run
that is interrupted leaves that file behind; the next run with the same config keeps its complete groups and
computes only the rest. The finished file is renamed into place, so ``out_path`` is never half-written and an
existing good output is only replaced by a complete new one. A resumed run copies the groups into a fresh file in
key order with the same flush points, so (same batch_size) it is byte-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import h5py
import numpy as np

from amad.progress import Progress
from amad.atomic import atomic_path
from amad.errors import DataError

__all__ = ["find_image", "load_rgb", "open_h5", "partial_path", "stream_to_h5", "write_h5_atomic"]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LOG_EVERY_S = 30.0
# Per-process budget for keeping decoded groups in memory (env AMAD_H5_CACHE_MB; 0 turns the cache off). The mini
# stores (tens of MB) fit whole, so a training run reads each image from disk once instead of once per epoch.
DEFAULT_CACHE_MB = 1024.0


def find_image(image_dir: Path, key: str) -> Path:
    """``<image_dir>/<key>.png`` (or .jpg/.jpeg); a missing image raises DataError naming it."""
    for suffix in IMAGE_SUFFIXES:
        path = image_dir / f"{key}{suffix}"
        if path.is_file():
            return path
    raise DataError(
        f"image {image_dir / (key + '.png')} (key {key!r}) not found: rebuild the data stage or place the image there"
    )


def load_rgb(image_dir: Path, key: str):
    """Open ``key``'s image as an RGB PIL image; unreadable files raise DataError."""
    from PIL import Image, UnidentifiedImageError

    path = find_image(image_dir, key)
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"image {path} is unreadable ({exc}): replace it or rebuild the data stage") from None


def open_h5(path: Path, *, what: str, stage: str) -> h5py.File:
    """Open an h5 file read-only; missing or corrupt files raise a one-line DataError with the fix."""
    if not path.is_file():
        raise DataError(f"{what} {path} not found: run the {stage} stage (dvc repro) to create it")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{what} {path} is corrupt ({reason}): delete it and re-run the {stage} stage") from None


class H5Store:
    """Read-only, lazily opened h5 file of one group per image key; safe to hand to DataLoader workers.

    Subclasses set ``what`` (for messages), decode one group in ``_read`` and return it from ``get`` through the
    in-memory cache (``_cached``).
    """

    what = "h5 file"
    stage = "extract_features"

    def __init__(self, path: str | Path, *, cache_mb: float | None = None) -> None:
        self.path = Path(path)
        self._h5: h5py.File | None = None
        self._pid = os.getpid()
        self._cache_bytes = int(_cache_mb(cache_mb) * 2**20)
        self._cache: dict[str, tuple[np.ndarray, ...]] = {}
        self._cache_left = self._cache_bytes
        self._file()  # fail early on a missing or corrupt file

    def _read(self, key: str) -> tuple[np.ndarray, ...]:
        """The arrays of one group, decoded from the file (subclasses define what they are)."""
        raise NotImplementedError

    def _cached(self, key: str) -> tuple[np.ndarray, ...]:
        """``self._read(key)``, kept in memory while the byte budget lasts (first come, first kept; never evicted).

        Callers get copies, so changing a returned array never changes what the next ``get`` returns.
        """
        arrays = self._cache.get(key)
        if arrays is None:
            arrays = self._read(key)
            nbytes = sum(a.nbytes for a in arrays)
            if nbytes <= self._cache_left:
                self._cache[key] = arrays
                self._cache_left -= nbytes
        return tuple(a.copy() for a in arrays)

    def _file(self) -> h5py.File:
        if self._pid != os.getpid():  # a forked DataLoader worker: never share the parent's HDF5 handle
            self._h5, self._pid = None, os.getpid()
        if self._h5 is None:
            self._h5 = open_h5(self.path, what=self.what, stage=self.stage)
        return self._h5

    def _group(self, key: str) -> h5py.Group:
        h5 = self._file()
        if key not in h5:
            raise DataError(f"image {key!r} is not in {self.what} {self.path}: re-run the {self.stage} stage for it")
        return h5[key]

    def __getstate__(self) -> dict:  # DataLoader workers start with a closed file and an empty cache
        state = {**self.__dict__, "_h5": None, "_pid": os.getpid(), "_cache": {}}
        state["_cache_left"] = self._cache_bytes
        return state

    def keys(self) -> list[str]:
        return list(self._file().keys())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._file()

    def __len__(self) -> int:
        return len(self._file())

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cache_mb(value: float | None) -> float:
    if value is None:
        raw = os.environ.get("AMAD_H5_CACHE_MB", "")
        try:
            value = float(raw) if raw.strip() else DEFAULT_CACHE_MB
        except ValueError:
            raise DataError(
                f"AMAD_H5_CACHE_MB={raw!r} is not a number: set it to a size in MiB (0 turns the cache off)"
            ) from None
    if not value >= 0:
        raise DataError(f"the h5 cache size must be >= 0 MiB, got {value!r}: pass 0 to turn the cache off")
    return float(value)


def partial_path(out_path: str | Path) -> Path:
    """Where unfinished work for ``out_path`` is kept: ``features.h5`` -> ``features.h5.partial.h5``."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".partial.h5")


def _write_group(h5: h5py.File, key: str, arrays: dict) -> None:
    if key in h5:
        del h5[key]
    group = h5.create_group(key)
    for name, value in arrays.items():
        group.create_dataset(name, data=value)


def write_h5_atomic(
    out_path: str | Path, groups: Iterable[tuple[str, dict]], *, attrs: dict, flush_every: int = 0
) -> int:
    """Write ``(key, {dataset: array})`` groups to ``out_path`` through a temp file and ``os.replace``.

    ``flush_every`` > 0 flushes after every that many groups (the same byte layout as a streamed run).
    """
    count = 0
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs.update(attrs)
        for key, arrays in groups:
            _write_group(h5, key, arrays)
            count += 1
            if flush_every and count % flush_every == 0:
                h5.flush()
    return count


def _open_partial(path: Path, attrs: dict, required: Sequence[str]) -> h5py.File:
    """Open (or start) the partial file; drop it when corrupt or written with another config, and drop
    groups that an interruption left incomplete."""
    if path.exists():
        try:
            h5 = h5py.File(path, "a")
        except OSError:
            log.warning("partial file %s is unreadable; starting over", path)
            path.unlink()
        else:
            if h5.attrs.get("amad_config") == attrs["amad_config"]:
                for key in [k for k, g in h5.items() if not all(name in g for name in required)]:
                    del h5[key]
                return h5
            log.warning("partial file %s was written with other settings; starting over", path)
            h5.close()
            path.unlink()
    h5 = h5py.File(path, "w")
    h5.attrs.update(attrs)
    return h5


def stream_to_h5(
    out_path: str | Path,
    keys: Sequence[str],
    compute: Callable[[list[str]], dict[str, dict[str, np.ndarray]]],
    *,
    config: dict,
    required: Sequence[str],
    batch_size: int,
    progress: bool,
    desc: str,
) -> dict:
    """Compute ``compute(batch_keys) -> {key: {dataset: array}}`` for all ``keys`` into ``out_path``, resumably.

    Args:
        config: settings that determine the output; stored in the root attrs (and as json in ``amad_config``).
            A partial file written with a different config is discarded.
        required: the dataset names of every group, in the order ``compute`` returns them (groups missing one
            are recomputed after an interruption).

    Returns:
        {"images": number of keys, "resumed": groups reused from an earlier interrupted run}.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1 (got {batch_size}): fix the stage params")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(keys))
    partial = partial_path(out_path)
    attrs = {**config, "amad_config": json.dumps(config, sort_keys=True)}
    h5 = _open_partial(partial, attrs, required)
    try:
        resumed = sum(1 for key in keys if key in h5)
        todo = [key for key in keys if key not in h5]
        if resumed:
            log.info("%s: resuming from %s with %d/%d images done", desc, partial, resumed, len(keys))
        bar = Progress(len(keys), desc, unit="img", initial=resumed, enabled=progress)
        try:
            for start in range(0, len(todo), batch_size):
                batch = todo[start : start + batch_size]
                for key, arrays in compute(batch).items():
                    _write_group(h5, key, arrays)
                h5.flush()
                bar.update(len(batch))
        finally:
            bar.close()
        fresh = not resumed and len(h5) == len(keys)
    finally:
        h5.close()
    if fresh:  # an uninterrupted run: the partial file already is the result
        os.replace(partial, out_path)
    else:  # resumed: copy the groups in key order (datasets in ``required`` order) into a compact new file
        with h5py.File(partial, "r") as src:
            groups = ((key, {name: src[key][name][()] for name in required}) for key in keys)
            write_h5_atomic(out_path, groups, attrs=attrs, flush_every=batch_size)
        partial.unlink()
    return {"images": len(keys), "resumed": resumed}
