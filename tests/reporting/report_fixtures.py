"""Synthetic results trees in the layout the evaluate and distill stages write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

METHODS = ("amad", "none", "one_to_one", "logit")  # deliberately not in table order
SEEDS = (0, 1)
# Headline base per method; seed s adds s, so the mean is base + 0.5 and the sample std is sqrt(0.5) = 0.71.
BASE = {"none": 50.0, "logit": 55.0, "one_to_one": 56.0, "amad": 58.0}
TEACHER_SCORE = 70.0
PRIOR_SCORE = 52.0  # the question prior every VQA teacher record carries as a reference
HEADS = {"teacher": 8, "student": 4}


def _metrics(task: str, score: float) -> dict[str, float | None]:
    if task == "vqa":
        return {"accuracy": score, "accuracy/yes/no": score + 10.0, "accuracy/number": score - 20.0}
    if task == "caption":
        bleu = {f"BLEU-{i}": score - 5.0 * i for i in range(1, 5)}
        return {**bleu, "METEOR": score / 4, "ROUGE-L": score - 1.0, "CIDEr": score * 2, "SPICE": None}
    return {"BLEU/test2016": score / 2, "BLEU/test2017": score / 3, "BLEU-lc/test2016": score / 2 + 0.5}


HEADLINE = {"vqa": "accuracy", "caption": "CIDEr", "translation": "BLEU/test2016"}


def write_eval(results: Path, family: str, task: str, method: str, seed: int | None, preset: str = "mini") -> Path:
    role = "teacher" if method == "teacher" else "student"
    run = f"{family}-{task}-teacher" if role == "teacher" else f"{family}-{task}-{method}-s{seed}"
    score = TEACHER_SCORE if role == "teacher" else BASE[method] + seed
    data = {
        "run": run,
        "role": role,
        "family": family,
        "task": task,
        "method": method,
        "seed": seed,
        "preset": preset,
        "metrics": _metrics(task, score),
        "headline": HEADLINE[task],
        "cost": {
            "params": 10_000_000 if role == "teacher" else 5_000_000,
            "latency_s_per_sample": 0.004 if role == "teacher" else 0.002 + 0.0001 * (seed or 0),
            "throughput_samples_per_s": 250.0 if role == "teacher" else 500.0,
        },
        "model": {
            "layers": {"encoder_self": [2, HEADS[role]], "cross": [2, HEADS[role]]},
            "heads": HEADS[role],
            "size": f"{family}-tiny-{role}",
        },
        "git_sha": "0123456789abcdef0123",
        "signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0" if task == "translation" else None,
    }
    if role == "teacher" and task == "vqa":
        data["references"] = {"question_prior": _metrics(task, PRIOR_SCORE)}
    name = "teacher.json" if role == "teacher" else f"s{seed}.json"
    path = results / "eval" / f"{family}-{task}-{method}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_history(dvclive_dir: Path, terms: dict[str, list[float]]) -> None:
    """DVCLive 3.49 step-history layout: plots/metrics/<term>.tsv with header 'step<TAB><last name part>'."""
    for term, values in terms.items():
        path = dvclive_dir / "plots" / "metrics" / f"{term}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = "".join(f"{i}\t{v}\n" for i, v in enumerate(values))
        path.write_text(f"step\t{term.rpartition('/')[2]}\n{rows}")


def write_attention(path: Path, heads: int, rng: np.random.Generator) -> None:
    arrays = {}
    for layer in (0, 1):
        for kind in ("encoder_self", "cross"):
            logits = rng.normal(size=(heads, 5, 6))
            arrays[f"{kind}/{layer}"] = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)  # (H, Q, K)
    arrays["tokens_q"] = np.array(["a", "b", "c", "d", "</s>"])
    arrays["tokens_k"] = np.array(["a", "b", "c", "d", "e", "</s>"])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def make_results(root: Path, pairs=(("vlt5", "vqa"), ("vlt5", "caption"), ("vlt5", "translation"), ("blip", "vqa"))):
    """Teacher + 4 methods x 2 seeds per (family, task), with histories, alignment and attention files."""
    rng = np.random.default_rng(0)
    results = root / "results"
    for family, task in pairs:
        write_eval(results, family, task, "teacher", None)
        teacher_dir = results / "teachers" / f"{family}-{task}"
        write_history(teacher_dir / "dvclive", {"train/loss": [3.0, 2.0, 1.5], "train/lr": [1e-3, 1e-3, 5e-4]})
        write_attention(teacher_dir / "attention_example.npz", HEADS["teacher"], rng)
        for method in METHODS:
            for seed in SEEDS:
                write_eval(results, family, task, method, seed)
                run_dir = results / "distill" / f"{family}-{task}-{method}" / f"s{seed}"
                terms = {"train/loss": [2.0 + seed, 1.0, 0.5], "train/task": [1.0, 0.8, 0.6]}
                if method.startswith("amad"):
                    terms["train/amad_kl"] = [0.3, 0.2, 0.1]
                    terms["train/alignment_entropy"] = [1.38, 1.3, 1.2]
                    align = {}
                    for layer in (0, 1):
                        for phase in ("early", "late"):
                            w = rng.random((HEADS["teacher"], HEADS["student"]))
                            align[f"{phase}/encoder_self/{layer}"] = w / w.sum(1, keepdims=True)  # (Ht, Hs)
                    run_dir.mkdir(parents=True, exist_ok=True)
                    np.savez(run_dir / "alignment.npz", **align)
                write_history(run_dir / "dvclive", terms)
                write_attention(run_dir / "attention_example.npz", HEADS["student"], rng)
    return results
