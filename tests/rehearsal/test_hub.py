"""The tiny hub folders load through the library's own entry points for hub ids (tokenizer, t5-small student,
BLIP caption and VQA teachers), and the leaky VQA checkpoint is flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from amad.data.tokenizer import build_blip_tokenizer, load_tokenizer
from amad.models import build_model
from amad_suite.preset import compose
from amad_suite.rehearsal.hub import BERT_VOCAB, build_hub

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    params, _ = compose("rehearsal", ROOT / "configs" / "presets")
    return params, build_hub(tmp_path_factory.mktemp("hub"), params)


def test_t5_folders_load_as_t5_base_and_t5_small(hub):
    params, folders = hub
    tokenizer = load_tokenizer(folders["t5-base"])
    assert len(tokenizer) == 310 and tokenizer.eos_token_id == 1 and "<extra_id_0>" in tokenizer.get_vocab()
    student = params["student"]["setups"]["vlt5-vqa"]
    model = build_model(
        "vlt5", "vqa", student["size"], tokenizer, init="pretrained", init_from=str(folders["t5-small"])
    )
    report = model.init_report
    assert report["refused"] == [] and report["grown_rows"] == ["shared.weight[320:410]"]
    assert any("visual_embedding" in name for name in report["allowed_missing"])  # t5-small has no visual embedding


@pytest.mark.parametrize(("hub_id", "task", "leaky"), [
    ("Salesforce/blip-image-captioning-base", "caption", False),
    ("Salesforce/blip-vqa-base", "vqa", True),
])  # fmt: skip
def test_blip_folders_load_as_the_salesforce_checkpoints(hub, hub_id, task, leaky):
    params, folders = hub
    size = params["teacher"]["setups"][f"blip-{task}"]["size"]
    tokenizer = build_blip_tokenizer(BERT_VOCAB)
    model = build_model("blip", task, size, tokenizer, init="pretrained", init_from=str(folders[hub_id]))
    assert model.init_report["refused"] == [] and model.init_report["copied"] > 0
    assert (model.init_report["saw_test_split"] is not None) == leaky
