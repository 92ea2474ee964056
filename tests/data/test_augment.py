"""BLIP's training augmentation in torch (amad.data.visual.augment): crop boxes, the batched resize, flips, clamps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from amad.data.visual.augment import augment_pixels, crop_box, draw, mentions_sides

MEAN, STD = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)


def _images(b: int = 3, side: int = 16) -> torch.Tensor:
    pixels = torch.rand(b, 3, side, side, generator=torch.Generator().manual_seed(0))  # (B, 3, S, S) in [0, 1]
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_crop_boxes_cover_half_to_all_of_the_area_inside_the_image():
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, h, w = crop_box(rng, 384, 384)
        assert 0 <= top and top + h <= 384 and 0 <= left and left + w <= 384
        assert 0.5 * 384 * 384 * 0.99 <= h * w <= 384 * 384
        assert 3 / 4 * 0.99 <= w / h <= 4 / 3 * 1.01
    assert crop_box(np.random.default_rng(7), 384, 384) == (97, 0, 278, 345)  # golden (numpy PCG64, seed 7)


def test_impossible_ratios_fall_back_to_a_centre_crop():
    assert crop_box(np.random.default_rng(0), 10, 100, scale=(0.99, 1.0)) == (0, 43, 10, 13)  # widest 4:3 crop


def test_full_crop_without_flip_is_the_identity_and_a_flip_mirrors():
    pixels = _images()
    full = torch.tensor([[0.0, 0.0, 1.0, 1.0]] * 3)
    same = augment_pixels(pixels, full, torch.tensor([False] * 3), MEAN, STD)
    assert torch.allclose(same, pixels, atol=1e-5)  # bicubic taps at pixel centres are exact
    flipped = augment_pixels(pixels, full, torch.tensor([True, False, True]), MEAN, STD)
    assert torch.allclose(flipped[0], pixels[0].flip(-1), atol=1e-5) and torch.allclose(flipped[1], pixels[1], atol=1e-5)


def test_a_crop_is_the_bicubic_resize_of_that_region():
    pixels = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))  # mean 0, std 1: [0, 1] pixels
    crop = torch.tensor([[4 / 16, 2 / 16, 8 / 16, 12 / 16]])  # left, top, width, height
    out = augment_pixels(pixels, crop, torch.tensor([False]), (0, 0, 0), (1, 1, 1))
    region = pixels[:, :, 2:14, 4:12]  # (1, 3, 12, 8)
    expected = F.interpolate(region, size=(16, 16), mode="bicubic", align_corners=False).clamp(0, 1)
    # equal wherever every bicubic tap lies inside the crop (at its border the crop-then-resize of torchvision
    # repeats the crop's edge, the sampler reads the real neighbouring pixels)
    assert torch.allclose(out[..., 3:13, 3:13], expected[..., 3:13, 3:13], atol=1e-5)


def test_results_stay_within_the_pixel_range_and_keep_dtype():
    pixels = _images().to(torch.bfloat16)
    out = augment_pixels(pixels, torch.tensor([[0.3, 0.3, 0.5, 0.5]] * 3), torch.zeros(3, dtype=torch.bool), MEAN, STD)
    assert out.dtype == torch.bfloat16 and out.shape == pixels.shape
    unscaled = out.float() * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    assert unscaled.min() >= -0.01 and unscaled.max() <= 1.01


@pytest.mark.parametrize(
    ("texts", "sides"),
    [(["what is on the left?"], True), (["a man", "Right side up"], True), (["leftover pizza", "bright"], False)],
)
def test_texts_that_say_left_or_right(texts, sides):
    assert mentions_sides(texts) is sides


def test_draws_never_flip_when_told_not_to():
    flips = [draw(np.random.default_rng(i), 32, may_flip=True)[1] for i in range(200)]
    assert 60 < sum(flips) < 140  # p = 0.5
    assert not any(draw(np.random.default_rng(i), 32, may_flip=False)[1] for i in range(200))
