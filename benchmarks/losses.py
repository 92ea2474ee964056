"""Forward+backward time and peak memory of the attention losses, side by side in one CPU process.

Settings (issue 2, section 4): B=32, Ht=12, Hs=8, Q=K=64, float32, no masks; one_to_one_kl uses teacher heads 0..7.
head_mean_kl needs Ht divisible by Hs, so it runs with Hs=6 (12 = 6 groups of 2) and is marked so. The extra row
"amad_kl (detached a)" is amad_kl with detach_alignment=True (no gradient through the alignment weights).

Time: median over repeats after warm-up, wall clock and CPU time of the process; the losses run round-robin so load
from other processes hits all alike. One torch thread by default: on a shared CPU, multi-threaded ops wait for their
slowest thread and the ratios swing; pass --threads 0 for torch's default.
Peak memory: the CPU allocator's peak bytes in use during one forward+backward above the level before it, read from
the torch profiler's memory events (profile_memory=True, "Total Allocated"); the inputs themselves are not counted,
the student's gradient is.

Allocator: glibc returns freed blocks of a few MiB to the OS and faults them back in on the next allocation, and how
often depends on what ran before (one_to_one_kl swung between 3 and 6 ms here). The script therefore asks glibc
(mallopt) to keep freed memory, as a caching allocator does and as every stage script does (amad_suite/allocator.py),
so the table measures the losses; --system-malloc turns this off.

The AMAD KL losses run float32 CPU maps through the fused C kernel (amad/losses/cpu_kernel.py); the rows marked
"(PyTorch path)" run the same losses with the kernel switched off, for comparison. The kernel's per-thread scratch
lives outside torch's allocator, so the profiler does not see it; the script prints its size.

Usage: python benchmarks/losses.py [--repeats 25] [--threads 1] [--system-malloc]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

import amad.losses as L
from amad.losses import cpu_kernel
from amad_suite.allocator import keep_freed_memory

B, HT, HS, Q, K = 32, 12, 8, 64, 64
TARGETS = {"time": 2.0, "memory": 2.0}  # amad_kl / one_to_one_kl


def make_inputs(hs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    teacher = torch.softmax(2 * torch.randn(B, HT, Q, K, generator=g), dim=-1)  # (B, Ht, Q, K)
    student = torch.softmax(torch.randn(B, hs, Q, K, generator=g), dim=-1).requires_grad_(True)  # (B, Hs, Q, K)
    return student, teacher


def torch_path(loss: Callable[[], torch.Tensor]) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        with cpu_kernel.disabled():
            return loss()

    return run


def step(loss: Callable[[], torch.Tensor], student: torch.Tensor) -> None:
    """One forward+backward; the student's gradient is dropped afterwards."""
    loss().backward()
    student.grad = None


def peak_bytes(run: Callable[[], None]) -> int:
    """Peak CPU bytes allocated by ``run`` above the level at its start (torch profiler memory events)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path) as f:
            events = json.load(f)["traceEvents"]
    mem = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: e["ts"])
    if not mem:
        return 0
    start = mem[0]["args"]["Total Allocated"] - mem[0]["args"]["Bytes"]
    return max(e["args"]["Total Allocated"] for e in mem) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=25, help="timed forward+backward runs per loss")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--system-malloc", action="store_true", help="leave glibc's trimming of freed memory on")
    args = parser.parse_args()
    kept = False if args.system_malloc else keep_freed_memory()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    student, teacher = make_inputs(HS, 0)
    student6, _ = make_inputs(6, 1)
    cases: dict[str, tuple[Callable[[], torch.Tensor], torch.Tensor]] = {
        "one_to_one_kl": (lambda: L.one_to_one_kl(student, teacher, teacher_heads=range(HS)), student),
        "amad_kl": (lambda: L.amad_kl(student, teacher), student),
        "amad_kl (detached a)": (lambda: L.amad_kl(student, teacher, detach_alignment=True), student),
        "amad_l2": (lambda: L.amad_l2(student, teacher), student),
        "amad_token_kl": (lambda: L.amad_token_kl(student, teacher), student),
        "head_mean_kl (Hs=6)": (lambda: L.head_mean_kl(student6, teacher), student6),
        "amad_kl (PyTorch path)": (torch_path(lambda: L.amad_kl(student, teacher)), student),
        "amad_token_kl (PyTorch)": (torch_path(lambda: L.amad_token_kl(student, teacher)), student),
    }
    for loss, s in cases.values():  # warm-up
        for _ in range(3):
            step(loss, s)
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, (loss, s) in cases.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            step(loss, s)
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    peaks = {name: peak_bytes(lambda loss=loss, s=s: step(loss, s)) for name, (loss, s) in cases.items()}

    med = {name: statistics.median(values) for name, values in wall.items()}
    med_cpu = {name: statistics.median(values) for name, values in cpu.items()}
    base, base_cpu, base_m = med["one_to_one_kl"], med_cpu["one_to_one_kl"], peaks["one_to_one_kl"]
    threads = torch.get_num_threads()
    print(f"losses: B={B} Ht={HT} Hs={HS} Q={Q} K={K} float32, CPU, {threads} threads, torch {torch.__version__}")
    print(f"time = median of {args.repeats} forward+backward runs after 3 warm-ups (round-robin over losses)")
    print("peak = CPU allocator peak above the start level during one forward+backward (torch profiler memory events)")
    print(f"allocator: {'glibc told to keep freed memory (mallopt)' if kept else 'system default'}")
    scratch = cpu_kernel.scratch_bytes(HT, HS, Q * K, masked=False) / 2**10
    print(f"fused CPU kernel: {cpu_kernel.status()}; its scratch outside torch's allocator: {scratch:.0f} KiB")
    print("x = ratio to one_to_one_kl (teacher heads 0..7)")
    print()
    print(f"| {'loss':<23} | wall ms |     x | cpu ms |     x | peak MiB |     x |")
    print(f"|{'-' * 25}|--------:|------:|-------:|------:|---------:|------:|")
    for name in cases:
        print(
            f"| {name:<23} | {med[name] * 1e3:7.2f} | {med[name] / base:5.2f} | {med_cpu[name] * 1e3:6.2f} | "
            f"{med_cpu[name] / base_cpu:5.2f} | {peaks[name] / 2**20:8.2f} | {peaks[name] / base_m:5.2f} |"
        )
    print()
    results = (
        ("time (wall)", med["amad_kl"] / base),
        ("time (cpu)", med_cpu["amad_kl"] / base_cpu),
        ("peak memory", peaks["amad_kl"] / base_m),
    )
    for what, ratio in results:
        limit = TARGETS["memory" if what == "peak memory" else "time"]
        verdict = "PASS" if ratio <= limit else "MISS"
        print(f"target amad_kl {what} <= {limit:.1f}x one_to_one_kl: {ratio:.2f}x {verdict}")


if __name__ == "__main__":
    main()
