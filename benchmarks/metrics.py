"""Time caption_metrics on generated COCO-like captions, side by side with pycocoevalcap called by hand.

Run: ``python benchmarks/metrics.py [n_captions] [n_refs]``. Both paths share one METEOR JVM, whose start-up
(and JIT warm-up on 1,000 captions) is timed separately. The captions come from templates with a seeded RNG:
realistic lengths and vocabulary, with predictions that share part of their wording with the references.
"""

from __future__ import annotations

import random
import sys
import time

SUBJECTS = [
    "a man",
    "a woman",
    "two dogs",
    "a cat",
    "a young boy",
    "a group of people",
    "a red bus",
    "a giraffe",
    "an old woman",
    "a little girl",
    "a brown horse",
    "three children",
    "a skateboarder",
    "a plate of food",
]
VERBS = [
    "is standing",
    "is sitting",
    "is walking",
    "is riding a bike",
    "is playing",
    "is eating a sandwich",
    "is looking at the camera",
    "is parked",
    "is running",
    "is holding an umbrella",
]
PLACES = [
    "on the beach",
    "in a park",
    "next to a building",
    "on a city street",
    "in the kitchen",
    "near the water",
    "in a grassy field",
    "at the table",
    "in front of a house",
    "on a snowy hill",
]
EXTRAS = ["", "", "", " at night", " on a sunny day", " with a friend", " in the rain"]


def _caption(rng: random.Random) -> str:
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}{rng.choice(EXTRAS)}"
    text = text[0].upper() + text[1:]
    return text + rng.choice([".", ".", "", " ."])


def make_captions(n_captions: int, n_refs: int, seed: int = 0) -> tuple[dict[int, str], dict[int, list[str]]]:
    """Generated predictions (id -> caption) and references (id -> n_refs captions)."""
    rng = random.Random(seed)
    predictions, references = {}, {}
    for image_id in range(n_captions):
        refs = [_caption(rng) for _ in range(n_refs)]
        base = rng.choice(refs).rstrip(" .").split()
        # The prediction keeps the start of one reference and swaps its ending for a generated one.
        cut = rng.randint(2, max(2, len(base) - 1))
        predictions[image_id] = " ".join(base[:cut] + _caption(rng).rstrip(" .").split()[cut:]).lower()
        references[image_id] = refs
    return predictions, references


def _direct(predictions: dict, references: dict, meteor_backend) -> dict[str, float]:
    """The same scores through pycocoevalcap's own classes, as COCOEvalCap runs them (without SPICE)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    times = {}
    start = time.perf_counter()
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({k: [{"caption": c} for c in v] for k, v in references.items()})
    res = tokenizer.tokenize({k: [{"caption": c}] for k, c in predictions.items()})
    times["tokenize"] = time.perf_counter() - start
    for name, call in (
        ("Bleu", lambda: Bleu(4).compute_score(gts, res, verbose=0)),
        ("METEOR", lambda: meteor_backend.compute_score(gts, res)),
        ("ROUGE_L", lambda: Rouge().compute_score(gts, res)),
        ("CIDEr", lambda: Cider().compute_score(gts, res)),
    ):
        start = time.perf_counter()
        call()
        times[name] = time.perf_counter() - start
    return times


def run(n_captions: int = 5000, n_refs: int = 5, repeats: int = 2) -> dict:
    """Time every step of caption_metrics and of pycocoevalcap called directly on the same captions.

    The two paths alternate ``repeats`` times; each step keeps its fastest time (the CPU may be shared).

    Returns:
        ``{"n_captions", "n_refs", "meteor_start_s", "amad_s": {step: s}, "direct_s": {step: s},
        "amad_total_s", "direct_total_s", "scores"}``.
    """
    from amad.metrics import MeteorScorer, caption_metrics

    predictions, references = make_captions(n_captions, n_refs)
    amad_s: dict[str, float] = {}
    direct_s: dict[str, float] = {}
    start = time.perf_counter()
    with MeteorScorer() as meteor:
        # The JVM loads its tables on first use and its JIT warms up over the first calls.
        warm = list(predictions)[:1000]
        meteor.score({k: references[k] for k in warm}, {k: [predictions[k]] for k in warm})
        meteor_start = time.perf_counter() - start
        for _ in range(repeats):
            times: dict[str, float] = {}
            start = time.perf_counter()
            scores = caption_metrics(predictions, references, meteor=meteor, spice=False, timings=times)
            times["total"] = time.perf_counter() - start
            times.pop("METEOR_start")  # zero here: the JVM was started and warmed above
            times.pop("SPICE")
            start = time.perf_counter()
            direct = _direct(predictions, references, meteor.backend)
            direct["total"] = time.perf_counter() - start
            for best, new in ((amad_s, times), (direct_s, direct)):
                for step, seconds in new.items():
                    best[step] = min(seconds, best.get(step, float("inf")))
    return {
        "n_captions": n_captions,
        "n_refs": n_refs,
        "meteor_start_s": meteor_start,
        "amad_s": amad_s,
        "direct_s": direct_s,
        "amad_total_s": amad_s.pop("total"),
        "direct_total_s": direct_s.pop("total"),
        "scores": {k: v for k, v in scores.items() if isinstance(v, float)},
    }


def main(argv: list[str]) -> None:
    result = run(*(int(arg) for arg in argv[:2]))
    print(f"caption metrics: {result['n_captions']} captions x {result['n_refs']} references (seconds)")
    print(f"{'step':<10} {'amad':>8} {'direct':>8} {'ratio':>7}")
    for step, direct in result["direct_s"].items():
        ours = result["amad_s"][step]
        print(f"{step:<10} {ours:8.2f} {direct:8.2f} {ours / direct:7.2f}")
    ratio = result["amad_total_s"] / result["direct_total_s"]
    print(f"{'total':<10} {result['amad_total_s']:8.2f} {result['direct_total_s']:8.2f} {ratio:7.2f}")
    print(f"METEOR JVM start-up (once per MeteorScorer): {result['meteor_start_s']:.2f} s")
    print("scores (x100): " + ", ".join(f"{k} {v:.1f}" for k, v in result["scores"].items()))


if __name__ == "__main__":
    main(sys.argv[1:])
