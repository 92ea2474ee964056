"""``python -m amad_suite.rehearsal [--keep DIR]``: run the rehearsal (see amad_suite.rehearsal), print its timings."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from amad_suite.cli import OneLineParser, run_stage
from amad_suite.rehearsal.run import rehearse


def main() -> None:
    parser = OneLineParser(description="The paper run in miniature over loopback: dvc repro twice, with checks.")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary folder)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="amad-rehearsal-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        outcome = rehearse(workdir)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    times = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in outcome.seconds.items())
    print(f"rehearsal passed: {len(outcome.first)} stages, then {len(outcome.second)} after a file was placed "
          f"by hand ({', '.join(outcome.second) or 'none'}); {times}")  # fmt: skip


if __name__ == "__main__":
    run_stage(main)
