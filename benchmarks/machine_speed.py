"""How fast this machine is against the one the mini preset was sized on (issue 5's CPU budget).

The issue measured a 7.5M-parameter T5 (d_model 256, 3+3 layers, 8 heads, d_ff 1024, an 8k BPE vocabulary)
training at about 1.2 steps/s at batch 64 on Multi30K with 2 cores. This script trains that model on the real
Multi30K text (../shared/data/multi30k, or --multi30k) for --steps steps and prints its rate and the ratio to
1.2 steps/s. Mini-suite times scale roughly with the inverse of that ratio, so read a mini-suite time measured
here (benchmarks/pipeline.py --mini) against it.

    python benchmarks/machine_speed.py [--steps 30] [--threads 2] [--multi30k PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

from amad.data.formats.multi30k import load_multi30k
from amad.data.tokenizer import train_tokenizer
from amad_suite.testing import SHARED_MULTI30K

REFERENCE_STEPS_PER_S = 1.2  # issue 5: the 7.5M T5 at batch 64 on 2 cores
BATCH = 64


def reference_model(vocab: int) -> T5ForConditionalGeneration:
    config = T5Config(
        vocab_size=vocab,
        d_model=256,
        d_kv=32,
        d_ff=1024,
        num_layers=3,
        num_decoder_layers=3,
        num_heads=8,
        dropout_rate=0.1,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5ForConditionalGeneration(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--multi30k", type=Path, default=SHARED_MULTI30K)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    examples = load_multi30k(args.multi30k, "train", train=True)
    with tempfile.TemporaryDirectory() as tmp:
        texts = [t for ex in examples for t in (ex.source, ex.target)]
        tokenizer = train_tokenizer(texts, 8000, Path(tmp) / "tokenizer.json")
    model = reference_model(len(tokenizer))
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step(i: int) -> None:
        chunk = examples[(i * BATCH) % (len(examples) - BATCH) :][:BATCH]
        src = tokenizer([ex.source for ex in chunk], padding=True, return_tensors="pt")
        labels = tokenizer([ex.target for ex in chunk], padding=True, return_tensors="pt").input_ids  # (B, T)
        labels[labels == tokenizer.pad_token_id] = -100
        loss = model(input_ids=src.input_ids, attention_mask=src.attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for i in range(3):  # warm-up
        step(i)
    start = time.perf_counter()
    for i in range(args.steps):
        step(3 + i)
    rate = args.steps / (time.perf_counter() - start)
    print(f"reference T5: {n_params / 1e6:.2f}M parameters, batch {BATCH}, {args.threads} threads")
    print(f"  {rate:.2f} steps/s; the issue's machine: {REFERENCE_STEPS_PER_S} steps/s")
    print(f"  speed ratio (this machine / the issue's) = {rate / REFERENCE_STEPS_PER_S:.2f}")


if __name__ == "__main__":
    main()
