"""VQA accuracy, computed exactly as the official VQA evaluation (GT-Vision-Lab ``vqaEval.py``) does.

Per question, with the human answers ``a_1..a_n`` (n = 10 in VQA-2.0):

    acc = mean over i of min(1, #{j != i : a_j == prediction} / 3)

i.e. ``min(1, matches / 3)`` averaged over the n leave-one-out subsets. Mini data may give any n >= 2; the
average is then over those n subsets (with n < 4 a prediction can never reach 100%, so mini converters should
repeat a single answer ten times).

The official quirk is kept: newlines/tabs are replaced and the ends stripped for every answer, but the
punctuation and digit/article/contraction rules (:mod:`amad.metrics.vqa_normalize`) are applied to the human
answers *and the prediction* only when the human answers disagree. When all human answers are identical the
raw stripped strings are compared, so "Yes" does not match ten times "yes".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from amad.errors import DataError
from amad.metrics.vqa_normalize import clean_whitespace, process_digit_article, process_punctuation

__all__ = ["vqa_accuracy", "vqa_score"]


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """Official VQA accuracy of one prediction against its human answers, in [0, 1].

    Args:
        prediction: the predicted answer string.
        answers: the human answers (10 in VQA-2.0; at least 2).

    Returns:
        min(1, matches / 3) averaged over the leave-one-out subsets of ``answers``.
    """
    gts = [clean_whitespace(answer) for answer in answers]
    pred = clean_whitespace(prediction)
    if len(set(gts)) > 1:
        gts = [process_digit_article(process_punctuation(answer)) for answer in gts]
        pred = process_digit_article(process_punctuation(pred))
    matches = sum(answer == pred for answer in gts)
    total = 0.0
    for answer in gts:
        # Leaving answer i out removes one match exactly when answer i itself matches.
        others_matching = matches - (answer == pred)
        total += min(1.0, others_matching / 3)
    return total / len(gts)


def vqa_accuracy(
    predictions: Mapping[object, str],
    answers: Mapping[object, Sequence[str]],
    answer_types: Mapping[object, str] | None = None,
) -> dict[str, float]:
    """Official VQA accuracy over a set of questions.

    Question ids are matched by ``str(id)``, so ``42`` and ``"42"`` are the same question.

    Args:
        predictions: question id -> predicted answer.
        answers: question id -> its human answers; must cover exactly the predicted questions.
        answer_types: optional question id -> answer type ("yes/no", "number", "other").

    Returns:
        ``{"overall": percent}`` plus ``{answer_type: percent}`` for each type when ``answer_types`` is given.
        Values are unrounded (the official script rounds to 2 decimals for display).

    Raises:
        DataError: no predictions; a prediction without annotations; annotated questions without a
            prediction; fewer than 2 human answers; a non-string answer; a question without an answer type.
    """
    preds = _keyed(predictions, "predictions")
    gts = {str(qid): list(values) for qid, values in answers.items()}
    _check_ids(preds, gts)
    types = None
    if answer_types is not None:
        types = {str(qid): value for qid, value in answer_types.items()}
        missing = [qid for qid in preds if qid not in types]
        if missing:
            raise DataError(
                f"{len(missing)} predicted questions have no answer type (e.g. question {missing[0]}): "
                "pass answer_types for every question or none at all"
            )

    scores: dict[str, float] = {}
    for qid, pred in preds.items():
        human = gts[qid]
        if len(human) < 2 or not all(isinstance(answer, str) for answer in human):
            raise DataError(
                f"question {qid} has {len(human)} human answers or a non-string one: VQA accuracy needs at least "
                "2 answer strings per question (VQA-2.0 has 10; repeat a single mini-data answer 10 times)"
            )
        scores[qid] = vqa_score(pred, human)

    result = {"overall": 100.0 * sum(scores.values()) / len(scores)}
    if types is not None:
        by_type: dict[str, list[float]] = {}
        for qid, score in scores.items():
            by_type.setdefault(str(types[qid]), []).append(score)
        for name in sorted(by_type):
            result[name] = 100.0 * sum(by_type[name]) / len(by_type[name])
    return result


def _keyed(predictions: Mapping[object, str], what: str) -> dict[str, str]:
    if not predictions:
        raise DataError(f"{what} are empty: generate answers for the evaluation split before scoring it")
    out: dict[str, str] = {}
    for qid, pred in predictions.items():
        if not isinstance(pred, str):
            raise DataError(f"prediction for question {qid} is a {type(pred).__name__}, not a str: pass answer text")
        out[str(qid)] = pred
    return out


def _check_ids(preds: Mapping[str, str], gts: Mapping[str, list[str]]) -> None:
    extra = [qid for qid in preds if qid not in gts]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise DataError(
            f"prediction for question {extra[0]}{more} has no annotations: "
            "score against the annotation file of the split that was predicted"
        )
    missing = [qid for qid in gts if qid not in preds]
    if missing:
        raise DataError(
            f"{len(missing)} of {len(gts)} annotated questions have no prediction (e.g. question {missing[0]}): "
            "predict every question of the split, or pass only the answers of the predicted questions"
        )
