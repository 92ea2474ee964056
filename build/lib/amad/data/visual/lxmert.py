"""LXMERT's COCO region features (``train2014_obj36.zip`` / ``val2014_obj36.zip``, a tsv of base64 arrays) -> VL-T5 h5.

The tsv schema (VL-T5 ``feature_extraction/tsv_to_h5.py`` FIELDNAMES): img_id, img_h, img_w, objects_id,
objects_conf, attrs_id, attrs_conf, num_boxes, boxes, features. The download stage uses this as the fallback when
VL-T5's own ``*_obj36.h5`` files cannot be fetched (manifest ``unpack: lxmert_tsv``).
"""

from __future__ import annotations

import base64
import binascii
import csv
import sys
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from amad.data.visual.features import _feature_group
from amad.data.visual.h5stream import write_h5_atomic
from amad.progress import Progress
from amad.errors import DataError

__all__ = ["LXMERT_FIELDS", "convert_lxmert_tsv"]

LXMERT_FIELDS = [
    "img_id",
    "img_h",
    "img_w",
    "objects_id",
    "objects_conf",
    "attrs_id",
    "attrs_conf",
    "num_boxes",
    "boxes",
    "features",
]


def _b64_array(text: str, dtype, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(shape)


def _tsv_lines(source: Path, bar: Progress) -> Iterator[str]:
    """Decoded lines of a tsv, or of the one ``*.tsv`` member of a zip, counting the bytes read into ``bar``."""
    if source.suffix == ".zip":
        try:
            zf = zipfile.ZipFile(source)
        except zipfile.BadZipFile:
            raise DataError(f"LXMERT feature zip {source} is corrupt: delete it and download it again") from None
        with zf:
            members = [m for m in zf.infolist() if m.filename.endswith(".tsv")]
            if len(members) != 1:
                raise DataError(f"{source} holds {len(members)} .tsv files, expected one: use LXMERT's obj36 zip")
            bar.total = members[0].file_size
            with zf.open(members[0]) as handle:
                for raw in handle:
                    bar.update(len(raw))
                    yield raw.decode("utf-8")
        return
    bar.total = source.stat().st_size
    with open(source, "rb") as handle:
        for raw in handle:
            bar.update(len(raw))
            yield raw.decode("utf-8")


def convert_lxmert_tsv(
    tsv_path: str | Path, out_path: str | Path, *, keys: Iterable[str] | None = None, progress: bool = False
) -> int:
    """Convert LXMERT's ``*_obj36.tsv`` (base64 fields, as in VL-T5's ``tsv_to_h5.py``) into the VL-T5 h5 layout.

    Per image: features (36, 2048) float32, boxes (36, 4) float32 pixel x1y1x2y2, obj_id, obj_conf, attr_id,
    attr_conf (36,), img_w, img_h. Written through a temp file and renamed, so ``out_path`` is never half-written.

    Args:
        tsv_path: the tsv, or LXMERT's zip holding it (``train2014_obj36.zip``; read without unpacking).
        out_path: the h5 file to write.
        keys: keep only these image keys (default: all rows).
        progress: tqdm on a terminal, log lines otherwise.

    Returns:
        The number of images written.
    """
    tsv_path = Path(tsv_path)
    if not tsv_path.is_file():
        raise DataError(f"LXMERT feature tsv {tsv_path} not found: run the download stage or place it there")
    wanted = set(keys) if keys is not None else None
    csv.field_size_limit(sys.maxsize)

    def groups():
        bar = Progress(None, f"convert {tsv_path.name}", unit="lines", enabled=progress)
        try:
            rows = csv.DictReader(_tsv_lines(tsv_path, bar), LXMERT_FIELDS, delimiter="\t")
            for line_no, row in enumerate(rows, start=1):
                key = row["img_id"]
                if wanted is not None and key not in wanted:
                    continue
                try:
                    n = int(row["num_boxes"])
                    extra = {
                        "obj_id": _b64_array(row["objects_id"], np.int64, (n,)),
                        "obj_conf": _b64_array(row["objects_conf"], np.float32, (n,)).copy(),
                        "attr_id": _b64_array(row["attrs_id"], np.int64, (n,)),
                        "attr_conf": _b64_array(row["attrs_conf"], np.float32, (n,)).copy(),
                    }
                    boxes = _b64_array(row["boxes"], np.float32, (n, 4))
                    features = _b64_array(row["features"], np.float32, (n, -1))
                    img_w, img_h = int(row["img_w"]), int(row["img_h"])
                except (TypeError, ValueError, binascii.Error) as exc:
                    raise DataError(
                        f"{tsv_path} line {line_no} is not an LXMERT obj36 row ({exc}): re-download the file"
                    ) from None
                yield key, _feature_group(features, boxes, img_w, img_h, **extra)
        finally:
            bar.close()

    return write_h5_atomic(out_path, groups(), attrs={"kind": "lxmert-obj36", "source": tsv_path.name})
