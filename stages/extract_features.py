"""DVC stage: the VL-T5 visual features of one task (--task vqa|caption|translation) or the BLIP image caches
(--task images)."""

import argparse

from amad_suite.cli import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", required=True, help="vqa, caption, translation (features) or images (BLIP cache)")
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    from amad_suite.config import load_params
    from amad_suite.pipeline.data_stages import run_extract

    run_extract(load_params(), args.task, args.data)


if __name__ == "__main__":
    run_stage(main)
