"""The miniature world: a copy of every manifest file (real name, real format, tiny content), the loopback site
that serves them at their URLs, and the rehearsal manifest.

The rehearsal manifest is the packaged paper manifest with three kinds of field changed, and only these (a test
holds it to that): ``size`` and ``sha256`` of the files whose real checksums are pinned (Multi30K: its miniature
is pinned instead, so the downloader still verifies it), and ``count`` of the COCO image zips (a dozen images,
not 123,287). Everything else, URLs included, is the paper's.

Scenario served (see amad_suite.rehearsal.server):
- the Google Drive files (VL-T5's Karpathy VQA files, the Flickr30k features, ``Epoch30.pth``) come through
  Drive's folder listing and virus-scan interstitial;
- VL-T5's ``COCO/features/*_obj36.h5`` are not in the Drive folder, so the download falls back to LXMERT's tsv zips
  and converts them;
- the ``Epoch30.pth`` transfer drops half-way once (the downloader resumes it);
- ``multi30k/task1/raw/train.de.gz`` arrives corrupted once, at the right length (the downloader refuses it:
  checksum mismatch, the bytes are deleted, never unpacked or recorded, and it downloads the file again).
"""

from __future__ import annotations

import fnmatch
import hashlib
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from amad_suite.fetch.manifest import DEFAULT_MANIFEST
from amad_suite.rehearsal import checkpoints, files
from amad_suite.rehearsal.hub import BERT_VOCAB, T5_TOKENIZER
from amad_suite.rehearsal.scenes import coco_scenes, multi30k_pairs
from amad_suite.rehearsal.server import DRIVE_FILES_HOST, Site

CUT_ONCE = "checkpoints/vlt5/pretrain/Epoch30.pth"
CORRUPT_ONCE = "multi30k/task1/raw/train.de.gz"
# In VL-T5's Drive folder but never fetched by the pipeline (listed so the folder looks as it does upstream).
DRIVE_ONLY_LISTED = {"COCO/features": ["test2015_obj36.h5"], "vqa": ["trainval_ans2label.json"]}
LEFT_OUT = ("features/coco/train2014_obj36.h5", "features/coco/val2014_obj36.h5")  # -> the LXMERT tsv fallback
CHANGED_FIELDS = ("size", "sha256", "count")


@dataclass
class World:
    files: dict[str, bytes]  # manifest relative path -> the miniature's bytes
    manifest: dict[str, Any]  # the rehearsal manifest (the paper manifest's YAML structure)
    site: Site = field(default_factory=Site)


def miniature_files(params: Mapping[str, Any], seed: int = 0) -> dict[str, bytes]:
    """Every manifest file but the left-out obj36 h5 files, as bytes (sized after the rehearsal preset)."""
    scenes, pairs = coco_scenes(seed), multi30k_pairs(seed)
    out: dict[str, bytes] = {}
    out |= files.vqa_files(scenes, seed)
    out |= files.caption_files(scenes)
    out |= files.image_zips(scenes)
    out |= files.lxmert_zips(scenes, seed)
    out |= files.flickr_h5_files(pairs, seed)
    out |= files.multi30k_files(pairs)
    out["hub/bert-base-uncased/vocab.txt"] = BERT_VOCAB.read_bytes()
    out["checkpoints/vlt5/pretrain/Epoch30.pth"] = checkpoints.epoch30(params, T5_TOKENIZER, seed)
    out["checkpoints/blip/model_base_capfilt_large.pth"] = checkpoints.blip_pretrain(params, BERT_VOCAB, seed)
    return out


def _zip_count(data: bytes, pattern: str) -> int:
    with zipfile.ZipFile(BytesIO(data)) as zf:
        return sum(1 for m in zf.infolist() if fnmatch.fnmatch(PurePosixPath(m.filename).name, pattern))


def rehearsal_manifest(data: Mapping[str, bytes], source: Path = DEFAULT_MANIFEST) -> dict[str, Any]:
    """The paper manifest with the miniature's size/sha256 where the paper pins them, and its image counts."""
    manifest = yaml.safe_load(source.read_text(encoding="utf-8"))
    for group in manifest["groups"].values():
        for entry in group["files"]:
            body = data.get(entry["path"])
            if body is None:
                continue
            if entry.get("sha256") is not None:
                entry["sha256"] = hashlib.sha256(body).hexdigest()
            if entry.get("size") is not None:
                entry["size"] = len(body)
            if entry.get("unpack") == "zip_flat":
                entry["count"] = _zip_count(body, entry["members"])
    return manifest


def site_for(manifest: Mapping[str, Any], data: Mapping[str, bytes]) -> Site:
    """Serve every entry at its URL (Drive files through their folder listing and the confirm page)."""
    site = Site()
    folders: dict[tuple[str, str], str] = {}  # (Drive root, folder path) -> folder id

    def folder(root: str, path: str) -> str:
        if (root, path) not in folders:
            fid = root if not path else f"F{len(folders):03d}-{path.replace('/', '-')}"
            folders[(root, path)] = fid
            site.drive_folders[fid] = (PurePosixPath(path).name or "datasets", [])
            if path:
                parent = folder(root, str(PurePosixPath(path).parent) if "/" in path else "")
                site.drive_folders[parent][1].append((PurePosixPath(path).name, "folder", fid))
        return folders[(root, path)]

    for group in manifest["groups"].values():
        for entry in group["files"]:
            rel, body = entry["path"], data.get(entry["path"])
            drive = entry.get("drive")
            if drive:
                parent = str(PurePosixPath(drive["path"]).parent).removeprefix(".")
                fid = folder(drive["folder"], parent)
                if body is not None:  # the left-out files have a folder but no entry in it
                    file_id = f"D-{rel.replace('/', '-')}"
                    site.drive_folders[fid][1].append((PurePosixPath(drive["path"]).name, "file", file_id))
                    site.drive_files[file_id] = (PurePosixPath(rel).name, body)
            elif entry.get("url") and body is not None:
                url = urlsplit(entry["url"])
                if url.netloc == DRIVE_FILES_HOST:
                    site.drive_files[parse_qs(url.query)["id"][0]] = (PurePosixPath(rel).name, body)
                else:
                    site.routes[(url.netloc, url.path)] = body
    for root in {r for r, _ in folders}:
        for path, names in DRIVE_ONLY_LISTED.items():
            fid = folder(root, path)
            site.drive_folders[fid][1].extend((name, "file", f"X-{name}") for name in names)
    return site


def misbehave(site: Site, manifest: Mapping[str, Any]) -> None:
    """Arm the dropped transfer and the corrupt response (keys as the server sees them)."""
    for group in manifest["groups"].values():
        for entry in group["files"]:
            url = urlsplit(entry.get("url") or "")
            key = parse_qs(url.query)["id"][0] if url.netloc == DRIVE_FILES_HOST else url.path
            if entry["path"] == CUT_ONCE:
                site.cut_once.add(key)
            if entry["path"] == CORRUPT_ONCE:
                site.corrupt_once.add(key)


def build_world(params: Mapping[str, Any], seed: int = 0) -> World:
    """The miniature files, the rehearsal manifest, and the site that serves them (misbehaviours armed)."""
    data = miniature_files(params, seed)
    manifest = rehearsal_manifest(data)
    site = site_for(manifest, data)
    misbehave(site, manifest)
    return World(files=data, manifest=manifest, site=site)


def write_manifest(world: World, path: Path) -> Path:
    """Write the rehearsal manifest as YAML (with a header saying where it came from)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# The rehearsal manifest: amad_suite/fetch/manifests/paper.yaml with the miniature's size, sha256 and\n"
        "# count where the paper pins them (written by amad_suite.rehearsal.world; do not edit).\n"
    )
    path.write_text(header + yaml.safe_dump(world.manifest, sort_keys=False), encoding="utf-8")
    return path
