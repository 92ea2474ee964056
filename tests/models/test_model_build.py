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
