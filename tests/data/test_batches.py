"""Training micro-batches (amad.data.batches): the loop's order, targets and augmentation, and DataLoader workers
that build the same batches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from amad.data.batches import TrainBatches, epoch_order, iterate
from amad.errors import ConfigError
from amad.models import build_model
from amad.testing import TINY_VLT5, FakeFeatures, FakeImages, make_tokenizer, tiny_size, vqa_examples

FEATURES = FakeFeatures(5, 12)


def _examples(n: int = 7):
    base = vqa_examples()
    return [dataclasses.replace(base[i % 3], uid=f"q{i}", image_id=str(i % 3 + 1)) for i in range(n)]


@pytest.fixture(scope="module")
def vlt5():
    return build_model("vlt5", "vqa", TINY_VLT5, make_tokenizer(), seed=0)


@pytest.fixture(scope="module")
def blip():
    return build_model("blip", "vqa", tiny_size("blip-smoke-teacher"), make_tokenizer(), seed=0)


def _equal(a, b) -> bool:
    return all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
        for x, y in zip(dataclasses.astuple(a), dataclasses.astuple(b), strict=True)
    )


def test_top_targets_without_augmentation_are_the_loops_old_batches(vlt5):
    examples = _examples(8)
    batches = TrainBatches(vlt5, examples, FEATURES, batch_size=3, seed=4, rank=1, world=2)
    assert batches.micro_per_epoch == 3
    for micro in range(7):  # into the third epoch
        epoch, index = divmod(micro, 3)
        ids = epoch_order(8, 4, epoch)[index * 3 : (index + 1) * 3][1::2]
        old = vlt5.collate([examples[i] for i in ids], FEATURES, train=True)
        made = batches(micro)
        assert made.crops is None and _equal(made.batch, old)


def test_workers_build_the_same_batches(vlt5):
    batches = TrainBatches(vlt5, _examples(), FEATURES, batch_size=2, seed=0, targets="sample")
    here = list(iterate(batches, range(1, 6)))
    forked = list(iterate(batches, range(1, 6), num_workers=2))
    assert len(forked) == 5 and all(_equal(a.batch, b.batch) for a, b in zip(here, forked, strict=True))
    with pytest.raises(ConfigError, match="num_workers must be >= 0"):
        iterate(batches, range(2), num_workers=-1)


def test_blip_batches_carry_every_answer_and_their_augmentation(blip):
    examples = _examples(3)  # answers: 10 x red | 9 x two, 1 x three | 10 x no
    weights = {0: [1.0], 1: [0.9, 0.1], 2: [1.0]}
    batches = TrainBatches(blip, examples, FakeImages(32), batch_size=3, seed=0, targets="recipe", augment="blip")
    made = batches(0)
    batch, order = made.batch, epoch_order(3, 0, 0)
    assert len(batch) == 3 and batch.labels.shape[0] == 4  # one label row per distinct answer
    assert batch.label_weights.tolist() == pytest.approx([w for i in order for w in weights[i]])
    assert batch.label_owner.tolist() == [row for row, i in enumerate(order) for _ in weights[i]]
    assert made.crops.shape == (3, 4) and made.flips.shape == (3,)
    augmented = made.augmented((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert augmented.pixel_values.shape == batch.pixel_values.shape
    assert not torch.equal(augmented.pixel_values, batch.pixel_values)
    assert torch.equal(batches(0).crops, made.crops)  # a pure function of the index


def test_keep_sides_never_flips_a_question_about_left_or_right(blip):
    sided = [dataclasses.replace(vqa_examples()[1], uid=f"s{i}") for i in range(16)]  # "... on the left ?"
    assert "left" in sided[0].source
    flips = TrainBatches(blip, sided, FakeImages(32), batch_size=16, seed=0, augment="blip_keep_sides")(0).flips
    assert not flips.any()
    flips = TrainBatches(blip, sided, FakeImages(32), batch_size=16, seed=0, augment="blip")(0).flips
    assert flips.any()  # BLIP flips them


def test_vlt5_batches_are_never_augmented_and_refuse_several_targets(vlt5):
    made = TrainBatches(vlt5, _examples(), FEATURES, batch_size=3, seed=0, augment="blip")(0)
    assert made.crops is None
    with pytest.raises(ConfigError, match="VL-T5 trains on one target per example"):
        TrainBatches(vlt5, _examples(), FEATURES, batch_size=3, seed=0, targets="all")(0)
    with pytest.raises(ConfigError, match="augment must be one of none, blip, blip_keep_sides"):
        TrainBatches(vlt5, _examples(), FEATURES, batch_size=3, seed=0, augment="flip")
