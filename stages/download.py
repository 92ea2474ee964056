"""DVC stage: build (mini) or fetch (paper) the raw data and the tokenizer."""

import argparse

from amad_suite.cli import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="data root: writes raw/, manifest.lock.json and tokenizer/")
    args = parser.parse_args()
    from amad_suite.config import load_params
    from amad_suite.pipeline.data_stages import run_download

    run_download(load_params(), args.data)


if __name__ == "__main__":
    run_stage(main)
