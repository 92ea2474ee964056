"""The closed-form merge weights α that Squeezing-Heads Distillation uses on a finished run's teacher (issue 15 §5).

SHD merges teacher heads pairwise with α from their value circuits (amad/losses/squeezing_heads.py); without the
circuits α is 1/2 and SHD equals head_mean_kl. This prints, per distilled (kind, layer) of the teacher, the first
merge round's α on validation maps: mean, range, mean |α − 1/2| and the share clipped to [0, 1].

    python benchmarks/shd_alpha.py --repo PATH [--setup blip-caption] [--examples 64]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from amad.capture import CaptureSpec
from amad.losses.masking import prepare_maps
from amad.losses.squeezing_heads import check_values, merge_weight
from amad_suite.config import load_params, parse_setup
from amad_suite.pipeline import examples as E
from amad_suite.pipeline import setups as S
from amad_suite.pipeline.layout import DataLayout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True, help="a repository whose teacher stage has run")
    parser.add_argument("--setup", default="blip-caption")
    parser.add_argument("--examples", type=int, default=64)
    args = parser.parse_args()
    os.chdir(args.repo)
    params = load_params(Path("params.yaml"))
    family, task = parse_setup(args.setup)
    layout = DataLayout(Path("data"), params["data"]["scale"])
    teacher = S.load_teacher(Path("results/teachers") / args.setup).eval()
    visual = E.visual_store(layout, family, task)
    batch = teacher.collate(E.val_examples(layout, task)[: args.examples], visual, train=False)
    spec = CaptureSpec(layers=dict.fromkeys(params["distill"]["kinds"][family]), values=True)
    with torch.no_grad():
        maps = teacher(batch, capture=spec).attentions
    print(f"{args.setup} teacher, {len(batch)} validation examples, first merge round (heads 2i and 2i+1)")
    for (kind, layer), a in sorted(maps.probs.items()):
        km = maps.key_mask.get(kind)
        a = prepare_maps("shd_alpha", a, a, maps.query_mask.get(kind), km).teacher  # (B, H, Q, K), padding zeroed
        x = check_values(maps.values[(kind, layer)], a, km)  # (B, H, K, D)
        pairs = (a[:, 0::2], a[:, 1::2], x[:, 0::2], x[:, 1::2])
        alpha, raw = merge_weight(*pairs, clamp=True), merge_weight(*pairs, clamp=False)  # (B, H/2) each
        print(
            f"  {kind:12s} {layer}: α mean {alpha.mean():.3f}, range [{alpha.min():.3f}, {alpha.max():.3f}], "
            f"mean |α − 1/2| {(alpha - 0.5).abs().mean():.3f}, clipped {((raw < 0) | (raw > 1)).float().mean():.2f}"
        )


if __name__ == "__main__":
    main()
