"""How to spend 2 CPU cores on tiny students: one process with 2 threads, or 2 processes with 1 thread each.

Each worker process builds the mini teacher and student of a family, then times ``--steps`` full AMAD distillation
steps (teacher forward, student forward/backward, AdamW) at the mini batch size. The benchmark runs one worker with
``--threads`` threads alone, then ``--threads`` workers with 1 thread each side by side, and prints the throughput
ratio (training steps per second, all workers together). A ratio above 1 means running seeds in parallel processes
beats one process's intra-op threads at this model size.

    python benchmarks/threads.py [--steps 60] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP_FREED = {"MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_MMAP_THRESHOLD_": "1073741824"}


def worker(family: str, threads: int, steps: int, batch_size: int) -> None:
    import torch

    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from pipeline import KINDS, METHODS, _Visual  # the same step the AMAD/logit benchmark times

    from amad.models import build_model
    from amad.models.sizes import resolve_size
    from amad.testing import make_tokenizer
    from amad.training.step import distill_step, plan_capture
    from amad.training.terms import parse_method
    from amad.types import Example

    tok = make_tokenizer()
    torch.manual_seed(0)
    teacher = build_model(family, "caption", resolve_size(f"{family}-tiny-teacher"), tok).eval().requires_grad_(False)
    size = resolve_size(f"{family}-tiny-student")
    student = build_model(family, "caption", size, tok)
    visual = _Visual(family, size)
    examples = [Example(str(i), str(i), "", "a red circle left of a blue square", ["x"]) for i in range(batch_size)]
    batch = student.collate(examples, visual, train=True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    terms = parse_method("amad", METHODS["amad"])
    plan = plan_capture(student, teacher, KINDS[family], "uniform")

    def step() -> None:
        result = distill_step(student, teacher, batch, terms, plan)
        result.total.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(json.dumps({"steps_per_s": steps / (time.perf_counter() - start)}))


def _launch(family: str, threads: int, steps: int, batch: int) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--worker", family, str(threads), str(steps), str(batch)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=os.environ | KEEP_FREED)


def _rate(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"worker failed with exit code {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])["steps_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        family, threads, steps, batch = args.worker
        worker(family, int(threads), int(steps), int(batch))
        return
    for family in ("vlt5", "blip"):
        shared = _rate(_launch(family, args.threads, args.steps, args.batch))
        procs = [_launch(family, 1, args.steps, args.batch) for _ in range(args.threads)]
        split = [_rate(p) for p in procs]
        total = sum(split)
        print(
            f"{family}: 1 process x {args.threads} threads {shared:6.2f} steps/s; {args.threads} processes x 1 "
            f"thread {total:6.2f} steps/s ({' + '.join(f'{r:.2f}' for r in split)}); ratio {total / shared:.2f}"
        )


if __name__ == "__main__":
    main()
