"""Strict weight copies: every target tensor is filled from the source, or is on a documented allow-list.

A pretrained load that silently leaves weights random makes every later number meaningless: a 30,522-row tokenizer
against a 30,524-row checkpoint, or 480-pixel position embeddings against a 384-pixel checkpoint, used to train on
from noise without a word. :func:`strict_copy` copies name- and shape-matching tensors, lets a model grow
vocabulary rows past the checkpoint's (the rows a checkpoint lacks keep their initialisation), and raises one line
listing the tensors it could not fill unless a family's allow-list names them. The :class:`LoadReport` it returns
goes into ``run_info.json``.

Per-family allow-lists (``ALLOWED``):
- ``vlt5-from-t5``: VL-T5's visual embedding when the source is a text-only T5 (t5-small for the paper's student
  without VL pre-training); the extra vocabulary rows are the ``<vis_extra_id_*>`` box-order rows.
- ``blip``: nothing; extra vocabulary rows only (e.g. BLIP's [DEC] and [ENC] after bert-base-uncased's 30,522).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from amad.errors import CheckpointError

# family -> (regex of target tensors that may stay at their initialisation, why)
ALLOWED: dict[str, tuple[tuple[str, str], ...]] = {
    "vlt5-from-t5": ((r"^encoder\.visual_embedding\.", "VL-T5's visual embedding: a text-only T5 has none"),),
    "blip": (),
}
# Embedding tables whose extra rows (beyond the checkpoint's) may keep their initialisation.
VOCAB_TABLES = (
    r"(^|\.)shared\.weight$",
    r"word_embeddings\.weight$",
    r"text_decoder\.cls\.predictions\.decoder\.weight$",
    r"text_decoder\.cls\.predictions\.(decoder\.)?bias$",
)


@dataclass
class LoadReport:
    """What a load copied. ``allowed_missing``: target tensors left at their initialisation by an allow-list rule
    (with the rule); ``grown_rows``: vocabulary tables whose extra rows kept their initialisation; ``refused``: empty
    whenever a load returns (a non-empty list raises instead); ``unused``: source tensors the model has no place
    for (e.g. a pre-training head)."""

    source: str
    copied: int = 0
    allowed_missing: list[str] = field(default_factory=list)
    grown_rows: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    unused: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _allowed(name: str, family: str) -> str | None:
    for pattern, why in ALLOWED.get(family, ()):
        if re.search(pattern, name):
            return why
    return None


def _vocab_table(name: str) -> bool:
    return any(re.search(p, name) for p in VOCAB_TABLES)


def refuse(report: LoadReport, fix: str) -> None:
    """Raise the one-line CheckpointError for a report with refused tensors (no-op when nothing was refused)."""
    if report.refused:
        shown = ", ".join(report.refused[:4]) + (
            f" and {len(report.refused) - 4} more" if len(report.refused) > 4 else ""
        )
        raise CheckpointError(
            f"{report.source}: could not copy {len(report.refused)} tensor(s) into the model ({shown}): {fix}"
        )


@torch.no_grad()
def strict_copy(
    target: nn.Module,
    source: Mapping[str, torch.Tensor],
    *,
    source_name: str,
    family: str,
    skip: Iterable[str] = (),
    allow_unused: bool = False,
    fix: str = "use a checkpoint whose sizes and vocabulary match the model",
) -> LoadReport:
    """Copy ``source`` into ``target``'s state dict by name; raise unless every tensor is filled or allowed.

    Args:
        target: the model to fill (its tied aliases share storage, so they are filled once).
        source: name -> tensor, already renamed to the target's names.
        source_name: the checkpoint's name, for messages and the report.
        family: the allow-list to apply (``ALLOWED``).
        skip: target names the caller fills itself (left out of the report).
        allow_unused: accept source tensors the model has no place for (otherwise they are refused: a checkpoint
            with more layers than the model would silently lose them).
        fix: the end of the error message: what the user should do.

    Raises:
        CheckpointError: one line naming the tensors that could not be copied (missing, of another shape, or
            without a place in the model).
    """
    report = LoadReport(source=source_name)
    skipped = set(skip)
    state = target.state_dict(keep_vars=True)
    groups: dict[int, list[str]] = {}  # tied aliases share one tensor: fill it from whichever name the source has
    for name, tensor in state.items():
        if name not in skipped:
            groups.setdefault(id(tensor), []).append(name)
    for names in groups.values():
        tensor = state[names[0]]
        name = next((n for n in names if n in source), names[0])
        value = source.get(name)
        if value is not None and value.shape == tensor.shape:
            tensor.data.copy_(value.to(tensor.dtype))
            report.copied += 1
        elif (
            value is not None
            and _vocab_table(name)
            and value.dim() == tensor.dim()
            and value.shape[1:] == tensor.shape[1:]
            and value.shape[0] < tensor.shape[0]
        ):
            tensor.data[: value.shape[0]].copy_(value.to(tensor.dtype))
            report.grown_rows.append(f"{name}[{value.shape[0]}:{tensor.shape[0]}]")
            report.copied += 1
        elif (why := _allowed(name, family)) is not None:
            report.allowed_missing.append(f"{name} ({why})")
        elif value is None:
            report.refused.append(f"{name} missing")
        else:
            report.refused.append(f"{name} {tuple(value.shape)} vs model {tuple(tensor.shape)}")
    unused = [name for name in source if name not in state]
    report.unused = len(unused)
    if not allow_unused:
        report.refused += [f"{name} has no place in the model" for name in unused]
    refuse(report, fix)
    return report
