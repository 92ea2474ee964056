"""Build, cache and call the fused CPU kernel of the AMAD mixture-KL (``csrc/mixture_kl.c``).

The first call compiles the C file with the system C compiler (``$CC``, else ``cc``) into a per-user cache:
``$AMAD_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/amad/kernels`` (default ``~/.cache/amad/kernels``). The file name
carries a hash of the source, the flags, the compiler and the CPU's feature flags, because the build uses
``-march=native``. ``AMAD_CPU_MARCH`` names another target (``haswell`` builds for AVX2 only: with torch's
``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS`` and ``ONEDNN_MAX_CPU_ISA`` it lets one machine round like an
older CPU; README "What a mini run can and cannot tell you"). Compiling takes under a second. It runs on torch's
own OpenMP runtime and threads.

Without a working compiler the losses stay on the PyTorch path, which computes the same values (the tests compare
the two); one log line says so when a loss first falls back. ``AMAD_CPU_KERNEL=0`` picks the PyTorch path on
purpose. The kernel serves float32 CPU tensors; float64 and GPU tensors always take the PyTorch path.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "mixture_kl.c"


def flag_sets() -> tuple[tuple[str, ...], ...]:
    """Compiler flags, tried in order; the later ones serve compilers without OpenMP (single thread) or without
    -march. -fno-trapping-math lets gcc vectorise the selects of the kernel's logarithm (9x slower without it on
    gcc 12)."""
    march = f"-march={os.environ.get('AMAD_CPU_MARCH') or 'native'}"
    return (
        ("-O3", march, "-fno-trapping-math", "-fopenmp"),
        ("-O3", "-fno-trapping-math", "-fopenmp"),
        ("-O3", march, "-fno-trapping-math", "-fopenmp-simd"),
        ("-O3",),
    )


_state: dict[str, object] = {}
_off = {"depth": 0}


def status() -> str:
    """``compiled``, ``disabled`` (AMAD_CPU_KERNEL=0) or ``unavailable: <why>``; run_info.json records it."""
    _load()
    return str(_state["status"])


def usable(t: Tensor, s: Tensor) -> bool:
    """Whether the kernel serves these maps: float32 CPU tensors, the kernel built, and not inside ``disabled()``."""
    if _off["depth"] or t.device.type != "cpu" or t.dtype != torch.float32 or s.dtype != torch.float32:
        return False
    if t.numel() == 0 or s.numel() == 0:
        return False  # nothing to fuse; the PyTorch path returns the empty result
    if _load() is None:
        if _state["status"] != "disabled" and not _state.get("warned"):
            _state["warned"] = True  # said once, when a loss first falls back (status() alone stays quiet)
            log.warning("fused CPU kernel %s; the AMAD losses use the PyTorch path (same values)", _state["status"])
        return False
    return True


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Run the block on the PyTorch path (benchmarks compare the two; also handy when debugging)."""
    _off["depth"] += 1
    try:
        yield
    finally:
        _off["depth"] -= 1


def scratch_bytes(ht: int, hs: int, n: int, masked: bool) -> int:
    """Memory the kernel allocates outside torch's allocator: per thread, the rows of one group."""
    return torch.get_num_threads() * 4 * (ht + (hs if masked else 0)) * n


def mixture_kl(
    t: Tensor, s: Tensor, valid: Tensor | None, tau: float, detach_alignment: bool, want_grad: bool
) -> tuple[Tensor, Tensor | None]:
    """Per-group KL (G,) and, when ``want_grad``, dKL_g/ds (G, Hs, n) for a unit upstream gradient.

    t: (G, Ht, n) contiguous, zero at invalid entries; s: (G, Hs, n) contiguous; valid: (G, 1, n) bool or None.
    """
    fn = _load()
    if fn is None:
        raise RuntimeError("the fused CPU kernel is not available; check cpu_kernel.usable() first")
    g, ht, n = t.shape
    hs = s.shape[1]
    kl = t.new_empty(g)  # (G,)
    grad = torch.empty_like(s) if want_grad else None  # (G, Hs, n)
    mask = None if valid is None else valid.contiguous().view(torch.uint8)  # (G, 1, n) bool -> bytes
    failed = fn(
        t.data_ptr(),
        s.data_ptr(),
        None if mask is None else mask.data_ptr(),
        g,
        ht,
        hs,
        n,
        float(tau),
        int(detach_alignment),
        kl.data_ptr(),
        None if grad is None else grad.data_ptr(),
        torch.get_num_threads(),
    )
    if failed:
        raise MemoryError(f"the fused CPU kernel could not allocate its scratch for {ht + hs} rows of {n} entries")
    return kl, grad


def _load():
    if "fn" not in _state:
        _state["fn"], _state["status"] = _build()
    return _state["fn"]


def _build():
    if os.environ.get("AMAD_CPU_KERNEL", "") in ("0", "false", "no"):
        return None, "disabled"
    compiler = os.environ.get("CC", "cc")
    try:
        version = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None, f"unavailable: no C compiler ({compiler!r}; set CC)"
    source = SOURCE.read_bytes()
    cache = _cache_dir()
    reasons = []
    for flags in flag_sets():
        key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(), version.encode(), _cpu_id()])).hexdigest()
        target = cache / f"mixture_kl-{key[:20]}.so"
        if not target.exists():
            reason = _compile(compiler, flags, target)
            if reason:
                reasons.append(reason)
                continue
        try:
            return _bind(ctypes.CDLL(str(target))), "compiled"
        except OSError as exc:
            reasons.append(f"cannot load {target.name}: {exc}")
    return None, f"unavailable: {compiler} could not build {SOURCE.name} ({reasons[0]})"


def _compile(compiler: str, flags: tuple[str, ...], target: Path) -> str:
    """Compile into ``target`` through a temporary file and a rename; return '' or why it failed."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".so")
        os.close(fd)
    except OSError as exc:
        return f"cache folder {target.parent}: {exc.strerror}"
    cmd = [compiler, *flags, "-shared", "-fPIC", "-o", tmp, str(SOURCE), "-lm"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            return (done.stderr.strip().splitlines() or ["failed"])[-1]
        os.replace(tmp, target)
        return ""
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _bind(lib: ctypes.CDLL):
    fn = lib.amad_mixture_kl_f32
    ptr, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    fn.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, ctypes.c_double, c_int, ptr, ptr, c_int]
    fn.restype = c_int
    return fn


def _cache_dir() -> Path:
    if os.environ.get("AMAD_KERNEL_CACHE"):
        return Path(os.environ["AMAD_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "amad" / "kernels"


def _cpu_id() -> bytes:
    """The CPU's feature flags (Linux), so a cache shared by different machines keeps one build per CPU kind."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.encode()
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()}".encode()
