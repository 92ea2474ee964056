"""`load_examples(task, root, split, train=...)`: one entry point over the VQA, caption and Multi30K loaders.

Also the small file helpers the loaders share, so every missing or corrupt file gets the same one-line DataError.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterable
from pathlib import Path

from amad.data.formats.json_cache import load_json_cached
from amad.errors import ConfigError, DataError
from amad.registry import unknown_name
from amad.types import Example

CREATED_BY = "the download stage creates it at paper scale, the mini-data stage in the mini suite"

# task -> "module:function"; each loader takes (root, split, *, train, **options) and returns list[Example].
LOADERS = {
    "vqa": "amad.data.formats.vqa:load_vqa",
    "caption": "amad.data.formats.captions:load_captions",
    "translation": "amad.data.formats.multi30k:load_multi30k",
}


def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise DataError naming it and the stage that creates it."""
    if not path.is_file():
        raise DataError(f"missing {what} {path}: {CREATED_BY} (or point the task root at the folder holding it)")
    return path


def read_json(path: Path, what: str) -> object:
    """Parse a JSON file (once per process; callers must not change the result); a missing or corrupt file raises
    DataError."""
    require_file(path, what)
    try:
        return load_json_cached(path)  # parsed once per process: paper-scale annotations are hundreds of MB
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path} is not valid JSON ({exc}): re-create or re-download it") from None


def format_error(what: str, path: Path, expected: str) -> DataError:
    """A DataError for a file that parses but is not in the expected format."""
    return DataError(f"{what} {path} is not in the {expected} format: re-create or re-download it")


def apply_limit(examples: list[Example], limit: int | None) -> list[Example]:
    """Keep the first ``limit`` examples (all when None)."""
    if limit is None:
        return examples
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"limit must be a non-negative integer or null, got {limit!r}")
    return examples[:limit]


def _loader(task: str):
    if task not in LOADERS:
        raise unknown_name("task", task, LOADERS)
    module, name = LOADERS[task].split(":")
    return getattr(importlib.import_module(module), name)


def load_examples(task: str, root: str | Path, split: str, *, train: bool, **options) -> list[Example]:
    """Load one split of a task as Examples.

    Args:
        task: "vqa" | "caption" | "translation".
        root: the task's data folder (VQA: questions/annotations or karpathy files; captions: dataset_coco.json;
            translation: the Multi30K folder holding task1/).
        split: the split name (VQA and captions: train/val/test; Multi30K: train, val, test_2016_flickr, ...).
        train: True for training examples (captions: one per caption), False for evaluation (one per image).
        **options: loader options, e.g. limit (first N), VQA image_key_format / format, Multi30K max_words.

    Raises:
        UnknownNameError: unknown task or split. ConfigError: unknown option. DataError: missing or bad files.
    """
    fn = _loader(task)
    allowed = [p for p in inspect.signature(fn).parameters if p not in ("root", "split", "train")]
    bad = sorted(set(options) - set(allowed))
    if bad:
        raise ConfigError(f"unknown option {bad[0]!r} for task {task!r}: choose from {', '.join(allowed)}")
    return fn(Path(root), split, train=train, **options)
