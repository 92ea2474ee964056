"""build_model / load_model / check_compatible across families."""

from __future__ import annotations

import pytest
import torch

from amad.errors import CheckpointError, ConfigError, UnknownNameError
from amad.models import FAMILIES, build_model, check_compatible, load_model
from amad.models.base import DistillModel


def test_families_are_registered():
    assert FAMILIES.names() == ["blip", "vlt5"]
    assert all(issubclass(FAMILIES.get(name), DistillModel) for name in FAMILIES.names())
    with pytest.raises(UnknownNameError, match="unknown model family 'blp': did you mean 'blip'"):
        build_model("blp", "vqa", "blip-smoke-student", None)


def test_seed_makes_random_init_reproducible(tokenizer):
    a = build_model("blip", "caption", "blip-smoke-student", tokenizer, seed=7).model.state_dict()
    b = build_model("blip", "caption", "blip-smoke-student", tokenizer, seed=7).model.state_dict()
    c = build_model("blip", "caption", "blip-smoke-student", tokenizer, seed=8).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_load_model_dispatches_on_the_saved_family(tmp_path, tokenizer):
    model = build_model("blip", "vqa", "blip-smoke-student", tokenizer, seed=0)
    model.save_pretrained(str(tmp_path))
    assert type(load_model(tmp_path)) is type(model)
    (tmp_path / "amad_model.json").write_text('{"family": "blib"}')
    with pytest.raises(CheckpointError, match=r"names unknown family 'blib'.*did you mean 'blip'"):
        load_model(tmp_path)


def test_check_compatible(tokenizer, tokenizer_factory):
    teacher = build_model("blip", "vqa", "blip-smoke-teacher", tokenizer)
    check_compatible(teacher, build_model("blip", "vqa", "blip-smoke-student", tokenizer))
    with pytest.raises(ConfigError, match=r"teacher has 35 vocabulary rows but the student has 8: build the student"):
        check_compatible(teacher, build_model("blip", "vqa", "blip-smoke-student", tokenizer_factory(["a", "b", "c"])))
    words = sorted((w for w in tokenizer.get_vocab() if not w.startswith("<")), key=tokenizer.get_vocab().get)
    other = tokenizer_factory([*words[:-1], "purple"])
    assert len(other) == len(tokenizer)
    with pytest.raises(ConfigError, match="tokenizers differ"):
        check_compatible(teacher, build_model("blip", "vqa", "blip-smoke-student", other))
    with pytest.raises(ConfigError, match="teacher task 'vqa' differs from student task 'caption'"):
        check_compatible(teacher, build_model("blip", "caption", "blip-smoke-student", tokenizer))


def _attention_parameters(model) -> int:
    names = (".q.", ".k.", ".v.", ".o.", "qkv", "projection", ".query.", ".key.", ".value.", "attention.output.dense")
    return sum(p.numel() for n, p in model.named_parameters() if any(k in n for k in names))


@pytest.mark.parametrize(("family", "size"), [("vlt5", "vlt5-tiny-teacher"), ("blip", "blip-tiny-teacher")])
def test_changing_the_head_count_changes_only_the_head_count(family, size, tokenizer):
    from amad_suite.pipeline.setups import fit_size

    counts, depths = {}, set()
    for heads in (2, 4, 8):
        resolved = fit_size(size, family, None, heads=heads)
        model = build_model(family, "caption", resolved, tokenizer, seed=0)
        counts[heads] = _attention_parameters(model.model)
        layout = model.attention_layout()
        depths.add(tuple(layers for layers, _ in layout.values()))
        assert {h for _, h in layout.values()} == {heads}
    assert len(set(counts.values())) == 1, counts  # same attention width and parameters at 2, 4 and 8 heads
    assert len(depths) == 1  # and the same depth
    shallow = build_model(family, "caption", fit_size(size, family, None, layers=1), tokenizer)
    assert {layers for layers, _ in shallow.attention_layout().values()} == {1}


def test_a_head_count_that_does_not_divide_the_width_is_a_config_error():
    from amad_suite.pipeline.setups import fit_size

    with pytest.raises(ConfigError, match=r"heads 3 does not divide the attention width 128"):
        fit_size("vlt5-tiny-teacher", "vlt5", None, heads=3)
