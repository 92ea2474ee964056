"""Fetch manifest files: mirror first, then the URL; resumable, verified, atomic, with progress.

A download goes to ``<file>.part`` (resumed with an HTTP Range request when rerun), is checked against the manifest
size and sha256 (or the hash recorded on first use in the lock file), and is renamed into place only then, so a
good file is never replaced by a bad one, and a bad one is never used. Google Drive files are fetched through the
confirm URL; Drive's virus-scan interstitial page is parsed and confirmed (amad_suite.fetch.gdrive), and files
known only by their place in a shared Drive folder are resolved through the folder's public listing.

:func:`fetch_all` (the download stage) tries each file up to ``ATTEMPTS`` times: a transfer cut part-way is resumed
from its ``.part`` file, and a download whose checksum does not match is discarded and fetched again from scratch (a
corrupt transfer or proxy copy); a file that still does not verify stops the stage with a ChecksumError, and a
refused file is never renamed into place, unpacked or recorded in the lock.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from amad.errors import ChecksumError, DataError
from amad_suite.fetch import gdrive
from amad_suite.fetch.manifest import ManifestEntry, ManifestLock, sha256_file
from amad_suite.fetch.mirror import (
    MIRROR_ENV,
    find_folder_in_mirror,
    find_in_mirror,
    find_products_in_mirror,
    resolve_mirror,
    validate_mirror,
)
from amad_suite.fetch.transfer import TransferInterrupted, download_to_part
from amad_suite.fetch.unpack import copy_folder, is_present, place_file, unpack, usable_path

__all__ = ["fetch", "fetch_all", "is_present", "missing_files_message", "unpack", "usable_path"]

log = logging.getLogger(__name__)
ATTEMPTS = 3  # per file in fetch_all: resumes of a cut transfer, fresh downloads after a checksum mismatch
RETRY_WAIT_S = 1.0  # before attempt k + 1: k * RETRY_WAIT_S


class CorruptDownload(ChecksumError):
    """A downloaded file did not verify; it was deleted (nothing kept to resume from) and can be fetched again."""


def missing_files_message(
    entries: Iterable[ManifestEntry], data_root: str | Path, mirror: str | Path | None = None
) -> str:
    """A multi-line list of the files still to place (absolute destination <- origin), for printing before failing."""
    root = Path(data_root).resolve()
    entries = list(entries)
    missing = [e for e in entries if not is_present(e, root)]
    if not missing:
        return f"all {len(entries)} files are present under {root}"
    where = f" (mirror {mirror})" if mirror else ""
    lines = [
        f"{len(missing)} of {len(entries)} files are missing under {root}{where}. Place each at the path shown, or at"
        f" the same relative path under a mirror folder (params data.mirror or ${MIRROR_ENV}), then rerun:"
    ]
    for e in missing:
        if e.unpack == "zip_flat":
            also = f"(or its {e.count} files {e.members} in {root / e.into})"
            lines.append(f"  {root / e.path}  <-  {e.where()}   {also}")
        else:
            lines.append(f"  {root / e.path}  <-  {e.where()}")
    return "\n".join(lines)


def _source_url(entry: ManifestEntry) -> str | None:
    if entry.url:
        return entry.url
    if entry.drive_folder and entry.drive_path:
        return gdrive.file_url(gdrive.resolve_folder_file(entry.drive_folder, entry.drive_path))
    return None


def _verify(entry: ManifestEntry, path: Path, sha: str, lock: ManifestLock, origin: str, fix: str) -> None:
    size = path.stat().st_size
    if entry.size is not None and size != entry.size:
        raise ChecksumError(f"{origin} of {entry.path} has {size} bytes, expected {entry.size} (manifest): {fix}")
    expected = lock.expected_sha256(entry)
    if expected is not None and sha != expected:
        ref = "manifest" if entry.sha256 else f"recorded on first use in {lock.path}"
        raise ChecksumError(
            f"checksum mismatch for {entry.path} ({origin}): expected sha256 {expected} ({ref}), got {sha}: {fix}"
        )


def _existing_ok(entry: ManifestEntry, dest: Path, lock: ManifestLock) -> bool:
    if lock.is_verified(entry, dest):
        return True
    if entry.size is not None and dest.stat().st_size != entry.size:
        return False
    expected = lock.expected_sha256(entry)
    sha = sha256_file(dest)
    if expected is not None and sha != expected:
        return False
    lock.record(entry, dest, sha)
    return True


def fetch(
    entry: ManifestEntry,
    data_root: str | Path,
    *,
    mirror: str | Path | None = None,
    progress: bool = True,
    lock_path: str | Path | None = None,
) -> Path:
    """Make one manifest file available under ``data_root`` and return the path a loader reads (see usable_path).

    Order: an existing verified file (or its unpacked products); the mirror copy (``mirror`` or $AMAD_DATA_MIRROR;
    for archives also the unpacked files or folder); the URL (or the Drive folder path).

    Args:
        lock_path: the checksum lock file (default ``<data_root>/manifest.lock.json``).

    Raises:
        DataError: no mirror copy and the URL is unreachable or absent (the message says where to place the
            file). TransferInterrupted: the download was cut short (rerun to resume).
        ChecksumError: the size or sha256 does not match; nothing in place is overwritten or used (CorruptDownload
            for a downloaded file, which a new download may fix).
    """
    root = Path(data_root)
    dest = root / entry.path
    lock = ManifestLock(root, lock_path)
    if dest.exists():
        if _existing_ok(entry, dest, lock):
            unpack(entry, root, progress=progress)
            return usable_path(entry, root)
        log.warning("%s does not match its checksum; fetching a new copy (the old one stays until it verifies)", dest)
    elif (entry.produces or entry.unpack == "zip_flat") and is_present(entry, root):
        return usable_path(entry, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    mirror = resolve_mirror(mirror)
    copy = find_in_mirror(mirror, entry)
    products = find_products_in_mirror(mirror, entry) if copy is None else None
    folder = find_folder_in_mirror(mirror, entry) if copy is None and not products else None
    if products:  # the mirror holds the unpacked files instead of the archive
        for rel, src in zip(entry.produces, products):
            log.info("placing %s from the mirror %s", rel, src)
            place_file(src, root / rel)
        return usable_path(entry, root)
    if folder is not None:
        log.info("placing %s from the mirror folder %s", entry.into, folder)
        copy_folder(folder, entry, root, progress=progress)
        return usable_path(entry, root)
    if copy is not None:
        log.info("placing %s from the mirror %s", entry.path, copy)
        part.unlink(missing_ok=True)
        try:
            os.link(copy, part)  # same file system: no second copy of a 20 GB file
        except OSError:
            shutil.copyfile(copy, part)
        sha = sha256_file(part)
        try:
            _verify(entry, part, sha, lock, f"mirror copy {copy}", "replace or remove the mirror copy")
        except ChecksumError:
            part.unlink()
            raise
    else:
        url = _source_url(entry)
        if url is None:
            raise DataError(
                f"{entry.path} has no direct download: get it from {entry.source} and place it at {dest} "
                f"(or at {entry.path} under a mirror folder)"
            )
        sha = download_to_part(entry, url, dest, part, progress=progress)
        try:
            _verify(entry, part, sha, lock, "download", "check the manifest entry and its source, then rerun")
        except ChecksumError as exc:
            part.unlink()  # a bad download is never resumed from, renamed into place or unpacked
            raise CorruptDownload(str(exc)) from None
    os.replace(part, dest)
    lock.record(entry, dest, sha)
    unpack(entry, root, progress=progress)
    return usable_path(entry, root)


def _fetch_retrying(entry: ManifestEntry, data_root: str | Path, **options) -> Path:
    """:func:`fetch`, again (up to ATTEMPTS in all) after a cut transfer (resumed) or a corrupt download (fetched
    afresh); the last attempt's error is raised."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return fetch(entry, data_root, **options)
        except (TransferInterrupted, CorruptDownload) as exc:
            if attempt == ATTEMPTS:
                raise
            again = "resuming" if isinstance(exc, TransferInterrupted) else "discarded; downloading it again"
            log.warning("%s (attempt %d of %d; %s)", exc, attempt, ATTEMPTS, again)
            time.sleep(RETRY_WAIT_S * attempt)
    raise AssertionError("unreachable")


def fetch_all(
    entries: Iterable[ManifestEntry],
    data_root: str | Path,
    *,
    mirror: str | Path | None = None,
    progress: bool = True,
    fallbacks: dict[str, ManifestEntry] | None = None,
    lock_path: str | Path | None = None,
) -> list[Path]:
    """Fetch every entry; on failures print the full list of files to place (stderr), then raise one DataError.

    Args:
        fallbacks: entry path -> another entry whose unpacking also produces it (e.g. LXMERT's tsv zip for VL-T5's
            obj36 h5), fetched when the entry itself cannot be.
        lock_path: the checksum lock file (default ``<data_root>/manifest.lock.json``).
    """
    entries = list(entries)
    fallbacks = fallbacks or {}
    mirror_path = resolve_mirror(mirror)
    if mirror_path is not None:
        validate_mirror(mirror_path, [*entries, *fallbacks.values()])
    paths, failed = [], []
    for entry in entries:
        try:
            paths.append(_fetch_retrying(entry, data_root, mirror=mirror_path, progress=progress, lock_path=lock_path))
            continue
        except ChecksumError:
            raise
        except DataError as exc:
            if entry.path not in fallbacks:
                log.error("%s", exc)
                failed.append(entry)
                continue
            log.warning("%s; trying its fallback %s", exc, fallbacks[entry.path].path)
        try:
            _fetch_retrying(
                fallbacks[entry.path], data_root, mirror=mirror_path, progress=progress, lock_path=lock_path
            )
            paths.append(usable_path(entry, data_root))
        except ChecksumError:
            raise
        except DataError as exc:
            log.error("%s", exc)
            failed += [entry, fallbacks[entry.path]]
    if failed:
        print(missing_files_message(failed, data_root, mirror_path), file=sys.stderr)
        raise DataError(
            f"{len(failed)} of {len(entries)} data files could not be fetched: place the files listed above and rerun"
        )
    return paths
