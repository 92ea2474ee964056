"""Translation metrics with sacreBLEU: the standard signed BLEU, VL-T5's lower-cased BLEU, and chrF.

VL-T5 reports ``sacrebleu.corpus_bleu(predictions, [references], lowercase=True)`` on detokenised text (13a);
that is ``bleu_lc`` here. ``bleu`` is the mixed-case default that a sacreBLEU signature describes.
For comparison with older multimodal-MT papers, :func:`tokenized_bleu` scores Moses-tokenised, lower-cased
text (Multi30K's ``tok/*.lc.norm.tok.*`` files) without further tokenisation.
"""

from __future__ import annotations

from collections.abc import Sequence

from amad.errors import DataError

__all__ = ["tokenized_bleu", "translation_metrics"]


def translation_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """Corpus BLEU (mixed case and lower-cased, 13a) and chrF with their sacreBLEU signatures.

    Args:
        hypotheses: one detokenised system output per source sentence.
        references: one reference per sentence, aligned with ``hypotheses``.

    Returns:
        ``bleu``, ``signature``, ``bleu_lc``, ``signature_lc``, ``chrf``, ``signature_chrf``.

    Raises:
        DataError: empty inputs, different lengths, or non-string lines.
    """
    from sacrebleu.metrics import BLEU, CHRF  # the metrics extra: pip install .[metrics]

    hyps, refs = _validate(hypotheses, references)
    bleu, bleu_lc, chrf = BLEU(), BLEU(lowercase=True), CHRF()
    out: dict[str, float | str] = {}
    for name, metric in (("bleu", bleu), ("bleu_lc", bleu_lc), ("chrf", chrf)):
        out[name] = float(metric.corpus_score(hyps, [refs]).score)
    out["signature"] = str(bleu.get_signature())
    out["signature_lc"] = str(bleu_lc.get_signature())
    out["signature_chrf"] = str(chrf.get_signature())
    return out


def tokenized_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float | str]:
    """BLEU of already tokenised text (``tokenize='none'``), e.g. against ``*.lc.norm.tok.de``.

    The hypotheses must be tokenised, normalised and lower-cased the same way as the references.

    Returns:
        ``bleu_tok`` and ``signature_tok``.
    """
    hyps, refs = _validate(hypotheses, references)
    from sacrebleu.metrics import BLEU

    metric = BLEU(tokenize="none", force=True)
    score = float(metric.corpus_score(hyps, [refs]).score)
    return {"bleu_tok": score, "signature_tok": str(metric.get_signature())}


def _validate(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[list[str], list[str]]:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise DataError("hypotheses and references must be lists of sentences, not one string: wrap or split them")
    hyps, refs = list(hypotheses), list(references)
    if not hyps:
        raise DataError("translation hypotheses are empty: translate the evaluation split before scoring it")
    if len(hyps) != len(refs):
        raise DataError(
            f"{len(hyps)} hypotheses but {len(refs)} references: score outputs of the same split, one line each"
        )
    for index, line in enumerate(hyps + refs):
        if not isinstance(line, str):
            side = "hypothesis" if index < len(hyps) else "reference"
            raise DataError(f"{side} {index % len(hyps)} is a {type(line).__name__}, not a str: pass sentence text")
    return hyps, refs
