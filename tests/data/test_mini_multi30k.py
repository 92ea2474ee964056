"""Mini Multi30K: a short-sentence subset of the real files in the same layout."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from shared_data import SHARED_MULTI30K, needs_multi30k

from amad.data import load_examples
from amad_suite.mini.multi30k import SPLITS, build_mini_multi30k
from amad.data.formats.multi30k import read_lines
from amad.errors import DataError


def _fake_source(root: Path, *, with_2018_images: bool = True) -> None:
    (root / "task1" / "raw").mkdir(parents=True)
    (root / "task1" / "image_splits").mkdir()
    for split in SPLITS:
        en = [f"a dog runs {'fast ' * (i % 4)}{split} {i}".strip() for i in range(6)]
        de = [f"ein Hund {split} {i}" for i in range(6)]
        for lang, lines in (("en", en), ("de", de)):
            with gzip.open(root / "task1" / "raw" / f"{split}.{lang}.gz", "wt") as handle:
                handle.write("".join(line + "\n" for line in lines))
        if split != "test_2018_flickr" or with_2018_images:
            (root / "task1" / "image_splits" / f"{split}.txt").write_text("".join(f"{i}.jpg\n" for i in range(6)))


def test_subset_keeps_short_aligned_lines_in_order(tmp_path):
    _fake_source(tmp_path / "src", with_2018_images=False)
    summary = build_mini_multi30k(tmp_path / "src", tmp_path / "out", max_words=5, n_train=2, n_val=None, n_test=1)
    # lengths: i % 4 == 0 -> 5 words, 1 -> 6, 2 -> 7, 3 -> 8; kept lines are i = 0, 4
    assert summary == {"train": 2, "val": 2, "test_2016_flickr": 1, "test_2017_flickr": 1, "test_2018_flickr": 1}
    out = tmp_path / "out" / "task1"
    assert read_lines(out / "raw" / "val.en.gz") == ["a dog runs val 0", "a dog runs val 4"]
    assert read_lines(out / "raw" / "val.de.gz") == ["ein Hund val 0", "ein Hund val 4"]
    assert read_lines(out / "image_splits" / "val.txt") == ["0.jpg", "4.jpg"]
    assert not (out / "image_splits" / "test_2018_flickr.txt").exists()
    examples = load_examples("translation", tmp_path / "out", "val", train=False)
    assert [(e.source, e.target, e.image_id) for e in examples] == [
        ("a dog runs val 0", "ein Hund val 0", "0"),
        ("a dog runs val 4", "ein Hund val 4", "4"),
    ]


def test_missing_source_names_the_folder_and_the_mirror(tmp_path):
    with pytest.raises(DataError, match=r"train\.en\.gz not found.*AMAD_DATA_MIRROR") as err:
        build_mini_multi30k(tmp_path / "nowhere", tmp_path / "out", max_words=5, n_train=1, n_val=1, n_test=1)
    assert str(tmp_path / "nowhere") in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_misaligned_or_truncated_source_is_a_data_error(tmp_path):
    _fake_source(tmp_path / "src")
    (tmp_path / "src" / "task1" / "image_splits" / "val.txt").write_text("0.jpg\n")
    with pytest.raises(DataError, match="misaligned"):
        build_mini_multi30k(tmp_path / "src", tmp_path / "out", max_words=5, n_train=1, n_val=1, n_test=1)
    raw = tmp_path / "src" / "task1" / "raw" / "train.en.gz"
    raw.write_bytes(raw.read_bytes()[:12])
    with pytest.raises(DataError, match="truncated"):
        build_mini_multi30k(tmp_path / "src", tmp_path / "out", max_words=5, n_train=1, n_val=1, n_test=1)


@needs_multi30k
def test_real_multi30k_subset(tmp_path):
    summary = build_mini_multi30k(SHARED_MULTI30K, tmp_path / "a", max_words=8, n_train=40, n_val=10, n_test=5)
    assert summary == {"train": 40, "val": 10, "test_2016_flickr": 5, "test_2017_flickr": 5, "test_2018_flickr": 5}
    src_en = read_lines(SHARED_MULTI30K / "task1" / "raw" / "val.en.gz")
    src_de = read_lines(SHARED_MULTI30K / "task1" / "raw" / "val.de.gz")
    src_img = read_lines(SHARED_MULTI30K / "task1" / "image_splits" / "val.txt")
    out = tmp_path / "a" / "task1"
    en, de = read_lines(out / "raw" / "val.en.gz"), read_lines(out / "raw" / "val.de.gz")
    images = read_lines(out / "image_splits" / "val.txt")
    expected = [i for i, s in enumerate(src_en) if len(s.split()) <= 8][:10]
    assert en == [src_en[i] for i in expected]
    assert de == [src_de[i] for i in expected] and images == [src_img[i] for i in expected]
    assert all(len(s.split()) <= 8 for s in en)
    build_mini_multi30k(SHARED_MULTI30K, tmp_path / "b", max_words=8, n_train=40, n_val=10, n_test=5)
    for split in SPLITS:
        assert (tmp_path / "a" / "task1" / "raw" / f"{split}.de.gz").read_bytes() == (
            tmp_path / "b" / "task1" / "raw" / f"{split}.de.gz"
        ).read_bytes()
