"""compute.workers: seeds trained side by side in worker processes compute exactly what each computes alone."""

from __future__ import annotations

import json

import pytest
import torch
from reliability_support import Workspace
from safetensors.torch import load_file

pytestmark = pytest.mark.slow


def _weights(run) -> dict[str, torch.Tensor]:
    return load_file(next((run / "model").rglob("*.safetensors")))


def test_parallel_seeds_match_a_seed_trained_alone(ws: Workspace, capfd) -> None:
    together, alone = ws.scratch("together"), ws.scratch("alone")

    def seeds(values: list[int]):
        def edit(params: dict) -> None:
            params["suite"]["seeds"] = values
            params["compute"]["workers"] = 2

        return edit

    with ws.case(seeds([0, 1])):
        code, stderr = ws.run(ws.distill_cmd(together), capfd)
    assert code == 0, stderr[-2000:]
    with ws.case(seeds([1])):  # one seed: no pool, but the same single thread
        code, stderr = ws.run(ws.distill_cmd(alone), capfd)
    assert code == 0, stderr[-2000:]
    a, b = _weights(together / "s1"), _weights(alone / "s1")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    info = json.loads((together / "s1" / "run_info.json").read_text())
    assert info["torch_threads"] == 1 and info["params"]["torch_threads"] == 1  # recorded, and in the fingerprint
    assert not torch.equal(_weights(together / "s0")[next(iter(a))], a[next(iter(a))])  # the seeds differ
