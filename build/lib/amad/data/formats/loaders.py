"""`load_examples(task, root, split, train=...)`: one entry point over the VQA, caption and Multi30K loaders."""

from __future__ import annotations

import inspect
from pathlib import Path

from amad.data.formats.captions import load_captions
from amad.data.formats.multi30k import load_multi30k
from amad.data.formats.vqa import load_vqa
from amad.errors import ConfigError
from amad.registry import unknown_name
from amad.types import Example

# task -> loader; each takes (root, split, *, train, **options) and returns list[Example].
LOADERS = {"vqa": load_vqa, "caption": load_captions, "translation": load_multi30k}


def _loader(task: str):
    if task not in LOADERS:
        raise unknown_name("task", task, LOADERS)
    return LOADERS[task]


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
