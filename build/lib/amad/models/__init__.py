"""Model families (VL-T5, BLIP) behind one DistillModel interface, named sizes, builders and loaders.

Importing this package registers every family in ``FAMILIES`` and every named size in ``MODEL_SIZES``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from amad.errors import AmadError, CheckpointError
from amad.models import blip, sizes, vlt5  # noqa: F401  (registers the families and sizes)
from amad.models.base import FAMILIES, META_FILE, DistillModel, check_compatible, check_finite_weights
from amad.models.sizes import MODEL_SIZES, resolve_size

__all__ = [
    "FAMILIES",
    "MODEL_SIZES",
    "DistillModel",
    "build_model",
    "check_compatible",
    "load_model",
    "resolve_size",
]


def build_model(
    family: str,
    task: str,
    size: str | Mapping[str, Any],
    tokenizer: Any,
    *,
    init: str = "random",
    init_from: str | None = None,
    teacher: DistillModel | None = None,
    layer_pairs: list[tuple[int, int]] | None = None,
    seed: int | None = None,
) -> DistillModel:
    """Build a teacher or student of ``family`` for ``task`` at ``size`` (a MODEL_SIZES name or a size dict).

    Args:
        init: "random", "pretrained" (weights from the checkpoint ``init_from``) or "teacher" (layers of
            ``teacher`` at ``layer_pairs`` (student_layer, teacher_layer)).
        seed: seeds torch before the random initialisation when given.

    Raises:
        UnknownNameError: unknown family or size name. ConfigError: a size or task the family cannot build.
    """
    cls = FAMILIES.get(family)
    if seed is not None:
        torch.manual_seed(seed)
    return cls.build(
        task=task,
        size=size,
        tokenizer=tokenizer,
        init=init,
        init_from=init_from,
        teacher=teacher,
        layer_pairs=layer_pairs,
    )


def load_model(directory: str | Path, *, require_finite: bool = True) -> DistillModel:
    """Load a model saved by ``DistillModel.save_pretrained`` (the family is read from amad_model.json).

    Args:
        require_finite: refuse weights that hold NaN or inf (a diverged run must never be scored or distilled from).

    Raises:
        CheckpointError: no or an invalid amad_model.json, an unknown family, unreadable or truncated weights,
            non-finite weights.
    """
    meta_path = Path(directory, META_FILE)
    if not meta_path.is_file():
        raise CheckpointError(
            f"no {META_FILE} in {str(directory)!r}: give a folder written by save_pretrained, or load a transformers "
            "checkpoint with FAMILIES.get(family).from_pretrained"
        )
    try:
        family = json.loads(meta_path.read_text())["family"]
    except (ValueError, KeyError):
        raise CheckpointError(f"{meta_path} is not a valid {META_FILE}: save the model again") from None
    if family not in FAMILIES:
        raise CheckpointError(f"{meta_path} names unknown family {family!r}: {FAMILIES.unknown_message(family)}")
    try:
        model = FAMILIES.get(family).from_pretrained(str(directory))
    except AmadError:
        raise
    except Exception as exc:  # a truncated safetensors file, a torn config.json, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(
            f"cannot load the model in {str(directory)!r} ({type(exc).__name__}: {first}): the files are damaged or "
            "incomplete; rerun the stage that wrote them"
        ) from None
    if require_finite:
        check_finite_weights(model, str(directory))
    return model
