"""BLIP's training augmentation on cached images, in torch: a random resized crop and a horizontal flip.

BLIP (``data/__init__.py`` ``transform_train``) crops the original image with ``RandomResizedCrop(size,
scale=(0.5, 1.0))`` (bicubic; aspect ratio in [3/4, 4/3]), flips it with probability 0.5, then applies
``RandomAugment``. Here:

* the crop is taken from the cached S x S image (already resized from the original, aspect ratio not kept), then
  resized back to S x S, so a crop of half the area is upsampled from about 0.71 S pixels instead of being
  downsampled from the full-resolution original;
* the crop box follows torchvision's ``RandomResizedCrop`` rule (10 tries at a random area and log-uniform
  aspect ratio, then a centre crop), drawn with numpy;
* crop, resize and flip are one batched ``grid_sample`` (torch's bicubic kernel, a = -0.75, where PIL's is
  a = -0.5; taps beyond the crop's edge read the neighbouring pixels instead of repeating the edge), clamped to the
  pixel range [0, 1] in normalised units; it runs wherever the batch is (the GPU);
* RandAugment (rotation, shear, colour operations) is not reproduced;
* ``keep_sides``: a flip turns "left" into "right". BLIP flips every image whatever its text. With ``keep_sides``
  an example whose question, answer or caption says left or right is never flipped (crops still apply).

Every draw comes from the example's own generator (``amad.data.targets.example_rng``), so the augmentation of an
example does not depend on the batch, the ranks or the DataLoader workers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

CROP_SCALE = (0.5, 1.0)  # BLIP: min_scale 0.5
CROP_RATIO = (3 / 4, 4 / 3)  # torchvision's default, which BLIP keeps
FLIP_P = 0.5
AUGMENT_STREAM = 2  # the RNG stream of augmentation draws (targets draw from their own)
SIDES = re.compile(r"\b(left|right)\b", re.IGNORECASE)


def crop_box(
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: tuple[float, float] = CROP_SCALE,
    ratio: tuple[float, float] = CROP_RATIO,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of a random crop covering ``scale`` of the area at an aspect ratio in ``ratio``.

    Ten tries at a random area and a log-uniform aspect ratio; when none fits, the largest centre crop whose
    aspect ratio is within ``ratio``.
    """
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        h, w = height, round(height * max(ratio))
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w


def mentions_sides(texts: Sequence[str]) -> bool:
    """True when any text says "left" or "right" (as a word)."""
    return any(SIDES.search(text) for text in texts)


def draw(rng: np.random.Generator, side: int, *, may_flip: bool) -> tuple[tuple[float, float, float, float], bool]:
    """One example's crop, as fractions (left, top, width, height) of the S x S image, and whether to flip."""
    top, left, h, w = crop_box(rng, side, side)
    flip = bool(rng.random() < FLIP_P)
    return (left / side, top / side, w / side, h / side), flip and may_flip


def augment_pixels(
    pixels: torch.Tensor,
    crops: torch.Tensor,
    flips: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """Crop, resize back and flip normalised images.

    Args:
        pixels: (B, 3, S, S) normalised images. crops: (B, 4) left, top, width, height as fractions of S.
        flips: (B,) bool. mean, std: the per-channel normalisation of ``pixels`` (for the clamp to [0, 1]).

    Returns:
        (B, 3, S, S) in the same dtype and device.
    """
    b = pixels.shape[0]
    crops = crops.to(device=pixels.device, dtype=torch.float32)  # (B, 4)
    left, top, width, height = crops.unbind(1)  # (B,) each
    sign = 1.0 - 2.0 * flips.to(device=pixels.device, dtype=torch.float32)  # (B,) -1 where flipped
    # output normalised coordinate u in [-1, 1] -> source 2 * (left + width * (u + 1) / 2) - 1 (align_corners=False)
    theta = torch.zeros(b, 2, 3, device=pixels.device)  # (B, 2, 3)
    theta[:, 0, 0] = width * sign
    theta[:, 0, 2] = 2 * left + width - 1
    theta[:, 1, 1] = height
    theta[:, 1, 2] = 2 * top + height - 1
    grid = F.affine_grid(theta, list(pixels.shape), align_corners=False)  # (B, S, S, 2)
    out = F.grid_sample(pixels.float(), grid, mode="bicubic", padding_mode="border", align_corners=False)
    mean_ = torch.tensor(mean, device=pixels.device).view(1, 3, 1, 1)
    std_ = torch.tensor(std, device=pixels.device).view(1, 3, 1, 1)
    out = torch.maximum(torch.minimum(out, (1 - mean_) / std_), -mean_ / std_)  # (B, 3, S, S) within [0, 1] pixels
    return out.to(pixels.dtype)
