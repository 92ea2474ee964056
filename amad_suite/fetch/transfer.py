"""One HTTP(S) transfer into ``<file>.part``: resumable (Range), Drive pages confirmed, sha256 on the fly.

Requests go where ``amad_suite.fetch.routing`` sends them ($AMAD_FETCH_URL_PREFIX; the URL itself by default).
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import logging
import ssl
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError, URLError
from urllib.request import HTTPCookieProcessor, HTTPSHandler, Request, build_opener

from amad.errors import ChecksumError, DataError
from amad.progress import Progress
from amad_suite.fetch import gdrive
from amad_suite.fetch.manifest import ManifestEntry
from amad_suite.fetch.mirror import MIRROR_ENV
from amad_suite.fetch.routing import routed, unrouted

__all__ = ["TransferInterrupted", "download_to_part"]

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_S = 60.0
MAX_CONFIRM_HOPS = 3  # Drive interstitial pages followed per request


class TransferInterrupted(DataError):
    """A transfer stopped part-way; its ``.part`` file is kept and the next attempt resumes from it."""


def _offline_error(entry: ManifestEntry, url: str, dest: Path, reason: object) -> DataError:
    return DataError(
        f"cannot download {entry.path} from {url} ({reason}) and no mirror holds it: place the file at "
        f"{dest}, or set a mirror folder (params data.mirror or ${MIRROR_ENV}) holding it at {entry.path}"
    )


def _hash_prefix(part: Path):  # -> hashlib sha256 object over the bytes already in ``part``
    digest = hashlib.sha256()
    with open(part, "rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest


def _opener(entry: ManifestEntry):
    """A urllib opener with a cookie jar (Drive's confirm flow sets cookies); unverified TLS only where the
    manifest says the host's own instructions require it (``tls_verify: false``)."""
    handlers: list = [HTTPCookieProcessor(http.cookiejar.CookieJar())]
    if not entry.tls_verify:
        log.warning("%s: not verifying the TLS certificate of %s (manifest tls_verify: false)", entry.path, entry.url)
        handlers.append(HTTPSHandler(context=ssl._create_unverified_context()))
    return build_opener(*handlers)


def _open(entry: ManifestEntry, url: str, dest: Path, offset: int):
    """Open ``url`` (with a Range header when resuming), confirming Drive interstitial pages on the way."""
    opener = _opener(entry)
    for _ in range(MAX_CONFIRM_HOPS + 1):
        headers = {"User-Agent": "amad-downloader/1"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            resp = opener.open(Request(routed(url), headers=headers), timeout=TIMEOUT_S)
        except HTTPError as exc:
            if exc.code == 416 and offset:
                return None  # the server cannot resume from here: the caller starts over
            raise DataError(
                f"downloading {entry.path} from {url} failed with HTTP {exc.code} {exc.reason}: "
                f"place the file at {dest} or fix the manifest URL"
            ) from None
        except (URLError, OSError) as exc:
            raise _offline_error(entry, url, dest, getattr(exc, "reason", exc)) from None
        if "text/html" not in resp.headers.get("Content-Type", "") or entry.path.endswith((".html", ".htm")):
            return resp
        with resp:
            page = resp.read(4 << 20).decode("utf-8", errors="replace")
        confirmed = gdrive.confirm_url(page, unrouted(resp.geturl()))
        if confirmed is None:
            break
        log.info("%s: confirming the Google Drive download page", entry.path)
        url = confirmed
    raise DataError(
        f"{url} returned a web page instead of {entry.path} (a login or confirmation page): "
        f"download it by hand from {entry.where()} and place it at {dest}"
    )


def download_to_part(entry: ManifestEntry, url: str, dest: Path, part: Path, *, progress: bool = True) -> str:
    """Download (or resume) ``url`` into ``part``; return the sha256 of the whole file.

    Raises:
        DataError: unreachable, an HTTP error, or a page instead of the file.
        TransferInterrupted: cut short (the ``.part`` file is kept: rerun to resume).
        ChecksumError: the server announces another size than the manifest's.
    """
    offset = part.stat().st_size if part.exists() else 0
    if entry.size is not None and offset > entry.size:
        part.unlink()
        offset = 0
    if entry.size is not None and offset == entry.size:
        return _hash_prefix(part).hexdigest()  # a complete .part left by an earlier run
    resp = _open(entry, url, dest, offset)
    if resp is None:
        part.unlink()
        offset = 0
        resp = _open(entry, url, dest, 0)
    digest = _hash_prefix(part) if offset else hashlib.sha256()
    with resp:
        if offset and resp.status != 206:
            log.info("%s: the server does not resume downloads; starting over", entry.path)
            offset, digest = 0, hashlib.sha256()
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else entry.size
        if entry.size is not None and total != entry.size:
            raise ChecksumError(
                f"the server sends {total} bytes for {entry.path} but the manifest expects {entry.size}: "
                f"check the URL {url} and the manifest entry"
            )
        resumed = f" (resuming at {offset / 1e6:.1f} MB)" if offset else ""
        size = f"{total / 1e6:.1f} MB" if total is not None else "unknown size"
        log.info("downloading %s (%s) from %s%s", entry.path, size, url, resumed)
        bar, cut = Progress(total, PurePosixPath(entry.path).name, unit="B", initial=offset, enabled=progress), None
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
        raise TransferInterrupted(
            f"download of {entry.path} stopped at {got} of {total if total is not None else '?'} bytes ({reason}): "
            f"rerun to resume from {part}"
        )
    log.info("downloaded %s (%.1f MB)", entry.path, got / 1e6)
    return digest.hexdigest()
