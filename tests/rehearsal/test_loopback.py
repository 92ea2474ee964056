"""The rehearsal's download over loopback, in-process (no DVC): URL routing, the rehearsal manifest, Drive's listing
and interstitial, a dropped transfer resumed, a corrupt response refused and fetched again, the LXMERT fallback, and
a file that stays corrupt refused for good."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from amad.errors import ChecksumError
from amad_suite.fetch import download as download_mod
from amad_suite.fetch import gdrive
from amad_suite.fetch.download import fetch_all
from amad_suite.fetch.manifest import DEFAULT_MANIFEST, load_manifest
from amad_suite.fetch.routing import PREFIX_ENV, routed, unrouted
from amad_suite.pipeline.data_stages import run_download
from amad_suite.preset import compose
from amad_suite.rehearsal.hub import build_hub
from amad_suite.rehearsal.server import LoopbackServer
from amad_suite.rehearsal.world import CHANGED_FIELDS, CORRUPT_ONCE, CUT_ONCE, build_world, write_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def params():
    params, _ = compose("rehearsal", ROOT / "configs" / "presets")
    return params


@pytest.fixture
def world(params, monkeypatch):
    monkeypatch.setattr(gdrive, "_listings", {})
    monkeypatch.setattr(download_mod, "RETRY_WAIT_S", 0.0)
    monkeypatch.delenv("AMAD_DATA_MIRROR", raising=False)
    return build_world(params)


def test_routing_puts_the_host_under_the_prefix(monkeypatch):
    url = "https://drive.usercontent.google.com/download?id=X&export=download&confirm=t"
    assert routed(url) == url  # unset: the URL itself
    monkeypatch.setenv(PREFIX_ENV, "http://127.0.0.1:9/")
    assert routed(url) == "http://127.0.0.1:9/drive.usercontent.google.com/download?id=X&export=download&confirm=t"
    assert routed(routed(url)) == routed(url) and unrouted(routed(url)) == url
    assert (
        routed("http://images.cocodataset.org/zips/val2014.zip")
        == "http://127.0.0.1:9/images.cocodataset.org/zips/val2014.zip"
    )


def test_rehearsal_manifest_differs_from_the_paper_manifest_only_in_pins_and_counts(world, tmp_path):
    paper = yaml.safe_load(DEFAULT_MANIFEST.read_text())
    path = write_manifest(world, tmp_path / "manifest.yaml")
    ours = yaml.safe_load(path.read_text())
    assert ours["tasks"] == paper["tasks"] and list(ours["groups"]) == list(paper["groups"])
    changed = set()
    for name, group in paper["groups"].items():
        for theirs, mine in zip(group["files"], ours["groups"][name]["files"], strict=True):
            assert theirs.keys() == mine.keys()
            changed |= {(mine["path"], k) for k in theirs if theirs[k] != mine[k]}
    assert {k for _, k in changed} <= set(CHANGED_FIELDS)
    assert ("multi30k/task1/raw/train.de.gz", "sha256") in changed and ("coco/val2014.zip", "count") in changed
    load_manifest(path)  # valid
    for rel, field in changed:
        if field == "sha256":
            assert (
                next(e for e in load_manifest(path).entries() if e.path == rel).sha256
                == hashlib.sha256(world.files[rel]).hexdigest()
            )


def test_download_stage_over_loopback(world, params, tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    monkeypatch.chdir(tmp_path)
    params = json.loads(json.dumps(params))
    params["data"]["manifest"] = str(write_manifest(world, tmp_path / "manifest.yaml"))
    params["data"]["tokenizer"]["source"] = str(build_hub(tmp_path / "hub", params)["t5-base"])
    with LoopbackServer(world.site) as server:
        monkeypatch.setenv(PREFIX_ENV, server.prefix)
        run_download(params, str(repo / "data"), progress=False)
    raw = repo / "data" / "raw"
    for rel in (CUT_ONCE, CORRUPT_ONCE, "vqa/karpathy_test.json", "hub/bert-base-uncased/vocab.txt"):
        assert (raw / rel).read_bytes() == world.files[rel], rel
    sent = world.site.requests
    epoch30 = [
        (rng, what) for host, path, query, rng, what in sent if query.get("id") == "100qajGncE_vc4bfjVxxICwz3dwiAxbIZ"
    ]
    assert [what for _, what in epoch30] == ["interstitial", "cut", "interstitial", "file"]
    assert epoch30[-1][0] == f"bytes={len(world.files[CUT_ONCE]) // 2}-"  # resumed where the transfer dropped
    corrupt = [what for _, path, _, _, what in sent if path.endswith("/task1/raw/train.de.gz")]
    assert corrupt == ["corrupt", "file"]
    assert sum(1 for *_, what in sent if what == "listing") >= 3  # datasets/, vqa/, COCO/, COCO/features/, ...
    coco = raw / "features" / "coco"
    assert sorted(p.name for p in coco.iterdir()) == ["train2014_obj36.h5", "val2014_obj36.h5"]  # zips removed
    lock = json.loads((repo / "data" / "manifest.lock.json").read_text())["files"]
    good = hashlib.sha256(world.files[CORRUPT_ONCE]).hexdigest()
    assert lock[CORRUPT_ONCE]["sha256"] == good and lock[CORRUPT_ONCE]["trusted_on_first_use"] is False
    assert len(list((raw / "coco" / "images").glob("*.jpg"))) == 12
    tokenizers = sorted(p.name for p in (repo / "data" / "tokenizer").iterdir())
    assert tokenizers == ["blip", "vlt5"]


def test_a_file_that_stays_corrupt_is_refused_and_never_placed(world, tmp_path, monkeypatch):
    manifest = load_manifest(write_manifest(world, tmp_path / "manifest.yaml"))
    entry = next(e for e in manifest.entries() if e.path == CORRUPT_ONCE)
    world.site.corrupt_once.clear()
    key = next(path for host, path in world.site.routes if path.endswith("/task1/raw/train.de.gz"))
    world.site.routes[("raw.githubusercontent.com", key)] = bytes(b ^ 1 for b in world.files[CORRUPT_ONCE])
    with LoopbackServer(world.site) as server:
        monkeypatch.setenv(PREFIX_ENV, server.prefix)
        with pytest.raises(ChecksumError, match=r"checksum mismatch for multi30k/task1/raw/train\.de\.gz"):
            fetch_all([entry], tmp_path / "raw", lock_path=tmp_path / "lock.json", progress=False)
    assert [what for _, path, _, _, what in world.site.requests if path == key] == ["file"] * download_mod.ATTEMPTS
    assert not list((tmp_path / "raw").rglob("train.de.gz*"))  # no file, no .part
    assert not (tmp_path / "lock.json").exists()
