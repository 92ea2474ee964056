"""One distillation step: student forward, frozen teacher forward, and the named loss parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch

from amad import losses
from amad.capture import CaptureSpec
from amad.capture.mapping import map_layers
from amad.errors import ConfigError
from amad.models.base import DistillModel
from amad.training.terms import TASK_TERM, Term, attention_terms, needs_teacher
from amad.types import AttentionMaps, Batch

AMAD_ALIGNED = ("amad_kl", "amad_l2", "amad_token_kl")


@dataclass(frozen=True)
class CapturePlan:
    """Which (kind, student layer, teacher layer) triples the attention terms compare.

    ``check_rows``: whether captures check that every map row sums to 1. The training loop checks its first step
    and then runs with ``dataclasses.replace(plan, check_rows=False)``.
    ``student_from_teacher``: the student was initialised from the teacher's layers (``init: teacher``), so its
    head j holds teacher heads j·r .. j·r + r − 1 (r = Ht/Hs); one-to-one losses then pair head j with teacher
    head j·r by default (see :func:`one_to_one_heads`).
    """

    pairs: tuple[tuple[str, int, int], ...] = ()
    student_heads: dict[str, int] = field(default_factory=dict)
    teacher_heads: dict[str, int] = field(default_factory=dict)
    check_rows: bool = True
    student_from_teacher: bool = False

    @cached_property
    def student_spec(self) -> CaptureSpec | None:
        return _spec([(k, s) for k, s, _ in self.pairs], self.check_rows)

    @cached_property
    def teacher_spec(self) -> CaptureSpec | None:
        return _spec([(k, t) for k, _, t in self.pairs], self.check_rows)

    @cached_property
    def teacher_values_spec(self) -> CaptureSpec | None:
        """The teacher spec that also records value circuits, for terms that take them (``takes_values``)."""
        return _spec([(k, t) for k, _, t in self.pairs], self.check_rows, values=True)


def _spec(items: list[tuple[str, int]], check_rows: bool, values: bool = False) -> CaptureSpec | None:
    if not items:
        return None
    layers: dict[str, list[int]] = {}
    for kind, layer in items:
        layers.setdefault(kind, [])
        if layer not in layers[kind]:
            layers[kind].append(layer)
    return CaptureSpec(layers=layers, check_rows=check_rows, values=values)


def plan_capture(
    student: DistillModel,
    teacher: DistillModel | None,
    kinds: tuple[str, ...],
    layer_map: str,
    pairs: list[tuple[int, int]] | None = None,
    student_from_teacher: bool = False,
) -> CapturePlan:
    """Map student layers to teacher layers for every requested attention kind."""
    if teacher is None or not kinds:
        return CapturePlan()
    s_layout, t_layout = student.attention_layout(), teacher.attention_layout()
    triples = []
    for kind in kinds:
        for name, layout in (("student", s_layout), ("teacher", t_layout)):
            if kind not in layout:
                raise ConfigError(
                    f"attention kind {kind!r} does not exist in the {name} ({student.family}); "
                    f"it has {', '.join(sorted(layout))}: fix distill.kinds.{student.family}"
                )
        for s_layer, t_layer in map_layers(layer_map, t_layout[kind][0], s_layout[kind][0], pairs=pairs):
            triples.append((kind, s_layer, t_layer))
    return CapturePlan(
        pairs=tuple(triples),
        student_heads={k: s_layout[k][1] for k in kinds},
        teacher_heads={k: t_layout[k][1] for k in kinds},
        student_from_teacher=student_from_teacher,
    )


def one_to_one_heads(choice: Any, student_heads: int, teacher_heads: int, from_teacher: bool) -> list[int] | None:
    """The teacher head π(j) each student head j learns from in a one-to-one loss (None = the identity).

    "first": the first Hs teacher heads (the paper's baseline: the others are left behind). "strided": heads
    0, r, 2r, ... with r = Ht / Hs, the first of the group each student head is built from under ``init: teacher``.
    "auto" (the default): the identity for equal counts, "strided" for a student built from the teacher,
    "first" otherwise. A list gives π explicitly.
    """
    if isinstance(choice, (list, tuple)):
        return [int(i) for i in choice]
    if choice == "auto":
        choice = "strided" if from_teacher and teacher_heads % student_heads == 0 else "first"
    if teacher_heads == student_heads:
        return None
    if choice == "strided":
        if teacher_heads % student_heads:
            raise ConfigError(
                f"teacher_heads 'strided' needs the teacher's {teacher_heads} heads to be a multiple of the "
                f"student's {student_heads}: use 'first' or a list of teacher head indices"
            )
        return list(range(0, teacher_heads, teacher_heads // student_heads))
    return list(range(student_heads))


def _attention_options(term: Term, student_heads: int, teacher_heads: int, from_teacher: bool) -> dict:
    options = dict(term.options)
    if "teacher_heads" in losses.get(term.name).options:
        choice = options.pop("teacher_heads", "auto")
        options["teacher_heads"] = one_to_one_heads(choice, student_heads, teacher_heads, from_teacher)
    return options


@dataclass
class StepResult:
    total: torch.Tensor
    parts: dict[str, torch.Tensor]
    student_maps: AttentionMaps
    teacher_maps: AttentionMaps


def distill_step(
    student: DistillModel,
    teacher: DistillModel | None,
    batch: Batch,
    terms: tuple[Term, ...],
    plan: CapturePlan,
) -> StepResult:
    """Compute every unweighted loss part and their weighted total for one batch."""
    attn_terms = attention_terms(terms)
    s_out = student(batch, capture=plan.student_spec if attn_terms else None)
    parts: dict[str, torch.Tensor] = {TASK_TERM: s_out.loss}
    t_maps = AttentionMaps()
    if needs_teacher(terms):
        if teacher is None:
            raise ConfigError("this method distils from a teacher, but no teacher was given")
        values = any(losses.get(t.name).takes_values for t in attn_terms)
        spec = plan.teacher_values_spec if values else plan.teacher_spec
        with torch.no_grad():
            t_out = teacher(batch, capture=spec if attn_terms else None)
        t_maps = t_out.attentions
        for term in terms:
            if term.kind == "logit":
                with _no_autocast(s_out.logits.device.type):
                    parts[term.name] = losses.get(term.name)(
                        s_out.logits.float(), t_out.logits.float(), mask=s_out.target_mask, **term.options
                    )
    with _no_autocast(s_out.logits.device.type):
        _attention_parts(parts, s_out.attentions, t_maps, attn_terms, plan)
    total = sum(t.weight * parts[t.name] for t in terms if t.name in parts)
    return StepResult(total=total, parts=parts, student_maps=s_out.attentions, teacher_maps=t_maps)


def _no_autocast(device_type: str):
    """Losses run in float32 outside autocast (they upcast half inputs themselves)."""
    return torch.autocast(device_type=device_type, enabled=False)


# Layer pairs of one kind share shapes and masks, so their maps are concatenated along the batch and scored in one
# call while the teacher maps of that call stay under this many entries (a 256 MiB float32 copy); beyond that each
# pair is scored alone. On a GPU the small maps of VL-T5 or BLIP's text are launch-bound, pair by pair.
STACK_ENTRIES = 1 << 26


def _attention_parts(
    parts: dict[str, torch.Tensor],
    s_maps: AttentionMaps,
    t_maps: AttentionMaps,
    attn_terms: tuple[Term, ...],
    plan: CapturePlan,
) -> None:
    """Each attention term's mean over every (kind, student layer, teacher layer) pair of the plan.

    Every attention loss is a mean over samples, and the layers of one kind share their masks, so the loss of
    layers concatenated along the batch equals the mean of their per-layer losses.
    """
    if not attn_terms:
        return
    inputs = []  # built once, shared by every attention term
    for kind, layers in _stacks(t_maps, plan):
        s = _stack([s_maps.probs[(kind, s_layer)] for s_layer, _ in layers])  # (L·B, Hs, Q, K)
        t = _stack([t_maps.probs[(kind, t_layer)] for _, t_layer in layers])  # (L·B, Ht, Q, K)
        x = None  # (L·B, Ht, K, D) teacher value circuits, when captured
        if all((kind, t_layer) in t_maps.values for _, t_layer in layers):
            x = _stack([t_maps.values[(kind, t_layer)] for _, t_layer in layers])
        qm, km = (_repeat(mask.get(kind), len(layers)) for mask in (s_maps.query_mask, s_maps.key_mask))
        inputs.append((kind, len(layers), s, t, x, qm, km))
    for term in attn_terms:
        fn = losses.get(term.name)
        total = 0
        for kind, n_layers, s, t, x, qm, km in inputs:
            options = _attention_options(
                term, plan.student_heads[kind], plan.teacher_heads[kind], plan.student_from_teacher
            )
            if fn.takes_values:
                options["teacher_values"] = x
            total = total + n_layers * fn(s, t, query_mask=qm, key_mask=km, **options)
        parts[term.name] = total / len(plan.pairs)  # mean over (kind, layer pair)


def _stacks(t_maps: AttentionMaps, plan: CapturePlan) -> list[tuple[str, list[tuple[int, int]]]]:
    """The plan's pairs grouped by kind into runs whose stacked teacher maps (and value circuits) stay under
    STACK_ENTRIES."""
    stacks: list[tuple[str, list[tuple[int, int]]]] = []
    for kind, s_layer, t_layer in plan.pairs:
        circuits = t_maps.values.get((kind, t_layer))  # (B, Ht, K, D) when captured: often larger than the map
        entries = t_maps.probs[(kind, t_layer)].numel() + (0 if circuits is None else circuits.numel())
        last = stacks[-1] if stacks else None
        if last and last[0] == kind and (len(last[1]) + 1) * entries <= STACK_ENTRIES:
            last[1].append((s_layer, t_layer))
        else:
            stacks.append((kind, [(s_layer, t_layer)]))
    return stacks


def _stack(maps: list[torch.Tensor]) -> torch.Tensor:
    return maps[0].float() if len(maps) == 1 else torch.cat([m.float() for m in maps])  # L x (B, H, Q, K) -> (L·B, ...)


def _repeat(mask: torch.Tensor | None, times: int) -> torch.Tensor | None:
    return mask if mask is None or times == 1 else mask.repeat(times, 1)  # (B, N) -> (L·B, N)


@torch.no_grad()
def alignment_stats(result: StepResult, terms: tuple[Term, ...], plan: CapturePlan) -> dict[str, torch.Tensor]:
    """Batch-mean AMAD alignment matrices (Ht, Hs) per (kind, student layer) and their mean entropy (nats)."""
    tau = next((t.options.get("tau", 1.0) for t in terms if t.name in AMAD_ALIGNED), None)
    if tau is None:
        return {}
    out: dict[str, torch.Tensor] = {}
    entropies = []
    for kind, s_layer, t_layer in plan.pairs:
        a = losses.alignment(
            result.student_maps.probs[(kind, s_layer)].detach(),
            result.teacher_maps.probs[(kind, t_layer)],
            tau=tau,
            query_mask=result.student_maps.query_mask.get(kind),
            key_mask=result.student_maps.key_mask.get(kind),
        )  # (B, Ht, Hs)
        entropies.append(-(a * a.clamp_min(1e-12).log()).sum(-1).mean())  # (B, Ht, Hs) -> scalar
        out[f"{kind}/{s_layer}"] = a.float().mean(0).cpu()  # (Ht, Hs)
    out["entropy"] = torch.stack(entropies).mean().cpu()
    return out
