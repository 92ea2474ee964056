"""Google Drive downloads (interstitial page, folder paths, quota page), flat image zips, the LXMERT fallback, and
refused checksums, all against a loopback http.server."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from amad_suite.fetch import gdrive
from amad_suite.fetch.download import fetch, fetch_all
from amad.data.visual.features import FeatureStore
from amad_suite.fetch.manifest import ManifestEntry
from amad_suite.fetch.unpack import is_present
from amad.errors import ChecksumError, DataError

PAYLOAD = bytes(range(256)) * 64  # 16 KiB
INTERSTITIAL = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<p class="uc-warning-subcaption">Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="u-123"></form></body></html>"""
QUOTA = """<html><body><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently.</p></body></html>"""


def folder_page(entries: list[tuple[str, str, str]]) -> str:
    """An embeddedfolderview page listing (name, kind, id) entries."""
    rows = []
    for name, kind, fid in entries:
        href = f"https://drive.google.com/file/d/{fid}/view?usp=drive_web"
        if kind == "folder":
            href = f"https://drive.google.com/drive/folders/{fid}"
        rows.append(
            f'<div class="flip-entry" id="entry-{fid}"><div class="flip-entry-info"><a href="{href}" target="_blank">'
            f'<div class="flip-entry-visual"></div><div class="flip-entry-title">{name}</div></a></div>'
            '<div class="flip-entry-last-modified"><div>Jan 1, 2021</div></div></div>'
        )
    return f"<html><head><title>datasets</title></head><body>{''.join(rows)}</body></html>"


class DriveHandler(BaseHTTPRequestHandler):
    """``/download?id=..`` answers with the interstitial until ``uuid`` is given; ``/folder?id=..`` lists folders."""

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        srv, parts = self.server, urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        srv.requests.append((parts.path, query, self.headers.get("Range")))
        if parts.path == "/folder":
            page = srv.folders.get(query.get("id"))
            return self._send(200, page.encode(), "text/html") if page else self.send_error(404)
        data = srv.files.get(query.get("id", parts.path))
        if data is None:
            return self.send_error(404)
        if srv.quota:
            return self._send(200, QUOTA.encode(), "text/html; charset=utf-8")
        if parts.path == "/download" and query.get("uuid") != "u-123":
            page = INTERSTITIAL.format(action=f"{srv.base}/download", id=query["id"])
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0]) if self.headers.get("Range") else 0
        extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        body = data[start:]
        if srv.cut_next:
            srv.cut_next = False
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # the connection drops mid-file
            return
        self._send(206 if start else 200, body, "application/octet-stream", extra)


@pytest.fixture
def drive(monkeypatch):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), DriveHandler)
    srv.files, srv.folders, srv.requests, srv.cut_next, srv.quota = {}, {}, [], False, False
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    monkeypatch.setattr(gdrive, "FILE_URL", srv.base + "/download?id={id}&export=download&confirm=t")
    monkeypatch.setattr(gdrive, "FOLDER_VIEW_URL", srv.base + "/folder?id={id}")
    monkeypatch.setattr(gdrive, "_listings", {})
    monkeypatch.delenv("AMAD_DATA_MIRROR", raising=False)
    yield srv
    srv.shutdown()
    srv.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(path: str = "ckpt/Epoch30.pth", **kw) -> ManifestEntry:
    return ManifestEntry(
        path=path, url=kw.pop("url", None), size=kw.pop("size", None), sha256=kw.pop("sha256", None), group="g", **kw
    )


def test_interstitial_is_confirmed_and_a_dropped_transfer_resumes(drive, tmp_path):
    drive.files["FILEID"] = PAYLOAD
    drive.cut_next = True
    e = entry(url=gdrive.file_url("FILEID"), sha256=sha(PAYLOAD))
    with pytest.raises(DataError, match="rerun to resume"):
        fetch(e, tmp_path, progress=False)
    assert not (tmp_path / "ckpt" / "Epoch30.pth").exists()
    assert fetch(e, tmp_path, progress=False).read_bytes() == PAYLOAD
    _, query, rng = drive.requests[-1]
    assert query["uuid"] == "u-123" and query["confirm"] == "t" and rng == f"bytes={len(PAYLOAD) // 2}-"
    assert [q.get("uuid") for _, q, _ in drive.requests] == [None, "u-123", None, "u-123"]


def test_drive_quota_page_is_a_one_line_error(drive, tmp_path):
    drive.files["FILEID"], drive.quota = PAYLOAD, True
    with pytest.raises(DataError, match="Too many users have viewed or downloaded this file recently") as info:
        fetch(entry(url=gdrive.file_url("FILEID")), tmp_path, progress=False)
    assert "\n" not in str(info.value) and not list((tmp_path / "ckpt").glob("*.pth"))


def test_file_in_a_drive_folder_is_resolved_by_path(drive, tmp_path):
    drive.folders["ROOT"] = folder_page([("COCO", "folder", "F-COCO"), ("vqa", "folder", "F-VQA")])
    drive.folders["F-VQA"] = folder_page([("karpathy_val.json", "file", "ID-VAL"), ("other.json", "file", "ID-X")])
    drive.files["ID-VAL"] = b'[{"question_id": 1}]'
    e = entry("vqa/karpathy_val.json", drive_folder="ROOT", drive_path="vqa/karpathy_val.json")
    assert fetch(e, tmp_path, progress=False).read_bytes() == b'[{"question_id": 1}]'
    missing = entry("vqa/karpathy_test.json", drive_folder="ROOT", drive_path="vqa/karpathy_test.json")
    with pytest.raises(DataError, match=r"no file 'karpathy_test.json' in vqa \(it lists: karpathy_val.json, other"):
        fetch(missing, tmp_path, progress=False)
    assert sum(1 for p, q, _ in drive.requests if p == "/folder" and q["id"] == "ROOT") == 1  # listings are cached


def test_wrong_checksum_is_refused_and_never_used(drive, tmp_path):
    drive.files["FILEID"] = PAYLOAD
    bad = entry(
        "features/a.zip",
        url=gdrive.file_url("FILEID"),
        sha256=sha(b"other"),
        unpack="zip",
        produces=("features/a.json",),
    )
    later = entry("features/b.bin", url=gdrive.file_url("FILEID"))
    with pytest.raises(ChecksumError, match=r"checksum mismatch for features/a\.zip"):
        fetch_all([bad, later], tmp_path / "raw", lock_path=tmp_path / "lock.json", progress=False)
    assert not any((tmp_path / "raw" / "features").iterdir())  # no file, no .part, nothing unpacked
    assert not (tmp_path / "lock.json").exists()


def image_zip(prefix: str, n: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{prefix}/", "")
        for i in range(n):
            zf.writestr(f"{prefix}/COCO_{prefix}_{i:012d}.jpg", f"jpeg {i}".encode())
        zf.writestr(f"{prefix}/readme.txt", "not an image")
    return buf.getvalue()


def images_entry(url: str, **kw) -> ManifestEntry:
    return entry(
        "coco/train2014.zip",
        url=url,
        unpack="zip_flat",
        into="coco/images",
        members="COCO_train2014_*.jpg",
        count=3,
        remove_archive=True,
        **kw,
    )


def test_image_zip_is_unpacked_flat_and_removed(drive, tmp_path):
    drive.files["/zips/train2014.zip"] = image_zip("train2014", 3)
    e = images_entry(drive.base + "/zips/train2014.zip")
    out = fetch(e, tmp_path, progress=False, lock_path=tmp_path / "lock.json")
    assert out == tmp_path / "coco" / "images"
    assert sorted(p.name for p in out.iterdir()) == [".train2014.zip.unpacked"] + [
        f"COCO_train2014_{i:012d}.jpg" for i in range(3)
    ]
    assert not (tmp_path / "coco" / "train2014.zip").exists() and is_present(e, tmp_path)
    assert fetch(e, tmp_path, progress=False) == out and len(drive.requests) == 1
    assert json.loads((tmp_path / "lock.json").read_text())["files"]["coco/train2014.zip"]["sha256"]


def test_hand_placed_or_mirrored_image_folders_count(drive, tmp_path):
    e = images_entry(drive.base + "/gone.zip")
    placed = tmp_path / "raw" / "coco" / "images"
    placed.mkdir(parents=True)
    for i in range(3):
        (placed / f"COCO_train2014_{i:012d}.jpg").write_bytes(b"x")
    assert is_present(e, tmp_path / "raw") and fetch(e, tmp_path / "raw", progress=False) == placed
    mirror = tmp_path / "mirror" / "train2014"  # the folder as the official zip unpacks it
    mirror.mkdir(parents=True)
    for i in range(3):
        (mirror / f"COCO_train2014_{i:012d}.jpg").write_bytes(b"y")
    out = fetch(e, tmp_path / "other", mirror=tmp_path / "mirror", progress=False)
    assert len(list(out.glob("COCO_train2014_*.jpg"))) == 3 and (out / ".train2014.zip.unpacked").exists()
    assert drive.requests == []


def lxmert_zip(keys: list[str]) -> bytes:
    rows = []
    for key in keys:
        n = 2
        arrays = [
            np.arange(n, dtype=np.int64),
            np.ones(n, np.float32),
            np.arange(n, dtype=np.int64),
            np.ones(n, np.float32),
            np.array([[0, 0, 10, 20]] * n, np.float32),
            np.ones((n, 8), np.float32),
        ]
        b64 = [base64.b64encode(a.tobytes()).decode() for a in arrays]
        rows.append("\t".join([key, "20", "10", *b64[:4], str(n), *b64[4:]]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mscoco_imgfeat/val2014_obj36.tsv", "\n".join(rows) + "\n")
    return buf.getvalue()


def test_lxmert_zip_is_the_fallback_for_the_h5(drive, tmp_path):
    drive.folders["ROOT"] = folder_page([("vqa", "folder", "F-VQA")])  # no COCO/features in this Drive folder
    drive.files["/lxmert/val2014_obj36.zip"] = lxmert_zip(["COCO_val2014_000000000042", "COCO_val2014_000000000073"])
    h5 = entry(
        "features/coco/val2014_obj36.h5",
        drive_folder="ROOT",
        drive_path="COCO/features/val2014_obj36.h5",
        fallback="features/coco/val2014_obj36.zip",
    )
    tsv = entry(
        "features/coco/val2014_obj36.zip",
        url=drive.base + "/lxmert/val2014_obj36.zip",
        unpack="lxmert_tsv",
        produces=("features/coco/val2014_obj36.h5",),
        remove_archive=True,
        tls_verify=False,
    )
    paths = fetch_all([h5], tmp_path, fallbacks={h5.path: tsv}, progress=False)
    assert paths == [tmp_path / "features" / "coco" / "val2014_obj36.h5"]
    assert not (tmp_path / "features" / "coco" / "val2014_obj36.zip").exists()
    with FeatureStore(paths[0]) as store:
        feats, boxes = store.get("COCO_val2014_000000000073")
        assert feats.shape == (2, 8) and np.allclose(boxes, [[0, 0, 1, 1]] * 2) and len(store) == 2
    assert fetch_all([h5], tmp_path, fallbacks={h5.path: tsv}, progress=False) == paths  # present: no new work
