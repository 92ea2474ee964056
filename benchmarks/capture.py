"""Training-step cost of attention capture on a small T5 (issue 2, section 4).

Compares, in one process and interleaved, one training step (forward + backward + AdamW step) of:
  * eager, no capture (the baseline);
  * capture of every layer of every kind, on the same model loaded with eager and with the default sdpa;
  * sdpa, no capture (for context: what the fast path costs without any maps).
Prints the median wall and CPU time of each step and its paired ratio to the baseline (the median over rounds of
step / baseline in the same round, which cancels load drift on a shared machine). Target: capture <= 1.15x eager.

    python benchmarks/capture.py [--repeats 7] [--batch 32] [--seq 64] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from transformers import T5Config, T5ForConditionalGeneration

from amad.capture import CaptureSpec, attention_layout, capture_attention

TARGET = 1.15


def build(attn_implementation: str, state: dict | None, device: str) -> T5ForConditionalGeneration:
    config = T5Config(
        vocab_size=1024,
        d_model=256,
        d_kv=32,
        d_ff=1024,
        num_layers=4,
        num_decoder_layers=4,
        num_heads=8,
        dropout_rate=0.1,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    model = T5ForConditionalGeneration._from_config(config, attn_implementation=attn_implementation)
    if state is not None:
        model.load_state_dict(state)
    return model.to(device).train()


def make_batch(batch: int, seq: int, device: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(seq // 2, seq + 1, (batch,), generator=g)  # (B,) real lengths: padded batch
    valid = torch.arange(seq)[None, :] < lengths[:, None]  # (B, L)
    input_ids = torch.randint(2, 1024, (batch, seq), generator=g).masked_fill(~valid, 0)
    labels = torch.randint(2, 1024, (batch, seq), generator=g).masked_fill(~valid, -100)
    return {"input_ids": input_ids.to(device), "attention_mask": valid.to(device), "labels": labels.to(device)}


def make_step(model: T5ForConditionalGeneration, batch: dict, spec: CaptureSpec | None) -> Callable[[], int]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> int:
        optimizer.zero_grad(set_to_none=True)
        if spec is None:
            model(**batch).loss.backward()
            captured = 0
        else:
            with capture_attention(model, spec) as maps:
                loss = model(**batch).loss
            loss.backward()
            captured = len(maps)
        optimizer.step()
        return captured

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1: steadiest on a shared machine)")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    state = build("eager", None, "cpu").state_dict()
    batch = make_batch(args.batch, args.seq, args.device)
    eager, sdpa_capture, eager_capture, sdpa = (build(impl, state, args.device) for impl in ("eager", "sdpa") * 2)
    spec = CaptureSpec.all_layers(attention_layout(eager))
    steps = {
        "eager, no capture": make_step(eager, batch, None),
        "capture all (sdpa model)": make_step(sdpa_capture, batch, spec),
        "capture all (eager model)": make_step(eager_capture, batch, spec),
        "sdpa, no capture": make_step(sdpa, batch, None),
    }
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    captured = {name: step() for name, step in steps.items()}  # warm-up
    sync()
    times: dict[str, list[float]] = {name: [] for name in steps}
    cpu: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order: no position bias
            sync()
            start, start_cpu = time.perf_counter(), time.process_time()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)

    print(
        f"T5 d_model=256, 4+4 layers, 8 heads; batch {args.batch}, seq {args.seq}; device {args.device}, "
        f"{torch.get_num_threads()} threads; median of {args.repeats} interleaved training steps"
    )
    base = "eager, no capture"

    def paired(name: str, series: dict[str, list[float]]) -> float:
        """Median over rounds of this step's time / the baseline's time in the same round (cancels load drift)."""
        return statistics.median(t / b for t, b in zip(series[name], series[base]))

    print(f"{'step':<28} {'maps':>5} {'wall ms':>9} {'x eager':>8} {'cpu ms':>9} {'x eager':>8}")
    for name in names:
        wall, cpu_ms = statistics.median(times[name]) * 1e3, statistics.median(cpu[name]) * 1e3
        print(
            f"{name:<28} {captured[name]:>5} {wall:>9.1f} {paired(name, times):>8.3f} "
            f"{cpu_ms:>9.1f} {paired(name, cpu):>8.3f}"
        )
    worst = max(paired(name, times) for name in names if name.startswith("capture"))
    verdict = "PASS" if worst <= TARGET else "MISS"
    print(f"capture / eager (wall, paired median) = {worst:.3f} (target <= {TARGET}): {verdict}")


if __name__ == "__main__":
    main()
