"""Does the data loader keep up with the model? Batches/s of the training loader against steps/s of a training step,
at the paper's model sizes with random weights (issue 16 §2, item 7).

For each family (VL-T5 at vlt5-base = t5-base, BLIP at blip-base; VQA), the script writes a small store in the
paper's formats to a temporary folder (region features 36 x 2048 float32 with boxes; uint8 384 x 384 images), with
four VQA questions per image, and measures:

* loader: ``amad.data.batches.TrainBatches`` (the paper preset's VQA targets and BLIP augmentation draws, h5 reads,
  tokenising, collating) through ``iterate`` with 0 and with ``--workers`` DataLoader workers, in batches/s. The h5
  stores' in-memory cache is off (paper-scale stores do not fit in it); the files are small and stay in the OS page
  cache, so disk speed is not measured.
* step: what the training loop does with a batch: move it to the device, crop and flip the BLIP images there, a
  forward and backward pass and an AdamW step (bf16 autocast on a GPU, fp32 on the CPU), in steps/s. This is a
  teacher's fine-tuning step, the fastest consumer (a distillation step adds a teacher forward).

"workers needed" = steps/s / (batches/s of one process): how many workers keep the step fed if they scale linearly.
On a CPU-only machine use few steps and a small batch (the defaults); the numbers say whether loading is in the
way, not how fast the paper run is. On a GPU the defaults are the paper's per-GPU batches (VL-T5 80, BLIP 64).

    python benchmarks/loader.py [--families vlt5,blip] [--batch N] [--steps N] [--batches N] [--workers N]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import h5py
import numpy as np
import torch
from models import word_tokenizer  # benchmarks/models.py: scripts run with their own folder on sys.path
from transformers.utils import logging as hf_logging

from amad.data.batches import TrainBatches, iterate
from amad.data.visual.features import FeatureStore, write_features
from amad.data.visual.images import CLIP_MEAN, CLIP_STD, ImageStore
from amad.models import build_model
from amad.models.sizes import resolve_size
from amad.types import Example

# family -> (size, tokens: t5-base's 32100 / bert-base-uncased + [DEC] + [ENC] = 30524, the preset's per-GPU batch)
FAMILIES = {"vlt5": ("vlt5-base", 32100, 80), "blip": ("blip-base", 30524, 64)}
ANSWER_POOL = ["yes", "no", "2", "3", "red", "blue", "dog", "left", "white", "table"]


def write_store(family: str, folder: Path, n_images: int, size: dict[str, Any]) -> Any:
    """A paper-format visual store of ``n_images`` random images: VL-T5 region features or BLIP uint8 pixels."""
    rng = np.random.default_rng(0)
    path = folder / f"{family}.h5"
    if family == "vlt5":
        n, d = size["n_boxes"], size["feat_dim"]

        def records():
            for i in range(n_images):
                xy = rng.uniform(0, 320, (n, 2))
                boxes = np.concatenate([xy, xy + rng.uniform(10, 300, (n, 2))], 1)  # (N, 4) pixels
                yield str(i), rng.standard_normal((n, d)).astype(np.float32), boxes, 640, 480

        write_features(path, records())
        return FeatureStore(path, cache_mb=0)
    side = size["vision"]["image_size"]
    with h5py.File(path, "w") as h5:
        h5.attrs.update(image_size=side, mean=list(CLIP_MEAN), std=list(CLIP_STD))
        for i in range(n_images):
            h5.create_group(str(i)).create_dataset("pixels", data=rng.integers(0, 256, (3, side, side), dtype=np.uint8))
    return ImageStore(path, cache_mb=0)


def vqa_examples(n_images: int, n_tokens: int) -> list[Example]:
    """Four VQA questions per image: 8-14 words, ten human answers, VL-T5-style answer scores."""
    rng = np.random.default_rng(1)
    out = []
    for i in range(4 * n_images):
        question = " ".join(f"w{k}" for k in rng.integers(5, n_tokens, int(rng.integers(8, 15))))
        answers = [str(a) for a in rng.choice(ANSWER_POOL[:4], 10)]
        counts = {a: answers.count(a) for a in sorted(set(answers))}
        scores = tuple((a, min(1.0, c / 3)) for a, c in counts.items())
        top = max(counts, key=counts.get)
        out.append(Example(f"q{i}", str(i // 4), question, top, answers, min(1.0, counts[top] / 3), "other", scores))
    return out


def loader_rate(batches: TrainBatches, n: int, workers: int) -> float:
    """Batches/s of ``n`` batches (after the first, which pays for starting the workers)."""
    stream = iterate(batches, range(n + 1), workers)
    next(stream)
    start = time.perf_counter()
    for _ in stream:
        pass
    return n / (time.perf_counter() - start)


def step_rate(model: Any, batches: TrainBatches, steps: int, device: torch.device, mean, std) -> float:
    """Training steps/s on prebuilt batches (one untimed step first)."""
    made = [batches(i) for i in range(steps + 1)]
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32

    def step(micro_batch) -> None:
        batch = micro_batch.to(device).augmented(mean, std)
        with torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda"):
            loss = model(batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(made[0])
    _sync(device)
    start = time.perf_counter()
    for micro_batch in made[1:]:
        step(micro_batch)
    _sync(device)
    return steps / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="vlt5,blip")
    parser.add_argument("--batch", type=int, default=None, help="default: 4 on a CPU, the preset's per-GPU batch")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default: 2 CPU, 10 GPU)")
    parser.add_argument("--batches", type=int, default=None, help="timed loader batches (default: 10 CPU, 40 GPU)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 2 CPU, 8 GPU)")
    parser.add_argument("--images", type=int, default=128)
    args = parser.parse_args(argv)
    hf_logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    steps = args.steps or (10 if cuda else 2)
    n_batches = args.batches or (40 if cuda else 10)
    workers = args.workers if args.workers is not None else (8 if cuda else 2)
    where = torch.cuda.get_device_name(0) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"loader vs training step ({where}; {os.cpu_count()} CPUs; random weights, VQA; h5 cache off)")
    print(
        f"{'family':<8}{'size':<11}{'batch':>6}{'loader b/s, 0 workers':>23}{f'loader b/s, {workers} workers':>24}"
        f"{'step/s':>9}{'workers needed':>16}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            size_name, n_tokens, gpu_batch = FAMILIES[family]
            batch = args.batch or (gpu_batch if cuda else 4)
            size = resolve_size(size_name)
            if family == "vlt5":
                size["vocab_rows"] = n_tokens + 100  # VL-T5's 32200 rows
            store = write_store(family, Path(tmp), args.images, size)
            torch.manual_seed(0)
            model = build_model(family, "vqa", size, word_tokenizer(n_tokens))
            options = {"batch_size": batch, "seed": 0, "targets": "recipe", "augment": "blip_keep_sides"}
            batches = TrainBatches(model, vqa_examples(args.images, n_tokens), store, **options)
            alone = loader_rate(batches, n_batches, 0)
            parallel = loader_rate(batches, n_batches, workers) if workers else float("nan")
            mean, std = getattr(store, "mean", CLIP_MEAN), getattr(store, "std", CLIP_STD)
            rate = step_rate(model, batches, steps, device, mean, std)
            needed = math.ceil(rate / alone)
            print(
                f"{family:<8}{size_name:<11}{batch:>6}{alone:>23.2f}{parallel:>24.2f}{rate:>9.2f}{needed:>16}",
                flush=True,
            )
            del model, batches
            store.close()
            if cuda:
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main(sys.argv[1:])
