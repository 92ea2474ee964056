"""Examples, visual inputs and models for one family-task setup, built from params."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from amad.config import parse_setup
from amad.data import load_examples
from amad.errors import CheckpointError, DataError
from amad.models import build_model, check_compatible, load_model
from amad.models.base import META_FILE, DistillModel
from amad.models.sizes import resolve_size
from amad.pipeline import params as P
from amad.pipeline.layout import TEST_SPLITS, TRAIN_SPLIT, VISUAL_TASKS, DataLayout
from amad.types import Example

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
    """FeatureStore for VL-T5, ImageStore for BLIP, None for text-only tasks."""
    if task not in VISUAL_TASKS:
        return None
    if family == "vlt5":
        from amad.data.features import FeatureStore

        path = layout.features(task)
        if not path.exists():
            raise DataError(f"missing visual features {path}: run `dvc repro extract_features@{task}`")
        return FeatureStore(path)
    from amad.data.images import ImageStore

    path = layout.images(task)
    if not path.exists():
        raise DataError(f"missing image cache {path}: run `dvc repro extract_features@{task}`")
    return ImageStore(path)


def fit_size(size: str | dict, family: str, visual: Any, heads: int | None = None) -> dict:
    """Resolve a size and adapt it to the data: VL-T5 feature width and box count; optional head override."""
    resolved = copy.deepcopy(resolve_size(size, family))
    if family == "vlt5":
        if visual is not None:
            resolved["feat_dim"] = int(visual.feature_dim)
            resolved["n_boxes"] = max(int(resolved["n_boxes"]), int(visual.num_boxes))
        if heads is not None:
            resolved["num_heads"] = heads
    else:
        if visual is not None:
            resolved["vision"]["image_size"] = int(visual.image_size)
        if heads is not None:
            resolved["vision"]["num_attention_heads"] = heads
            resolved["text"]["num_attention_heads"] = heads
    return resolved


def load_tokenizer(layout: DataLayout):
    from amad.data.tokenizer import load_tokenizer as _load

    if not layout.tokenizer.exists():
        raise DataError(f"missing tokenizer {layout.tokenizer}: run `dvc repro download`")
    return _load(layout.tokenizer)


def build_teacher(params: dict, setup: str, layout: DataLayout, visual: Any) -> DistillModel:
    family, task = parse_setup(setup)
    cfg, _ = P.teacher_setup(params, setup)
    tokenizer = load_tokenizer(layout)
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
    size = fit_size(cfg.size, family, visual, cfg.heads)
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
