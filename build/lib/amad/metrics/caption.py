"""COCO caption metrics: pycocoevalcap's scorers after its PTB tokenisation, called directly.

``COCOEvalCap.evaluate()`` is not used: it always builds SPICE, whose constructor downloads Stanford CoreNLP.
The scorers are the ones COCOEvalCap runs (BLEU-1..4, METEOR 1.5, ROUGE-L, CIDEr-D, SPICE), on the same
tokenised text, so the numbers are the ones the COCO toolkit reports. Scores are returned x100.

Notes:
    * CIDEr's IDF comes from the references of the scored set, so scores of a subset are not comparable with
      scores of the full split.
    * SPICE needs Stanford CoreNLP 3.6.0 in ``pycocoevalcap/spice/lib`` (never downloaded here) and, with
      pycocoevalcap's ``-cache`` flag, Java 8; otherwise it is reported as None with a reason, never as 0.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence

from amad.errors import DataError
from amad.metrics.java import MetricToolError, pycocoevalcap_dir, require_java, require_writable
from amad.metrics.meteor import MeteorScorer

__all__ = ["caption_metrics", "ptb_tokenize", "spice_unavailable_reason"]

SPICE_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


def caption_metrics(
    predictions: Mapping[object, str],
    references: Mapping[object, Sequence[str]],
    *,
    meteor: bool | MeteorScorer = True,
    meteor_timeout: float = 600.0,
    spice: bool = True,
    timings: dict[str, float] | None = None,
) -> dict[str, float | str | None]:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr and SPICE of one caption per image, x100.

    Ids are matched by ``str(id)``.

    Args:
        predictions: image id -> generated caption.
        references: image id -> its reference captions (raw text, e.g. Karpathy ``sentences[].raw``).
        meteor: True starts a METEOR JVM for this call; a :class:`MeteorScorer` is reused (and left open);
            False skips METEOR (reported as None with a reason).
        meteor_timeout: seconds METEOR may take before it is killed and MetricToolError is raised.
        spice: False skips SPICE without trying it.
        timings: if given, filled with seconds per step ("tokenize", "Bleu", "METEOR_start", "METEOR",
            "ROUGE_L", "CIDEr", "SPICE").

    Returns:
        ``Bleu_1``..``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``, ``SPICE`` as floats x100, or None for a
        metric that was skipped or is unavailable, with its reason under ``"<metric>_reason"``.

    Raises:
        DataError: empty predictions, ids that differ between predictions and references, non-text captions.
        MetricToolError: Java missing, a tool's folder not writable, PTBTokenizer or METEOR failing.
    """
    preds, refs = _validate(predictions, references)
    timings = {} if timings is None else timings
    require_java()

    start = time.perf_counter()
    # One tokenizer run for both sides (it works line by line, so this equals two separate runs).
    both = {("res", key): [text] for key, text in preds.items()} | {("gts", key): refs[key] for key in preds}
    tokenized = ptb_tokenize(both)
    res = {key: tokenized[("res", key)] for key in preds}
    gts = {key: tokenized[("gts", key)] for key in preds}
    timings["tokenize"] = time.perf_counter() - start

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    out: dict[str, float | str | None] = {}
    start = time.perf_counter()
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out.update({f"Bleu_{n + 1}": 100.0 * float(score) for n, score in enumerate(bleu)})
    timings["Bleu"] = time.perf_counter() - start

    if meteor is False:
        out["METEOR"], out["METEOR_reason"] = None, "skipped by the caller (meteor=False)"
    else:
        start = time.perf_counter()
        scorer = meteor if isinstance(meteor, MeteorScorer) else MeteorScorer()
        timings["METEOR_start"] = time.perf_counter() - start
        start = time.perf_counter()
        try:
            out["METEOR"] = 100.0 * scorer.score(gts, res, timeout=meteor_timeout)[0]
        finally:
            if scorer is not meteor:
                scorer.close()
        timings["METEOR"] = time.perf_counter() - start

    for name, scorer_cls in (("ROUGE_L", Rouge), ("CIDEr", Cider)):
        start = time.perf_counter()
        out[name] = 100.0 * float(scorer_cls().compute_score(gts, res)[0])
        timings[name] = time.perf_counter() - start

    start = time.perf_counter()
    out["SPICE"], reason = _spice(gts, res) if spice else (None, "skipped by the caller (spice=False)")
    if reason is not None:
        out["SPICE_reason"] = reason
    timings["SPICE"] = time.perf_counter() - start
    return out


def ptb_tokenize(captions: Mapping[object, Sequence[str]]) -> dict[object, list[str]]:
    """pycocoevalcap's PTBTokenizer (CoreNLP 3.4.1, lower-cased, punctuation dropped) on id -> captions.

    Every whitespace run, line breaks included, becomes one space first: the tokenizer works line by line and
    a stray carriage return would shift every later caption onto the wrong id.

    Raises:
        MetricToolError: Java missing, the tokenizer folder not writable, or the tokenizer output misaligned.
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    require_java()
    require_writable(pycocoevalcap_dir("tokenizer"), "pycocoevalcap's PTBTokenizer")
    coco = {key: [{"caption": " ".join(text.split())} for text in texts] for key, texts in captions.items()}
    tokenized = PTBTokenizer().tokenize(coco)
    for key, texts in coco.items():
        if len(tokenized.get(key, ())) != len(texts):
            raise MetricToolError(
                "PTBTokenizer returned fewer lines than captions (the Java tokenizer failed): "
                "check that `java -cp stanford-corenlp-3.4.1.jar edu.stanford.nlp.process.PTBTokenizer` runs"
            )
    return tokenized


def spice_unavailable_reason() -> str | None:
    """Why SPICE cannot run here, or None when its Stanford CoreNLP jars are installed."""
    lib = pycocoevalcap_dir("spice", "lib")
    missing = [name for name in SPICE_JARS if not (lib / name).is_file()]
    if missing:
        return (
            f"SPICE needs {' and '.join(missing)} in {lib} (Stanford CoreNLP 3.6.0, not downloaded by amad); "
            "place them there to enable SPICE"
        )
    if not os.access(lib.parent, os.W_OK):
        return f"SPICE writes tmp/ and cache/ into {lib.parent}, which is not writable: make it writable"
    return None


def _spice(gts: dict[str, list[str]], res: dict[str, list[str]]) -> tuple[float | None, str | None]:
    reason = spice_unavailable_reason()
    if reason is not None:
        return None, reason
    from pycocoevalcap.spice.spice import Spice

    try:
        score, _ = Spice().compute_score(gts, res)
    except Exception as err:  # the Java tool failed: report SPICE as unavailable, never as 0
        return None, (
            f"SPICE failed ({type(err).__name__}: {str(err)[:160]}); on Java >= 16 pycocoevalcap's '-cache' "
            "option fails: use Java 8 or remove '-cache' from spice.py"
        )
    return 100.0 * float(score), None


def _validate(
    predictions: Mapping[object, str], references: Mapping[object, Sequence[str]]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    if not predictions:
        raise DataError("caption predictions are empty: generate captions for the evaluation split before scoring")
    preds: dict[str, str] = {}
    for key, text in predictions.items():
        if not isinstance(text, str):
            raise DataError(f"prediction for image {key} is a {type(text).__name__}, not a str: pass one caption")
        preds[str(key)] = text
    refs: dict[str, list[str]] = {}
    for key, texts in references.items():
        if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
            raise DataError(f"references for image {key} must be a non-empty list of strings, got {texts!r:.60}")
        refs[str(key)] = list(texts)
    no_refs = [key for key in preds if key not in refs]
    no_pred = [key for key in refs if key not in preds]
    if no_refs or no_pred:
        example = f"image {no_refs[0]} has no references" if no_refs else f"image {no_pred[0]} has no prediction"
        raise DataError(
            f"predictions and references cover different images ({len(no_refs)} predicted without references, "
            f"{len(no_pred)} referenced without prediction; e.g. {example}): score the same image ids on both sides"
        )
    return preds, refs
