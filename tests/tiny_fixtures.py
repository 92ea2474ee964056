"""Tiny shared test fixtures: an in-memory tokenizer with the mini special ids and fake visual stores."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>", "<enc>"]  # ids 0..4, as the mini tokenizers
WORDS = [
    *("what", "color", "is", "the", "shape", "?", "how", "many", "shapes", "are", "there", "a", "picture", "of"),
    *("red", "blue", "green", "circle", "square", "triangle", "yes", "no", "one", "two", "three", "small", "large"),
    *("on", "left", "right"),
]


# A tiny VL-T5 size (4 heads, 2+2 layers); tests override feat_dim / n_boxes to match their feature store.
TINY_VLT5 = {
    "family": "vlt5",
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "feat_dim": 12,
    "n_boxes": 5,
    "dropout": 0.0,
}


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
