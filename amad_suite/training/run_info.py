"""What every run records next to its outputs: git sha, params, seed, package versions."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from amad import atomic

PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "dvc",
    "dvclive",
    "numpy",
    "h5py",
    "sacrebleu",
    "pycocoevalcap",
    "pandas",
    "matplotlib",
    "amad",
)


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    sha = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


# Environment settings of the C allocator that a launcher may set (compute.launcher in the mini preset keeps freed
# memory: a CPU training step re-uses the same multi-MiB activations every step, and glibc's defaults return and
# re-fault them each time). Read by glibc at process start; recorded so a run's speed can be read in context.
ALLOCATOR_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD")


def allocator_settings() -> dict[str, str] | str:
    """The allocator variables of this process's environment, or ``"system"`` when none is set."""
    settings = {key: os.environ[key] for key in ALLOCATOR_ENV if os.environ.get(key)}
    return settings or "system"


# Settings that make this CPU's kernels round like another CPU's (README "What a mini run can and cannot tell you"):
# torch's own vector kernels, MKL's matrix products, oneDNN's, and the fused AMAD kernel's build target.
ISA_ENV = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "AMAD_CPU_MARCH")


def cpu_description() -> dict[str, Any]:
    """The CPU model, the vector instruction set torch's kernels use, and any variable that overrides it."""
    import torch

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), model)
    except OSError:
        pass
    overrides = {key: os.environ[key] for key in ISA_ENV if os.environ.get(key)}
    return {"model": model, "torch_capability": torch.backends.cpu.get_cpu_capability(), "isa_overrides": overrides}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect(params: dict[str, Any], seed: int | None, **extra: Any) -> dict[str, Any]:
    import torch

    from amad.losses import cpu_kernel

    return {
        "git": git_state(),
        "params": params,
        "seed": seed,
        "versions": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "cpu": cpu_description(),
        "torch_threads": torch.get_num_threads(),
        "allocator": allocator_settings(),
        "cpu_kernel": cpu_kernel.status(),  # the fused AMAD kernel for float32 CPU maps (amad/losses/cpu_kernel.py)
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **extra,
    }


write_json = atomic.write_json  # the run records' writer (sorted keys, indented, atomic)
