"""DVC stage: score the distilled students of one setup and method, one per seed (or, with --method teacher, the
teacher), on the task's test sets."""

import contextlib

from amad.metrics.meteor import MeteorScorer
from amad_suite.cli import run_parser, run_stage
from amad_suite.config import load_params, parse_setup


def main() -> None:
    parser = run_parser(__doc__, teacher=True)
    parser.add_argument(
        "--run", required=True, help="the distill stage's folder (the teacher folder for --method teacher)"
    )
    parser.add_argument("--out", required=True, help="folder of eval JSON files (teacher.json or s<seed>.json)")
    parser.add_argument("--predictions", required=True, help="folder of predictions (test set -> example id -> text)")
    parser.add_argument("--teacher", help="the students' teacher folder: measures their head coverage (claim C6)")
    args = parser.parse_args()
    params = load_params()
    _, task = parse_setup(args.setup)
    # METEOR's JVM takes seconds to load its paraphrase tables: for captions, start it before torch and
    # transformers are imported, so the two load side by side.
    with MeteorScorer() if task == "caption" else contextlib.nullcontext(True) as meteor:
        from amad_suite.pipeline.eval_stages import run_evaluate

        run_evaluate(
            params, args.setup, args.method, args.seeds_key, args.data, args.run, args.out, args.predictions, meteor,
            teacher_dir=args.teacher, heads=args.heads,
        )  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
