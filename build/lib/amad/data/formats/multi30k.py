"""Multi30K task 1 (En->De): ``task1/raw/{split}.{en,de}.gz`` and ``task1/image_splits/{split}.txt``.

Example uid "<split>:<line index>", source = English, target = German, references = [German], image key = the
Flickr30k file stem (None when the split's image list is absent, as for test_2018 in some copies).
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path, PurePosixPath

from amad.data.formats.files import CREATED_BY, apply_limit, require_file
from amad.registry import unknown_name
from amad.errors import ConfigError, DataError
from amad.types import Example

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2018_flickr", "test_2017_mscoco")
def task_root(root: Path) -> Path:
    """The folder holding task1/: ``root`` itself, or ``root/multi30k`` when given the data root."""
    if (root / "task1").is_dir() or not (root / "multi30k" / "task1").is_dir():
        return root
    return root / "multi30k"


def read_lines(path: Path, *, strip: bool = True) -> list[str]:
    """The lines of a text file (stripped, or only without their newlines), gunzipped when it ends in .gz; a corrupt
    file raises DataError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                text = fh.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        lines = text.splitlines()
        return [line.strip() for line in lines] if strip else lines
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"Multi30K file {path} is corrupt ({exc}): re-create or re-download it") from None


def _text_file(raw: Path, split: str, lang: str) -> Path:
    """``{split}.{lang}.gz``, or the gunzipped ``{split}.{lang}`` that VL-T5's instructions leave behind."""
    gz, plain = raw / f"{split}.{lang}.gz", raw / f"{split}.{lang}"
    if not gz.is_file() and plain.is_file():
        return plain
    return require_file(gz, f"Multi30K {lang} text")


def load_multi30k(
    root: Path,
    split: str,
    *,
    train: bool,
    max_words: int | None = None,
    limit: int | None = None,
    source_lang: str = "en",
    target_lang: str = "de",
) -> list[Example]:
    """Load a Multi30K split (``train`` does not change the examples).

    Args:
        root: the Multi30K folder (holding task1/) or a data root holding multi30k/task1/.
        split: train, val, test_2016_flickr, test_2017_flickr, test_2018_flickr (or test_2017_mscoco).
        max_words: keep only pairs whose source has at most this many whitespace-separated words (before limit).
        limit: then keep the first N pairs; uids keep the original line index.
    """
    if split not in SPLITS:
        raise unknown_name("Multi30K split", split, SPLITS)
    if max_words is not None and (isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 1):
        raise ConfigError(f"max_words must be a positive integer or null, got {max_words!r}")
    base = task_root(root) / "task1"
    src_path, tgt_path = _text_file(base / "raw", split, source_lang), _text_file(base / "raw", split, target_lang)
    sources, targets = read_lines(src_path), read_lines(tgt_path)
    if len(sources) != len(targets):
        raise DataError(
            f"Multi30K {split} has {len(sources)} lines in {src_path.name} but {len(targets)} in {tgt_path.name}: "
            f"the files are mismatched or truncated; re-create them ({CREATED_BY})"
        )
    images_path = base / "image_splits" / f"{split}.txt"
    if images_path.is_file():
        keys: list[str | None] = [PurePosixPath(name).stem for name in read_lines(images_path)]
        if len(keys) != len(sources):
            raise DataError(
                f"Multi30K image list {images_path} has {len(keys)} lines but the {split} text has {len(sources)}: "
                "re-create the image list"
            )
    else:
        log.warning("Multi30K %s has no image list %s; its examples have no image", split, images_path)
        keys = [None] * len(sources)
    examples = []
    for i, (src, tgt, key) in enumerate(zip(sources, targets, keys)):
        if max_words is not None and len(src.split()) > max_words:
            continue
        examples.append(Example(uid=f"{split}:{i}", image_id=key, source=src, target=tgt, references=[tgt]))
    return apply_limit(examples, limit)
