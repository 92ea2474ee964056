"""Pipeline targets (issue 5), measured here rather than asserted in tests.

1. Cost of the attention term: a full mini-size training step (teacher forward + student forward/backward +
   AdamW) with `amad` vs `logit` terms, interleaved in one process, at the mini preset's distill batch size and
   with the allocator setting the mini preset's launcher uses (MALLOC_*_THRESHOLD_; --system-malloc turns it off).
   Target: amad <= 1.10x logit.
2. The smoke preset end to end through `dvc repro` in a fresh git repo (target <= 3 min), then `dvc repro` with
   nothing changed (target <= 10 s).
3. With --mini: the full mini suite through `dvc repro` (target <= 30 min on 2 cores).

    python benchmarks/pipeline.py [--steps 40] [--batch 32] [--threads 2] [--system-malloc] [--skip-repro] [--mini]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml

from amad.models import build_model
from amad.models.sizes import resolve_size
from amad.testing import make_tokenizer
from amad.training.step import distill_step, plan_capture
from amad.training.terms import parse_method
from amad.types import Example
from amad_suite.testing import (
    SHARED_MULTI30K,
    make_repo,
    pipeline_env,
    run,
)

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "logit": {"task": 1.0, "logit_kd": {"weight": 1.0, "temperature": 2.0}},
    "amad": {"task": 1.0, "logit_kd": {"weight": 1.0, "temperature": 2.0}, "amad_kl": {"weight": 1.0, "tau": 1.0}},
}
KINDS = {"vlt5": ("encoder_self", "decoder_self", "cross"), "blip": ("vision_self", "text_self", "text_cross")}


class _Visual:
    def __init__(self, family: str, size: dict) -> None:
        self.family, self.size = family, size
        self.num_boxes, self.feature_dim = 16, size.get("feat_dim", 0)
        self.image_size = size["vision"]["image_size"] if family == "blip" else 0

    def get(self, key: str):
        rng = np.random.default_rng(int(key))
        if self.family == "blip":
            return rng.standard_normal((3, self.image_size, self.image_size)).astype(np.float32)
        boxes = np.sort(rng.random((16, 2, 2)), axis=1).reshape(16, 4)[:, [0, 2, 1, 3]].astype(np.float32)
        return rng.standard_normal((16, self.feature_dim)).astype(np.float32), boxes


# The mini preset's compute.launcher environment (configs/presets/mini.yaml).
KEEP_FREED = {"MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_MMAP_THRESHOLD_": "1073741824"}


def step_cost(family: str, batch_size: int, steps: int) -> None:
    tok = make_tokenizer()
    t_size, s_size = resolve_size(f"{family}-tiny-teacher"), resolve_size(f"{family}-tiny-student")
    torch.manual_seed(0)
    teacher = build_model(family, "vqa", t_size, tok).eval().requires_grad_(False)
    student = build_model(family, "vqa", s_size, tok)
    visual = _Visual(family, s_size)
    questions = ["what color is the circle ?", "how many shapes are there on the left ?", "is the square blue ?"]
    examples = [Example(str(i), str(i), questions[i % 3], "red", ["red"] * 10) for i in range(batch_size)]
    batch = student.collate(examples, visual, train=True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    runs = {}
    for name, spec in METHODS.items():
        terms = parse_method(name, spec)
        kinds = KINDS[family] if name == "amad" else ()
        plan = plan_capture(student, teacher, kinds, "uniform")
        runs[name] = (terms, replace(plan, check_rows=False))  # as the loop runs every step after its first

    def one(name: str) -> float:
        terms, plan = runs[name]
        start = time.perf_counter()
        result = distill_step(student, teacher, batch, terms, plan)
        result.total.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - start

    for name in runs:  # warm-up
        one(name)
    times = {name: [] for name in runs}
    ratios = []
    for _ in range(steps):
        pair = {name: one(name) for name in runs}
        for name, value in pair.items():
            times[name].append(value)
        ratios.append(pair["amad"] / pair["logit"])
    ratio = statistics.median(ratios)
    print(f"{family}: batch {batch_size}, {steps} interleaved steps, {torch.get_num_threads()} threads")
    for name in runs:
        print(f"  {name:6s} step  {1000 * statistics.median(times[name]):8.1f} ms (median)")
    verdict = "PASS" if ratio <= 1.10 else "MISS"
    print(f"  amad / logit step time (paired median) = {ratio:.3f}  target <= 1.10: {verdict}")


def timed_repro(preset: str, target_s: float) -> Path:
    repo = make_repo(Path(tempfile.mkdtemp(prefix=f"amad-{preset}-")) / "amad", preset)
    start = time.perf_counter()
    run(["dvc", "repro"], repo, pipeline_env(), timeout=3600)
    elapsed = time.perf_counter() - start
    print(
        f"{preset}: dvc repro from scratch {elapsed:7.1f} s  target <= {target_s:.0f} s: "
        f"{'PASS' if elapsed <= target_s else 'MISS'}"
    )
    return repo


def timed_noop(repo: Path) -> None:
    start = time.perf_counter()
    out = run(["dvc", "repro"], repo, pipeline_env()).stdout
    elapsed = time.perf_counter() - start
    ran = "Running stage" in out
    print(
        f"dvc repro with nothing changed {elapsed:7.2f} s  (stages run: {ran})  target <= 10 s: "
        f"{'PASS' if elapsed <= 10 and not ran else 'MISS'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mini_batch = yaml.safe_load((ROOT / "configs" / "presets" / "mini.yaml").read_text())["distill"]["train"]
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=mini_batch["batch_size"], help="default: the mini preset's")
    parser.add_argument("--system-malloc", action="store_true", help="leave glibc's allocator at its defaults")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--skip-repro", action="store_true")
    parser.add_argument("--mini", action="store_true", help="also time the full mini suite (about 30 min)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.system_malloc and "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # glibc reads these at start-up
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **KEEP_FREED})
    kept = "MALLOC_MMAP_THRESHOLD_" in os.environ
    print(f"allocator: {'glibc keeps freed memory, as the mini launcher does' if kept else 'system default'}")
    for family in ("vlt5", "blip"):
        step_cost(family, args.batch, args.steps)
    if args.skip_repro:
        return
    if not (SHARED_MULTI30K / "task1" / "raw").is_dir():
        print(f"skipped the dvc repro timings: {SHARED_MULTI30K} is missing")
        return
    timed_noop(timed_repro("smoke", 180))
    if args.mini:
        timed_noop(timed_repro("mini", 1800))


if __name__ == "__main__":
    main()
