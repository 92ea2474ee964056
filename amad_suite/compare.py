"""Compare two runs' claims: ``python -m amad_suite.compare A B [--out FILE]``.

A and B are report folders (``reports/`` of two checkouts) or the checkouts themselves. Prints a Markdown table of
every claim row of either run (both Δ with their 95% intervals, both verdicts, and how the verdict changed) and of
the qualification of every setup. Exits 1 when a verdict flipped between supported and contradicted, 0 otherwise:
the check for a re-run that should only move digits (README "What a mini run can and cannot tell you").
"""

from __future__ import annotations

import sys
from pathlib import Path

from amad_suite.cli import OneLineParser, run_stage


def report_dir(path: str) -> Path:
    """``path`` itself when it holds claims.csv, else its ``reports/``."""
    folder = Path(path)
    return folder if (folder / "claims.csv").exists() else folder / "reports"


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(description=__doc__)
    parser.add_argument("a", help="run A: a reports folder or a checkout")
    parser.add_argument("b", help="run B: a reports folder or a checkout")
    parser.add_argument("--out", help="also write the Markdown here")
    args = parser.parse_args(argv)
    from amad import atomic
    from amad_suite.reporting import compare as C

    runs = [report_dir(args.a), report_dir(args.b)]
    claims = [C.read_csv(r / "claims.csv", C.CLAIM_COLUMNS) for r in runs]
    quals = [C.read_csv(r / "tables" / "qualification.csv", C.QUALIFICATION_COLUMNS) for r in runs]
    table = C.compare_claims(*claims)
    text = C.markdown(table, C.compare_qualification(*quals), args.a, args.b)
    print(text, end="")
    if args.out:
        atomic.write_text(args.out, text)
    flipped = table[table["change"] == "flipped"]
    if len(flipped):
        print(f"error: {len(flipped)} verdict(s) flipped between supported and contradicted", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
