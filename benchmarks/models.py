"""Parameter counts and latency per sample of the teachers and students, side by side (issue 3, benchmarks).

CPU table: for the mini (tiny) and the paper-sized VL-T5 and BLIP teachers and students, with random weights
(shapes only), on VQA inputs: parameters, teacher-forced forward latency and greedy-generation latency per sample,
and each student's speed-up over its teacher measured in the same process. Paper sizes run at batch 1-2 with 1-2
repeats so that the table finishes in a few minutes on 2 cores.

GPU section (``--gpu``; skipped without CUDA; ``--gpu-device cpu --gpu-sizes vlt5-tiny-teacher,vlt5-tiny-student``
is a dry run of the same code): samples/s of one paper-sized distillation step in bf16 autocast (teacher forward
under no_grad + student forward/backward + AdamW step), with the AMAD KL loss on the captured maps of
``--gpu-kinds`` (default: the paper preset's ``distill.kinds`` for the family; uniform layer mapping) and, for
comparison, with logit KD only, plus the peak GPU memory of each. ``--gpu-sizes blip-base,blip-small`` measures BLIP.

    python benchmarks/models.py [--batch 4] [--repeats 3] [--rounds 3] [--paper-batch 1] [--paper-repeats 1]
                                [--paper-rounds 1] [--skip-paper] [--gpu] [--gpu-only] [--gpu-batch 64]
                                [--gpu-steps 10] [--gpu-sizes vlt5-base,vlt5-small] [--gpu-kinds KIND,KIND]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch
import yaml
from tokenizers import Tokenizer, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

from amad.models import build_model
from amad.models.cost import count_parameters, measure_latency
from amad.models.sizes import resolve_size
from amad.types import Example

SPECIALS = ["<pad>", "</s>", "<unk>", "<s>", "<enc>"]
# (family, teacher size, student size, vocabulary tokens). Paper: t5-base's 32100 (+100 box rows = 32200),
# bert-base-uncased + [DEC] + [ENC] = 30524.
MINI = [
    ("vlt5", "vlt5-tiny-teacher", "vlt5-tiny-student", 1000),
    ("blip", "blip-tiny-teacher", "blip-tiny-student", 1000),
]
PAPER = [("vlt5", "vlt5-base", "vlt5-small", 32100), ("blip", "blip-base", "blip-small", 30524)]


def word_tokenizer(n_tokens: int) -> PreTrainedTokenizerFast:
    """A word-level tokenizer with exactly ``n_tokens`` entries (specials 0..4, then w5, w6, ...)."""
    vocab = {t: i for i, t in enumerate(SPECIALS)} | {f"w{i}": i for i in range(len(SPECIALS), n_tokens)}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )


class FakeVisual:
    """FeatureStore / ImageStore stand-in: ``get(key)`` -> (feats (N, D), boxes (N, 4)) or pixels (3, S, S)."""

    def __init__(self, size: dict[str, Any]) -> None:
        self.size = size

    def get(self, key: str) -> Any:
        rng = np.random.default_rng(int(key))
        if self.size["family"] == "vlt5":
            n = self.size["n_boxes"]
            xy = rng.uniform(0, 0.5, (n, 2))
            boxes = np.concatenate([xy, xy + rng.uniform(0.1, 0.5, (n, 2))], 1).clip(0, 1)  # (N, 4) x1 y1 x2 y2
            return rng.standard_normal((n, self.size["feat_dim"])).astype(np.float32), boxes.astype(np.float32)
        s = self.size["vision"]["image_size"]
        return rng.standard_normal((3, s, s)).astype(np.float32)


def vqa_examples(n: int, n_tokens: int, seed: int = 0) -> list[Example]:
    """VQA-like examples: 8-14 word questions, 1-3 word answers, drawn from the tokenizer's words."""
    rng = np.random.default_rng(seed)

    def words(k: int) -> str:
        return " ".join(f"w{i}" for i in rng.integers(len(SPECIALS), n_tokens, k))

    return [
        Example(str(i), str(i), words(int(rng.integers(8, 15))), words(int(rng.integers(1, 4))), ["x"], 1.0)
        for i in range(n)
    ]


def setup(size_name: str, family: str, tok: Any, n_tokens: int, batch: int) -> tuple[Any, Any]:
    """A random-weight VQA model of a named size and one collated batch for it."""
    size = resolve_size(size_name)
    if family == "vlt5" and n_tokens > 30000:
        size["vocab_rows"] = n_tokens + 100  # t5-base's tokens + VL-T5's 100 <vis_extra_id_*> rows = 32200
    torch.manual_seed(0)
    model = build_model(family, "vqa", size, tok).eval()
    return model, model.collate(vqa_examples(batch, n_tokens), FakeVisual(size), train=True)


def measure(model: Any, data: Any, repeats: int) -> dict[str, float]:
    """Milliseconds per sample of a teacher-forced forward and of greedy generation."""
    forward = measure_latency(model, data, repeats=repeats, warmup=1)
    generate = measure_latency(model, data, repeats=repeats, warmup=1, generate=True)
    return {
        "forward_ms": 1000 * forward["latency_s_per_sample"],
        "generate_ms": 1000 * generate["latency_s_per_sample"],
    }


def cpu_table(groups: list[tuple[str, str, str, int]], batch: int, repeats: int, rounds: int, title: str) -> None:
    """Teacher and student are measured in alternation for ``rounds`` rounds; the fastest round of each is kept
    (the CPU may be shared, and the minimum is the least disturbed estimate)."""
    print(
        f"\n## {title} (CPU, {torch.get_num_threads()} threads, VQA, batch {batch}, {repeats} repeats, best of "
        f"{rounds} rounds)"
    )
    print(
        f"{'model':<22}{'params (M)':>12}{'forward ms/sample':>20}{'generate ms/sample':>20}{'fwd speed-up':>14}"
        f"{'gen speed-up':>14}"
    )
    for family, teacher, student, n_tokens in groups:
        tok = word_tokenizer(n_tokens)
        models = {name: setup(name, family, tok, n_tokens, batch) for name in (teacher, student)}
        rows = {
            name: {"params": count_parameters(m), "forward_ms": float("inf"), "generate_ms": float("inf")}
            for name, (m, _) in models.items()
        }
        for _ in range(rounds):
            for name, (model, data) in models.items():
                for key, value in measure(model, data, repeats).items():
                    rows[name][key] = min(rows[name][key], value)
        del models
        t = rows[teacher]
        for name, r in rows.items():
            fwd = f"{t['forward_ms'] / r['forward_ms']:.2f}x" if name == student else ""
            gen = f"{t['generate_ms'] / r['generate_ms']:.2f}x" if name == student else ""
            print(
                f"{name:<22}{r['params'] / 1e6:>12.2f}{r['forward_ms']:>20.2f}{r['generate_ms']:>20.2f}{fwd:>14}"
                f"{gen:>14}"
            )


def paper_kinds(family: str) -> tuple[str, ...]:
    """The attention kinds the paper preset distils for ``family`` (configs/presets/paper.yaml)."""
    preset = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/presets/paper.yaml").read_text())
    return tuple(preset["distill"]["kinds"][family])


def distillation_step_rate(
    batch: int, steps: int, device: str, teacher_size: str, student_size: str, kinds: tuple[str, ...] = ()
) -> None:
    """Distillation step in bf16 autocast: AMAD KL on ``kinds`` (+ logit KD) vs logit KD only, samples/s."""
    from amad.training.step import distill_step, plan_capture
    from amad.training.terms import parse_method

    family = resolve_size(teacher_size)["family"]
    kinds = kinds or paper_kinds(family)
    print(
        f"\n## {device}: {teacher_size} -> {student_size} distillation step, bf16 autocast, VQA batch {batch}, "
        f"AMAD on {', '.join(kinds)}"
    )
    if device == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return
    paper = {(t, s): n for _, t, s, n in PAPER}
    n_tokens = paper.get((teacher_size, student_size), 1000)  # the paper pairs' real vocabularies, else 1000
    tok = word_tokenizer(n_tokens)
    teacher, _ = setup(teacher_size, family, tok, n_tokens, batch)
    student, data = setup(student_size, family, tok, n_tokens, batch)
    teacher, student, data = teacher.to(device), student.to(device).train(), data.to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    logit = parse_method("logit", {"task": 1.0, "logit_kd": {"weight": 1.0, "temperature": 2.0}})
    amad = parse_method("amad", {"task": 1.0, "logit_kd": {"weight": 1.0, "temperature": 2.0}, "amad_kl": 1.0})
    plans = {
        False: plan_capture(student, teacher, (), "uniform"),
        True: plan_capture(student, teacher, kinds, "uniform"),
    }
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)

    def step(attention: bool) -> None:
        """The trainer's own step (amad.training.step.distill_step): losses run in float32 outside autocast."""
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device, dtype=torch.bfloat16):
            result = distill_step(student, teacher, data, amad if attention else logit, plans[attention])
        result.total.backward()
        optimizer.step()

    results, peaks = {}, {}
    for attention in (False, True, False, True):  # interleaved; the second pass of each is kept
        for _ in range(2):
            step(attention)
        sync()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(steps):
            step(attention)
        sync()
        results[attention] = batch * steps / (time.perf_counter() - start)
        peaks[attention] = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    print(f"{'loss':<28}{'samples/s':>12}{'peak GiB':>10}")
    print(f"{'logit KD only':<28}{results[False]:>12.1f}{peaks[False]:>10.1f}")
    print(f"{'AMAD KL + KD':<28}{results[True]:>12.1f}{peaks[True]:>10.1f}")
    print(f"AMAD step cost vs logit-only: {results[False] / results[True]:.3f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4, help="mini models' batch size")
    parser.add_argument("--repeats", type=int, default=3, help="mini models' timed repeats")
    parser.add_argument("--rounds", type=int, default=3, help="mini models' alternating rounds (best kept)")
    parser.add_argument("--paper-batch", type=int, default=1)
    parser.add_argument("--paper-repeats", type=int, default=1)
    parser.add_argument("--paper-rounds", type=int, default=1)
    parser.add_argument("--skip-paper", action="store_true", help="only the mini models")
    parser.add_argument("--gpu", action="store_true", help="also the paper-sized VL-T5 distillation step on CUDA")
    parser.add_argument("--gpu-batch", type=int, default=64)
    parser.add_argument("--gpu-steps", type=int, default=10)
    parser.add_argument("--gpu-device", default="cuda", help="'cpu' runs the same step code (for a dry run)")
    parser.add_argument("--gpu-sizes", default="vlt5-base,vlt5-small", help="teacher,student size names")
    parser.add_argument("--gpu-kinds", default="", help="attention kinds, comma-separated (default: paper preset's)")
    parser.add_argument("--gpu-only", action="store_true", help="skip the CPU tables")
    args = parser.parse_args()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if not args.gpu_only:
        cpu_table(MINI, args.batch, args.repeats, args.rounds, "mini teachers and students")
    if not (args.skip_paper or args.gpu_only):
        cpu_table(PAPER, args.paper_batch, args.paper_repeats, args.paper_rounds, "paper sizes, random weights")
    if args.gpu or args.gpu_only:
        teacher_size, student_size = args.gpu_sizes.split(",")
        kinds = tuple(k for k in args.gpu_kinds.split(",") if k)
        distillation_step_rate(args.gpu_batch, args.gpu_steps, args.gpu_device, teacher_size, student_size, kinds)


if __name__ == "__main__":
    main()
