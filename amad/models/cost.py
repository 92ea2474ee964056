"""Cost helpers for the report's cost table: parameter counts, latency and throughput per sample, and the device
they were measured on."""

from __future__ import annotations

import time

import torch
from torch import nn

from amad.types import Batch


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters; tied weights (shared tensors) count once.

    Args:
        model: any module (a DistillModel counts its wrapped transformers model).
        trainable_only: count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def device_name(device: torch.device | str) -> str:
    """A readable name of a device: ``cpu``, or ``cuda:0 (NVIDIA H200)``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def measure_latency(
    distill_model: nn.Module, batch: Batch, *, repeats: int = 3, warmup: int = 1, generate: bool = False
) -> dict[str, float | str]:
    """Wall-clock cost of a forward pass (or of ``generate``) on one batch, per sample.

    Runs ``warmup`` untimed calls, then times ``repeats`` calls with ``time.perf_counter`` under
    ``torch.inference_mode`` (the model is put in eval mode and restored afterwards).

    Args:
        distill_model: a DistillModel (``forward(batch)`` / ``generate(batch)``).
        batch: a collated batch on the model's device.
        repeats: timed calls; warmup: untimed calls first.
        generate: time greedy generation instead of a teacher-forced forward.

    Returns:
        {"latency_s_per_sample": mean seconds per example, "throughput_samples_per_s": examples per second,
        "device": where it ran (:func:`device_name` of the batch's device)}.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    was_training = distill_model.training
    distill_model.eval()

    def once() -> None:
        if generate:
            distill_model.generate(batch)
        else:
            distill_model(batch)

    try:
        with torch.inference_mode():
            for _ in range(warmup):
                once()
            _sync(batch)
            start = time.perf_counter()
            for _ in range(repeats):
                once()
            _sync(batch)
            elapsed = time.perf_counter() - start
    finally:
        distill_model.train(was_training)
    per_sample = elapsed / (repeats * len(batch))
    return {
        "latency_s_per_sample": per_sample,
        "throughput_samples_per_s": 1.0 / per_sample,
        "device": device_name(batch.input_ids.device),
    }


def _sync(batch: Batch) -> None:
    """Wait for queued CUDA work so that timings cover it."""
    if batch.input_ids.is_cuda:
        torch.cuda.synchronize(batch.input_ids.device)
