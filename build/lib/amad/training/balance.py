"""Gradient balance between the task and the attention terms: calibrated weights and per-step diagnostics.

Why: a weight of 1.0 means different things for different attention losses. AMAD sums over teacher heads,
one-to-one over student heads, and their gradients scale with map sharpness, so "weight 1" can swamp the task
for one method and barely touch it for another (issue 12, section 5). Two tools make the strength visible and,
when asked, equal:

- :func:`calibrate` (``weight: auto``): on the first batch, λ = ratio · ‖∇θ L_task‖ / ‖∇θ L_term‖ for each
  attention term, so ‖∇θ λ·L_term‖ = ratio · ‖∇θ L_task‖. The same rule for every method.
- :func:`gradient_ratio`: ‖∇θ Σ λ·L_attn‖ / ‖∇θ w·L_task‖ for the current step, logged every ``log_every`` steps.

Both take gradients with ``torch.autograd.grad`` on a graph that the caller still backpropagates, so they never
touch ``.grad``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from amad.errors import TrainingError
from amad.models.base import DistillModel
from amad.training.step import CapturePlan, StepResult, distill_step
from amad.training.terms import TASK_TERM, Term
from amad.types import Batch


def grad_norm(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> float:
    """‖∇θ loss‖₂ over ``params`` (0 when the loss does not depend on them); keeps the graph."""
    if not loss.requires_grad:
        return 0.0
    grads = torch.autograd.grad(loss, list(params), retain_graph=True, allow_unused=True)
    norms = [g.detach().float().norm() for g in grads if g is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def _trainable(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def gradient_ratio(model: torch.nn.Module, result: StepResult, terms: Sequence[Term]) -> float | None:
    """‖∇θ Σ_attention weight·part‖ / ‖∇θ task_weight·task‖ for one step's result; None without attention terms."""
    attention = [t for t in terms if t.is_attention and t.name in result.parts]
    task = next((t for t in terms if t.name == TASK_TERM), None)
    if not attention or task is None or task.weight == 0:
        return None
    params = _trainable(model)
    attn_total = sum(t.weight * result.parts[t.name] for t in attention)
    task_norm = grad_norm(task.weight * result.parts[TASK_TERM], params)
    return grad_norm(attn_total, params) / task_norm if task_norm > 0 else float("inf")


def calibrate(
    student: DistillModel,
    teacher: DistillModel | None,
    batch: Batch,
    terms: tuple[Term, ...],
    plan: CapturePlan,
) -> tuple[tuple[Term, ...], dict[str, float]]:
    """Weights for the ``auto`` terms from one batch; returns the updated terms and {term: λ}.

    The forward pass runs with the RNG state forked, so calibrating does not shift the dropout masks of the
    steps that follow (runs of different methods with one seed stay paired).
    """
    auto = [t for t in terms if t.auto]
    if not auto:
        return terms, {}
    with torch.random.fork_rng(devices=[]):
        result = distill_step(student, teacher, batch, terms, plan)
        params = _trainable(student)
        task_norm = grad_norm(result.parts[TASK_TERM], params)
        weights = {}
        for term in auto:
            term_norm = grad_norm(result.parts[term.name], params)
            if not (term_norm > 0 and task_norm > 0):
                raise TrainingError(
                    f"cannot calibrate {term.name} (weight: auto): its gradient norm is {term_norm:.3g} and the "
                    f"task's {task_norm:.3g} on the first batch; give the term a number as its weight"
                )
            weights[term.name] = term.ratio * task_norm / term_norm
    return tuple(t.with_weight(weights[t.name]) if t.auto else t for t in terms), weights
