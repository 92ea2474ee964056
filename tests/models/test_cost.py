"""Cost helpers: parameter counts and latency per sample."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amad.models.cost import count_parameters, measure_latency
from amad.types import Batch


def test_count_parameters_counts_tied_weights_once_and_trainable_only():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10))
    assert count_parameters(model) == 40 + 40 + 10
    model[1].weight = model[0].weight  # tie (10, 4)
    assert count_parameters(model) == 40 + 10
    model[1].bias.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == 40


class _Counter(nn.Module):
    """Counts forward/generate calls and records grad mode and training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = {"forward": 0, "generate": 0}
        self.grad_enabled: list[bool] = []
        self.training_seen: list[bool] = []

    def forward(self, batch):
        self.calls["forward"] += 1
        self.grad_enabled.append(torch.is_grad_enabled())
        self.training_seen.append(self.training)

    def generate(self, batch):
        self.calls["generate"] += 1


def test_measure_latency_runs_warmup_plus_repeats_in_eval_inference_mode():
    model = _Counter().train()
    batch = Batch(input_ids=torch.zeros(4, 3, dtype=torch.long), attention_mask=torch.ones(4, 3, dtype=torch.bool))
    out = measure_latency(model, batch, repeats=3, warmup=2)
    assert model.calls == {"forward": 5, "generate": 0}
    assert model.grad_enabled == [False] * 5 and model.training_seen == [False] * 5
    assert model.training  # restored
    assert set(out) == {"latency_s_per_sample", "throughput_samples_per_s", "device"}
    assert out["device"] == "cpu"  # where the batch lives
    assert out["latency_s_per_sample"] > 0
    assert out["throughput_samples_per_s"] == pytest.approx(1.0 / out["latency_s_per_sample"])
    measure_latency(model, batch, repeats=1, warmup=0, generate=True)
    assert model.calls["generate"] == 1
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        measure_latency(model, batch, repeats=0)


def test_device_name_names_the_gpu_model(monkeypatch):
    from amad.models.cost import device_name

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: f"Fake GPU {index}")
    assert device_name(torch.device("cuda", 1)) == "cuda:1 (Fake GPU 1)"
    assert device_name("cpu") == "cpu"
