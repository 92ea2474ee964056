"""Two runs' claims side by side: did a verdict change, and how far did each Δ move?

Used to check that the verdicts survive a change that should only move digits, such as another CPU's rounding
(README "What a mini run can and cannot tell you"). A claim row is matched on what it compares (claim, family,
task, comparison, head counts); qualification rows on the setup. A change of verdict is one of:

- ``same``;
- ``weakened`` or ``strengthened``: between ``supported``/``contradicted`` and ``inconclusive``, which noise
  near an interval's end can do;
- ``flipped``: ``supported`` in one run and ``contradicted`` in the other, which noise of the size the intervals
  claim to absorb must never do;
- ``only in A`` / ``only in B``: a row that one run has and the other does not (a setup that qualified in one).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from amad.errors import DataError

KEY = ["claim", "family", "task", "comparison", "teacher_heads", "student_heads"]
CLAIM_COLUMNS = [*KEY, "metric", "delta", "ci_low", "ci_high", "verdict"]  # what the comparison reads of claims.csv
SETUP = ["family", "task", "student_heads"]
QUALIFICATION_COLUMNS = [*SETUP, "qualifies", "failed"]  # ... and of tables/qualification.csv
DECIDED = {"supported", "contradicted"}


def read_csv(path: str | Path, columns: list[str]) -> pd.DataFrame:
    """A report CSV with at least ``columns``, or a one-line DataError that names the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist: give a report CSV that `dvc repro` wrote (reports/claims.csv)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV ({' '.join(str(exc).split())}): regenerate it") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(missing)}: is it a report stage's {path.name}?")
    return frame


def change(a: object, b: object) -> str:
    """How a verdict moved from run A (``a``) to run B (``b``); NaN stands for a row that a run lacks."""
    if not isinstance(a, str):
        return "only in B"
    if not isinstance(b, str):
        return "only in A"
    if a == b:
        return "same"
    if {a, b} == DECIDED:
        return "flipped"
    return "weakened" if a in DECIDED else "strengthened"


def compare_claims(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per claim row of either run: both Δ with their intervals, the verdicts and their :func:`change`."""
    both = a[CLAIM_COLUMNS].merge(b[CLAIM_COLUMNS], on=[*KEY, "metric"], how="outer", suffixes=("_a", "_b"))
    both["delta_moved"] = both["delta_b"] - both["delta_a"]
    both["change"] = [change(x, y) for x, y in zip(both["verdict_a"], both["verdict_b"], strict=True)]
    return both.sort_values(["family", "task", "claim", "comparison"], kind="stable").reset_index(drop=True)


def compare_qualification(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """One row per setup of either run: whether it qualified in each, and the check it failed."""
    both = a[QUALIFICATION_COLUMNS].merge(b[QUALIFICATION_COLUMNS], on=SETUP, how="outer", suffixes=("_a", "_b"))
    both["same"] = both["qualifies_a"] == both["qualifies_b"]
    return both.sort_values(SETUP, kind="stable").reset_index(drop=True)


def _num(x: float) -> str:
    return "" if pd.isna(x) else f"{x:+.2f}"


def markdown(claims: pd.DataFrame, qualification: pd.DataFrame, name_a: str, name_b: str) -> str:
    """The comparison as Markdown: a summary line, the qualification table and the claims table."""
    counts = claims["change"].value_counts()
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    lines = [f"# Claims: A = {name_a}, B = {name_b}", "", f"{len(claims)} claim rows: {summary}.", ""]
    lines += ["| setup | qualifies in A | in B | failed check in A | in B |", "|---|---|---|---|---|"]
    for row in qualification.itertuples(index=False):
        fail_a = "" if pd.isna(row.failed_a) else row.failed_a
        fail_b = "" if pd.isna(row.failed_b) else row.failed_b
        setup = f"{row.family}-{row.task}, {row.student_heads} heads"
        lines.append(f"| {setup} | {row.qualifies_a} | {row.qualifies_b} | {fail_a} | {fail_b} |")
    lines += [
        "",
        "| claim | setup | comparison | Δ A [95% CI] | Δ B [95% CI] | B − A | verdict A | verdict B | change |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for r in claims.itertuples(index=False):
        ci_a = f"{_num(r.delta_a)} [{_num(r.ci_low_a)}, {_num(r.ci_high_a)}]" if not pd.isna(r.delta_a) else ""
        ci_b = f"{_num(r.delta_b)} [{_num(r.ci_low_b)}, {_num(r.ci_high_b)}]" if not pd.isna(r.delta_b) else ""
        setup = f"{r.family}-{r.task}, {r.teacher_heads} → {r.student_heads}"
        va = r.verdict_a if isinstance(r.verdict_a, str) else ""
        vb = r.verdict_b if isinstance(r.verdict_b, str) else ""
        lines.append(f"| {r.claim} | {setup} | {r.comparison} | {ci_a} | {ci_b} | {_num(r.delta_moved)} | {va} | {vb} "
                     f"| {r.change} |")  # fmt: skip
    return "\n".join(lines) + "\n"
