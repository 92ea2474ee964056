"""The paper manifest's content and validation, the lock file, and the shared Multi30K copy's checksums."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shared_data import SHARED_MULTI30K, needs_multi30k

from amad_suite.fetch.manifest import ManifestEntry, ManifestLock, load_manifest, sha256_file
from amad.errors import ConfigError, DataError, UnknownNameError

M30K_SPLITS = ["train", "val", "test_2016_flickr", "test_2017_flickr", "test_2018_flickr"]


def test_paper_manifest_groups_and_tasks():
    m = load_manifest()
    assert set(m.tasks) == {"vqa", "caption", "translation"}
    vqa = {e.path for e in m.for_task("vqa")}
    for name in ["karpathy_train.json", "karpathy_val.json", "karpathy_test.json"]:
        assert f"vqa/{name}" in vqa
    assert "features/coco/val2014_obj36.h5" in vqa and "checkpoints/vlt5/pretrain/Epoch30.pth" in vqa
    assert {"coco/train2014.zip", "coco/val2014.zip", "hub/bert-base-uncased/vocab.txt"} <= vqa
    assert "checkpoints/blip/model_base_capfilt_large.pth" in vqa  # for a teacher that never saw Karpathy test
    zips = {e.path: e for e in m.group("vqa") if e.unpack == "zip"}
    assert zips["vqa/v2_Annotations_Val_mscoco.zip"].produces == ("vqa/v2_mscoco_val2014_annotations.json",)
    assert m.group("caption")[0].produces == ("coco/dataset_coco.json",)
    assert "features/flickr30k/test2018_boxes36.h5" in {e.path for e in m.for_task("translation")}


def test_every_required_entry_is_fetchable_or_says_where():
    """Nothing the tasks need is url-less without a Drive path; nothing unread is required."""
    m = load_manifest()
    required = {e.path: e for task in m.tasks for e in m.for_task(task)}
    for e in required.values():
        assert e.url or e.drive_folder, e.path
        assert "\n" not in e.where() and (e.url or "drive" in e.where().lower()), e.path
    assert not any("v2_Questions" in p or "label2ans" in p or "ans2label" in p for p in required)
    assert not any(p.endswith(("model_base_vqa_capfilt_large.pth", "caption_capfilt_large.pth")) for p in required)
    epoch30 = required["checkpoints/vlt5/pretrain/Epoch30.pth"]
    assert epoch30.url.startswith("https://drive.usercontent.google.com/download?id=100qajGncE_vc4bfjVxxICwz3dwiAxbIZ")
    assert "confirm=t" in epoch30.url
    assert {k: v.path for k, v in m.fallbacks(list(required.values())).items()} == {
        "features/coco/train2014_obj36.h5": "features/coco/train2014_obj36.zip",
        "features/coco/val2014_obj36.h5": "features/coco/val2014_obj36.zip",
    }
    images = [e for e in required.values() if e.unpack == "zip_flat"]
    assert sorted((e.members, e.count, e.into) for e in images) == [
        ("COCO_train2014_*.jpg", 82783, "coco/images"),
        ("COCO_val2014_*.jpg", 40504, "coco/images"),
    ]


def test_multi30k_entries_follow_the_shared_layout():
    m30k = load_manifest().group("translation")
    expected = {f"multi30k/task1/raw/{s}.{lang}.gz" for s in M30K_SPLITS for lang in ("en", "de")}
    expected |= {f"multi30k/task1/image_splits/{s}.txt" for s in M30K_SPLITS}
    assert {e.path for e in m30k} == expected
    for e in m30k:
        assert e.size and e.sha256 and e.url.startswith("https://raw.githubusercontent.com/multi30k/dataset/a3d2e0d")
        assert e.url.endswith("/data/" + e.path.removeprefix("multi30k/"))


def test_no_invented_checksums():
    """Only the Multi30K files (hashed from the shared copy) carry sizes and checksums; the rest are unknown."""
    m = load_manifest()
    known = {e.path for e in m.entries() if e.sha256 or e.size}
    assert known == {e.path for e in m.group("translation")}


def test_unknown_task_and_group_suggest_names():
    m = load_manifest()
    with pytest.raises(UnknownNameError, match="did you mean 'translation'"):
        m.for_task("translatoin")
    with pytest.raises(UnknownNameError, match="did you mean 'coco_features'"):
        m.group("coco_feature")
    with pytest.raises(DataError, match="not in the manifest"):
        m.entry("nope.json")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ("[{path: a.bin, url: u, sha256: ABC}]", "sha256 must be 64"),
        ("[{path: /abs.bin, url: u}]", "must be relative"),
        ("[{path: ../up.bin, url: u}]", "must be relative"),
        ("[{path: a.zip, url: u, unpack: zip}]", "must list the files it 'produces'"),
        ("[{path: a.zip, url: u, unpack: rar, produces: [b]}]", "unpack must be one of"),
        ("[{path: a.bin, url: u}, {path: a.bin, url: v}]", "listed twice"),
        ("[{path: a.bin}]", "give a 'url', a 'drive' folder path or"),
        ("[{path: a.bin, url: u, size: -1}]", "size must be a byte count"),
        ("[{path: a.bin, url: u, md5: x}]", "unknown keys"),
    ],
)
def test_invalid_entries(tmp_path, files, match):
    with pytest.raises(ConfigError, match=match):
        load_manifest(write(tmp_path, f"groups:\n  g:\n    files: {files}\n"))


def test_bad_manifest_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_manifest(tmp_path / "missing.yaml")
    with pytest.raises(DataError, match="not valid YAML"):
        load_manifest(write(tmp_path, "groups: [unclosed\n"))
    with pytest.raises(ConfigError, match="unknown groups"):
        load_manifest(write(tmp_path, "tasks: {vqa: [nope]}\ngroups:\n  g:\n    files: []\n"))


def test_lock_records_and_detects_changes(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    e = ManifestEntry(path="a.bin", url="u", size=None, sha256=None, group="g")
    lock = ManifestLock(tmp_path)
    assert lock.expected_sha256(e) is None
    lock.record(e, f, sha256_file(f))
    again = ManifestLock(tmp_path)
    assert again.expected_sha256(e) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert again.is_verified(e, f)
    f.write_bytes(b"abcd")
    assert not again.is_verified(e, f)
    (tmp_path / "manifest.lock.json").write_text("{broken")
    with pytest.raises(DataError, match=r"lock file .* is corrupt"):
        ManifestLock(tmp_path)


def test_manifest_checksum_wins_over_lock(tmp_path):
    (tmp_path / "manifest.lock.json").write_text(json.dumps({"files": {"a.bin": {"sha256": "0" * 64}}}))
    e = ManifestEntry(path="a.bin", url="u", size=None, sha256="1" * 64, group="g")
    assert ManifestLock(tmp_path).expected_sha256(e) == "1" * 64


@needs_multi30k
def test_shared_multi30k_matches_manifest():
    for e in load_manifest().group("translation"):
        path = SHARED_MULTI30K / e.path.removeprefix("multi30k/")
        assert path.stat().st_size == e.size, e.path
        assert sha256_file(path) == e.sha256, e.path
