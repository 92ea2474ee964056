"""Examples, visual inputs and models for one family-task setup, built from params."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from amad.data import load_examples
from amad.errors import CheckpointError, ConfigError, DataError
from amad.models import build_model, check_compatible, load_model
from amad.models.base import META_FILE, DistillModel
from amad.models.sizes import resolve_size
from amad.types import Example
from amad_suite.config import parse_setup
from amad_suite.pipeline import params as P
from amad_suite.pipeline.layout import FAMILIES, TEST_SPLITS, TRAIN_SPLIT, DataLayout, visual_tasks

log = logging.getLogger(__name__)
VQA_MINI_KEY = "{image_id}"


def _loader_options(task: str, scale: str) -> dict[str, Any]:
    if task == "vqa":
        return {"image_key_format": VQA_MINI_KEY} if scale == "mini" else {"format": "karpathy"}
    return {}


def examples(layout: DataLayout, task: str, split: str, *, train: bool, scale: str) -> list[Example]:
    return load_examples(task, layout.raw(task), split, train=train, **_loader_options(task, scale))


def train_examples(layout: DataLayout, task: str, scale: str) -> list[Example]:
    return examples(layout, task, TRAIN_SPLIT[task], train=True, scale=scale)


def test_sets(layout: DataLayout, task: str, scale: str) -> dict[str, list[Example]]:
    return {name: examples(layout, task, split, train=False, scale=scale) for name, split in TEST_SPLITS[task].items()}


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


def fit_size(size: str | dict, family: str, visual: Any, heads: int | None = None, layers: int | None = None) -> dict:
    """Resolve a size and adapt it to the data (VL-T5 feature width and box count, BLIP image size), then apply
    the optional head and depth overrides.

    ``heads`` changes only the head count: the attention inner width (VL-T5's num_heads · d_kv, BLIP's hidden size)
    and the depth stay, so 2, 4 and 8 heads have the same attention parameters. ``layers`` changes only the depth
    (every stack of the family).
    """
    resolved = copy.deepcopy(resolve_size(size, family))
    if family == "vlt5":
        if visual is not None:
            resolved["feat_dim"] = int(visual.feature_dim)
            resolved["n_boxes"] = max(int(resolved["n_boxes"]), int(visual.num_boxes))
        if heads is not None:
            inner = int(resolved["num_heads"]) * int(resolved["d_kv"])
            if inner % heads:
                raise ConfigError(
                    f"heads {heads} does not divide the attention width {inner} (num_heads x d_kv) of the VL-T5 size: "
                    "choose a head count that divides it"
                )
            resolved["num_heads"], resolved["d_kv"] = heads, inner // heads
        if layers is not None:
            resolved["num_layers"] = resolved["num_decoder_layers"] = layers
    else:
        if visual is not None:
            resolved["vision"]["image_size"] = int(visual.image_size)
        for tower in ("vision", "text"):
            if heads is not None:
                resolved[tower]["num_attention_heads"] = heads
            if layers is not None:
                resolved[tower]["num_hidden_layers"] = layers
    return resolved


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


def build_teacher(params: dict, setup: str, layout: DataLayout, visual: Any) -> DistillModel:
    family, task = parse_setup(setup)
    cfg, _ = P.teacher_setup(params, setup)
    tokenizer = load_tokenizer(layout, family=family)
    size = fit_size(cfg.size, family, visual)
    init = "pretrained" if cfg.init_from else "random"
    return build_model(family, task, size, tokenizer, init=init, init_from=cfg.init_from or None)


def load_teacher(teacher_dir: str | Path) -> DistillModel:
    model_dir = Path(teacher_dir) / "model"
    if not (model_dir / META_FILE).exists():
        raise CheckpointError(
            f"missing teacher checkpoint {model_dir}: run `dvc repro teacher@{Path(teacher_dir).name}` first "
            "(or check the path)"
        )
    return load_model(model_dir)


def build_student(params: dict, setup: str, layout: DataLayout, visual: Any, teacher: DistillModel) -> DistillModel:
    from amad.capture.mapping import map_layers

    family, task = parse_setup(setup)
    cfg = P.student_setup(params, setup)
    size = fit_size(cfg.size, family, visual, cfg.heads, cfg.layers)
    pairs = None
    if cfg.init == "teacher":
        kinds = P.distill(params).kinds.get(family, ())
        kind = kinds[0] if kinds else next(iter(teacher.attention_layout()))
        t_layers = teacher.attention_layout()[kind][0]
        s_layers = size["num_layers"] if family == "vlt5" else size["text"]["num_hidden_layers"]
        pairs = map_layers(P.distill(params).layer_map, t_layers, s_layers)
    student = build_model(
        family,
        task,
        size,
        teacher.tokenizer,
        init=cfg.init,
        init_from=cfg.init_from or None,
        teacher=teacher,
        layer_pairs=pairs,
    )
    check_compatible(teacher, student)
    return student
