"""Model selection on the validation split (``TrainConfig.select_on_val``), as VL-T5 and BLIP keep their best epoch.

The training loop scores the model on validation data every ``eval_every`` optimizer steps (or after every epoch)
and at the last step, keeps a CPU copy of the weights that scored best, and ends with those weights. The record of
scores travels in the resume checkpoint (with the best weights), and the evaluations after the checkpoint are
replayed on resume; a validation never draws from the training RNG streams, so a resumed run selects the same step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Selection:
    """The validation scores so far, the best one's step, and a CPU copy of its weights."""

    best_step: int = 0
    best_score: float = -math.inf
    history: list[tuple[int, float]] = field(default_factory=list)
    weights: dict[str, torch.Tensor] | None = None

    def update(self, step: int, score: float, model: torch.nn.Module) -> bool:
        """Record ``score`` of the weights at ``step``; keep them when they beat the best (ties keep the earlier)."""
        self.history.append((step, float(score)))
        if not score > self.best_score:
            return False
        self.best_step, self.best_score = step, float(score)
        self.weights = {name: value.detach().to("cpu", copy=True) for name, value in model.state_dict().items()}
        return True

    def state(self) -> dict[str, Any]:
        """What a resume checkpoint keeps."""
        return {
            "best_step": self.best_step,
            "best_score": self.best_score,
            "history": list(self.history),
            "weights": self.weights,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any] | None) -> Selection:
        if not state:
            return cls()
        return cls(state["best_step"], state["best_score"], [tuple(h) for h in state["history"]], state["weights"])

    def summary(self, metric: str, eval_every: int | None) -> dict[str, Any]:
        """The run record's ``selection``: the metric, the step whose weights were kept, its score, every score."""
        return {
            "metric": metric,
            "selected_step": self.best_step,
            "score": self.best_score,
            "every": "epoch" if eval_every is None else f"{eval_every} steps",
            "history": [[step, score] for step, score in self.history],
        }


def evaluation_due(
    step: int, micro: int, previous_micro: int, micro_per_epoch: int, total_steps: int, eval_every: int | None
) -> bool:
    """Whether optimizer step ``step`` (which ended on micro-batch ``micro``; the step before ended on
    ``previous_micro``) is scored: every ``eval_every`` steps, or the first step after each epoch ends; always at
    the last step."""
    if step == total_steps:
        return True
    if eval_every is not None:
        return step % eval_every == 0
    return (micro + 1) // micro_per_epoch > (previous_micro + 1) // micro_per_epoch
