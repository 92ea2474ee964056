"""Paper scale: one small index h5 per task over the official VL-T5/LXMERT feature files (no feature is copied).

The official features are split by image set (COCO train2014_obj36.h5 / val2014_obj36.h5; Flickr30k
trainval / test2017 / test2018 boxes36.h5). The index file records, for every image key, which official file holds
it (root attrs ``kind = "feature-index"``, ``sources``: paths relative to the index file; datasets ``keys`` and
``source``). :class:`FeatureIndex` opens each official file once per process, lazily, so a DataLoader worker gets
its own handles; h5 external links would re-open the 20 GB target on every access. Usage:

    python -m amad.data.visual.link_features OUT.h5 OFFICIAL.h5 [OFFICIAL.h5 ...]
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from amad.data.visual.h5stream import open_h5
from amad.atomic import atomic_path
from amad.errors import DataError

INDEX_KIND = "feature-index"


def link_features(out_path: str | Path, official: Sequence[str | Path]) -> int:
    """Write the index ``out_path`` over every image group of the ``official`` files (the first file holding a key
    wins); atomically. Returns the number of images."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    where: dict[str, int] = {}
    sources = []
    for i, src in enumerate(Path(p) for p in official):
        if not src.is_file():
            raise DataError(f"official feature file {src} not found: run the download stage or place it there")
        try:
            with h5py.File(src, "r") as f:
                for key in f:
                    where.setdefault(key, i)
        except OSError:
            raise DataError(f"official feature file {src} is corrupt: delete it and download it again") from None
        sources.append(os.path.relpath(src.resolve(), out_path.parent.resolve()))
    keys = sorted(where)
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as out:
        out.attrs["kind"] = INDEX_KIND
        out.attrs["sources"] = json.dumps(sources)
        out.create_dataset("keys", data=np.array(keys, dtype=h5py.string_dtype()))
        out.create_dataset("source", data=np.array([where[k] for k in keys], dtype=np.uint8))
    return len(keys)


class FeatureIndex:
    """Key -> group of the official file holding it; handles opened lazily, one set per process."""

    def __init__(self, index_path: Path, h5: h5py.File) -> None:
        self.path = index_path
        folder = index_path.parent
        self.sources = [folder / rel for rel in json.loads(h5.attrs["sources"])]
        keys = h5["keys"].asstr()[()]
        self.where = dict(zip(keys.tolist(), h5["source"][()].tolist()))
        self._handles: dict[int, h5py.File] = {}
        self._pid = os.getpid()

    def _handle(self, i: int) -> h5py.File:
        if self._pid != os.getpid():  # a forked DataLoader worker: never share the parent's HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        if i not in self._handles:
            self._handles[i] = open_h5(self.sources[i], what="official feature file", stage="download")
        return self._handles[i]

    def group(self, key: str) -> h5py.Group:
        i = self.where.get(key)
        if i is None:
            raise DataError(f"image {key!r} is in none of the feature files indexed by {self.path}: check the key")
        try:
            return self._handle(i)[key]
        except KeyError:
            raise DataError(
                f"{self.sources[i]} changed since {self.path} was written (no {key!r}): re-run extract_features"
            ) from None

    def keys(self) -> list[str]:
        return list(self.where)

    def first(self) -> h5py.Group:
        if not self.where:
            raise DataError(f"feature index {self.path} holds no images: re-run the extract_features stage")
        return self.group(next(iter(self.where)))

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}, "_pid": os.getpid()}
