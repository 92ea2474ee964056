"""Evaluation metrics that match the official tools: VQA accuracy, COCO caption metrics, sacreBLEU."""

from amad.metrics.caption import caption_metrics, ptb_tokenize, spice_unavailable_reason
from amad.metrics.java import MetricToolError
from amad.metrics.meteor import MeteorScorer
from amad.metrics.translation import tokenized_bleu, translation_metrics
from amad.metrics.vqa import vqa_accuracy, vqa_score

__all__ = [
    "MeteorScorer",
    "MetricToolError",
    "caption_metrics",
    "ptb_tokenize",
    "spice_unavailable_reason",
    "tokenized_bleu",
    "translation_metrics",
    "vqa_accuracy",
    "vqa_score",
]
