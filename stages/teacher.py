"""DVC stage: train (mini) or fine-tune (paper) the teacher of one family-task setup (evaluate_teacher scores it)."""

from amad_suite.cli import OneLineParser, run_stage


def main() -> None:
    parser = OneLineParser(description=__doc__)
    parser.add_argument("--setup", required=True, help="family-task, e.g. vlt5-vqa")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, help="teacher folder (model/, dvclive/, run_info.json)")
    args = parser.parse_args()
    from amad_suite.config import load_params
    from amad_suite.pipeline.train_stages import run_teacher

    run_teacher(load_params(), args.setup, args.data, args.out)


if __name__ == "__main__":
    run_stage(main)
