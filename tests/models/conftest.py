"""Fixtures for model tests: a tiny in-memory tokenizer, fake image stores and a few examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
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


def make_tokenizer(words: list[str] = WORDS) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with a fixed vocabulary: specials 0..4 then ``words`` in order."""
    vocab = {token: i for i, token in enumerate([*SPECIALS, *dict.fromkeys(words)])}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread, especially on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer()


@pytest.fixture(scope="session")
def tokenizer_factory():
    """``make_tokenizer(words)``: a tokenizer with another vocabulary."""
    return make_tokenizer


class FakeImages:
    """ImageStore stand-in: a deterministic (3, S, S) float32 image per key."""

    def __init__(self, size: int = 32) -> None:
        self.image_size = size

    def get(self, key: str) -> np.ndarray:
        return np.random.default_rng(int(key)).standard_normal((3, self.image_size, self.image_size)).astype(np.float32)


@pytest.fixture(scope="session")
def images() -> FakeImages:
    return FakeImages(32)


@pytest.fixture(scope="session")
def image_store():
    """``FakeImages(size)``: a fake ImageStore of another image size."""
    return FakeImages


@pytest.fixture(scope="session")
def vqa_examples() -> list[Example]:
    return [
        Example("q1", "1", "what color is the circle ?", "red", ["red"] * 10, 1.0, "other"),
        Example("q2", "2", "how many shapes are there on the left ?", "two", ["two"] * 9 + ["three"], 0.6, "number"),
        Example("q3", "3", "is the square blue ?", "no", ["no"] * 10, 1.0, "yes/no"),
    ]


@pytest.fixture(scope="session")
def caption_examples() -> list[Example]:
    return [
        Example("c1", "1", "", "a red circle", ["a red circle"]),
        Example("c2", "2", "", "two blue shapes on the left", ["two blue shapes on the left"]),
        Example("c3", "3", "", "a green triangle", ["a green triangle"]),
    ]
