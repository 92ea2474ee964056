"""``capture_attention(model, spec)``: record pre-dropout attention probabilities of selected layers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from amad.capture.blip import BlipBackend
from amad.capture.spec import CaptureSpec, Layout
from amad.capture.t5 import T5Backend
from amad.errors import CaptureError
from amad.types import AttentionMaps, MapKey

_BACKENDS = (T5Backend, BlipBackend)

# Largest allowed |row sum - 1| per dtype (softmax rounding accumulates over K entries).
_ROW_SUM_ATOL = {torch.float64: 1e-6, torch.float32: 1e-3, torch.float16: 1e-2, torch.bfloat16: 3e-2}


def _backend(model: nn.Module) -> T5Backend | BlipBackend:
    for backend in _BACKENDS:
        if backend.matches(model):
            return backend(model)
    raise CaptureError(
        f"cannot capture attention of a {type(model).__name__}: pass the transformers model itself "
        "(T5ForConditionalGeneration or a subclass, BlipForConditionalGeneration, BlipForQuestionAnswering)"
    )


def attention_layout(model: nn.Module) -> Layout:
    """Attention kinds of ``model`` -> (number of layers, number of heads), e.g. ``{"encoder_self": (6, 8), ...}``."""
    return _backend(model).layout()


def check_row_sums(probs: Mapping[MapKey, torch.Tensor]) -> None:
    """Raise CaptureError unless every (B, H, Q, K) map's rows sum to 1 over the keys (or are all zero).

    Masked keys carry exactly zero probability, so the sum over all keys equals the sum over the valid keys. A query
    row whose keys are all masked may come out uniform (sum 1) or zero; both pass. One device sync in total.
    """
    if not probs:
        return
    keys = list(probs)
    worst = []
    with torch.no_grad():
        for key in keys:
            p = probs[key]
            sums = p.float().sum(dim=-1)  # (B, H, Q, K) -> (B, H, Q)
            atol = _ROW_SUM_ATOL.get(p.dtype, 1e-3)
            ok = ((sums - 1).abs() <= atol) | (sums.abs() <= atol)  # NaN / inf rows are not ok
            worst.append(torch.stack([(~ok).any(), (~torch.isfinite(sums)).any()]))
    flags = torch.stack(worst).tolist()  # per map: [some row does not sum to 1, some row is not finite]
    bad = next((i for i, (wrong, _) in enumerate(flags) if wrong), None)
    if bad is not None:
        kind, layer = keys[bad]
        if flags[bad][1]:
            raise CaptureError(
                f"captured {kind} layer {layer} attention holds NaN or inf: a non-finite input (features, images) or "
                "model weight (a diverged run or a damaged checkpoint) upstream of it; check those first"
            )
        raise CaptureError(
            f"captured {kind} layer {layer} attention rows do not sum to 1: the model's attention is not a softmax "
            "over keys (custom masks or a transformers version other than 5.24?)"
        )


@contextmanager
def capture_attention(
    model: nn.Module, spec: CaptureSpec, *, check_rows: bool | None = None
) -> Iterator[AttentionMaps]:
    """Record the attention probabilities that ``spec`` asks for while the block runs.

    Only the requested layers are switched to a recording path; every other layer keeps its implementation
    (``sdpa`` where the model allows it). The model is restored on exit, also when the block raises.

    ``maps.probs[(kind, layer)]`` is the (B, H, Q, K) pre-dropout softmax output, still attached to the autograd
    graph (so student losses reach the parameters; a teacher under ``torch.no_grad()`` records plain tensors).
    If a layer runs several times inside the block (``generate``, or several forward calls), the last call wins.
    ``maps.query_mask`` / ``maps.key_mask`` are left empty: the model wrapper fills them from its batch. With
    ``spec.values``, ``maps.values[(kind, layer)]`` holds the layer's (B, H, K, D) per-head value-output circuits.

    Args:
        model: a transformers T5 (``T5ForConditionalGeneration`` or a subclass, also one that calls its encoder
            blocks itself) or BLIP (``BlipForConditionalGeneration``, ``BlipForQuestionAnswering``) model.
        spec: kinds and layers to record; validated against ``attention_layout(model)``.
        check_rows: after the block, check that every captured row sums to 1 (one device sync); None (the
            default) follows ``spec.check_rows``.

    Yields:
        The AttentionMaps that the block fills in.

    Raises:
        UnknownNameError, ConfigError: the spec does not fit the model (raised on entry).
        CaptureError: unsupported model, gradient checkpointing in training, a requested layer that never ran
            inside the block, or maps that are not row-normalised (raised on exit).
    """
    backend = _backend(model)
    selected = spec.resolve(backend.layout())
    if model.training and torch.is_grad_enabled() and getattr(model, "is_activation_checkpointing", False):
        raise CaptureError(
            "cannot capture attention with gradient checkpointing on (recomputed layers would bypass the recorder): "
            "call model.activation_checkpointing_disable()"
        )
    maps = AttentionMaps()

    def record(kind: str, layer: int, probs: torch.Tensor) -> None:
        maps.probs[(kind, layer)] = probs  # (B, H, Q, K); a later call of the same layer replaces it

    def record_values(kind: str, layer: int, circuits: torch.Tensor) -> None:
        maps.values[(kind, layer)] = circuits  # (B, H, K, D), detached; a later call replaces it

    restore = backend.attach(selected, record, record_values if spec.values else None)
    try:
        yield maps
    finally:
        restore()
    heads = backend.layout()
    missing = [(kind, layer) for kind, layers in selected.items() for layer in layers if (kind, layer) not in maps]
    if missing:
        kind, layer = missing[0]
        raise CaptureError(
            f"{len(missing)} requested attention map(s) were never computed inside the capture block, first "
            f"{kind} layer {layer}: run the model (or that tower) inside the `with` block, or drop it from the spec"
        )
    for (kind, layer), probs in maps.probs.items():
        if probs.dim() != 4 or probs.shape[1] != heads[kind][1]:
            raise CaptureError(
                f"captured {kind} layer {layer} has shape {tuple(probs.shape)}, expected (B, {heads[kind][1]}, Q, K)"
            )
        circuits = maps.values.get((kind, layer))
        if spec.values and (
            circuits is None or tuple(circuits.shape[:3]) != (probs.shape[0], probs.shape[1], probs.shape[3])
        ):
            raise CaptureError(
                f"captured {kind} layer {layer} value circuits do not match its maps {tuple(probs.shape)} (got "
                f"{None if circuits is None else tuple(circuits.shape)}): the layer ran outside the usual path "
                "(a key/value cache?); capture values in a plain forward"
            )
    if spec.check_rows if check_rows is None else check_rows:
        check_row_sums(maps.probs)
