"""DVC stage: distil the students of one setup and method, one per seed of a seed list, from the frozen teacher."""

from amad_suite.cli import run_parser, run_stage


def main() -> None:
    parser = run_parser(__doc__)
    parser.add_argument("--teacher", required=True, help="the teacher stage's folder")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from amad_suite.config import load_params
    from amad_suite.pipeline.train_stages import run_distill

    run_distill(
        load_params(), args.setup, args.method, args.seeds_key, args.data, args.teacher, args.out, heads=args.heads
    )


if __name__ == "__main__":
    run_stage(main)
