"""Fixtures for model tests: a tiny in-memory tokenizer, fake image stores and a few examples."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from amad import testing
from amad.testing import FakeImages, make_tokenizer
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
    return testing.vqa_examples()


@pytest.fixture(scope="session")
def caption_examples() -> list[Example]:
    return testing.caption_examples()


@pytest.fixture(scope="session")
def big_tokenizer() -> PreTrainedTokenizerFast:
    """The ``tokenizer`` fixture's tokens plus two more at the end (as BLIP adds [DEC] and [ENC] to BERT's)."""
    from amad.testing import WORDS

    return make_tokenizer([*WORDS, "extra1", "extra2"])
