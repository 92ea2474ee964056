"""Models for one family-task setup, built from params: sizes fitted to the data, teachers and students."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from amad.errors import CheckpointError, ConfigError
from amad.models import build_model, check_compatible, load_model
from amad.models.base import META_FILE, DistillModel
from amad.models.sizes import resolve_size
from amad_suite.config import parse_setup
from amad_suite.pipeline import params as P
from amad_suite.pipeline.examples import load_tokenizer
from amad_suite.pipeline.layout import DataLayout

log = logging.getLogger(__name__)


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


def build_student(
    params: dict, setup: str, layout: DataLayout, visual: Any, teacher: DistillModel, heads: int | None = None
) -> DistillModel:
    """The student of ``setup``; ``heads`` (the head-ratio matrix item) overrides student.setups.<setup>.heads."""
    from amad.capture.mapping import map_layers

    family, task = parse_setup(setup)
    cfg = P.student_setup(params, setup)
    size = fit_size(cfg.size, family, visual, cfg.heads if heads is None else heads, cfg.layers)
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
