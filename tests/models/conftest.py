"""Fixtures for model tests: a tiny in-memory tokenizer, fake image stores and a few examples."""

from __future__ import annotations

import pytest
from tiny_fixtures import FakeImages, make_tokenizer
from transformers import PreTrainedTokenizerFast

from amad.types import Example


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer()


@pytest.fixture(scope="session")
def tokenizer_factory():
    """``make_tokenizer(words)``: a tokenizer with another vocabulary."""
    return make_tokenizer


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


@pytest.fixture(scope="session")
def big_tokenizer() -> PreTrainedTokenizerFast:
    """The ``tokenizer`` fixture's tokens plus two more at the end (as BLIP adds [DEC] and [ENC] to BERT's)."""
    from tiny_fixtures import WORDS

    return make_tokenizer([*WORDS, "extra1", "extra2"])
