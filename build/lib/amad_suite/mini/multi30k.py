"""Mini Multi30K: a deterministic short-sentence subset of the real Multi30K task 1, in the same file layout.

For each split the pairs whose English side has at most ``max_words`` whitespace words are kept in file order,
then the first N of them. ``task1/image_splits/<split>.txt`` is filtered with the same line indices, so line i of
every output file still describes the same image. gzip files are written with mtime 0 (byte-identical reruns).
"""

from __future__ import annotations

import gzip
from pathlib import Path

from amad.atomic import atomic_path, staged_dir
from amad.data.formats.multi30k import read_lines
from amad.errors import ConfigError, DataError

__all__ = ["SPLITS", "build_mini_multi30k"]

SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2018_flickr")
MIRROR_HINT = (
    "run the download stage, or set the data mirror (params data.mirror or $AMAD_DATA_MIRROR) to a folder holding "
    "task1/raw/ (e.g. ../shared/data/multi30k)"
)


def _write_gz(path: Path, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
    ):
        gz.write(data)


def build_mini_multi30k(
    src_root: str | Path,
    out_dir: str | Path,
    *,
    max_words: int,
    n_train: int | None,
    n_val: int | None,
    n_test: int | None,
) -> dict:
    """Write the short-sentence subset of ``src_root`` (a Multi30K root with ``task1/``) to ``out_dir``.

    Args:
        max_words: keep pairs whose English sentence has at most this many words.
        n_train, n_val: first N kept pairs of train / val (None = all kept).
        n_test: first N kept pairs of each of test_2016_flickr, test_2017_flickr, test_2018_flickr.

    Returns:
        {split: number of pairs written}.
    """
    src = Path(src_root) / "task1"
    if max_words < 1:
        raise ConfigError(f"max_words must be >= 1 (got {max_words}): fix the mini Multi30K params")
    for split in SPLITS:
        for lang in ("en", "de"):
            if not (src / "raw" / f"{split}.{lang}.gz").is_file():
                raise DataError(f"Multi30K file {src / 'raw' / f'{split}.{lang}.gz'} not found: {MIRROR_HINT}")
    limits = {"train": n_train, "val": n_val}
    summary = {}
    with staged_dir(out_dir) as root:
        (root / "task1" / "raw").mkdir(parents=True)
        (root / "task1" / "image_splits").mkdir()
        for split in SPLITS:
            en = read_lines(src / "raw" / f"{split}.en.gz", strip=False)
            de = read_lines(src / "raw" / f"{split}.de.gz", strip=False)
            image_file = src / "image_splits" / f"{split}.txt"
            images = read_lines(image_file, strip=False) if image_file.is_file() else None
            if len(en) != len(de) or (images is not None and len(images) != len(en)):
                raise DataError(
                    f"Multi30K {split} files in {src} are misaligned ({len(en)} en, {len(de)} de, "
                    f"{'-' if images is None else len(images)} image lines): re-download them"
                )
            keep = [i for i, sentence in enumerate(en) if len(sentence.split()) <= max_words]
            limit = limits.get(split, n_test)
            keep = keep if limit is None else keep[:limit]
            _write_gz(root / "task1" / "raw" / f"{split}.en.gz", [en[i] for i in keep])
            _write_gz(root / "task1" / "raw" / f"{split}.de.gz", [de[i] for i in keep])
            if images is not None:
                (root / "task1" / "image_splits" / f"{split}.txt").write_text("".join(images[i] + "\n" for i in keep))
            summary[split] = len(keep)
    return summary
