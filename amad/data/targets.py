"""VQA training targets per family recipe: which answer(s) a question trains on at a given step.

* ``top``: the example's own ``target`` (the answer with the highest soft score) weighted by its score, every step.
  The mini default.
* ``sample`` (VL-T5, ``vqa_data.py``): every step draws one answer of ``answer_scores`` with probability
  proportional to its score, and weights the loss by that score. VL-T5's Karpathy files carry LXMERT's ``label``
  (normalised answers of the 3,129-answer vocabulary), so the draw never leaves the vocabulary. A question with no
  scored answer keeps its top answer at weight 0, as VL-T5 trains on "" with score 0 (no loss either way).
* ``all`` (BLIP, ``vqa_dataset.py`` / ``blip_vqa.py``): a question trains on every distinct human answer at once,
  weighted by count / n (n = the number of answers); the model's loss sums the weighted answers of a question and
  averages over questions (BLIP's ``loss.sum() / batch size``).
* ``recipe``: the family's own (``RECIPES``).

Draws are seeded per (seed, epoch, example index), so a run gives the same targets whatever its batch size,
number of ranks or DataLoader workers, and after a resume.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

import numpy as np

from amad.data.formats.vqa import answer_scores
from amad.errors import ConfigError
from amad.types import Example

TARGET_MODES = ("top", "sample", "all", "recipe")
RECIPES = {"vlt5": "sample", "blip": "all"}
TARGET_STREAM = 1  # the RNG stream of target draws (augmentation draws from its own)


def resolve_mode(mode: str, family: str) -> str:
    """``recipe`` -> the family's recipe; other modes are returned as they are (after a check)."""
    if mode not in TARGET_MODES:
        raise ConfigError(f"vqa_targets must be one of {', '.join(TARGET_MODES)}, got {mode!r}")
    if mode != "recipe":
        return mode
    if family not in RECIPES:
        raise ConfigError(f"vqa_targets recipe: no VQA recipe for family {family!r}; choose top, sample or all")
    return RECIPES[family]


def all_answers(answers: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """Every distinct answer (stripped, in order of first appearance) with weight count / n (BLIP's weights);
    ``answers`` must not be empty."""
    counts = Counter(a.strip() for a in answers)
    return tuple((a, counts[a] / len(answers)) for a in counts)


def sample_answer(scores: Sequence[tuple[str, float]], rng: np.random.Generator) -> tuple[str, float] | None:
    """One (answer, score) drawn with probability score / sum(scores); None when no answer has a score."""
    weights = np.asarray([s for _, s in scores], dtype=np.float64)  # (A,)
    total = weights.sum()
    if not len(scores) or total <= 0:
        return None
    return scores[int(rng.choice(len(scores), p=weights / total))]


def example_rng(seed: int, epoch: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one example in one epoch, for one purpose (``stream``)."""
    return np.random.default_rng([seed, epoch, index, stream])


def training_targets(
    examples: Sequence[Example], indices: Sequence[int], mode: str, *, seed: int, epoch: int
) -> list[Example]:
    """The examples with this step's training targets (``mode``: top, sample or all, after :func:`resolve_mode`).

    Args:
        indices: each example's index in the training set (the draw's seed).
    """
    if mode == "top":
        return list(examples)
    out = []
    for example, index in zip(examples, indices, strict=True):
        if mode == "all":
            targets = all_answers(example.references) if example.references else ()
            out.append(dataclasses.replace(example, targets=targets))
            continue
        scores = example.answer_scores
        if scores is None:  # not given by the loader: the soft scores of the human answers
            scores = answer_scores(example.references)
        drawn = sample_answer(scores, example_rng(seed, epoch, index, TARGET_STREAM))
        target, weight = drawn if drawn is not None else (example.target, 0.0)
        out.append(dataclasses.replace(example, target=target, target_weight=weight))
    return out
