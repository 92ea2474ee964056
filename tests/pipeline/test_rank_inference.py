"""VQA rank inference in the evaluate stage: the answer list and the predict path that uses it."""

import pytest
import torch

from amad import evaluation
from amad.errors import DataError
from amad.models import build_model
from amad.testing import FakeImages, make_tokenizer
from amad.types import Example


def _vqa(uid: str, answer: str) -> Example:
    return Example(uid, uid, "what color is the circle ?", answer, [answer] * 10, 1.0, "other")


def test_answer_list_is_the_most_frequent_training_targets_ties_by_text():
    examples = [_vqa(str(i), a) for i, a in enumerate(["no", "yes", "yes", "red", "blue", "no", "yes", "two"])]
    assert evaluation.answer_list(examples, 10) == ["yes", "no", "blue", "red", "two"]
    assert evaluation.answer_list(examples, 2) == ["yes", "no"]
    with pytest.raises(DataError, match="no training answers to rank"):
        evaluation.answer_list([], 5)


def test_predict_ranks_the_answer_list_when_given_one():
    torch.manual_seed(0)
    model = build_model("blip", "vqa", "blip-smoke-teacher", make_tokenizer(), seed=0)
    images = FakeImages(model.image_size)
    examples = [_vqa(str(i), "red") for i in range(5)]
    answers = ["red", "blue", "yes", "no", "two"]
    ranked = evaluation.predict(model, examples, images, batch_size=2, num_beams=1, max_new_tokens=4, answers=answers)
    batch = model.collate(examples, images, train=False)
    assert list(ranked.values()) == model.rank_answers(batch, answers, k=128)
    assert set(ranked.values()) <= set(answers)
    generated = evaluation.predict(model, examples, images, batch_size=2, num_beams=1, max_new_tokens=4)
    assert list(generated) == list(ranked)  # same uids, decoded freely instead
