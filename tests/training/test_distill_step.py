"""The distillation step: which parts it computes, where gradients go, and the capture plan."""

import pytest
import torch

from amad import losses
from amad.errors import ConfigError, UnknownNameError
from amad.models import build_model
from amad.testing import TINY_VLT5, FakeFeatures, make_tokenizer
from amad.training.step import alignment_stats, distill_step, one_to_one_heads, plan_capture
from amad.training.terms import Term, parse_method
from amad.types import Example

EXAMPLES = [
    Example("q1", "1", "what color is the circle ?", "red", ["red"] * 10, 1.0, "other"),
    Example("q2", "2", "how many shapes are there ?", "two", ["two"] * 10, 0.6, "number"),
]


def _pair(student_heads=2):
    tok = make_tokenizer()
    teacher_size = TINY_VLT5 | {"feat_dim": 16, "n_boxes": 4}
    student_size = teacher_size | {"num_layers": 1, "num_decoder_layers": 1, "num_heads": student_heads}
    torch.manual_seed(0)
    teacher = build_model("vlt5", "vqa", teacher_size, tok).eval()
    student = build_model("vlt5", "vqa", student_size, tok)
    batch = student.collate(EXAMPLES, FakeFeatures(4, 16), train=True)
    return teacher, student, batch


def test_parse_method_weights_and_options():
    terms = parse_method("amad", {"task": 1.0, "logit_kd": {"weight": 0.5, "temperature": 2.0}, "amad_kl": 2})
    assert [(t.name, t.weight, t.options, t.auto) for t in terms] == [
        ("task", 1.0, {}, False),
        ("logit_kd", 0.5, {"temperature": 2.0}, False),
        ("amad_kl", 2.0, {}, False),
    ]
    assert [t.kind for t in terms] == ["task", "logit", "attention"]
    with pytest.raises(UnknownNameError, match="did you mean 'amad_kl'"):
        parse_method("x", {"amad_kll": 1.0})
    with pytest.raises(ConfigError, match="needs a weight"):
        parse_method("x", {"amad_kl": {"tau": 1.0}})


def test_auto_weights_and_ratio_parse_for_attention_terms_only():
    (_, amad) = parse_method("m", {"task": 1.0, "amad_kl": {"weight": "auto", "ratio": 0.5, "tau": 0.1}})
    assert amad.auto and amad.ratio == 0.5 and amad.options == {"tau": 0.1}
    with pytest.raises(ConfigError, match="balances attention terms only"):
        parse_method("m", {"task": 1.0, "logit_kd": {"weight": "auto"}})
    with pytest.raises(ConfigError, match="ratio only applies with weight: auto"):
        parse_method("m", {"task": 1.0, "amad_kl": {"weight": 1.0, "ratio": 2.0}})
    with pytest.raises(ConfigError, match="ratio must be > 0"):
        parse_method("m", {"task": 1.0, "amad_kl": {"weight": "auto", "ratio": 0}})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"amad_kl": {"weight": 1.0, "tua": 1.0}},
            r"unknown option distill\.methods\.m\.amad_kl\.tua \(did you mean 'tau'",
        ),
        ({"amad_kl": {"weight": 1.0, "tau": "abc"}}, r"amad_kl\.tau must be a finite number, got 'abc'"),
        ({"amad_kl": {"weight": 1.0, "tau": 0}}, "tau must be > 0"),
        ({"amad_kl": {"weight": 1.0, "reduction": "mean"}}, "reduction must be 'per_head'"),
        ({"amad_kl": {"weight": "abc"}}, "weight must be a finite number"),
        ({"amad_kl": {"weight": float("nan")}}, "weight must be a finite number"),
        ({"logit_kd": {"weight": 1.0, "temperature": 0}}, "must be > 0"),
        ({"one_to_one_kl": {"weight": 1.0, "teacher_heads": "last"}}, "teacher_heads must be first, strided, auto"),
    ],
)
def test_bad_options_fail_at_parse_time(spec, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_method("m", {"task": 1.0, **spec})
    assert "\n" not in str(err.value)


def test_yaml_1_1_numbers_written_as_strings_are_accepted():
    (_, term) = parse_method("m", {"task": 1.0, "amad_kl": {"weight": "1e-3", "tau": "5e-1"}})
    assert term.weight == 0.001 and term.options["tau"] == 0.5


def test_one_to_one_pairings():
    assert one_to_one_heads("auto", 4, 4, from_teacher=False) is None  # identity
    assert one_to_one_heads("auto", 4, 8, from_teacher=False) == [0, 1, 2, 3]  # the paper's "first Hs"
    assert one_to_one_heads("auto", 4, 8, from_teacher=True) == [0, 2, 4, 6]  # the groups init: teacher built
    assert one_to_one_heads("strided", 2, 8, from_teacher=False) == [0, 4]
    assert one_to_one_heads([7, 1], 2, 8, from_teacher=False) == [7, 1]
    with pytest.raises(ConfigError, match="multiple of the student's 3"):
        one_to_one_heads("strided", 3, 8, from_teacher=False)


def test_plan_maps_every_kind_uniformly():
    teacher, student, _ = _pair()
    plan = plan_capture(student, teacher, ("encoder_self", "decoder_self", "cross"), "uniform")
    assert plan.pairs == (("encoder_self", 0, 1), ("decoder_self", 0, 1), ("cross", 0, 1))
    assert plan.student_heads["cross"] == 2 and plan.teacher_heads["cross"] == 4
    with pytest.raises(ConfigError, match=r"vision_self.*does not exist"):
        plan_capture(student, teacher, ("vision_self",), "uniform")


@pytest.mark.parametrize(
    "method",
    [
        {"task": 1.0, "logit_kd": {"weight": 1.0, "temperature": 2.0}, "amad_kl": {"weight": 1.0, "tau": 1.0}},
        {"task": 1.0, "one_to_one_kl": 1.0},
        {"task": 1.0, "head_mean_kl": 1.0},
        {"task": 1.0, "amad_token_kl": 1.0, "amad_l2": 1.0},
    ],
)
def test_step_parts_and_gradients(method):
    teacher, student, batch = _pair()
    terms = parse_method("m", method)
    plan = plan_capture(student, teacher, ("encoder_self", "decoder_self", "cross"), "uniform")
    result = distill_step(student, teacher, batch, terms, plan)
    assert set(result.parts) == {t.name for t in terms}
    assert all(torch.isfinite(v) for v in result.parts.values())
    # The total weighs each term as a step that computes that term alone would (weight 1 there).
    alone = [distill_step(student, teacher, batch, (Term(t.name, 1.0, t.options),), plan).total for t in terms]
    assert torch.allclose(result.total, sum(t.weight * a for t, a in zip(terms, alone)))
    result.total.backward()
    assert all(p.grad is not None for p in student.parameters() if p.requires_grad and p.dim() > 1)
    assert all(p.grad is None for p in teacher.parameters())


def test_attention_term_changes_the_gradient():
    teacher, student, batch = _pair()
    plan = plan_capture(student, teacher, ("encoder_self",), "uniform")
    grads = []
    for method in ({"task": 1.0}, {"task": 1.0, "amad_kl": 1.0}):
        student.zero_grad()
        distill_step(student, teacher, batch, parse_method("m", method), plan).total.backward()
        q = student.model.encoder.block[0].layer[0].SelfAttention.q.weight
        grads.append(q.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_alignment_stats_shapes_and_entropy_bounds():
    teacher, student, batch = _pair()
    terms = parse_method("m", {"task": 1.0, "amad_kl": {"weight": 1.0, "tau": 0.5}})
    plan = plan_capture(student, teacher, ("encoder_self", "cross"), "uniform")
    stats = alignment_stats(distill_step(student, teacher, batch, terms, plan), terms, plan)
    assert stats["encoder_self/0"].shape == (4, 2)
    assert torch.allclose(stats["cross/0"].sum(-1), torch.ones(4))
    assert 0.0 <= stats["entropy"].item() <= torch.log(torch.tensor(2.0)).item() + 1e-6


def test_none_method_never_calls_the_teacher():
    _, student, batch = _pair()
    result = distill_step(
        student, None, batch, parse_method("none", {"task": 1.0}), plan_capture(student, None, (), "uniform")
    )
    assert set(result.parts) == {"task"}
    with pytest.raises(ConfigError, match="no teacher"):
        distill_step(
            student,
            None,
            batch,
            parse_method("l", {"task": 1.0, "logit_kd": 1.0}),
            plan_capture(student, None, (), "uniform"),
        )


@pytest.mark.parametrize("term", ["amad_kl", "one_to_one_kl", "amad_l2", "amad_token_kl", "head_mean_kl"])
def test_layers_scored_together_equal_the_mean_over_layers(monkeypatch, term):
    """Layer pairs of one kind are concatenated along the batch; the parts and gradients equal pair-by-pair scoring."""
    import amad.training.step as step_module

    tok = make_tokenizer()
    size = TINY_VLT5 | {"feat_dim": 16, "n_boxes": 4, "num_layers": 2, "num_decoder_layers": 2}
    torch.manual_seed(0)
    teacher = build_model("vlt5", "vqa", size | {"num_heads": 4}, tok).eval()
    student = build_model("vlt5", "vqa", size | {"num_heads": 2}, tok)
    examples = [
        Example("q1", "1", "what color is the circle ?", "red", ["red"] * 10, 1.0, "other"),
        Example("q2", "2", "how many shapes are left of the big square ?", "two blue", ["two blue"] * 10, 1.0, "o"),
    ]
    batch = student.collate(examples, FakeFeatures(4, 16), train=True)  # padded questions and answers
    assert not batch.attention_mask.all()
    terms = parse_method("m", {"task": 1.0, term: 1.0})
    plan = plan_capture(student, teacher, ("encoder_self", "decoder_self", "cross"), "uniform")
    assert len(plan.pairs) == 6
    results = {}
    for limit in (step_module.STACK_ENTRIES, 0):  # 0: every pair alone
        monkeypatch.setattr(step_module, "STACK_ENTRIES", limit)
        student.zero_grad()
        result = distill_step(student, teacher, batch, terms, plan)
        if limit:
            stacks = step_module._stacks(result.teacher_maps, plan)
            assert [len(layers) for _, layers in stacks] == [2, 2, 2]
        result.total.backward()
        results[limit] = (result.parts[term].detach(), [p.grad.clone() for p in student.parameters()])
    (v_stacked, g_stacked), (v_alone, g_alone) = results.values()
    sm, tm = result.student_maps, result.teacher_maps
    direct = []
    for k, s, t in plan.pairs:
        options = step_module._attention_options(terms[1], plan.student_heads[k], plan.teacher_heads[k], False)
        maps = (sm.probs[(k, s)], tm.probs[(k, t)])
        direct.append(losses.get(term)(*maps, query_mask=sm.query_mask.get(k), key_mask=sm.key_mask.get(k), **options))
    torch.testing.assert_close(v_alone, torch.stack(direct).mean().detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(v_stacked, v_alone, rtol=1e-5, atol=1e-7)
    for a, b in zip(g_stacked, g_alone):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_squeezing_heads_gets_the_teacher_value_circuits():
    """SHD's closed-form merge weight needs each teacher head's V_i W_O^i: the step captures and passes them, so the
    loss is the one computed from those circuits, not the α = 1/2 fallback (which equals head_mean_kl)."""
    teacher, student, batch = _pair()
    kinds = ("encoder_self", "decoder_self", "cross")
    plan = plan_capture(student, teacher, kinds, "uniform")
    shd = distill_step(student, teacher, batch, parse_method("m", {"task": 1.0, "squeezing_heads_kl": 1.0}), plan)
    assert set(shd.teacher_maps.values) == set(shd.teacher_maps.probs) and not shd.student_maps.values
    by_hand, half = 0.0, 0.0
    for kind, s_layer, t_layer in plan.pairs:
        s, t = shd.student_maps.probs[(kind, s_layer)], shd.teacher_maps.probs[(kind, t_layer)]
        masks = {"query_mask": shd.student_maps.query_mask.get(kind), "key_mask": shd.student_maps.key_mask.get(kind)}
        x = shd.teacher_maps.values[(kind, t_layer)]  # (B, Ht, K, D)
        by_hand += losses.squeezing_heads_kl(s, t, teacher_values=x, **masks) / len(plan.pairs)
        half += losses.squeezing_heads_kl(s, t, **masks) / len(plan.pairs)
    torch.testing.assert_close(shd.parts["squeezing_heads_kl"], by_hand)
    assert not torch.allclose(shd.parts["squeezing_heads_kl"], half)
    mean = distill_step(student, teacher, batch, parse_method("m", {"task": 1.0, "head_mean_kl": 1.0}), plan)
    torch.testing.assert_close(half, mean.parts["head_mean_kl"])
    assert not mean.teacher_maps.values  # only terms that take values make the teacher record them
