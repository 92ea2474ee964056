"""Downloads against a local http.server: resume, truncation, checksums, mirror, offline, unpack, trust on first use."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from amad_suite.fetch.download import fetch, fetch_all, missing_files_message
from amad_suite.fetch.manifest import ManifestEntry
from amad.errors import ChecksumError, DataError

PAYLOAD = bytes(range(256)) * 40  # 10240 bytes


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; supports ``Range: bytes=N-``; behaviours per path in ``server.modes``."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        data = srv.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        mode = srv.modes.get(self.path, "")
        start = 0
        rng = self.headers.get("Range")
        if rng and mode != "ignore_range":
            start = int(rng.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "text/html" if mode == "html" else "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if mode == "cut_always" or (mode == "cut_once" and srv.cuts == 0):
            srv.cuts += 1
            body = body[: len(body) // 2]  # announce the full length, send half, close
        self.wfile.write(body)


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.files, srv.modes, srv.requests, srv.cuts = {}, {}, [], 0
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def no_env_mirror(monkeypatch):
    monkeypatch.delenv("AMAD_DATA_MIRROR", raising=False)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/gone.bin"


def entry(url: str | None, data: bytes | None = PAYLOAD, *, path: str = "set/a.bin", **kw) -> ManifestEntry:
    size = len(data) if data is not None else None
    digest = sha(data) if data is not None else None
    return ManifestEntry(
        path=path, url=url, size=kw.pop("size", size), sha256=kw.pop("sha256", digest), group="g", **kw
    )


def test_download_verified_and_recorded(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    out = fetch(entry(server.base + "/a.bin"), tmp_path, progress=False)
    assert out == tmp_path / "set" / "a.bin"
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "set" / "a.bin.part").exists()
    lock = json.loads((tmp_path / "manifest.lock.json").read_text())
    assert lock["files"]["set/a.bin"]["sha256"] == sha(PAYLOAD)
    assert lock["files"]["set/a.bin"]["trusted_on_first_use"] is False


def test_existing_good_file_is_not_downloaded_again(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    e = entry(server.base + "/a.bin")
    fetch(e, tmp_path, progress=False)
    fetch(e, tmp_path, progress=False)
    assert len(server.requests) == 1


def test_interrupted_download_resumes_with_range(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.modes["/a.bin"] = "cut_once"
    e = entry(server.base + "/a.bin")
    with pytest.raises(DataError, match="rerun to resume") as info:
        fetch(e, tmp_path, progress=False)
    assert "stopped at 5120 of 10240 bytes" in str(info.value)
    part = tmp_path / "set" / "a.bin.part"
    assert part.stat().st_size == 5120 and not (tmp_path / "set" / "a.bin").exists()
    out = fetch(e, tmp_path, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/a.bin", "bytes=5120-")


def test_truncated_download_without_manifest_size(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    server.modes["/a.bin"] = "cut_always"
    with pytest.raises(DataError, match=r"stopped at 5120 of 10240 bytes .*rerun to resume"):
        fetch(entry(server.base + "/a.bin", size=None, sha256=None), tmp_path, progress=False)
    assert not (tmp_path / "set" / "a.bin").exists()
    assert not (tmp_path / "manifest.lock.json").exists()


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    part = tmp_path / "set" / "a.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:3000])
    server.modes["/a.bin"] = "ignore_range"
    assert fetch(entry(server.base + "/a.bin"), tmp_path, progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_keeps_the_existing_file(server, tmp_path):
    good = b"x" * len(PAYLOAD)
    server.files["/a.bin"] = PAYLOAD  # the server now serves other bytes than the manifest's
    dest = tmp_path / "set" / "a.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"corrupted old copy")
    with pytest.raises(ChecksumError) as info:
        fetch(entry(server.base + "/a.bin", data=good), tmp_path, progress=False)
    msg = str(info.value)
    assert sha(good) in msg and sha(PAYLOAD) in msg and "\n" not in msg
    assert dest.read_bytes() == b"corrupted old copy"
    assert not (tmp_path / "set" / "a.bin.part").exists()  # a bad download is never resumed from or used


def test_server_size_differs_from_manifest(server, tmp_path):
    server.files["/a.bin"] = PAYLOAD
    with pytest.raises(ChecksumError, match=r"server sends 10240 bytes .* expects 99"):
        fetch(entry(server.base + "/a.bin", size=99, sha256=None), tmp_path, progress=False)


def test_html_page_is_refused(server, tmp_path):
    server.files["/a.bin"] = b"<html>confirm</html>"
    server.modes["/a.bin"] = "html"
    with pytest.raises(DataError, match=r"web page instead of set/a\.bin"):
        fetch(entry(server.base + "/a.bin", size=None, sha256=None), tmp_path, progress=False)


def test_trust_on_first_use_then_verified(server, tmp_path, caplog):
    server.files["/a.bin"] = PAYLOAD
    e = entry(server.base + "/a.bin", size=None, sha256=None)
    with caplog.at_level(logging.WARNING, logger="amad_suite.fetch.manifest"):
        fetch(e, tmp_path, progress=False)
    assert "trusting it on first use" in caplog.text
    lock = json.loads((tmp_path / "manifest.lock.json").read_text())["files"]["set/a.bin"]
    assert lock["sha256"] == sha(PAYLOAD) and lock["trusted_on_first_use"] is True
    (tmp_path / "set" / "a.bin").unlink()
    server.files["/a.bin"] = PAYLOAD[::-1]  # upstream changed
    with pytest.raises(ChecksumError, match="recorded on first use"):
        fetch(e, tmp_path, progress=False)


def test_mirror_hit_needs_no_network(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "set").mkdir(parents=True)
    (mirror / "set" / "a.bin").write_bytes(PAYLOAD)
    out = fetch(entry(closed_port_url()), tmp_path / "data", mirror=mirror, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert out.stat().st_ino == (mirror / "set" / "a.bin").stat().st_ino  # hard-linked, not a second copy


def test_mirror_from_env_and_dataset_folder_layout(tmp_path, monkeypatch):
    dataset = tmp_path / "set_copy"  # the data set's own folder: the first path component is dropped
    dataset.mkdir()
    (dataset / "a.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv("AMAD_DATA_MIRROR", str(dataset))
    assert fetch(entry(closed_port_url()), tmp_path / "data", progress=False).read_bytes() == PAYLOAD


def test_bad_mirror_copy_raises(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "set").mkdir(parents=True)
    (mirror / "set" / "a.bin").write_bytes(PAYLOAD[::-1])
    with pytest.raises(ChecksumError, match="mirror copy"):
        fetch(entry(closed_port_url()), tmp_path / "data", mirror=mirror, progress=False)
    assert not (tmp_path / "data" / "set" / "a.bin").exists()
    assert not (tmp_path / "data" / "set" / "a.bin.part").exists()


def test_offline_without_mirror_says_where_to_place(tmp_path):
    with pytest.raises(DataError) as info:
        fetch(entry(closed_port_url()), tmp_path, progress=False)
    msg = str(info.value)
    assert "\n" not in msg and str(tmp_path / "set" / "a.bin") in msg and "AMAD_DATA_MIRROR" in msg


def test_entry_without_url_names_its_source(tmp_path):
    e = entry(None, source="Drive folder X, file datasets/a.bin")
    with pytest.raises(DataError, match=r"no direct download: get it from Drive folder X, file datasets/a.bin"):
        fetch(e, tmp_path, progress=False)


def test_missing_files_message_and_fetch_all(tmp_path, capsys):
    present = entry(None, path="set/have.bin", source="s")
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "have.bin").write_bytes(PAYLOAD)
    gone = entry(closed_port_url(), path="set/gone.bin")
    msg = missing_files_message([present, gone], tmp_path)
    assert msg.splitlines()[0].startswith("1 of 2 files are missing")
    assert str(tmp_path.resolve() / "set" / "gone.bin") in msg and "have.bin" not in msg
    with pytest.raises(DataError, match="1 of 2 data files could not be fetched"):
        fetch_all([present, gone], tmp_path, progress=False)
    assert "set/gone.bin" in capsys.readouterr().err


def test_zip_and_gz_unpack(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("inner/dataset_coco.json", '{"images": []}')
        zf.writestr("dataset_flickr8k.json", "{}")
    server.files["/c.zip"] = buf.getvalue()
    server.files["/t.gz"] = gzip.compress(b"hello\n")
    z = entry(
        server.base + "/c.zip", buf.getvalue(), path="coco/c.zip", unpack="zip", produces=("coco/dataset_coco.json",)
    )
    g = entry(server.base + "/t.gz", server.files["/t.gz"], path="t/x.txt.gz", unpack="gz", produces=("t/x.txt",))
    assert fetch(z, tmp_path, progress=False).read_text() == '{"images": []}'
    assert not (tmp_path / "coco" / "dataset_flickr8k.json").exists()
    assert fetch(g, tmp_path, progress=False).read_bytes() == b"hello\n"
    (tmp_path / "coco" / "c.zip").unlink()  # unpacked products alone satisfy the entry
    assert fetch(z, tmp_path, progress=False) == tmp_path / "coco" / "dataset_coco.json"
    assert len(server.requests) == 2


def test_corrupt_archive_is_reported(server, tmp_path):
    server.files["/c.zip"] = b"not a zip at all"
    z = entry(server.base + "/c.zip", server.files["/c.zip"], path="c.zip", unpack="zip", produces=("x.json",))
    with pytest.raises(DataError, match=r"archive .*c.zip is corrupt"):
        fetch(z, tmp_path, progress=False)


def test_progress_logs_without_terminal(server, tmp_path, caplog):
    server.files["/a.bin"] = PAYLOAD
    with caplog.at_level(logging.INFO, logger="amad_suite.fetch"):
        fetch(entry(server.base + "/a.bin"), tmp_path, progress=True)
    assert "downloading set/a.bin" in caplog.text and "downloaded set/a.bin" in caplog.text


def test_path_layout_is_under_data_root(tmp_path: Path, server):
    server.files["/a.bin"] = PAYLOAD
    out = fetch(entry(server.base + "/a.bin", path="deep/er/a.bin"), tmp_path, progress=False)
    assert out.relative_to(tmp_path).as_posix() == "deep/er/a.bin"


def test_mirror_with_unpacked_files_instead_of_the_archive(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "coco").mkdir(parents=True)
    (mirror / "coco" / "dataset_coco.json").write_text('{"images": []}')
    z = entry(closed_port_url(), path="coco/c.zip", unpack="zip", produces=("coco/dataset_coco.json",))
    out = fetch(z, tmp_path / "data", mirror=mirror, progress=False)
    assert out == tmp_path / "data" / "coco" / "dataset_coco.json" and out.read_text() == '{"images": []}'
