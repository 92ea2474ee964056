"""Fetch manifest files: mirror first, then the URL; resumable, verified, atomic, with progress.

A download goes to ``<file>.part`` (resumed with an HTTP Range request when rerun), is checked against the manifest
size and sha256 (or the hash recorded on first use in ``manifest.lock.json``), and is renamed into place only then,
so a good file is never replaced by a bad one.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import shutil
import sys
import time
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from amad.data.manifest import ManifestEntry, ManifestLock, sha256_file
from amad.data.mirror import MIRROR_ENV, find_in_mirror, find_products_in_mirror, resolve_mirror, validate_mirror
from amad.errors import ChecksumError, DataError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
LOG_EVERY_S = 30.0
TIMEOUT_S = 60.0


def usable_path(entry: ManifestEntry, data_root: str | Path) -> Path:
    """The file a loader reads: the first unpacked product for archives, else the file itself."""
    return Path(data_root) / (entry.produces[0] if entry.produces else entry.path)


def is_present(entry: ManifestEntry, data_root: str | Path) -> bool:
    """True when the file (or, for archives, everything it unpacks to) exists under the data root."""
    root = Path(data_root)
    if entry.produces and all((root / p).exists() for p in entry.produces):
        return True
    return (root / entry.path).exists() and not entry.produces


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
    lines += [f"  {root / e.path}  <-  {e.where()}" for e in missing]
    return "\n".join(lines)


class _Progress:
    """tqdm on a terminal; otherwise a log line every LOG_EVERY_S seconds (and none when disabled)."""

    def __init__(self, name: str, total: int | None, initial: int, enabled: bool) -> None:
        self.name, self.total, self.done, self.enabled = name, total, initial, enabled
        tty = enabled and sys.stderr.isatty()
        self.bar = tqdm(
            total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name, disable=not tty
        )
        self.last = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        self.bar.update(n)
        if self.enabled and self.bar.disable and time.monotonic() - self.last >= LOG_EVERY_S:
            self.last = time.monotonic()
            pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
            log.info("%s: %.1f MB of %s%s", self.name, self.done / 1e6, _mb(self.total), pct)

    def close(self) -> None:
        self.bar.close()


def _mb(n: int | None) -> str:
    return f"{n / 1e6:.1f} MB" if n is not None else "unknown size"


def _offline_error(entry: ManifestEntry, dest: Path, reason: object) -> DataError:
    return DataError(
        f"cannot download {entry.path} from {entry.url} ({reason}) and no mirror holds it: place the file at "
        f"{dest}, or set a mirror folder (params data.mirror or ${MIRROR_ENV}) holding it at {entry.path}"
    )


def _hash_prefix(part: Path):  # -> hashlib sha256 object over the bytes already in ``part``
    digest = hashlib.sha256()
    with open(part, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest


def _download(entry: ManifestEntry, dest: Path, part: Path, progress: bool) -> str:
    """Download (or resume) ``entry.url`` into ``part``; return its sha256. Raises DataError when cut short."""
    offset = part.stat().st_size if part.exists() else 0
    if entry.size is not None and offset > entry.size:
        part.unlink()
        offset = 0
    digest = _hash_prefix(part) if offset else hashlib.sha256()
    if entry.size is not None and offset == entry.size:
        return digest.hexdigest()  # a complete .part left by an earlier run
    headers = {"User-Agent": "amad-downloader/1"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urlopen(Request(entry.url, headers=headers), timeout=TIMEOUT_S)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # the server cannot resume from here: start over
            part.unlink()
            return _download(entry, dest, part, progress)
        raise DataError(
            f"downloading {entry.path} from {entry.url} failed with HTTP {exc.code} {exc.reason}: "
            f"place the file at {dest} or fix the manifest URL"
        ) from None
    except (URLError, OSError) as exc:
        raise _offline_error(entry, dest, getattr(exc, "reason", exc)) from None
    with resp:
        if "text/html" in resp.headers.get("Content-Type", "") and not entry.path.endswith((".html", ".htm")):
            raise DataError(
                f"{entry.url} returned a web page instead of {entry.path} (a login or confirmation page): "
                f"download it by hand from {entry.where()} and place it at {dest}"
            )
        if offset and resp.status != 206:
            log.info("%s: the server does not resume downloads; starting over", entry.path)
            offset, digest = 0, hashlib.sha256()
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else entry.size
        if entry.size is not None and total != entry.size:
            raise ChecksumError(
                f"the server sends {total} bytes for {entry.path} but the manifest expects {entry.size}: "
                f"check the URL {entry.url} and the manifest entry"
            )
        resumed = f" (resuming at {_mb(offset)})" if offset else ""
        log.info("downloading %s (%s) from %s%s", entry.path, _mb(total), entry.url, resumed)
        bar, cut = _Progress(PurePosixPath(entry.path).name, total, offset, progress), None
        with open(part, "ab" if offset else "wb") as fh:
            try:
                while chunk := resp.read(CHUNK):
                    fh.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError) as exc:
                cut = exc
            finally:
                bar.close()
    got = part.stat().st_size
    if cut is not None or (total is not None and got < total):
        reason = f"{type(cut).__name__}" if cut is not None else "connection closed early"
        raise DataError(
            f"download of {entry.path} stopped at {got} of {total if total is not None else '?'} bytes ({reason}): "
            f"rerun to resume from {part}"
        )
    log.info("downloaded %s (%s)", entry.path, _mb(got))
    return digest.hexdigest()


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


def _write_stream(src, out: Path) -> None:
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)
    os.replace(tmp, out)


def unpack(entry: ManifestEntry, data_root: str | Path) -> None:
    """Extract the entry's ``produces`` files next to it (zip members matched by file name); atomic per file."""
    root = Path(data_root)
    archive = root / entry.path
    todo = [root / p for p in entry.produces if not (root / p).exists()]
    if not entry.unpack or not todo:
        return
    fix = f"delete {archive} and rerun to download it again"
    try:
        if entry.unpack == "gz":
            with gzip.open(archive, "rb") as src:
                _write_stream(src, todo[0])
        else:
            with zipfile.ZipFile(archive) as zf:
                members = {PurePosixPath(m.filename).name: m for m in zf.infolist() if not m.is_dir()}
                for out in todo:
                    if out.name not in members:
                        raise DataError(f"archive {archive} has no member named {out.name}: wrong file; {fix}")
                    with zf.open(members[out.name]) as src:
                        _write_stream(src, out)
    except (zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(f"archive {archive} is corrupt ({exc}): {fix}") from None
    log.info("unpacked %s -> %s", entry.path, ", ".join(entry.produces))


def fetch(
    entry: ManifestEntry, data_root: str | Path, *, mirror: str | Path | None = None, progress: bool = True
) -> Path:
    """Make one manifest file available under ``data_root`` and return the path a loader reads (see usable_path).

    Order: an existing verified file; the mirror copy (``mirror`` or $AMAD_DATA_MIRROR; for archives also the
    unpacked files, copied as they are); the URL.

    Raises:
        DataError: no mirror copy and the URL is unreachable or absent (the message says where to place the
            file), or the download was cut short (rerun to resume).
        ChecksumError: the size or sha256 does not match; nothing in place is overwritten.
    """
    root = Path(data_root)
    dest = root / entry.path
    lock = ManifestLock(root)
    if dest.exists():
        if _existing_ok(entry, dest, lock):
            unpack(entry, root)
            return usable_path(entry, root)
        log.warning("%s does not match its checksum; fetching a new copy (the old one stays until it verifies)", dest)
    elif entry.produces and is_present(entry, root):
        return usable_path(entry, root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    mirror = resolve_mirror(mirror)
    copy = find_in_mirror(mirror, entry)
    products = find_products_in_mirror(mirror, entry) if copy is None else None
    if products:  # the mirror holds the unpacked files instead of the archive
        for rel, src in zip(entry.produces, products):
            log.info("copying %s from the mirror %s", rel, src)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as fh:
                _write_stream(fh, root / rel)
        return usable_path(entry, root)
    if copy is not None:
        log.info("copying %s from the mirror %s", entry.path, copy)
        shutil.copyfile(copy, part)
        sha = sha256_file(part)
        try:
            _verify(entry, part, sha, lock, f"mirror copy {copy}", "replace or remove the mirror copy")
        except ChecksumError:
            part.unlink()
            raise
    elif entry.url is None:
        raise DataError(
            f"{entry.path} has no direct download: get it from {entry.source} and place it at {dest} "
            f"(or at {entry.path} under a mirror folder)"
        )
    else:
        sha = _download(entry, dest, part, progress)
        _verify(entry, part, sha, lock, "download", f"delete {part} and rerun, or check the manifest entry")
    os.replace(part, dest)
    lock.record(entry, dest, sha)
    unpack(entry, root)
    return usable_path(entry, root)


def fetch_all(
    entries: Iterable[ManifestEntry], data_root: str | Path, *, mirror: str | Path | None = None, progress: bool = True
) -> list[Path]:
    """Fetch every entry; on failures print the full list of files to place (stderr), then raise one DataError."""
    entries = list(entries)
    mirror_path = resolve_mirror(mirror)
    if mirror_path is not None:
        validate_mirror(mirror_path, entries)
    paths, failed = [], []
    for entry in entries:
        try:
            paths.append(fetch(entry, data_root, mirror=mirror_path, progress=progress))
        except ChecksumError:
            raise
        except DataError as exc:
            log.error("%s", exc)
            failed.append(entry)
    if failed:
        print(missing_files_message(failed, data_root, mirror_path), file=sys.stderr)
        raise DataError(
            f"{len(failed)} of {len(entries)} data files could not be fetched: place the files listed above and rerun"
        )
    return paths
