"""Mirror folders: local copies of the manifest's files, tried before the network.

A mirror holds files at the manifest's relative paths (``<mirror>/multi30k/task1/raw/train.en.gz``). It may also be
the folder of one data set itself, the first path component dropped (``<mirror>/task1/raw/train.en.gz``), so that
``AMAD_DATA_MIRROR=../shared/data/multi30k`` works as is.

A mirror may also be VL-T5's own ``datasets/`` folder as its Google Drive holds it (or the folder above it):
``COCO/features/train2014_obj36.h5``, ``COCO/dataset_coco.json``, ``COCO/images/``, ``vqa/...``,
``flickr30k/features/trainval_boxes36.h5``, ``multi30k-dataset/data/task1/...`` and ``snap/pretrain/VLT5/Epoch30.pth``
are found under the manifest's paths (see VLT5_LAYOUT).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from amad.errors import ChecksumError, DataError
from amad_suite.fetch.manifest import ManifestEntry, sha256_file

MIRROR_ENV = "AMAD_DATA_MIRROR"
# Our relative path prefix -> where VL-T5's Drive folders keep the same files (longest prefix first; one rule each).
VLT5_LAYOUT = (
    ("checkpoints/vlt5/pretrain/", "snap/pretrain/VLT5/"),
    ("features/coco/", "COCO/features/"),
    ("features/flickr30k/", "flickr30k/features/"),
    ("coco/", "COCO/"),
    ("multi30k/", "multi30k-dataset/data/"),
)


def resolve_mirror(params_value: str | Path | None) -> Path | None:
    """The mirror folder from a params value, else from $AMAD_DATA_MIRROR, else None (empty strings count as unset)."""
    value = str(params_value).strip() if params_value is not None else ""
    if not value:
        value = os.environ.get(MIRROR_ENV, "").strip()
    return Path(value).expanduser() if value else None


def vlt5_path(rel: str) -> str | None:
    """The place of our relative path ``rel`` in VL-T5's Drive layout, or None when it has no other name there."""
    for ours, theirs in VLT5_LAYOUT:
        if rel.startswith(ours):
            return theirs + rel[len(ours) :]
    return None


def mirror_candidates(mirror: Path, rel: str) -> list[Path]:
    """Where a file may sit in a mirror: the full relative path, without its first component, then in VL-T5's
    Drive layout (under the mirror, under its ``datasets/`` or, for checkpoints, one folder up from ``snap/``)."""
    parts = PurePosixPath(rel).parts
    candidates = [mirror.joinpath(*parts)]
    if len(parts) > 1:
        candidates.append(mirror.joinpath(*parts[1:]))
    candidates.append(mirror / "datasets" / rel)
    theirs = vlt5_path(rel)
    if theirs is not None:
        candidates += [mirror / theirs, mirror / "datasets" / theirs]
        if theirs.startswith("snap/"):
            candidates.append(mirror / theirs.removeprefix("snap/"))
    return candidates


def find_in_mirror(mirror: Path | None, entry: ManifestEntry) -> Path | None:
    """The mirror copy of ``entry``, or None when the mirror is unset or lacks it."""
    if mirror is None:
        return None
    for candidate in mirror_candidates(mirror, entry.path):
        if candidate.is_file():
            return candidate
    return None


def find_products_in_mirror(mirror: Path | None, entry: ManifestEntry) -> list[Path] | None:
    """Mirror copies of everything an archive entry unpacks to, or None unless all are there."""
    if mirror is None or not entry.produces:
        return None
    found = []
    for rel in entry.produces:
        copy = next((c for c in mirror_candidates(mirror, rel) if c.is_file()), None)
        if copy is None:
            return None
        found.append(copy)
    return found


def find_folder_in_mirror(mirror: Path | None, entry: ManifestEntry) -> Path | None:
    """For a zip_flat entry: a mirror folder already holding all ``count`` unpacked members, or None.

    Looked for at the candidates of ``entry.into`` and at the archive's own top folder (``train2014/``).
    """
    if mirror is None or entry.unpack != "zip_flat" or entry.into is None:
        return None
    stem = PurePosixPath(entry.path).stem
    for folder in [*mirror_candidates(mirror, entry.into), mirror / stem, mirror / PurePosixPath(entry.into) / stem]:
        if folder.is_dir() and count_members(folder, entry.members or "*") >= (entry.count or 1):
            return folder
    return None


def count_members(folder: Path, pattern: str) -> int:
    """How many files directly in ``folder`` match the glob ``pattern``."""
    with os.scandir(folder) as it:
        return sum(1 for item in it if fnmatch(item.name, pattern) and item.is_file())


def _misplaced(mirror: Path, missing: list[ManifestEntry], taken: set[Path], limit: int = 200_000) -> dict[str, Path]:
    """Files in the mirror whose names match missing entries but sit elsewhere (relative path -> found path)."""
    wanted = {PurePosixPath(e.path).name: e.path for e in missing}
    found: dict[str, Path] = {}
    seen = 0
    for dirpath, _dirs, files in os.walk(mirror):
        for name in files:
            seen += 1
            path = Path(dirpath) / name
            if name in wanted and wanted[name] not in found and path not in taken:
                found[wanted[name]] = path
        if seen > limit:
            break
    return found


def validate_mirror(mirror: Path, entries: Iterable[ManifestEntry], *, check_hashes: bool = False) -> dict[str, Path]:
    """Check a mirror's layout against the requested entries; return relative path -> mirror copy for those present.

    An archive entry also counts as present when the mirror holds everything it unpacks to (its ``produces``).

    A mirror may lack some files (those are downloaded), but it must exist, hold at least one requested file, and
    hold no requested file under a wrong relative path. With ``check_hashes``, copies with a manifest sha256 are
    verified too.

    Raises:
        DataError: the folder is missing, or its layout does not match (the message lists the expected paths).
        ChecksumError: a mirror copy does not match the manifest's sha256.
    """
    entries = list(entries)
    if not mirror.is_dir():
        raise DataError(
            f"mirror folder {mirror} does not exist: fix params data.mirror / ${MIRROR_ENV} or unset it to download"
        )
    present: dict[str, Path] = {}
    missing: list[ManifestEntry] = []
    for entry in entries:
        copy = find_in_mirror(mirror, entry)
        products = find_products_in_mirror(mirror, entry) if copy is None else None
        folder = find_folder_in_mirror(mirror, entry) if copy is None and not products else None
        if copy is not None:
            present[entry.path] = copy
        elif products:
            present.update(zip(entry.produces, products))
        elif folder is not None:
            present[entry.path] = folder
        else:
            missing.append(entry)
    expected = ", ".join(e.path for e in entries)
    misplaced = _misplaced(mirror, missing, set(present.values())) if missing else {}
    if misplaced:
        rel, found = next(iter(misplaced.items()))
        raise DataError(
            f"mirror {mirror} has the wrong layout: found {found.relative_to(mirror)} but expected {rel} "
            f"(or {PurePosixPath(*PurePosixPath(rel).parts[1:])}); files must sit at these relative paths: {expected}"
        )
    if entries and not present:
        raise DataError(
            f"mirror {mirror} holds none of the requested files: expected them at these relative paths "
            f"(under the mirror or under its data-set folder): {expected}"
        )
    if check_hashes:
        by_path = {e.path: e for e in entries}
        for rel, copy in present.items():
            want = by_path[rel].sha256 if rel in by_path and copy.is_file() else None
            if want is not None and (got := sha256_file(copy)) != want:
                raise ChecksumError(
                    f"mirror copy {copy} of {rel} has sha256 {got}, expected {want}: replace the mirror copy"
                )
    return present
