"""Entry-point wrapper for stage scripts: logging, and one-line errors instead of tracebacks."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from amad.errors import AmadError


def setup_logging() -> None:
    level = os.environ.get("AMAD_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "urllib3", "filelock", "matplotlib", "PIL", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class OneLineParser(argparse.ArgumentParser):
    """argparse with the project's error format: one line, ``error: <what> (<fix>)``, exit status 2; options are
    never abbreviated (``--seed`` must not silently mean ``--seeds-key``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def run_parser(description: str | None, *, teacher: bool = False) -> argparse.ArgumentParser:
    """Arguments shared by the per-run stages (distill, evaluate): --setup, --method, --seeds-key, --data.

    ``teacher``: also accept ``--method teacher``, which takes no --seed.
    """
    parser = OneLineParser(description=description)
    parser.add_argument("--setup", required=True, help="family-task pair, e.g. vlt5-vqa")
    method_help = "a method under distill.methods" + (", or teacher" if teacher else "")
    parser.add_argument("--method", required=True, help=method_help)
    parser.add_argument(
        "--seeds-key",
        required=not teacher,
        choices=("seeds", "budget_seeds"),
        help="which seed list of params the runs use: suite.seeds or suite.budget_seeds"
        + (" (students)" if teacher else ""),
    )
    parser.add_argument(
        "--heads", default="size", help="the students' head count (the head-ratio matrix item), or size (default)"
    )
    parser.add_argument("--data", required=True, help="the data folder (data/)")
    return parser


def run_stage(main: Callable[[], None]) -> None:
    """Run ``main``; user-fixable errors print ``error: <message>`` and exit 2, Ctrl-C exits 130.

    The script first goes to a warm server when one is running (:mod:`amad_suite.warm`): there it starts with torch
    and transformers already imported. Stage scripts therefore import heavy modules inside ``main``.
    """
    from amad_suite import warm

    warm.delegate()
    setup_logging()
    try:
        main()
    except AmadError as err:
        message = " ".join(str(err).split())
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume from the last checkpoint", file=sys.stderr)
        sys.exit(130)
