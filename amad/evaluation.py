"""Generate predictions for a task's test examples and score them with the task's official metrics."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch

from amad.data.batches import iterate
from amad.errors import DataError
from amad.models.base import DistillModel
from amad.progress import Progress
from amad.types import Example

log = logging.getLogger(__name__)

HEADLINE = {"vqa": "accuracy", "caption": "CIDEr", "translation": "BLEU/test2016"}
CAPTION_NAMES = {
    "Bleu_1": "BLEU-1",
    "Bleu_2": "BLEU-2",
    "Bleu_3": "BLEU-3",
    "Bleu_4": "BLEU-4",
    "METEOR": "METEOR",
    "ROUGE_L": "ROUGE-L",
    "CIDEr": "CIDEr",
    "SPICE": "SPICE",
}


@torch.no_grad()
def predict(
    model: DistillModel,
    examples: Sequence[Example],
    visual: Any,
    *,
    batch_size: int,
    num_beams: int,
    max_new_tokens: int,
    progress: bool = True,
    desc: str = "predict",
    answers: Sequence[str] | None = None,
    rank_k: int = 128,
    min_length: int | None = None,
    max_length: int | None = None,
    num_workers: int = 0,
) -> dict[str, str]:
    """uid -> predicted string, in batches, with the model in eval mode.

    Generates by default; with ``answers`` (VQA) it ranks them instead (``model.rank_answers``, BLIP's recipe).
    ``min_length`` / ``max_length`` count the decoder's prefix (``amad.models.base.generation_lengths``);
    ``max_length`` replaces ``max_new_tokens``. ``num_workers`` > 0 collates batches in that many DataLoader
    worker processes.
    """
    if not examples:
        raise DataError("no evaluation examples: check the data stage outputs and data.* sizes in params.yaml")
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, str] = {}
    n_batches = (len(examples) + batch_size - 1) // batch_size
    bar = Progress(n_batches, desc, every=max(1, n_batches // 5), enabled=progress)
    chunks = [list(examples[start : start + batch_size]) for start in range(0, len(examples), batch_size)]

    def collate(i: int):
        return model.collate(chunks[i], visual, train=False)

    for chunk, batch in zip(chunks, iterate(collate, range(len(chunks)), num_workers), strict=True):
        batch = batch.to(device)
        if answers is not None:
            texts = model.rank_answers(batch, answers, rank_k)
        else:
            lengths = {k: v for k, v in (("min_length", min_length), ("max_length", max_length)) if v is not None}
            texts = model.generate(batch, num_beams=num_beams, max_new_tokens=max_new_tokens, **lengths)
        for example, text in zip(chunk, texts, strict=True):
            out[example.uid] = text
        bar.update(1)
    bar.close()
    return out


def _by_frequency(counts: Counter) -> list[str]:
    """The answers of ``counts``, most frequent first, ties by text."""
    return sorted(counts, key=lambda answer: (-counts[answer], answer))


def answer_list(examples: Sequence[Example], size: int) -> list[str]:
    """The ``size`` most frequent training targets (ties by text): the candidate answers of rank inference.

    BLIP ranks a fixed list of the 3,128 most frequent VQA answers; this builds the same kind of list from the
    training split the teacher and students learned from.
    """
    ranked = _by_frequency(Counter(ex.target for ex in examples))
    if not ranked:
        raise DataError("no training answers to rank: check the VQA training split of the data stage")
    return ranked[:size]


def _question_key(question: str) -> str:
    return " ".join(question.lower().replace("?", " ").split())


def question_prior(train: Sequence[Example], test: Sequence[Example]) -> dict[str, str]:
    """A blind VQA baseline: test uid -> the most frequent training answer to the same question.

    Questions match after lower-casing and dropping '?' and extra spaces; a question never asked in training gets
    the most frequent training answer overall. Ties break by answer text. It never sees the image, so a model that
    does not beat it answers from the question alone.
    """
    if not train:
        raise DataError("no training answers for the question prior: check the VQA training split of the data stage")
    by_question: dict[str, Counter] = {}
    for ex in train:
        by_question.setdefault(_question_key(ex.source), Counter())[ex.target] += 1
    top = {question: _by_frequency(counts)[0] for question, counts in by_question.items()}
    fallback = _by_frequency(Counter(ex.target for ex in train))[0]
    return {ex.uid: top.get(_question_key(ex.source), fallback) for ex in test}


def score(
    task: str,
    examples: Sequence[Example],
    predictions: dict[str, str],
    split_name: str = "",
    meteor: Any = True,
) -> dict:
    """The task's metrics for ``predictions`` (uid -> text) against the examples' references.

    ``meteor`` (captions): True starts METEOR's JVM for this call; pass a running
    :class:`amad.metrics.MeteorScorer` to reuse one (the evaluate stage starts it early).
    """
    from amad import metrics

    if task == "vqa":
        answers = {ex.uid: list(ex.references) for ex in examples}
        types = {ex.uid: ex.answer_type for ex in examples if ex.answer_type}
        result = metrics.vqa_accuracy(predictions, answers, types or None)
        return {("accuracy" if k == "overall" else f"accuracy/{k}"): v for k, v in result.items()}
    if task == "caption":
        refs = {ex.uid: list(ex.references) for ex in examples}
        result = metrics.caption_metrics(predictions, refs, meteor=meteor)
        return {CAPTION_NAMES[k]: v for k, v in result.items() if k in CAPTION_NAMES}
    if task == "translation":
        hyps = [predictions[ex.uid] for ex in examples]
        refs = [ex.references[0] for ex in examples]
        result = metrics.translation_metrics(hyps, refs)
        suffix = f"/{split_name}" if split_name else ""
        return {
            f"BLEU{suffix}": result["bleu"],
            f"BLEU-lc{suffix}": result["bleu_lc"],
            f"signature{suffix}": result["signature"],
        }
    raise DataError(f"unknown task {task!r}: expected vqa, caption or translation")


def frequent_caption(train: Sequence[Example], test: Sequence[Example]) -> dict[str, str]:
    """The blind caption baseline: the training set's most frequent caption, given to every test image."""
    counts = Counter(ex.target for ex in train if ex.target)
    if not counts:
        raise DataError("the frequent-caption baseline needs training captions: the training split is empty")
    caption = _by_frequency(counts)[0]
    return {ex.uid: caption for ex in test}


def copy_source(test: Sequence[Example]) -> dict[str, str]:
    """The blind translation baseline: the English source returned as the German output (names, numbers and
    loanwords still match)."""
    return {ex.uid: ex.source for ex in test}


@torch.no_grad()
def coverage(
    student: DistillModel,
    teacher: DistillModel,
    examples: Sequence[Example],
    visual: Any,
    pairs: Sequence[tuple[str, int, int]],
    *,
    batch_size: int = 32,
) -> dict[str, list[float]]:
    """Per (kind, student layer, teacher layer) pair, the coverage KL of every teacher head on ``examples``.

    See :func:`amad.diagnostics.head_coverage`: for each teacher head, the mean-row KL to the student head that
    reproduces it best, averaged over the examples. Keys are ``"<kind>/<student layer>/<teacher layer>"``.
    """
    from amad.capture import CaptureSpec
    from amad.diagnostics import coverage_from_sums, head_kl_sums

    student.eval()
    teacher.eval()
    device = next(student.parameters()).device
    s_spec = CaptureSpec(layers={k: sorted({s for kk, s, _ in pairs if kk == k}) for k, _, _ in pairs})
    t_spec = CaptureSpec(layers={k: sorted({t for kk, _, t in pairs if kk == k}) for k, _, _ in pairs})
    sums: dict[tuple[str, int, int], torch.Tensor] = {}
    counts: dict[tuple[str, int, int], int] = {}
    for start in range(0, len(examples), batch_size):
        batch = student.collate(list(examples[start : start + batch_size]), visual, train=True).to(device)
        s_maps = student(batch, capture=s_spec).attentions
        t_maps = teacher(batch, capture=t_spec).attentions
        for kind, s_layer, t_layer in pairs:
            part, n = head_kl_sums(
                s_maps.probs[(kind, s_layer)],
                t_maps.probs[(kind, t_layer)],
                query_mask=s_maps.query_mask.get(kind),
                key_mask=s_maps.key_mask.get(kind),
            )
            key = (kind, s_layer, t_layer)
            sums[key] = sums.get(key, 0) + part
            counts[key] = counts.get(key, 0) + n
    return {f"{k}/{s}/{t}": coverage_from_sums(sums[(k, s, t)], counts[(k, s, t)])[0].tolist() for k, s, t in sums}
