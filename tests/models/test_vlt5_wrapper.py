"""VLT5Model: the DistillModel interface (collate, forward + capture, generate, save/load, builders, errors)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_vlt5 import (
    FEATURES,
    TINY,
    TINY_STUDENT,
    FakeFeatures,
    color_examples,
    make_tokenizer,
    overfit,
    translation_examples,
    vqa_examples,
)
from transformers import T5Config, T5ForConditionalGeneration

from amad.capture import CaptureSpec
from amad.errors import CheckpointError, ConfigError, DataError
from amad.models.base import FAMILIES
from amad.models.vlt5.model import VLT5Model
from amad.models.vlt5.visual import vocab_rows
from amad.types import Example


def build(task: str = "vqa", size: dict = TINY, seed: int = 0, **kwargs) -> VLT5Model:
    torch.manual_seed(seed)
    return VLT5Model.build(task, size, make_tokenizer(), **kwargs)


def test_registered_as_vlt5_family():
    assert FAMILIES.get("vlt5") is VLT5Model


def test_collate_prefixes_truncation_labels_and_regions():
    model = build()
    tok = model.tokenizer
    batch = model.collate(vqa_examples(), FEATURES, train=True)
    first = tok("vqa: what color is the circle ?", add_special_tokens=False)["input_ids"] + [1]
    assert batch.input_ids[0, : len(first)].tolist() == first
    assert batch.attention_mask.sum(1).tolist() == [9, 12, 8]  # "vqa", ":" + words + </s>
    assert batch.labels.tolist() == [[tok.convert_tokens_to_ids("red"), 1], [tok.convert_tokens_to_ids("two"), 1],
                                     [tok.convert_tokens_to_ids("no"), 1]]  # fmt: skip
    assert batch.label_weights.tolist() == pytest.approx([1.0, 0.6, 1.0])
    assert batch.vis_feats.shape == (3, 5, 12) and batch.vis_boxes.shape == (3, 5, 4)
    assert batch.vis_mask.sum(1).tolist() == [5, 3, 4]
    feats, boxes = FEATURES.get("2")
    torch.testing.assert_close(batch.vis_feats[1, :3], torch.from_numpy(feats))
    torch.testing.assert_close(batch.vis_boxes[1, :3], torch.from_numpy(boxes))
    assert batch.vis_feats[1, 3:].abs().sum() == 0
    short = VLT5Model(model.model, tok, "vqa", TINY, max_source_length=4, max_target_length=10)
    cut = short.collate(vqa_examples(), FEATURES, train=True).input_ids
    assert cut.shape == (3, 4) and cut[:, -1].tolist() == [1, 1, 1]  # 3 pieces + </s>, as T5's tokenizer


def test_collate_translation_text_only_and_caption_prefix():
    model = build("translation")
    batch = model.collate(translation_examples(), None, train=True)
    assert batch.vis_feats is None and batch.vis_mask is None
    assert (
        model.tokenizer.decode(batch.input_ids[0], skip_special_tokens=True)
        == "translate english to german : a red circle"
    )
    assert (model.max_source_length, model.max_target_length) == (40, 40)
    caption = build("caption").collate([Example("c1", "1", "", "a red circle", [])], FEATURES, train=False)
    assert caption.input_ids[0].tolist() == [*make_tokenizer()("caption:", add_special_tokens=False)["input_ids"], 1]
    assert caption.labels is not None  # targets are kept for validation losses


def test_collate_errors():
    model = build()
    no_image = [Example("q9", None, "is the square blue ?", "no", ["no"])]
    with pytest.raises(DataError, match=r"q9 has no image_id .*visual=None"):
        model.collate(no_image, FEATURES, train=True)
    with pytest.raises(DataError, match=r"width \[7\] but the model's feat_dim is 12: set feat_dim"):
        model.collate(vqa_examples(), FakeFeatures({"1": 2, "2": 2, "3": 2}, feat_dim=7), train=True)
    with pytest.raises(DataError, match=r"has 9 regions but the model reserves 5 .* set n_boxes to 9"):
        model.collate(vqa_examples(), FakeFeatures({"1": 9, "2": 2, "3": 2}), train=True)


def test_forward_weighted_loss_and_backward():
    model = build()
    batch = model.collate(vqa_examples(), FEATURES, train=True)
    out = model(batch)
    assert out.logits.shape == (3, 2, 55) and out.target_mask.all()
    token = torch.nn.functional.cross_entropy(out.logits.transpose(1, 2), batch.labels, reduction="none")  # (B, T)
    expected = (token.mean(1) * torch.tensor([1.0, 0.6, 1.0])).mean()
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    assert model.model.encoder.visual_embedding.feat_embedding[0].weight.grad.abs().sum() > 0
    with pytest.raises(DataError, match=r"needs batch.labels"):
        batch.labels = None
        model(batch)


def test_capture_every_kind_with_masks():
    model = build()
    batch = model.collate(vqa_examples(), FEATURES, train=True)
    batch.labels[1, 1] = -100  # a padded target position
    out = model(batch, CaptureSpec.all_layers(model.attention_layout()))
    maps = out.attentions
    assert model.attention_layout() == {"encoder_self": (2, 4), "decoder_self": (2, 4), "cross": (2, 4)}
    assert len(maps) == 6
    assert maps.probs[("encoder_self", 1)].shape == (3, 4, 17, 17)  # L=12 + N=5
    assert maps.probs[("decoder_self", 0)].shape == (3, 4, 2, 2)
    assert maps.probs[("cross", 1)].shape == (3, 4, 2, 17)
    joint = torch.cat([batch.attention_mask, batch.vis_mask], 1)
    assert torch.equal(maps.key_mask["encoder_self"], joint) and torch.equal(maps.key_mask["cross"], joint)
    assert torch.equal(maps.query_mask["decoder_self"], batch.labels != -100)
    assert maps.query_mask["cross"][1].tolist() == [True, False]
    padded_keys = ~joint[:, None, None, :]  # (B, 1, 1, L+N)
    assert maps.probs[("cross", 0)].masked_select(padded_keys).abs().max() == 0
    assert maps.probs[("encoder_self", 0)].requires_grad  # student maps stay in the graph


def test_generate_greedy_and_beam_after_overfitting_regions_decide_the_answer():
    model = build(seed=1)
    batch = model.collate(color_examples(), FEATURES, train=True)
    assert overfit(model, batch, steps=80) < 0.1
    assert model.generate(batch) == ["red", "blue", "green"]
    assert model.generate(batch, num_beams=3) == ["red", "blue", "green"]
    alone = [model.generate(model.collate([ex], FEATURES, train=False), num_beams=3)[0] for ex in color_examples()]
    assert alone == ["red", "blue", "green"]


def test_generate_text_only_translation():
    model = build("translation", seed=2)
    batch = model.collate(translation_examples(), None, train=True)
    assert overfit(model, batch, steps=80) < 0.1
    expected = ["ein roter kreis", "zwei blauer quadrat links"]
    assert model.generate(batch) == expected
    assert model.generate(batch, num_beams=2, max_new_tokens=10) == expected
    assert len(model.generate(batch, max_new_tokens=2)[1].split()) == 2


def test_save_and_load_round_trip(tmp_path):
    model = build("caption").eval()
    batch = model.collate(vqa_examples(), FEATURES, train=True)
    model.save_pretrained(str(tmp_path / "m"))
    meta = json.loads((tmp_path / "m" / "amad_model.json").read_text())
    assert meta["family"] == "vlt5" and meta["task"] == "caption" and meta["size"]["d_model"] == 32
    assert (tmp_path / "m" / "model.safetensors").is_file() and (tmp_path / "m" / "tokenizer.json").is_file()
    loaded = VLT5Model.from_pretrained(str(tmp_path / "m"))
    assert loaded.task == "caption" and loaded.max_target_length == 20
    assert loaded.tokenizer.get_vocab() == model.tokenizer.get_vocab()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, model(batch).logits)
    assert [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".tmp")] == []


def test_from_pretrained_errors(tmp_path):
    with pytest.raises(CheckpointError, match=r"no amad_model.json"):
        VLT5Model.from_pretrained(str(tmp_path))
    (tmp_path / "amad_model.json").write_text(json.dumps({"family": "blip", "task": "vqa"}))
    with pytest.raises(CheckpointError, match=r"holds a 'blip' model, not VL-T5"):
        VLT5Model.from_pretrained(str(tmp_path))


def test_init_pretrained_from_a_t5_folder(tmp_path):
    torch.manual_seed(7)
    cfg = T5Config(vocab_size=50, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0)
    t5 = T5ForConditionalGeneration(cfg)
    t5.save_pretrained(tmp_path / "t5-tiny")
    model = build(init="pretrained", init_from=str(tmp_path / "t5-tiny"))
    torch.testing.assert_close(model.model.encoder.block[1].layer[1].DenseReluDense.wo.weight,
                               t5.encoder.block[1].layer[1].DenseReluDense.wo.weight)  # fmt: skip
    torch.testing.assert_close(model.model.shared.weight[:50], t5.shared.weight)
    with pytest.raises(ConfigError, match=r"init 'pretrained' needs init_from"):
        build(init="pretrained")


def test_init_pretrained_from_an_epoch30_file(tmp_path):
    source = build("caption", seed=8)
    state = {"module." + k.replace("encoder.", "vis_encoder.", 1): v for k, v in source.model.state_dict().items()}
    torch.save(state, tmp_path / "Epoch30.pth")
    model = build("caption", seed=9, init="pretrained", init_from=str(tmp_path / "Epoch30.pth"))
    batch = model.collate(vqa_examples(), FEATURES, train=True)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(batch).logits, source.eval()(batch).logits)


def test_init_teacher_copies_mapped_layers():
    teacher = build(seed=3)
    student = build(size=TINY_STUDENT, seed=4, init="teacher", teacher=teacher, layer_pairs=[(0, 1)])
    s, t = student.model, teacher.model
    assert student.attention_layout()["encoder_self"] == (1, 2)
    for stack in ("encoder", "decoder"):
        s_block, t_block = getattr(s, stack).block[0], getattr(t, stack).block[1]
        torch.testing.assert_close(s_block.layer[0].SelfAttention.q.weight, t_block.layer[0].SelfAttention.q.weight)
        torch.testing.assert_close(
            s_block.layer[-1].DenseReluDense.wi.weight, t_block.layer[-1].DenseReluDense.wi.weight
        )
    torch.testing.assert_close(s.shared.weight, t.shared.weight)
    torch.testing.assert_close(s.encoder.visual_embedding.feat_embedding[0].weight,
                               t.encoder.visual_embedding.feat_embedding[0].weight)  # fmt: skip
    default = build(size=TINY_STUDENT, seed=4, init="teacher", teacher=teacher)  # uniform: student 0 <- teacher 1
    torch.testing.assert_close(default.model.encoder.block[0].layer[0].SelfAttention.o.weight,
                               t.encoder.block[1].layer[0].SelfAttention.o.weight)  # fmt: skip


def test_init_teacher_errors():
    teacher = build(seed=3)
    with pytest.raises(ConfigError, match=r"student's num_heads \* d_kv is 16 and the teacher's 32"):
        build(size=dict(TINY_STUDENT, d_kv=8), init="teacher", teacher=teacher)
    with pytest.raises(ConfigError, match=r"layer pair \(0, 5\) is out of range for the encoder"):
        build(size=TINY_STUDENT, init="teacher", teacher=teacher, layer_pairs=[(0, 5)])
    with pytest.raises(ConfigError, match=r"needs a VL-T5 teacher"):
        build(size=TINY_STUDENT, init="teacher")
    other = VLT5Model.build("vqa", TINY_STUDENT, make_tokenizer(["red", "blue"]), init="random")
    with pytest.raises(ConfigError, match=r"vocabulary rows"):
        VLT5Model.build("vqa", TINY_STUDENT, make_tokenizer(["red", "blue"]), init="teacher", teacher=teacher)
    assert other.vocab_size != teacher.vocab_size


def test_task_size_and_init_errors():
    with pytest.raises(ConfigError, match=r"unknown VL-T5 task 'retrieval'"):
        build("retrieval")
    with pytest.raises(ConfigError, match=r"unknown init 'copy'"):
        build(init="copy")
    with pytest.raises(ConfigError, match=r"'num_heads' must be a positive integer"):
        build(size=dict(TINY, num_heads=0))


def test_vocabulary_rows_reserve_the_box_order_rows():
    tok = make_tokenizer()
    assert vocab_rows(tok, TINY) == len(tok) + 5
    t5_like = make_tokenizer(["a", *(f"<extra_id_{i}>" for i in range(3))])
    assert vocab_rows(t5_like, TINY) == len(t5_like) + 100  # t5-base 32100 -> VL-T5's 32200
    vlt5_like = make_tokenizer(["a", *(f"<vis_extra_id_{i}>" for i in range(5))])
    assert vocab_rows(vlt5_like, TINY) == len(vlt5_like)
    with pytest.raises(ConfigError, match=r"reserves 2 box-order rows .* n_boxes is 5: set vocab_rows to at least"):
        vocab_rows(tok, dict(TINY, vocab_rows=len(tok) + 2))


def test_teacher_init_with_fewer_heads_groups_teacher_heads_and_sums_their_bias():
    from amad.models import build_model
    from amad.testing import make_tokenizer
    from amad_suite.pipeline.setups import fit_size

    tok = make_tokenizer()
    teacher = build_model("vlt5", "caption", "vlt5-smoke-teacher", tok, seed=0)  # 4 heads x d_kv 8
    size = fit_size("vlt5-smoke-teacher", "vlt5", None, heads=2)  # 2 heads x d_kv 16, same width and depth
    student = build_model("vlt5", "caption", size, tok, init="teacher", teacher=teacher)
    assert student.init_report["refused"] == []
    t, s = teacher.model.state_dict(), student.model.state_dict()
    key = "encoder.block.1.layer.0.SelfAttention.q.weight"
    assert torch.equal(s[key], t[key])  # whole matrices: student head j holds teacher heads 2j, 2j+1
    bias = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
    torch.testing.assert_close(s[bias], t[bias].view(-1, 2, 2).sum(-1))
