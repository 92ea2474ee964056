"""Examples, visual stores and tokenizers of one task, read from the data layout (no model code: the data stages
use these too)."""

from __future__ import annotations

from typing import Any

from amad.data import load_examples
from amad.errors import DataError
from amad.types import Example
from amad_suite.pipeline.layout import FAMILIES, TEST_SPLITS, TRAIN_SPLIT, VAL_SPLIT, DataLayout, visual_tasks

VQA_MINI_KEY = "{image_id}"


def _loader_options(task: str, scale: str) -> dict[str, Any]:
    if task == "vqa":
        return {"image_key_format": VQA_MINI_KEY} if scale == "mini" else {"format": "karpathy"}
    return {}


def examples(layout: DataLayout, task: str, split: str, *, train: bool) -> list[Example]:
    return load_examples(task, layout.raw(task), split, train=train, **_loader_options(task, layout.scale))


def train_examples(layout: DataLayout, task: str) -> list[Example]:
    return examples(layout, task, TRAIN_SPLIT[task], train=True)


def val_examples(layout: DataLayout, task: str) -> list[Example]:
    return examples(layout, task, VAL_SPLIT[task], train=False)


def test_sets(layout: DataLayout, task: str) -> dict[str, list[Example]]:
    return {name: examples(layout, task, split, train=False) for name, split in TEST_SPLITS[task].items()}


def visual_store(layout: DataLayout, family: str, task: str) -> Any:
    """FeatureStore for VL-T5, ImageStore for BLIP, None for text-only tasks (Multi30K is visual at paper scale)."""
    if task not in visual_tasks(layout.scale) or (family == "blip" and task == "translation"):
        return None
    if family == "vlt5":
        from amad.data.visual.features import FeatureStore

        path = layout.features(task)
        if not path.exists():
            raise DataError(f"missing visual features {path}: run `dvc repro extract_features@{task}`")
        return FeatureStore(path)
    from amad.data.visual.images import ImageStore

    path = layout.images(task)
    if not path.exists():
        raise DataError(f"missing image cache {path}: run `dvc repro extract_features@images`")
    return ImageStore(path)


def load_tokenizer(layout: DataLayout, family: str | None = None):
    """The family's tokenizer (``data/tokenizer/<family>`` at paper scale), else the shared mini one.

    Raises:
        ConfigError: family is None where each family has its own tokenizer (BLIP must not get the T5 one).
        DataError: no tokenizer was written yet.
    """
    from amad.data.tokenizer import load_tokenizer as _load
    from amad.errors import ConfigError

    if family is None:
        own = sorted(p.name for p in layout.tokenizer.glob("*") if p.is_dir() and p.name in FAMILIES)
        if own:
            raise ConfigError(
                f"{layout.tokenizer} holds one tokenizer per family ({', '.join(own)}): call "
                "load_tokenizer(layout, family=...) with the model family"
            )
        path = layout.tokenizer
    else:
        path = layout.tokenizer_dir(family)
    if not path.exists() or not any(path.iterdir()):
        raise DataError(f"missing tokenizer {path}: run `dvc repro download`")
    return _load(path)
