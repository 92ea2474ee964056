"""BLIP wrapper: collate, forward/loss/backward, generation, capture, save/load."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from amad.capture import CaptureSpec, attention_layout
from amad.errors import ConfigError
from amad.models import build_model, load_model
from amad.models.base import FAMILIES, DistillModel, weighted_token_loss
from amad.models.blip.model import BlipModel
from amad.testing import FakeImages
from amad.types import Example
from amad_suite.pipeline.params import RANK_FAMILIES

TASKS = ("vqa", "caption")


def _examples(request, task):
    return request.getfixturevalue(f"{task}_examples")


def _overfit(model, batch, steps: int = 80):
    """Train on one batch until it is memorised (deterministic: seeded init, no dropout)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        model(batch).loss.backward()
        opt.step()
    model.eval()
    return model


@pytest.fixture(scope="module")
def trained(tokenizer, images):
    """task -> (memorised smoke teacher, its batch, its examples); caption uses a prompt masked out of the loss."""
    out = {}
    exs = {
        "vqa": [
            Example("q1", "1", "what color is the circle ?", "red", ["red"]),
            Example("q2", "2", "how many shapes are there on the left ?", "two", ["two"]),
            Example("q3", "3", "is the square blue ?", "no", ["no"]),
        ],
        "caption": [
            Example("c1", "1", "", "a red circle", ["a red circle"]),
            Example("c2", "2", "", "two blue shapes on the left", ["two blue shapes on the left"]),
        ],
    }
    for task in TASKS:
        size = "blip-smoke-teacher" if task == "vqa" else {**_smoke(), "prompt": "a picture of"}
        model = build_model("blip", task, size, tokenizer, seed=0)
        batch = model.collate(exs[task], images, train=True)
        out[task] = (_overfit(model, batch), batch, exs[task])
    return out


def _smoke():
    from amad.models import MODEL_SIZES

    return copy.deepcopy(MODEL_SIZES.get("blip-smoke-teacher"))


@pytest.mark.parametrize("task", TASKS)
def test_forward_loss_backward(request, task, tokenizer, images):
    model = build_model("blip", task, "blip-smoke-teacher", tokenizer, seed=0)
    batch = model.collate(_examples(request, task), images, train=True)
    out = model(batch)
    b, t = batch.labels.shape
    assert out.logits.shape == (b, t, len(tokenizer))
    assert torch.equal(out.target_mask, batch.labels != -100)
    # labels end with </s> after the target tokens
    assert all(row[m][-1] == tokenizer.eos_token_id for row, m in zip(batch.labels, out.target_mask))
    manual = F.cross_entropy(out.logits.transpose(1, 2), batch.labels, reduction="none", ignore_index=-100)  # (B, T)
    per_example = manual.sum(1) / out.target_mask.sum(1)
    assert torch.allclose(out.loss, (per_example * batch.label_weights).mean())
    out.loss.backward()
    towers = ["vision_model", "text_decoder"] + (["text_encoder"] if task == "vqa" else [])
    for tower in towers:
        grads = [p.grad for n, p in model.model.named_parameters() if n.startswith(tower) and "layer" in n]
        assert grads and all(g is not None for g in grads), tower


def test_loss_weighting_and_label_smoothing():
    logits = torch.randn(2, 3, 7)
    labels = torch.tensor([[1, 2, -100], [3, 4, 5]])
    full = weighted_token_loss(logits, labels, None)
    only_first = weighted_token_loss(logits, labels, torch.tensor([2.0, 0.0]))
    first = F.cross_entropy(logits[0, :2], labels[0, :2])
    assert torch.allclose(only_first, first)  # weight 2 on example 0, averaged over B=2
    assert torch.allclose(full, (first + F.cross_entropy(logits[1], labels[1])) / 2)
    assert not torch.allclose(weighted_token_loss(logits, labels, None, label_smoothing=0.1), full)


def test_caption_loss_equals_transformers_loss(tokenizer, images, caption_examples):
    """One example, no prompt: our loss equals BlipForConditionalGeneration's own teacher-forced loss."""
    model = build_model("blip", "caption", "blip-smoke-teacher", tokenizer, seed=0).eval()
    batch = model.collate(caption_examples[1:2], images, train=True)
    ids = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), batch.labels], 1)  # [bos, caption, sep]
    hf = model.model(pixel_values=batch.pixel_values, input_ids=ids, labels=ids)
    assert torch.allclose(model(batch).loss, hf.loss, atol=1e-6)


@pytest.mark.parametrize("task", TASKS)
def test_padding_does_not_change_an_example(request, task, tokenizer, images):
    model = build_model("blip", task, "blip-smoke-teacher", tokenizer, seed=1).eval()
    examples = _examples(request, task)
    alone = model.collate(examples[:1], images, train=True)
    batched = model.collate(examples, images, train=True)
    t = alone.labels.shape[1]
    assert batched.labels.shape[1] > t or batched.input_ids.shape[1] > alone.input_ids.shape[1]
    with torch.no_grad():
        a, b = model(alone).logits[0], model(batched).logits[0, :t]
    assert torch.allclose(a, b, atol=1e-5)
    assert model.generate(alone, num_beams=2)[0] == model.generate(batched, num_beams=2)[0]


@pytest.mark.parametrize("task", TASKS)
def test_greedy_and_beam_generation_reproduce_memorised_targets(trained, task):
    model, batch, examples = trained[task]
    targets = [ex.target for ex in examples]
    assert model.generate(batch) == targets
    assert model.generate(batch, num_beams=3) == targets
    assert all(len(s.split()) <= 1 for s in model.generate(batch, max_new_tokens=1))


def test_caption_prompt_is_masked_out_and_stripped(trained):
    model, batch, _ = trained["caption"]
    prompt_ids = model.tokenizer("a picture of", add_special_tokens=False)["input_ids"]
    assert batch.input_ids[0].tolist() == [model.bos_id, *prompt_ids]  # decoder prefix: [DEC] prompt
    assert batch.labels.shape[1] == 6 + 1  # no prompt in the labels
    assert not any(s.startswith("a picture of") for s in model.generate(batch))


@pytest.mark.parametrize("task", TASKS)
def test_capture_every_kind_with_masks(request, task, tokenizer, images):
    model = build_model("blip", task, "blip-smoke-teacher", tokenizer, seed=0)
    layout = model.attention_layout()
    assert layout == attention_layout(model.model)
    expected = {"vision_self", "text_self", "text_cross"} | (
        {"answer_self", "answer_cross"} if task == "vqa" else set()
    )
    assert set(layout) == expected
    batch = model.collate(_examples(request, task), images, train=True)
    out = model(batch, capture=CaptureSpec.all_layers(layout))
    maps = out.attentions
    assert set(maps.keys()) == {(k, layer) for k, (n, _) in layout.items() for layer in range(n)}
    for (kind, _), probs in maps.probs.items():
        b, h, q, k = probs.shape
        all_valid = torch.ones(b, max(q, k), dtype=torch.bool)
        q_mask = maps.query_mask.get(kind, all_valid[:, :q])  # absent = every position valid (image patches)
        k_mask = maps.key_mask.get(kind, all_valid[:, :k])
        assert (b, h) == (len(batch), layout[kind][1]) and q_mask.shape == (b, q) and k_mask.shape == (b, k)
        assert (kind in maps.query_mask) == (kind != "vision_self")  # image queries are never padded
        assert (kind in maps.key_mask) == (kind not in ("vision_self", "text_cross"))  # nor are image keys
        rows = probs.sum(-1)  # (B, H, Q)
        assert torch.allclose(rows[q_mask[:, None].expand_as(rows)], torch.ones(()), atol=1e-5)
        assert probs.masked_fill(k_mask[:, None, None, :], 0.0).abs().max() < 1e-6  # no weight on padded keys
        assert probs.grad_fn is not None
    n_image = (32 // 16) ** 2 + 1
    assert maps.probs[("vision_self", 0)].shape[-1] == n_image
    assert maps.probs[("text_cross", 0)].shape[-1] == n_image
    if task == "vqa":  # the answer decoder cross-attends the question, not the image
        assert maps.probs[("answer_cross", 0)].shape[-1] == batch.input_ids.shape[1]
        assert not maps.key_mask["text_self"].all()  # padded questions are masked
    out_none = model(batch)
    assert len(out_none.attentions) == 0 and torch.allclose(out_none.logits, out.logits)


def test_capture_selected_layers_only(tokenizer, images, vqa_examples):
    model = build_model("blip", "vqa", "blip-smoke-teacher", tokenizer, seed=0)
    out = model(model.collate(vqa_examples, images, True), CaptureSpec(layers={"answer_cross": [-1]}))
    assert list(out.attentions.keys()) == [("answer_cross", 1)]
    assert set(out.attentions.query_mask) == {"answer_cross"}


@pytest.mark.parametrize("task", TASKS)
def test_save_load_round_trip(trained, task, tmp_path):
    model, batch, _ = trained[task]
    model.save_pretrained(str(tmp_path))
    assert (tmp_path / "amad_model.json").is_file() and not list(tmp_path.glob(".tmp-save-*"))
    loaded = load_model(tmp_path).eval()
    assert isinstance(loaded, BlipModel) and loaded.task == task
    assert (loaded.prompt, loaded.label_smoothing, loaded.size) == (model.prompt, model.label_smoothing, model.size)
    with torch.no_grad():
        assert torch.equal(loaded(batch).logits, model(batch).logits)
    assert loaded.generate(batch, num_beams=2) == model.generate(batch, num_beams=2)


def test_translation_and_unknown_tasks_are_rejected(tokenizer):
    with pytest.raises(ConfigError, match="BLIP has no Multi30K/translation task: use family vlt5"):
        build_model("blip", "translation", "blip-smoke-teacher", tokenizer)
    with pytest.raises(ConfigError, match="unknown BLIP task 'vqa2'"):
        BlipModel.check_task("vqa2")


def test_vqa_width_constraint_and_head_divisibility(tokenizer):
    size = _smoke()
    size["text"]["hidden_size"] = 48
    with pytest.raises(ConfigError, match="text hidden_size == vision hidden_size") as err:
        build_model("blip", "vqa", size, tokenizer)
    assert "\n" not in str(err.value) and "48" in str(err.value)
    assert build_model("blip", "caption", size, tokenizer).model.config.text_config.hidden_size == 48
    size = _smoke()
    size["vision"]["num_attention_heads"] = 5
    with pytest.raises(ConfigError, match="vision hidden_size 32 is not divisible by num_attention_heads 5"):
        build_model("blip", "caption", size, tokenizer)


def test_text_heads_are_set_explicitly(tokenizer):
    config = build_model("blip", "vqa", "blip-smoke-student", tokenizer).model.config
    assert config.text_config.num_attention_heads == 2  # not transformers' default of 8
    assert (config.text_config.bos_token_id, config.text_config.sep_token_id) == (3, 1)
    assert config.text_config.vocab_size == len(tokenizer)
    assert config.text_config._attn_implementation == "eager"


def test_collate_rejects_missing_or_wrong_size_images(tokenizer, vqa_examples, image_store):
    model = build_model("blip", "vqa", "blip-smoke-teacher", tokenizer)
    with pytest.raises(ConfigError, match="expects \\(3, 32, 32\\): rebuild the image cache"):
        model.collate(vqa_examples, image_store(64), train=True)
    with pytest.raises(ConfigError, match="BLIP needs images"):
        model.collate(vqa_examples, None, train=True)


def test_vqa_question_starts_with_enc_and_ends_with_sep(tokenizer, images, vqa_examples):
    model = build_model("blip", "vqa", "blip-smoke-teacher", tokenizer)
    batch = model.collate(vqa_examples, images, train=False)
    row = batch.input_ids[0][batch.attention_mask[0]].tolist()
    words = tokenizer("what color is the circle ?", add_special_tokens=False)["input_ids"]
    assert row == [tokenizer.convert_tokens_to_ids("<enc>"), *words, tokenizer.eos_token_id]
    assert batch.label_weights.tolist() == pytest.approx([1.0, 0.6, 1.0])
    assert batch.uids == ["q1", "q2", "q3"] and batch.answer_types[1] == "number"


def _sequence_log_likelihood(model, example, answer):
    """log p(answer + sep | image, question) through the training forward: the reference for rank inference."""
    example = Example("x", example.image_id, example.source, answer, [answer])
    batch = model.collate([example], FakeImages(model.image_size), train=True)
    with torch.no_grad():
        logp = F.log_softmax(model(batch).logits, -1)  # (1, T, V)
    token = logp.gather(-1, batch.labels.clamp_min(0)[..., None])[..., 0]  # (1, T)
    return float((token * (batch.labels >= 0)).sum())


def test_rank_inference_scores_are_sequence_log_likelihoods(trained):
    model, batch, examples = trained["vqa"]
    answers = ["yes", "red", "blue", "two", "no", "three", "a red circle"]
    top, scores = model.answer_scores(batch, answers, k=4)  # (B, 4), (B, 4)
    assert top.shape == scores.shape == (3, 4)
    for row, example in enumerate(examples):
        expected = [_sequence_log_likelihood(model, example, answers[int(i)]) for i in top[row]]
        assert scores[row].tolist() == pytest.approx(expected, abs=1e-4)
    same_top, same_scores = model.answer_scores(batch, answers, k=4, chunk=5)  # chunks cut across questions
    assert torch.equal(same_top, top) and torch.allclose(same_scores, scores, atol=1e-5)


def test_rank_inference_returns_memorised_answers_from_the_list(trained):
    model, batch, examples = trained["vqa"]
    answers = ["blue", "no", "three", "red", "yes", "two"]
    assert model.rank_answers(batch, answers, k=len(answers)) == [ex.target for ex in examples]
    assert model.rank_answers(batch, answers, k=100) == [ex.target for ex in examples]  # k above the list: all


def test_rank_inference_is_for_blip_vqa_only(trained, tokenizer):
    model, batch, _ = trained["caption"]
    with pytest.raises(ConfigError, match="captions are generated"):
        model.answer_scores(batch, ["a"], k=1)
    vqa, vqa_batch, _ = trained["vqa"]
    with pytest.raises(ConfigError, match="non-empty answer list"):
        vqa.rank_answers(vqa_batch, [], k=1)
    vlt5 = build_model("vlt5", "vqa", "vlt5-smoke-student", tokenizer, seed=0)
    ranking = {name for name in FAMILIES if FAMILIES.get(name).rank_answers is not DistillModel.rank_answers}
    assert ranking == set(RANK_FAMILIES)  # params validation rejects rank for exactly the other families
    with pytest.raises(ConfigError, match=r"vqa_inference\.vlt5 to generate"):
        vlt5.rank_answers(None, ["a"], k=1)
