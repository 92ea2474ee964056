"""The fused C kernel of the AMAD mixture-KL: the same values and gradients as the PyTorch path, and its fallbacks."""

from __future__ import annotations

import logging
import os
import platform
import shutil

import pytest
import torch
from loss_reference import amad_kl_one, amad_token_kl_one

import amad.losses as L
from amad.losses import cpu_kernel
from amad.losses.fused import torch_mixture_kl

HAS_COMPILER = shutil.which(os.environ.get("CC", "cc")) is not None
needs_kernel = pytest.mark.skipif(not HAS_COMPILER, reason="no C compiler: the losses use the PyTorch path")


def probs(g: int, h: int, n: int, seed: int, sharp: float = 3.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.softmax(sharp * torch.randn(g, h, n, generator=gen), dim=-1)  # (G, H, n) float32


def groups(g: int, ht: int, hs: int, n: int, seed: int, masked: bool):
    """Teacher (zero at invalid entries), student (NaN at invalid entries) and the (G, 1, n) mask or None."""
    t, s = probs(g, ht, n, seed), probs(g, hs, n, seed + 1)
    if not masked:
        return t, s, None
    valid = torch.rand(g, 1, n, generator=torch.Generator().manual_seed(seed + 2)) > 0.3
    valid[0] = False  # a group with nothing valid
    return torch.where(valid, t, 0.0), torch.where(valid, s, float("nan")), valid


@needs_kernel
def test_the_kernel_builds_where_a_compiler_exists() -> None:
    assert cpu_kernel.status() == "compiled"
    assert cpu_kernel.usable(torch.ones(1, 1, 1), torch.ones(1, 1, 1))
    assert not cpu_kernel.usable(torch.ones(1, 1, 1, dtype=torch.float64), torch.ones(1, 1, 1, dtype=torch.float64))


@needs_kernel
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize(
    ("g", "ht", "hs", "n", "masked"),
    [(6, 8, 4, 4225, False), (7, 8, 4, 121, True), (5, 3, 6, 33, True), (4, 1, 1, 1, False), (3, 12, 12, 70, True)],
)
def test_kernel_matches_the_torch_path(g: int, ht: int, hs: int, n: int, masked: bool, detach: bool) -> None:
    t, s, valid = groups(g, ht, hs, n, seed=g * 100 + n, masked=masked)
    kl, grad = cpu_kernel.mixture_kl(t, s, valid, 0.7, detach, True)
    ref_kl, ref_grad = torch_mixture_kl(t.double(), s.double(), valid, 0.7, detach, True)
    torch.testing.assert_close(kl.double(), ref_kl, rtol=2e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-4 * ref_grad.abs().max().item())
    if valid is not None:
        assert torch.all(grad.masked_select(~valid.expand_as(grad)) == 0)  # exactly zero, although s is NaN there
    no_grad_kl, none = cpu_kernel.mixture_kl(t, s, valid, 0.7, detach, False)
    assert none is None
    torch.testing.assert_close(no_grad_kl, kl, rtol=0, atol=0)


@needs_kernel
def test_kernel_value_stays_accurate_on_paper_sized_rows() -> None:
    """577 x 577 entries per row (BLIP-base ViT): the KL's terms cancel, so float lanes lost 1e-3 of the value."""
    t, s, _ = groups(2, 3, 2, 577 * 577, seed=9, masked=False)
    kl, grad = cpu_kernel.mixture_kl(t, s, None, 1.0, False, True)
    ref_kl, ref_grad = torch_mixture_kl(t.double(), s.double(), None, 1.0, False, True)
    torch.testing.assert_close(kl.double(), ref_kl, rtol=1e-6, atol=0)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-4 * ref_grad.abs().max().item())


@needs_kernel
def test_kernel_handles_zero_rows_and_extreme_ratios() -> None:
    t = torch.zeros(2, 2, 5)
    t[:, 0, 0] = 1.0  # teacher mass where the student has none: R = 1 / 1e-12
    t[:, 1] = 0.2
    s = torch.zeros(2, 3, 5)
    s[:, 0, 1:] = 0.25
    s[1, 2] = 0.2  # s[0, 1:] are all-zero rows (no norm, no gradient through it)
    kl, grad = cpu_kernel.mixture_kl(t, s, None, 1.0, False, True)
    ref_kl, ref_grad = torch_mixture_kl(t.double(), s.double(), None, 1.0, False, True)
    assert torch.isfinite(kl).all() and torch.isfinite(grad).all()
    torch.testing.assert_close(kl.double(), ref_kl, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad.double(), ref_grad, rtol=1e-4, atol=1e-4 * ref_grad.abs().max().item())


@needs_kernel
def test_float32_amad_losses_match_the_loop_references() -> None:
    """Golden values through the public losses in float32, which take the kernel."""
    gen = torch.Generator().manual_seed(5)
    t = torch.softmax(torch.randn(2, 4, 3, 5, generator=gen, dtype=torch.float64), -1)
    s = torch.softmax(torch.randn(2, 2, 3, 5, generator=gen, dtype=torch.float64), -1)
    for loss, ref in ((L.amad_kl, amad_kl_one), (L.amad_token_kl, amad_token_kl_one)):
        want = sum(ref(t[b], s[b], 0.5) for b in range(2)) / 2
        got = loss(s.float(), t.float(), tau=0.5, reduction="sum")  # the references sum over heads
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(want, rel=1e-5)


@needs_kernel
@pytest.mark.parametrize("loss", [L.amad_kl, L.amad_token_kl])
def test_float32_gradient_matches_float64(loss) -> None:
    gen = torch.Generator().manual_seed(8)
    t = torch.softmax(torch.randn(3, 6, 5, 7, generator=gen), -1)
    s = torch.softmax(torch.randn(3, 3, 5, 7, generator=gen), -1)
    qm = torch.tensor([[True] * 5, [True, True, True, False, False], [True] * 4 + [False]])
    km = torch.tensor([[True] * 7, [True] * 5 + [False] * 2, [False] + [True] * 6])
    grads = []
    for dtype in (torch.float32, torch.float64):
        x = s.to(dtype).requires_grad_(True)
        (g,) = torch.autograd.grad(loss(x, t.to(dtype), tau=0.4, query_mask=qm, key_mask=km), x)
        grads.append(g.double())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


def fresh_state(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cpu_kernel, "_state", {})


def test_disabled_kernel_uses_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    t, s, _ = groups(3, 4, 2, 20, seed=1, masked=False)
    value = L.amad_kl(s.view(3, 2, 4, 5), t.view(3, 4, 4, 5))
    fresh_state(monkeypatch, AMAD_CPU_KERNEL="0")
    assert cpu_kernel.status() == "disabled"
    assert not cpu_kernel.usable(t, s)
    torch.testing.assert_close(L.amad_kl(s.view(3, 2, 4, 5), t.view(3, 4, 4, 5)), value, rtol=1e-5, atol=1e-6)


def test_without_a_compiler_one_log_line_and_the_torch_path(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    fresh_state(monkeypatch, CC=str(tmp_path / "no-such-cc"), AMAD_KERNEL_CACHE=str(tmp_path / "cache"))
    t, s, _ = groups(2, 4, 2, 12, seed=3, masked=False)
    with caplog.at_level(logging.WARNING, logger="amad.losses.cpu_kernel"):
        assert cpu_kernel.status().startswith("unavailable: no C compiler")
        assert not caplog.records  # run_info asks every stage; only a loss that falls back says so
        first = L.amad_kl(s.view(2, 2, 3, 4), t.view(2, 4, 3, 4), reduction="sum")
        L.amad_kl(s.view(2, 2, 3, 4), t.view(2, 4, 3, 4))
    assert cpu_kernel.status().startswith("unavailable: no C compiler")
    assert [r.getMessage() for r in caplog.records] == [
        f"fused CPU kernel {cpu_kernel.status()}; the AMAD losses use the PyTorch path (same values)"
    ]
    ref, _ = torch_mixture_kl(t, s, None, 1.0, False, False)
    torch.testing.assert_close(first, (ref / 3).mean())
    with pytest.raises(RuntimeError, match="not available"):
        cpu_kernel.mixture_kl(t, s, None, 1.0, False, False)


@needs_kernel
def test_a_failing_build_leaves_no_file_behind(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C\n")
    fresh_state(monkeypatch, AMAD_KERNEL_CACHE=str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_kernel, "SOURCE", broken)
    assert cpu_kernel.status().startswith("unavailable: ")
    assert list((tmp_path / "cache").iterdir()) == []


@needs_kernel
def test_the_build_is_cached_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    fresh_state(monkeypatch, AMAD_KERNEL_CACHE=str(tmp_path / "cache"))
    assert cpu_kernel.status() == "compiled"
    (built,) = (tmp_path / "cache").iterdir()
    stamp = built.stat().st_mtime_ns
    fresh_state(monkeypatch)
    assert cpu_kernel.status() == "compiled"
    assert [p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()] == [stamp]


@needs_kernel
@pytest.mark.skipif(platform.machine() != "x86_64", reason="haswell is an x86-64 target")
def test_amad_cpu_march_builds_for_another_target_with_the_same_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    t, s, mask = groups(3, 4, 2, 30, seed=8, masked=True)
    ref, _ = torch_mixture_kl(t, s, mask, 0.5, False, False)
    fresh_state(monkeypatch, AMAD_KERNEL_CACHE=str(tmp_path / "cache"), AMAD_CPU_MARCH="haswell")
    assert cpu_kernel.status() == "compiled"
    kl, _ = cpu_kernel.mixture_kl(t, s, mask, 0.5, False, False)
    torch.testing.assert_close(kl, ref)
    fresh_state(monkeypatch, AMAD_CPU_MARCH="native")
    assert cpu_kernel.status() == "compiled"
    assert len(list((tmp_path / "cache").iterdir())) == 2  # one build per target


@needs_kernel
def test_an_unknown_amad_cpu_march_falls_back_to_a_build_without_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    fresh_state(monkeypatch, AMAD_KERNEL_CACHE=str(tmp_path / "cache"), AMAD_CPU_MARCH="no-such-cpu")
    assert cpu_kernel.status() == "compiled"
    assert len(list((tmp_path / "cache").iterdir())) == 1


def test_run_info_records_the_kernel_status(monkeypatch: pytest.MonkeyPatch) -> None:
    from amad_suite.training.run_info import collect

    fresh_state(monkeypatch, AMAD_CPU_KERNEL="0")
    assert collect({}, 0)["cpu_kernel"] == "disabled"


def test_run_info_records_the_cpu_and_what_overrides_its_instruction_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from amad_suite.training.run_info import collect

    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    monkeypatch.setenv("AMAD_CPU_MARCH", "haswell")
    cpu = collect({}, 0)["cpu"]
    assert cpu["isa_overrides"] == {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "AMAD_CPU_MARCH": "haswell"}
    assert cpu["torch_capability"] == torch.backends.cpu.get_cpu_capability() and cpu["model"]


def test_disabled_block_switches_to_the_torch_path() -> None:
    t, s, _ = groups(2, 4, 2, 12, seed=4, masked=False)
    with cpu_kernel.disabled():
        assert not cpu_kernel.usable(t, s)
    assert cpu_kernel.usable(t, s) == (cpu_kernel.status() == "compiled")


@needs_kernel
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_student_values_reach_the_loss_as_in_the_torch_path(bad: float) -> None:
    t, s, _ = groups(3, 4, 2, 10, seed=6, masked=False)
    s[1, 0, 3] = bad  # a diverged student
    kl, _ = cpu_kernel.mixture_kl(t, s, None, 1.0, False, True)
    ref, _ = torch_mixture_kl(t, s, None, 1.0, False, True)
    assert torch.equal(torch.isfinite(kl), torch.isfinite(ref)) and not torch.isfinite(kl[1])
    torch.testing.assert_close(kl[[0, 2]], ref[[0, 2]])
