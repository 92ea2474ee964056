"""Turn a fetched manifest file into what the loaders read: gz / zip members, a flat folder of images, or h5.

Every product is written through a temp file and renamed, so an interrupted run leaves no half-written file and
the next run carries on (zip_flat skips members already extracted; a folder counts as complete only once its
marker file is written).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import zipfile
import zlib
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

from amad import atomic
from amad.atomic import atomic_path
from amad.errors import DataError
from amad.progress import Progress
from amad_suite.fetch.manifest import ManifestEntry
from amad_suite.fetch.mirror import count_members

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def usable_path(entry: ManifestEntry, data_root: str | Path) -> Path:
    """What a loader reads: the folder of a zip_flat entry, the first product of an archive, else the file."""
    root = Path(data_root)
    if entry.unpack == "zip_flat":
        return root / str(entry.into)
    return root / (entry.produces[0] if entry.produces else entry.path)


def is_present(entry: ManifestEntry, data_root: str | Path) -> bool:
    """True when what the entry provides exists: its file, everything it unpacks to, or (zip_flat) its folder
    with the marker written or with all ``count`` members placed by hand."""
    root = Path(data_root)
    if entry.unpack == "zip_flat":
        folder = root / str(entry.into)
        if (root / str(entry.marker)).exists():
            return True
        return folder.is_dir() and count_members(folder, entry.members or "*") >= (entry.count or 1)
    if entry.produces and all((root / p).exists() for p in entry.produces):
        return True
    return (root / entry.path).exists() and not entry.produces


def write_stream(src, out: Path) -> None:
    """Copy a binary stream into ``out`` atomically."""
    with atomic_path(out) as tmp, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


def place_file(src: Path, out: Path) -> None:
    """Hard-link ``src`` to ``out`` when both are on one file system, else copy it (atomically)."""
    with atomic_path(out) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def copy_folder(src: Path, entry: ManifestEntry, data_root: str | Path, *, progress: bool = True) -> None:
    """Place the members of a mirror folder that already holds a zip_flat entry's files, then write the marker."""
    root = Path(data_root)
    folder = root / str(entry.into)
    names = sorted(p.name for p in src.iterdir() if fnmatch(p.name, entry.members or "*") and p.is_file())
    bar = Progress(len(names), f"place {entry.into}", unit="files", enabled=progress)
    try:
        for name in names:
            if not (folder / name).exists():
                place_file(src / name, folder / name)
            bar.update(1)
    finally:
        bar.close()
    _write_marker(entry, root, len(names), f"mirror folder {src}")


def _write_marker(entry: ManifestEntry, root: Path, count: int, origin: str) -> None:
    if entry.count is not None and count < entry.count:
        raise DataError(
            f"{origin} gave {count} files matching {entry.members} but the manifest expects {entry.count}: "
            f"replace it with a complete copy of {entry.path}"
        )
    record = {"archive": entry.path, "files": count, "origin": origin}
    atomic.write_text(root / str(entry.marker), json.dumps(record) + "\n")


def _unpack_zip_flat(entry: ManifestEntry, archive: Path, root: Path, progress: bool) -> None:
    folder = root / str(entry.into)
    with zipfile.ZipFile(archive) as zf:
        members = [
            m for m in zf.infolist() if not m.is_dir() and fnmatch(PurePosixPath(m.filename).name, entry.members or "*")
        ]
        bar = Progress(len(members), f"unpack {PurePosixPath(entry.path).name}", unit="files", enabled=progress)
        try:
            for member in members:
                out = folder / PurePosixPath(member.filename).name
                if not (out.exists() and out.stat().st_size == member.file_size):  # resume after an interruption
                    with zf.open(member) as src:
                        write_stream(src, out)
                bar.update(1)
        finally:
            bar.close()
    _write_marker(entry, root, len(members), f"archive {archive}")


def unpack(entry: ManifestEntry, data_root: str | Path, *, progress: bool = True) -> None:
    """Make the entry's products from its fetched file; with ``remove_archive`` delete the file afterwards.

    Raises:
        DataError: the archive is corrupt or lacks a product (the message says to delete it and rerun).
    """
    root = Path(data_root)
    archive = root / entry.path
    if not entry.unpack or is_present(entry, root):
        if entry.unpack and entry.remove_archive and archive.exists():
            archive.unlink()
        return
    fix = f"delete {archive} and rerun to download it again"
    todo = [root / p for p in entry.produces if not (root / p).exists()]
    try:
        if entry.unpack == "gz":
            with gzip.open(archive, "rb") as src:
                write_stream(src, todo[0])
        elif entry.unpack == "lxmert_tsv":
            from amad.data.visual.lxmert import convert_lxmert_tsv

            convert_lxmert_tsv(archive, todo[0], progress=progress)
        elif entry.unpack == "zip_flat":
            _unpack_zip_flat(entry, archive, root, progress)
        else:
            with zipfile.ZipFile(archive) as zf:
                members = {PurePosixPath(m.filename).name: m for m in zf.infolist() if not m.is_dir()}
                for out in todo:
                    if out.name not in members:
                        raise DataError(f"archive {archive} has no member named {out.name}: wrong file; {fix}")
                    with zf.open(members[out.name]) as src:
                        write_stream(src, out)
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"archive {archive} is corrupt ({exc}): {fix}") from None
    log.info("unpacked %s -> %s", entry.path, entry.into or ", ".join(entry.produces))
    if entry.remove_archive:
        archive.unlink(missing_ok=True)
