"""Evaluation options: per-setup decoding (BLIP's caption_coco.yaml at paper scale), DataLoader workers, and the
device models are scored on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from amad import evaluation
from amad.errors import ConfigError
from amad.models import build_model
from amad.testing import FakeImages, caption_examples, make_tokenizer, tiny_size
from amad_suite.config import load_params
from amad_suite.pipeline import eval_stages
from amad_suite.pipeline.params import EvalConfig, evaluate

PRESETS = Path(__file__).resolve().parents[2] / "configs" / "presets"
BASE = {"batch_size": 4, "num_beams": 5, "max_new_tokens": {"vqa": 10, "caption": 20, "translation": 40}}


def test_setup_decoding_overrides_and_completes_the_defaults():
    cfg = EvalConfig(**BASE, decoding={"blip-caption": {"num_beams": 3, "min_length": 5, "max_length": 20}})
    assert cfg.generation("blip-caption", "caption") == {
        "num_beams": 3,
        "max_new_tokens": 20,
        "min_length": 5,
        "max_length": 20,
    }
    assert cfg.generation("vlt5-caption", "caption") == {"num_beams": 5, "max_new_tokens": 20}


@pytest.mark.parametrize(
    ("decoding", "message"),
    [
        ({"blip-caption": {"beams": 3}}, r"unknown key evaluate.decoding.blip-caption.beams.*did you mean 'num_beams'"),
        ({"blip-caption": {"max_length": 0}}, r"evaluate.decoding.blip-caption.max_length must be >= 1"),
        ({"blip-caption": {"min_length": -1}}, r"evaluate.decoding.blip-caption.min_length must be >= 0"),
        ({"blip-translation": {"num_beams": 3}}, "BLIP has no Multi30K translation task"),
    ],
)
def test_bad_decoding_is_a_one_line_error(decoding, message):
    with pytest.raises(ConfigError, match=message):
        EvalConfig(**BASE, decoding=decoding)


def test_presets_decode_as_before_at_mini_and_as_blip_at_paper():
    mini = evaluate(load_params(PRESETS / "mini.yaml"))
    assert mini.decoding == {} and mini.num_workers == 0
    assert mini.generation("blip-caption", "caption") == {"num_beams": 1, "max_new_tokens": 20}
    paper = evaluate(load_params(PRESETS / "paper.yaml"))
    assert paper.generation("blip-caption", "caption") == {
        "num_beams": 3,
        "max_new_tokens": 20,
        "min_length": 5,
        "max_length": 20,
    }  # BLIP's caption_coco.yaml
    assert paper.generation("vlt5-caption", "caption") == {"num_beams": 5, "max_new_tokens": 20}


def test_predict_passes_lengths_and_collates_in_workers(monkeypatch):
    model = build_model("blip", "caption", tiny_size("blip-smoke-teacher", prompt="a picture of"), make_tokenizer())
    seen = []
    real = model.generate

    def spy(batch, **kwargs):
        seen.append(kwargs)
        return real(batch, **kwargs)

    monkeypatch.setattr(model, "generate", spy)
    examples = caption_examples()
    options = {"batch_size": 2, "num_beams": 3, "max_new_tokens": 20, "progress": False}
    here = evaluation.predict(model, examples, FakeImages(32), min_length=5, max_length=7, **options)
    forked = evaluation.predict(model, examples, FakeImages(32), min_length=5, max_length=7, num_workers=2, **options)
    assert here == forked and list(here) == ["c1", "c2", "c3"]
    assert seen[0] == {"num_beams": 3, "max_new_tokens": 20, "min_length": 5, "max_length": 7}
    evaluation.predict(model, examples[:1], FakeImages(32), **options)
    assert seen[-1] == {"num_beams": 3, "max_new_tokens": 20}  # lengths not given: not passed


def test_models_are_scored_on_the_gpu_when_there_is_one(monkeypatch):
    assert eval_stages.eval_device() == torch.device("cpu") or torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert eval_stages.eval_device() == torch.device("cuda")
