"""BLIP checkpoints: transformers folders as teachers, bad checkpoints, and student initialisation."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import T5Config, T5ForConditionalGeneration

from amad.errors import CheckpointError, ConfigError
from amad.models import MODEL_SIZES, build_model, load_model
from amad.models.blip.model import BlipModel


def _size(name: str = "blip-smoke-teacher", **text: int) -> dict:
    size = copy.deepcopy(MODEL_SIZES.get(name))
    size["text"].update(text)
    return size


def _hf_folder(tmp_path, tokenizer, task="vqa"):
    """A tiny transformers BLIP folder (config, weights, tokenizer) as the hub checkpoints are laid out."""
    model = build_model("blip", task, "blip-smoke-teacher", tokenizer, seed=3)
    folder = tmp_path / f"hf-{task}"
    model.model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model, folder


@pytest.mark.parametrize("task", ["vqa", "caption"])
def test_transformers_folder_loads_as_teacher(tmp_path, tokenizer, images, request, task):
    original, folder = _hf_folder(tmp_path, tokenizer, task)
    teacher = BlipModel.from_pretrained(str(folder))  # task read from the config's architecture
    assert teacher.task == task and teacher.model.config.text_config._attn_implementation == "eager"
    assert (teacher.label_smoothing, teacher.prompt) == (0.0, "a picture of ")  # smoothing: set by the training loop
    batch = original.collate(request.getfixturevalue(f"{task}_examples"), images, train=True)
    with torch.no_grad():
        assert torch.equal(teacher.eval()(batch).logits, original.eval()(batch).logits)


def test_wrong_family_checkpoints_are_rejected(tmp_path, tokenizer):
    t5 = tmp_path / "t5"
    T5ForConditionalGeneration(
        T5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4)
    ).save_pretrained(t5)
    with pytest.raises(CheckpointError, match="holds a 't5' model, not BLIP: use family 'vlt5'") as err:
        BlipModel.from_pretrained(str(t5))
    assert "\n" not in str(err.value)
    ours = tmp_path / "ours"
    build_model("blip", "vqa", "blip-smoke-teacher", tokenizer).save_pretrained(str(ours))
    meta = json.loads((ours / "amad_model.json").read_text())
    (ours / "amad_model.json").write_text(json.dumps({**meta, "family": "vlt5"}))
    with pytest.raises(CheckpointError, match="holds a 'vlt5' model, not BLIP"):
        BlipModel.from_pretrained(str(ours))
    with pytest.raises(CheckpointError, match="cannot read a BLIP checkpoint"):
        BlipModel.from_pretrained(str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match=r"no amad_model\.json"):
        load_model(t5)


def test_missing_and_misshaped_weights_are_rejected(tmp_path, tokenizer):
    _, folder = _hf_folder(tmp_path, tokenizer)
    weights = load_file(folder / "model.safetensors")
    bad_shape = {**weights, "text_encoder.encoder.layer.0.intermediate.dense.bias": torch.zeros(3)}
    save_file(bad_shape, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="cannot load the BLIP weights") as err:
        BlipModel.from_pretrained(str(folder))
    assert "\n" not in str(err.value)
    weights.pop("text_encoder.encoder.layer.0.intermediate.dense.bias")
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"lacks 1 BLIP vqa weights .*intermediate\.dense\.bias"):
        BlipModel.from_pretrained(str(folder))


def test_other_task_checkpoint_is_refused(tmp_path, tokenizer):
    _, folder = _hf_folder(tmp_path, tokenizer, "caption")
    from amad.models.blip.checkpoint import load_hf_blip

    with pytest.raises(CheckpointError, match="is a BLIP caption checkpoint but task 'vqa'"):
        load_hf_blip(str(folder), "vqa")
    # A caption checkpoint has no question encoder: a VQA model cannot be filled from it, and nothing stays random
    with pytest.raises(CheckpointError, match=r"could not copy \d+ tensor\(s\).*text_encoder\..* missing") as err:
        build_model("blip", "vqa", "blip-smoke-teacher", tokenizer, init="pretrained", init_from=str(folder))
    assert "\n" not in str(err.value)


def test_pretrained_init_is_strict_and_reported(tmp_path, tokenizer):
    source = build_model("blip", "caption", "blip-smoke-teacher", tokenizer, seed=5)
    source.save_pretrained(str(tmp_path / "src"))
    student = build_model(
        "blip", "caption", "blip-smoke-teacher", tokenizer, init="pretrained", init_from=str(tmp_path / "src")
    )
    report = student.init_report
    assert report["copied"] > 0 and report["refused"] == [] and report["allowed_missing"] == []
    assert report["grown_rows"] == [] and report["unused"] == 0
    for name, value in source.model.state_dict().items():
        assert torch.equal(student.model.state_dict()[name], value), name
    with pytest.raises(CheckpointError, match=r"could not copy 6 tensor\(s\).*intermediate\.dense\.weight \(64, 32\)"):
        build_model(
            "blip",
            "caption",
            _size(intermediate_size=48),
            tokenizer,
            init="pretrained",
            init_from=str(tmp_path / "src"),
        )
    with pytest.raises(ConfigError, match="init='pretrained' needs init_from"):
        build_model("blip", "caption", "blip-smoke-student", tokenizer, init="pretrained")


def test_pretrained_init_refuses_fewer_vocabulary_rows_and_other_image_sizes(tmp_path, tokenizer, big_tokenizer):
    source = build_model("blip", "caption", "blip-smoke-teacher", big_tokenizer, seed=5)
    source.save_pretrained(str(tmp_path / "src"))
    # The example: a tokenizer two rows short of the checkpoint's (30,522 against 30,524)
    with pytest.raises(CheckpointError, match=r"word_embeddings\.weight \(37, 32\) vs model \(35, 32\)"):
        build_model(
            "blip", "caption", "blip-smoke-teacher", tokenizer, init="pretrained", init_from=str(tmp_path / "src")
        )
    # features.image_size 480 against 384-pixel position embeddings (here 48 against 32)
    size = _size()
    size["vision"]["image_size"] = 48
    with pytest.raises(CheckpointError, match=r"position_embedding \(1, 5, 32\) vs model \(1, 10, 32\)"):
        build_model("blip", "caption", size, big_tokenizer, init="pretrained", init_from=str(tmp_path / "src"))


def test_pretrained_init_grows_vocabulary_rows_and_says_so(tmp_path, tokenizer, big_tokenizer):
    source = build_model("blip", "caption", "blip-smoke-teacher", tokenizer, seed=5)
    source.save_pretrained(str(tmp_path / "src"))
    student = build_model(
        "blip", "caption", "blip-smoke-teacher", big_tokenizer, init="pretrained", init_from=str(tmp_path / "src")
    )
    grown = student.init_report["grown_rows"]
    assert any(g.startswith("text_decoder.bert.embeddings.word_embeddings.weight[35:37]") for g in grown), grown
    emb = student.model.state_dict()["text_decoder.bert.embeddings.word_embeddings.weight"]
    assert torch.equal(emb[:35], source.model.state_dict()["text_decoder.bert.embeddings.word_embeddings.weight"])


@pytest.mark.parametrize("task", ["vqa", "caption"])
def test_teacher_init_copies_paired_layers(tokenizer, task):
    teacher = build_model(
        "blip",
        task,
        _size(num_hidden_layers=3) | {"vision": _size()["vision"] | {"num_hidden_layers": 3}},
        tokenizer,
        seed=1,
    )
    student = build_model(
        "blip", task, "blip-smoke-student", tokenizer, init="teacher", teacher=teacher, layer_pairs=[(0, 2)]
    )
    s, t = student.model.state_dict(), teacher.model.state_dict()
    stacks = ["vision_model.encoder.layers.", "text_decoder.bert.encoder.layer."]
    stacks += ["text_encoder.encoder.layer."] if task == "vqa" else []
    for stack in stacks:
        layer_keys = [k for k in s if k.startswith(stack + "0.")]
        assert layer_keys
        for key in layer_keys:  # 2 student heads read the teacher's 4-head projections: same shapes
            assert torch.equal(s[key], t[key.replace(stack + "0.", stack + "2.")]), key
            if s[key].dim() == 2:  # random matrices differ between teacher layers
                assert not torch.equal(s[key], t[key]), key
    assert torch.equal(
        s["vision_model.embeddings.patch_embedding.weight"], t["vision_model.embeddings.patch_embedding.weight"]
    )
    assert student.init_report["refused"] == [] and student.init_report["copied"] > 0
    uniform = build_model("blip", task, "blip-smoke-student", tokenizer, init="teacher", teacher=teacher)
    key = "vision_model.encoder.layers.0.self_attn.qkv.weight"
    assert torch.equal(uniform.model.state_dict()[key], t[key.replace("layers.0", "layers.2")])  # uniform 3 -> 1: 2


def test_teacher_init_refuses_a_student_of_another_width(tokenizer):
    teacher = build_model("blip", "caption", "blip-smoke-teacher", tokenizer, seed=1)
    with pytest.raises(CheckpointError, match="init 'teacher' needs the teacher's widths") as err:
        build_model(
            "blip",
            "caption",
            _size("blip-smoke-student", hidden_size=16, num_attention_heads=2),
            tokenizer,
            init="teacher",
            teacher=teacher,
        )
    assert "\n" not in str(err.value)


def test_teacher_init_errors(tokenizer):
    teacher = build_model("blip", "vqa", "blip-smoke-teacher", tokenizer)
    with pytest.raises(ConfigError, match=r"layer pair \(0, 5\) is out of range for the BLIP vision stack"):
        build_model(
            "blip", "vqa", "blip-smoke-student", tokenizer, init="teacher", teacher=teacher, layer_pairs=[(0, 5)]
        )
    with pytest.raises(ConfigError, match="init='teacher' needs a BLIP caption teacher"):
        build_model("blip", "caption", "blip-smoke-student", tokenizer, init="teacher", teacher=teacher)
    with pytest.raises(ConfigError, match="unknown init 'zeros'"):
        build_model("blip", "vqa", "blip-smoke-student", tokenizer, init="zeros")
