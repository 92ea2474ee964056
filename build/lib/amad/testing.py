"""Tiny fixtures for tests and benchmarks (as ``transformers.testing_utils``): a word-level tokenizer with the mini
special ids, fake visual stores, a few examples of each task, and tiny model sizes taken from the registry.

Nothing here downloads anything; every tiny size is a registered ``*-smoke-*`` size (``amad.models.sizes``), with
overrides where a test needs another feature width.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from amad.types import Example

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>", "<enc>"]  # ids 0..4, as the mini tokenizers
WORDS = [
    *("what", "color", "is", "the", "shape", "?", "how", "many", "shapes", "are", "there", "a", "picture", "of"),
    *("red", "blue", "green", "circle", "square", "triangle", "yes", "no", "one", "two", "three", "small", "large"),
    *("on", "left", "right"),
]


def tiny_size(name: str = "vlt5-smoke-teacher", **overrides: Any) -> dict[str, Any]:
    """A copy of a registered size with top-level keys replaced (``vision`` / ``text`` dicts are merged)."""
    from amad.models.sizes import MODEL_SIZES

    size = copy.deepcopy(MODEL_SIZES.get(name))
    for key, value in overrides.items():
        size[key] = {**size[key], **value} if isinstance(value, dict) and isinstance(size.get(key), dict) else value
    return size


# The VL-T5 test size: the registered smoke teacher (4 heads, 2+2 layers) over a 5-region, 12-wide feature store.
TINY_VLT5 = tiny_size("vlt5-smoke-teacher", feat_dim=12, n_boxes=5)


def make_tokenizer(words: list[str] = WORDS) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with a fixed vocabulary: specials 0..4 then ``words`` in order."""
    vocab = {token: i for i, token in enumerate([*SPECIALS, *dict.fromkeys(words)])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )


class FakeImages:
    """ImageStore stand-in: a deterministic (3, S, S) float32 image per key."""

    def __init__(self, size: int = 32) -> None:
        self.image_size = size

    def get(self, key: str) -> np.ndarray:
        return np.random.default_rng(int(key)).standard_normal((3, self.image_size, self.image_size)).astype(np.float32)


class FakeFeatures:
    """FeatureStore stand-in: deterministic (N, D) features and normalised boxes per key."""

    def __init__(self, num_boxes: int = 4, feature_dim: int = 16) -> None:
        self.num_boxes, self.feature_dim = num_boxes, feature_dim

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(key))
        feats = rng.standard_normal((self.num_boxes, self.feature_dim)).astype(np.float32)
        corners = np.sort(rng.random((self.num_boxes, 2, 2)), axis=1).astype(np.float32)  # x1<x2, y1<y2
        boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], axis=1)
        return feats, boxes


def vqa_examples() -> list[Example]:
    """Three VQA questions over images "1".."3" with soft scores and answer types."""
    return [
        Example("q1", "1", "what color is the circle ?", "red", ["red"] * 10, 1.0, "other"),
        Example("q2", "2", "how many shapes are there on the left ?", "two", ["two"] * 9 + ["three"], 0.6, "number"),
        Example("q3", "3", "is the square blue ?", "no", ["no"] * 10, 1.0, "yes/no"),
    ]


def caption_examples() -> list[Example]:
    return [
        Example("c1", "1", "", "a red circle", ["a red circle"]),
        Example("c2", "2", "", "two blue shapes on the left", ["two blue shapes on the left"]),
        Example("c3", "3", "", "a green triangle", ["a green triangle"]),
    ]
