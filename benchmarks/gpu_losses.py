"""The attention losses at paper-scale map sizes on a CUDA device: time, peak memory and float32 accuracy.

Shapes: BLIP-base's ViT (577 x 577 maps, 12 teacher heads -> 6 student heads) and its text cross-attention
(35 queries x 577 image keys), batch --batch. For each loss: the median forward+backward time over --repeats runs
after warm-up (synchronised), the peak GPU memory above the inputs during one forward+backward, and the ratio of
both to one_to_one_kl. Accuracy: value and student gradient of float32 on the device against float64 on the CPU, on
the first two samples, plus the same for bfloat16 input maps (what autocast captures), which the losses promote to
float32.

    python benchmarks/gpu_losses.py [--batch 16] [--repeats 20] [--device cuda]

``--device cpu`` with a small ``--batch`` is a dry run of the same code.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import amad.losses as L

HT, HS = 12, 6
SHAPES = {"vision 577x577": (577, 577), "text cross 35x577": (35, 577)}
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "one_to_one_kl": lambda s, t: L.one_to_one_kl(s, t, teacher_heads=range(HS)),
    "amad_kl": lambda s, t: L.amad_kl(s, t),
    "amad_l2": lambda s, t: L.amad_l2(s, t),
    "amad_token_kl": lambda s, t: L.amad_token_kl(s, t),
}


def maps(b: int, h: int, q: int, k: int, device: str, seed: int) -> torch.Tensor:
    g = torch.Generator(device=device).manual_seed(seed)
    return torch.softmax(3 * torch.randn(b, h, q, k, generator=g, device=device), dim=-1)  # (B, H, Q, K)


def timed(fn: Callable[[], None], repeats: int, sync: Callable[[], None]) -> float:
    for _ in range(3):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_above(fn: Callable[[], None], device: str) -> float:
    if device != "cuda":
        return float("nan")
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def accuracy(loss: Callable[..., torch.Tensor], s: torch.Tensor, t: torch.Tensor) -> tuple[float, float]:
    """Relative error of value and gradient against float64 on the CPU."""
    x = s.detach().requires_grad_(True)
    value = loss(x, t)
    (grad,) = torch.autograd.grad(value, x)
    x64 = s.detach().double().cpu().requires_grad_(True)
    ref = loss(x64, t.double().cpu())
    (ref_grad,) = torch.autograd.grad(ref, x64)
    err_v = abs(value.item() - ref.item()) / max(abs(ref.item()), 1e-12)
    err_g = ((grad.double().cpu() - ref_grad).norm() / ref_grad.norm().clamp_min(1e-30)).item()
    return err_v, err_g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return
    dev = args.device
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    print(f"attention losses on {name}, torch {torch.__version__}, batch {args.batch}, {HT} -> {HS} heads")
    for shape, (q, k) in SHAPES.items():
        t = maps(args.batch, HT, q, k, dev, 0)
        s = maps(args.batch, HS, q, k, dev, 1).requires_grad_(True)
        print(f"\n## {shape}")
        print(
            f"| {'loss':<14} | fwd+bwd ms |     x | peak MiB |     x | f32 value err | f32 grad err | bf16 grad err |"
        )
        print(f"|{'-' * 16}|-----------:|------:|---------:|------:|--------------:|-------------:|--------------:|")
        rows = {}
        for loss_name, loss in LOSSES.items():

            def run(loss=loss, s=s, t=t) -> None:
                loss(s, t).backward()
                s.grad = None

            ms = 1000 * timed(run, args.repeats, sync)
            peak = peak_above(run, dev)
            err_v, err_g = accuracy(loss, s[:2], t[:2])
            _, err_bf16 = accuracy(loss, s[:2].bfloat16(), t[:2].bfloat16())
            rows[loss_name] = (ms, peak, err_v, err_g, err_bf16)
        base_ms, base_peak = rows["one_to_one_kl"][:2]
        for loss_name, (ms, peak, err_v, err_g, err_bf16) in rows.items():
            print(
                f"| {loss_name:<14} | {ms:10.2f} | {ms / base_ms:5.2f} | {peak:8.0f} | {peak / base_peak:5.2f} | "
                f"{err_v:13.1e} | {err_g:12.1e} | {err_bf16:13.1e} |"
            )
        print("(bf16 grad err: the loss on bfloat16-rounded maps against float64 on the same rounded maps)")


if __name__ == "__main__":
    main()
