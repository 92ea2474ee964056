"""Training micro-batches as a pure function of their index, and batches built in DataLoader worker processes.

:class:`TrainBatches` builds micro-batch ``m`` of a seeded run: the examples at its place in the epoch's
permutation (sliced for this rank), their training targets (``amad.data.targets``), the collated batch, and the
crop and flip of every image when BLIP's augmentation is on (``amad.data.visual.augment``; the pixels are
transformed later, on the device, by :meth:`MicroBatch.augmented`). Nothing depends on the order in which batches
are built, so :func:`iterate` can build them in worker processes and a resumed run gets the same batches.

Workers are forked (Linux; the stores reopen their h5 files once per process, and the examples and tokenizer are
inherited, not pickled); elsewhere ``num_workers`` must be 0.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

import torch

from amad.data.targets import example_rng, resolve_mode, training_targets
from amad.data.visual import augment as image_augment
from amad.errors import ConfigError
from amad.types import Batch, Example

T = TypeVar("T")
AUGMENT_MODES = ("none", "blip", "blip_keep_sides")


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The permutation of ``n`` examples that epoch ``epoch`` of a run seeded ``seed`` visits."""
    gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=gen).tolist()


@dataclass
class MicroBatch:
    """A collated batch and, with augmentation, each image's crop (B, 4) (left, top, width, height as fractions)
    and flip (B,) bool."""

    batch: Batch
    crops: torch.Tensor | None = None
    flips: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> MicroBatch:
        return replace(self, batch=self.batch.to(device))

    def augmented(self, mean: Sequence[float], std: Sequence[float]) -> Batch:
        """The batch with its images cropped and flipped (the batch itself when there is nothing to do)."""
        if self.crops is None or self.batch.pixel_values is None:
            return self.batch
        pixels = image_augment.augment_pixels(self.batch.pixel_values, self.crops, self.flips, mean, std)
        return replace(self.batch, pixel_values=pixels)


class TrainBatches:
    """Micro-batch ``m`` of a run: ``batches(m) -> MicroBatch`` (a pure function of ``m``).

    Args:
        model: a DistillModel (its ``collate``, ``family`` and ``task``).
        batch_size: examples per micro-batch over all ranks; rank ``r`` of ``world`` takes every world-th one.
        targets: VQA training targets (``amad.data.targets``: top, sample, all or recipe); other tasks use top.
        augment: none, blip (crop and flip every image) or blip_keep_sides (no flip when the text says left or
            right); applies to batches with images only.
    """

    def __init__(
        self,
        model: Any,
        examples: Sequence[Example],
        visual: Any,
        *,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        targets: str = "top",
        augment: str = "none",
    ) -> None:
        if augment not in AUGMENT_MODES:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENT_MODES)}, got {augment!r}")
        self.model, self.examples, self.visual = model, examples, visual
        self.batch_size, self.seed, self.rank, self.world = batch_size, seed, rank, world
        self.targets = resolve_mode(targets, model.family) if model.task == "vqa" else "top"
        self.augment = augment
        self.micro_per_epoch = math.ceil(len(examples) / batch_size)
        self._order: tuple[int, list[int]] = (-1, [])

    def positions(self, micro: int) -> tuple[int, list[int]]:
        """(epoch, indices into the examples) of micro-batch ``micro`` on this rank."""
        epoch, index = divmod(micro, self.micro_per_epoch)
        if self._order[0] != epoch:  # one permutation per epoch and process
            self._order = (epoch, epoch_order(len(self.examples), self.seed, epoch))
        order = self._order[1]
        return epoch, order[index * self.batch_size : (index + 1) * self.batch_size][self.rank :: self.world]

    def __call__(self, micro: int) -> MicroBatch:
        epoch, ids = self.positions(micro)
        chosen = training_targets([self.examples[i] for i in ids], ids, self.targets, seed=self.seed, epoch=epoch)
        batch = self.model.collate(chosen, self.visual, train=True)
        if self.augment == "none" or batch.pixel_values is None:
            return MicroBatch(batch)
        side = int(batch.pixel_values.shape[-1])
        crops, flips = [], []
        for example, index in zip(chosen, ids):
            texts = [example.source, example.target, *(text for text, _ in example.targets)]
            may_flip = self.augment == "blip" or not image_augment.mentions_sides(texts)
            rng = example_rng(self.seed, epoch, index, image_augment.AUGMENT_STREAM)
            crop, flip = image_augment.draw(rng, side, may_flip=may_flip)
            crops.append(crop)
            flips.append(flip)
        return MicroBatch(batch, torch.tensor(crops), torch.tensor(flips))  # (B, 4), (B,)


class _Calls(torch.utils.data.Dataset, Generic[T]):
    """Item i = ``make(indices[i])``."""

    def __init__(self, make: Callable[[int], T], indices: Sequence[int]) -> None:
        self.make, self.indices = make, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> T:
        return self.make(self.indices[i])


def _unchanged(item: T) -> T:
    return item


def iterate(make: Callable[[int], T], indices: Sequence[int], num_workers: int = 0, prefetch: int = 4) -> Iterator[T]:
    """``make(i)`` for every i of ``indices``, in order: in this process (``num_workers`` 0) or built ahead by that
    many forked DataLoader workers, each keeping ``prefetch`` items ready."""
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    if num_workers == 0:
        return map(make, indices)
    if "fork" not in multiprocessing.get_all_start_methods():
        raise ConfigError("num_workers > 0 needs forked worker processes (Linux): set num_workers to 0 here")
    loader = torch.utils.data.DataLoader(
        _Calls(make, indices),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_unchanged,
        prefetch_factor=prefetch,
        multiprocessing_context="fork",
    )
    return iter(loader)
