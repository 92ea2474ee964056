"""Multi30K loader: small gz files in the real layout, bad inputs, and the shared copy when present."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from shared_data import SHARED_MULTI30K, needs_multi30k

from amad.data.formats.multi30k import load_multi30k
from amad.errors import ConfigError, DataError, UnknownNameError

EN = ["A dog runs.", "Two men are playing soccer on a field.", "A girl.", "A boy jumps into the lake."]
DE = ["Ein Hund rennt.", "Zwei Männer spielen Fußball auf einem Feld.", "Ein Mädchen.", "Ein Junge springt in den See."]
IMAGES = ["1000092795.jpg", "10002456.jpg", "1000268201.jpg", "1000344755.jpg"]


def write(root: Path, split: str = "val", en=EN, de=DE, images=IMAGES) -> Path:
    raw, splits = root / "task1" / "raw", root / "task1" / "image_splits"
    raw.mkdir(parents=True, exist_ok=True)
    splits.mkdir(parents=True, exist_ok=True)
    for lang, lines in (("en", en), ("de", de)):
        with gzip.open(raw / f"{split}.{lang}.gz", "wt", encoding="utf-8") as fh:
            fh.write("\n".join(lines) + "\n")
    if images is not None:
        (splits / f"{split}.txt").write_text("\n".join(images) + "\n")
    return root


def test_examples_follow_the_contract(tmp_path):
    ex = load_multi30k(write(tmp_path), "val", train=True)
    assert [e.uid for e in ex] == ["val:0", "val:1", "val:2", "val:3"]
    assert (ex[1].source, ex[1].target, ex[1].references) == (EN[1], DE[1], [DE[1]])
    assert ex[0].image_id == "1000092795" and ex[0].target_weight == 1.0


def test_max_words_then_limit_is_deterministic(tmp_path):
    write(tmp_path)
    short = load_multi30k(tmp_path, "val", train=True, max_words=3)
    assert [e.uid for e in short] == ["val:0", "val:2"]
    assert [e.uid for e in load_multi30k(tmp_path, "val", train=True, max_words=6, limit=2)] == ["val:0", "val:2"]
    with pytest.raises(ConfigError, match="max_words"):
        load_multi30k(tmp_path, "val", train=True, max_words=0)


def test_data_root_and_plain_text_files(tmp_path):
    write(tmp_path / "multi30k")
    assert len(load_multi30k(tmp_path, "val", train=False)) == 4  # a data root holding multi30k/
    plain = tmp_path / "plain" / "task1" / "raw"
    plain.mkdir(parents=True)
    (plain / "val.en").write_text("Hello world.\n")
    (plain / "val.de").write_text("Hallo Welt.\n")
    ex = load_multi30k(tmp_path / "plain", "val", train=False)
    assert (ex[0].target, ex[0].image_id) == ("Hallo Welt.", None)  # no image list: no image


def test_bad_inputs(tmp_path):
    with pytest.raises(DataError, match=r"missing Multi30K en text .*val.en.gz: .*stage"):
        load_multi30k(tmp_path, "val", train=True)
    write(tmp_path, de=DE[:3])
    with pytest.raises(DataError, match=r"has 4 lines in val\.en\.gz but 3 in val\.de\.gz"):
        load_multi30k(tmp_path, "val", train=True)
    write(tmp_path, images=IMAGES[:2])
    with pytest.raises(DataError, match=r"image list .* has 2 lines"):
        load_multi30k(tmp_path, "val", train=True)
    write(tmp_path)
    (tmp_path / "task1" / "raw" / "val.de.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match=r"val.de.gz is corrupt"):
        load_multi30k(tmp_path, "val", train=True)
    with pytest.raises(UnknownNameError, match="did you mean 'test_2016_flickr'"):
        load_multi30k(tmp_path, "test2016_flickr", train=True)


@needs_multi30k
@pytest.mark.parametrize(
    ("split", "count"),
    [
        ("train", 29000),
        ("val", 1014),
        ("test_2016_flickr", 1000),
        ("test_2017_flickr", 1000),
        ("test_2018_flickr", 1071),
    ],
)
def test_shared_copy_line_counts(split, count):
    ex = load_multi30k(SHARED_MULTI30K, split, train=split == "train")
    assert len(ex) == count
    assert all(e.source and e.target and e.image_id for e in ex)
    assert len({e.uid for e in ex}) == count


@needs_multi30k
def test_shared_copy_golden_lines():
    test16 = load_multi30k(SHARED_MULTI30K, "test_2016_flickr", train=False)
    assert test16[0].source == "A man in an orange hat starring at something."
    assert test16[0].target == "Ein Mann mit einem orangefarbenen Hut, der etwas anstarrt."
    assert test16[0].image_id == "1007129816"
    short = load_multi30k(SHARED_MULTI30K, "train", train=True, max_words=6, limit=3)
    assert [e.uid for e in short] == ["train:38", "train:198", "train:248"]
    assert all(len(e.source.split()) <= 6 for e in short)
