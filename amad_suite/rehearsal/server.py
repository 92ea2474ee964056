"""The rehearsal's loopback HTTP server: the manifest's hosts under one address, ``/<host>/<path>?<query>``
(the layout ``AMAD_FETCH_URL_PREFIX`` routes downloads to; see amad_suite.fetch.routing).

- Plain URLs (``routes``: (host, path) -> bytes) are served with ``Range`` support (206 + Content-Range).
- Google Drive: ``drive.google.com/embeddedfolderview?id=<folder>`` lists a folder as Drive's public page does;
  ``drive.usercontent.google.com/download?id=<file>`` first answers with the virus-scan interstitial (a form whose
  hidden ``uuid`` the downloader must send back), then with the file.
- ``cut_once``: the first transfer of these files announces the full length, sends half and closes (a dropped
  connection the downloader must resume). ``corrupt_once``: the first complete transfer of these files has every
  byte flipped at the same length (a bad proxy copy the downloader must refuse, then fetch again).

Every request is logged in ``requests`` as (host, path, query, range header, what was sent).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DRIVE_HOST, DRIVE_FILES_HOST = "drive.google.com", "drive.usercontent.google.com"
INTERSTITIAL = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<div class="uc-main"><p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption">{name} is too large for Google to scan for viruses. Download anyway?</p>
<form id="download-form" action="https://drive.usercontent.google.com/download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form></div>
</body></html>"""


def folder_page(title: str, entries: list[tuple[str, str, str]]) -> str:
    """Drive's ``embeddedfolderview`` page listing (name, kind "file" | "folder", id) entries."""
    rows = []
    for name, kind, fid in entries:
        href = f"https://drive.google.com/drive/folders/{fid}"
        if kind == "file":
            href = f"https://drive.google.com/file/d/{fid}/view?usp=drive_web"
        rows.append(
            f'<div class="flip-entry" id="entry-{fid}" tabindex="0" role="link"><div class="flip-entry-info">'
            f'<a href="{href}" target="_blank"><div class="flip-entry-visual"><div class="flip-entry-thumb">'
            f'</div></div><div class="flip-entry-title">{name}</div></a></div>'
            '<div class="flip-entry-last-modified"><div>Aug 19, 2022</div></div></div>'
        )
    body = f'<div class="flip-entries">{"".join(rows)}</div>'
    return f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{body}</body></html>"


@dataclass
class Site:
    """What the server holds and how it misbehaves (filled by amad_suite.rehearsal.world)."""

    routes: dict[tuple[str, str], bytes] = field(default_factory=dict)
    drive_files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (name, bytes)
    drive_folders: dict[str, tuple[str, list[tuple[str, str, str]]]] = field(
        default_factory=dict
    )  # id -> (name, entries)
    cut_once: set[str] = field(default_factory=set)  # route paths or Drive ids
    corrupt_once: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict, str | None, str]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def log_message(self, *args) -> None:  # quiet: the test reads ``requests`` instead
        pass

    def _log(self, host: str, path: str, query: dict, sent: str) -> None:
        with self.server.lock:
            self.server.site.requests.append((host, path, query, self.headers.get("Range"), sent))

    def _page(self, body: str) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        site = self.server.site
        parts = urlsplit(self.path)
        host, _, rest = parts.path.lstrip("/").partition("/")
        path, query = "/" + rest, {k: v[0] for k, v in parse_qs(parts.query).items()}
        if host == DRIVE_HOST and path == "/embeddedfolderview" and query.get("id") in site.drive_folders:
            name, entries = site.drive_folders[query["id"]]
            self._log(host, path, query, "listing")
            return self._page(folder_page(name, entries))
        if host == DRIVE_FILES_HOST and path == "/download" and query.get("id") in site.drive_files:
            name, data = site.drive_files[query["id"]]
            if query.get("uuid") != self.server.uuid:
                self._log(host, path, query, "interstitial")
                return self._page(INTERSTITIAL.format(name=name, id=query["id"], uuid=self.server.uuid))
            return self._file(host, path, query, query["id"], data)
        if (host, path) in site.routes:
            return self._file(host, path, query, path, site.routes[(host, path)])
        self._log(host, path, query, "404")
        self.send_error(404)

    def _file(self, host: str, path: str, query: dict, key: str, data: bytes) -> None:
        site = self.server.site
        rng = self.headers.get("Range")
        start = int(rng.removeprefix("bytes=").split("-")[0]) if rng else 0
        body, sent = data[start:], "file"
        with self.server.lock:  # each misbehaviour happens once, on a transfer from the first byte
            cut = key in site.cut_once and not start
            corrupt = key in site.corrupt_once and not start and not cut
            if cut:
                site.cut_once.discard(key)
            elif corrupt:
                site.corrupt_once.discard(key)
        if corrupt:
            body, sent = bytes(b ^ 0xFF for b in body), "corrupt"
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if cut:
            body, sent = body[: len(body) // 2], "cut"
        self._log(host, path, query, sent)
        self.wfile.write(body)
        if cut:
            self.close_connection = True


class LoopbackServer(ThreadingHTTPServer):
    """``with LoopbackServer(site) as server:`` serves ``site`` on 127.0.0.1 (a free port) in a daemon thread."""

    daemon_threads = True

    def __init__(self, site: Site) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.site, self.lock, self.uuid = site, threading.Lock(), "rehearsal-uuid-1"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def prefix(self) -> str:
        """The value for $AMAD_FETCH_URL_PREFIX."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()
