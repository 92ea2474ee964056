"""DVC stage: score one distilled student on its task's test sets."""

import argparse

from amad.cli import run_stage
from amad.config import load_params
from amad.pipeline.train_stages import run_evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--setup", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--data", required=True)
    parser.add_argument("--run", required=True, help="the distill stage's folder")
    parser.add_argument("--out", required=True, help="eval JSON")
    args = parser.parse_args()
    run_evaluate(load_params(), args.setup, args.method, args.seed, args.data, args.run, args.out)


if __name__ == "__main__":
    run_stage(main)
