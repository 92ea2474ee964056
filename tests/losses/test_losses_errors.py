"""Every user-facing error of amad.losses, and the registry."""

from __future__ import annotations

import pytest
import torch

import amad.losses as L
from amad.errors import ConfigError, UnknownNameError


def maps(b: int, h: int, q: int, k: int) -> torch.Tensor:
    return torch.full((b, h, q, k), 1.0 / k)


S, T = maps(2, 8, 3, 4), maps(2, 12, 3, 4)
ATTENTION = [L.amad_kl, L.amad_l2, L.amad_token_kl, L.one_to_one_kl, L.one_to_one_mse, L.head_mean_kl, L.alignment]


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*args, **kwargs)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("loss", [L.one_to_one_kl, L.one_to_one_mse])
def test_one_to_one_head_count_mismatch_names_counts_and_option(loss) -> None:
    message = error_of(loss, S, T)
    assert "12" in message and "8" in message and "teacher_heads" in message and loss.__name__ in message
    message = error_of(loss, S, T, teacher_heads=[0, 1, 2])
    assert "3 indices" in message and "8 heads" in message
    message = error_of(loss, S, T, teacher_heads=[0, 1, 2, 3, 4, 5, 6, 12])
    assert "index 12" in message and "0..11" in message
    assert torch.isfinite(loss(S, T, teacher_heads=[11, 0, 1, 2, 3, 4, 5, 6]))


def test_head_mean_kl_needs_divisible_head_counts() -> None:
    message = error_of(L.head_mean_kl, S, T)
    assert "12" in message and "8" in message and "amad_kl" in message
    assert torch.isfinite(L.head_mean_kl(maps(2, 6, 3, 4), T))


@pytest.mark.parametrize("loss", ATTENTION, ids=lambda f: f.__name__)
def test_shape_and_mask_errors(loss) -> None:
    name = loss.__name__
    assert "4-D" in error_of(loss, S[0], T)
    assert "differ in B, Q or K" in error_of(loss, S, maps(3, 12, 3, 4))
    assert "differ in B, Q or K" in error_of(loss, S, maps(2, 12, 3, 5))
    message = error_of(loss, S, T, query_mask=torch.ones(2, 4, dtype=torch.bool))
    assert name in message and "query_mask" in message and "(2, 3)" in message and "(2, 4)" in message
    message = error_of(loss, S, T, key_mask=torch.ones(2, 3, dtype=torch.bool))
    assert "key_mask" in message and "(2, 4)" in message
    assert "mask.bool()" in error_of(loss, S, T, key_mask=torch.ones(2, 4, dtype=torch.long))
    assert "floating-point" in error_of(loss, S.long(), T)


@pytest.mark.parametrize("loss", [L.amad_kl, L.amad_l2, L.amad_token_kl, L.alignment], ids=lambda f: f.__name__)
def test_tau_must_be_positive(loss) -> None:
    assert "tau must be > 0" in error_of(loss, S, T, tau=0.0)
    assert "tau must be > 0" in error_of(L.AmadProjected, 12, tau=-1.0)


def test_amad_projected_size_errors() -> None:
    message = error_of(L.AmadProjected(10), S, T)
    assert "n=10" in message and "Q=3" in message and "K=4" in message and "n=Q*K" in message
    assert "n must be" in error_of(L.AmadProjected, 0)


def test_logit_kd_errors() -> None:
    z = torch.zeros(2, 3, 5)
    assert "same shape" in error_of(L.logit_kd, z, torch.zeros(2, 3, 6))
    assert "(B, T, V)" in error_of(L.logit_kd, z[0], z[0])
    assert "temperature must be > 0" in error_of(L.logit_kd, z, z, temperature=0)
    assert "mask must have shape (B, T) = (2, 3)" in error_of(L.logit_kd, z, z, mask=torch.ones(2, 4, dtype=torch.bool))
    assert "floating-point" in error_of(L.logit_kd, z.long(), z.long())


def test_registry_names_versions_and_contracts() -> None:
    expected = {
        "amad_kl": (L.amad_kl, "attention", "teacher"),
        "amad_l2": (L.amad_l2, "attention", "teacher"),
        "amad_token_kl": (L.amad_token_kl, "attention", "teacher"),
        "one_to_one_kl": (L.one_to_one_kl, "attention", "student"),
        "one_to_one_mse": (L.one_to_one_mse, "attention", "student"),
        "head_mean_kl": (L.head_mean_kl, "attention", "student"),
        "logit_kd": (L.logit_kd, "logit", None),
    }
    assert set(expected) <= set(L.LOSSES.names())
    for name, (obj, kind, heads) in expected.items():
        assert L.get(name) is obj
        assert isinstance(obj.version, int) and obj.version >= 1
        assert (obj.kind, obj.heads) == (kind, heads)
        assert "student" not in obj.options and "query_mask" not in obj.options
    assert L.amad_kl.options == ("tau", "detach_alignment", "reduction")
    assert L.one_to_one_kl.options == ("teacher_heads", "reduction")
    # Helpers are exported but are not losses a method can name.
    for helper in ("alignment", "amad_projected"):
        assert helper not in L.LOSSES
    with pytest.raises(UnknownNameError) as info:
        L.get("amad_kll")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "did you mean 'amad_kl'" in message and "choose one of:" in message and "\n" not in message
    with pytest.raises(UnknownNameError, match="did you mean 'one_to_one_mse'"):
        L.get("one_to_one_ms")
