"""Mirror folders: resolving the setting, both layouts, and wrong layouts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from shared_data import SHARED_MULTI30K, needs_multi30k

from amad_suite.fetch.manifest import ManifestEntry, load_manifest
from amad_suite.fetch.mirror import find_in_mirror, resolve_mirror, validate_mirror
from amad.errors import ChecksumError, DataError


def entry(path: str, data: bytes | None = None) -> ManifestEntry:
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    return ManifestEntry(path=path, url="http://example.invalid/x", size=None, sha256=digest, group="g")


def put(root: Path, rel: str, data: bytes = b"data") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_resolve_mirror_param_then_env(monkeypatch, tmp_path):
    monkeypatch.delenv("AMAD_DATA_MIRROR", raising=False)
    assert resolve_mirror(None) is None
    assert resolve_mirror("") is None
    monkeypatch.setenv("AMAD_DATA_MIRROR", str(tmp_path / "env"))
    assert resolve_mirror("") == tmp_path / "env"
    assert resolve_mirror("  ") == tmp_path / "env"
    assert resolve_mirror(str(tmp_path / "param")) == tmp_path / "param"


def test_find_in_both_layouts(tmp_path):
    e = entry("multi30k/task1/raw/val.en.gz")
    full = put(tmp_path / "full", "multi30k/task1/raw/val.en.gz")
    own = put(tmp_path / "own", "task1/raw/val.en.gz")
    assert find_in_mirror(tmp_path / "full", e) == full
    assert find_in_mirror(tmp_path / "own", e) == own
    assert find_in_mirror(tmp_path / "full", entry("multi30k/task1/raw/val.de.gz")) is None
    assert find_in_mirror(None, e) is None


def test_missing_mirror_folder(tmp_path):
    with pytest.raises(DataError, match=r"mirror folder .*nope does not exist"):
        validate_mirror(tmp_path / "nope", [entry("a/b.txt")])


def test_wrong_layout_lists_expected_paths(tmp_path):
    put(tmp_path, "multi30k/val.en.gz")  # flattened: task1/raw/ is missing
    entries = [entry("multi30k/task1/raw/val.en.gz"), entry("multi30k/task1/raw/val.de.gz")]
    with pytest.raises(DataError) as info:
        validate_mirror(tmp_path, entries)
    msg = str(info.value)
    assert "wrong layout" in msg and "found multi30k/val.en.gz" in msg
    assert "multi30k/task1/raw/val.en.gz, multi30k/task1/raw/val.de.gz" in msg and "\n" not in msg


def test_mirror_with_none_of_the_files(tmp_path):
    put(tmp_path, "unrelated.txt")
    with pytest.raises(DataError, match=r"holds none of the requested files: .*vqa/karpathy_test.json"):
        validate_mirror(tmp_path, [entry("vqa/karpathy_test.json")])


def test_partial_mirror_is_allowed_and_hashes_checked(tmp_path):
    good = put(tmp_path, "set/a.bin", b"good")
    entries = [entry("set/a.bin", b"good"), entry("set/b.bin")]
    assert validate_mirror(tmp_path, entries, check_hashes=True) == {"set/a.bin": good}
    with pytest.raises(ChecksumError, match=r"mirror copy .*a.bin of set/a.bin has sha256"):
        validate_mirror(tmp_path, [entry("set/a.bin", b"other")], check_hashes=True)


@needs_multi30k
def test_shared_multi30k_folder_is_a_valid_mirror():
    entries = load_manifest().group("translation")
    found = validate_mirror(SHARED_MULTI30K, entries, check_hashes=True)
    assert len(found) == len(entries) == 15
    assert found["multi30k/task1/raw/train.en.gz"] == SHARED_MULTI30K / "task1" / "raw" / "train.en.gz"


def test_unpacked_files_count_for_an_archive(tmp_path):
    copy = put(tmp_path, "coco/dataset_coco.json")
    e = ManifestEntry("coco/c.zip", "u", None, None, "g", unpack="zip", produces=("coco/dataset_coco.json",))
    assert validate_mirror(tmp_path, [e]) == {"coco/dataset_coco.json": copy}


def test_vlt5_drive_layout_is_accepted(tmp_path):
    """A mirror that is VL-T5's Drive `datasets/` folder (or holds it, or its `snap/` folder) as downloaded."""
    m = load_manifest()
    placed = {
        "features/coco/train2014_obj36.h5": put(tmp_path, "datasets/COCO/features/train2014_obj36.h5"),
        "features/flickr30k/test2017_boxes36.h5": put(tmp_path, "datasets/flickr30k/features/test2017_boxes36.h5"),
        "vqa/karpathy_val.json": put(tmp_path, "datasets/vqa/karpathy_val.json"),
        "multi30k/task1/raw/val.en.gz": put(tmp_path, "datasets/multi30k-dataset/data/task1/raw/val.en.gz"),
        "checkpoints/vlt5/pretrain/Epoch30.pth": put(tmp_path, "snap/pretrain/VLT5/Epoch30.pth"),
    }
    for rel, path in placed.items():
        assert find_in_mirror(tmp_path, m.entry(rel)) == path, rel
    own = tmp_path / "datasets"  # the datasets/ folder itself as the mirror
    coco = "features/coco/train2014_obj36.h5"
    assert find_in_mirror(own, m.entry(coco)) == placed[coco]
    put(own, "COCO/dataset_coco.json")
    present = validate_mirror(own, [m.entry("coco/caption_datasets.zip"), m.entry("vqa/karpathy_val.json")])
    assert present["coco/dataset_coco.json"] == own / "COCO" / "dataset_coco.json"
