"""Comparing two runs' claims: verdict changes are classified, a flip fails the command, bad files are one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from amad.errors import DataError
from amad_suite.reporting import compare as C

CLAIM_COLUMNS = C.CLAIM_COLUMNS


def claims(*rows: tuple[str, str, float, float, float, str]) -> pd.DataFrame:
    """Rows of (claim, family, delta, ci_low, ci_high, verdict) for caption setups 8 → 4 heads."""
    return pd.DataFrame(
        [(c, fam, "caption", "amad − x", 8, 4, "CIDEr", d, lo, hi, v) for c, fam, d, lo, hi, v in rows],
        columns=CLAIM_COLUMNS,
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("supported", "supported", "same"),
        ("supported", "inconclusive", "weakened"),
        ("contradicted", "inconclusive", "weakened"),
        ("inconclusive", "supported", "strengthened"),
        ("supported", "contradicted", "flipped"),
        ("contradicted", "supported", "flipped"),
        (float("nan"), "supported", "only in B"),
        ("inconclusive", float("nan"), "only in A"),
    ],
)
def test_a_verdict_change_is_classified(a, b, expected) -> None:
    assert C.change(a, b) == expected


def test_claims_are_matched_on_what_they_compare_and_the_delta_shift_is_b_minus_a() -> None:
    a = claims(("C1", "blip", 5.0, 1.0, 9.0, "supported"), ("C3", "blip", 2.0, -1.0, 5.0, "inconclusive"))
    b = claims(("C3", "blip", 3.5, 0.5, 6.5, "supported"), ("C1", "vlt5", 1.0, -2.0, 4.0, "inconclusive"))
    table = C.compare_claims(a, b).set_index(["claim", "family"])
    assert table.loc[("C3", "blip"), "delta_moved"] == pytest.approx(1.5)
    assert table.loc[("C3", "blip"), "change"] == "strengthened"
    assert table.loc[("C1", "blip"), "change"] == "only in A"
    assert table.loc[("C1", "vlt5"), "change"] == "only in B"


def write_run(root: Path, rows: pd.DataFrame, qualifies: bool = True) -> Path:
    (root / "tables").mkdir(parents=True)
    rows.to_csv(root / "claims.csv", index=False)
    pd.DataFrame(
        [("blip", "caption", 4, qualifies, "" if qualifies else "teacher does not beat the no-KD student")],
        columns=C.QUALIFICATION_COLUMNS,
    ).to_csv(root / "tables" / "qualification.csv", index=False)
    return root


def run(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "amad_suite.compare", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env={"AMAD_WARM": "0", "PATH": ""}, timeout=120)


def test_the_command_fails_only_when_a_verdict_flips(tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", claims(("C1", "blip", 5.0, 1.0, 9.0, "supported")))
    moved = write_run(tmp_path / "b", claims(("C1", "blip", 3.0, -1.0, 7.0, "inconclusive")), qualifies=False)
    flipped = write_run(tmp_path / "c", claims(("C1", "blip", -5.0, -9.0, -1.0, "contradicted")))
    done = run(str(a), str(moved), "--out", str(tmp_path / "cmp.md"))
    assert done.returncode == 0, done.stderr
    assert (
        "| C1 | blip-caption, 8 → 4 | amad − x | +5.00 [+1.00, +9.00] | +3.00 [-1.00, +7.00] | -2.00 |" in done.stdout
    )
    assert "| blip-caption, 4 heads | True | False |  | teacher does not beat the no-KD student |" in done.stdout
    assert (tmp_path / "cmp.md").read_text() == done.stdout
    done = run(str(a), str(flipped))
    assert done.returncode == 1
    assert done.stderr.strip() == "error: 1 verdict(s) flipped between supported and contradicted"


def test_a_missing_or_foreign_file_is_a_one_line_error(tmp_path: Path) -> None:
    done = run(str(tmp_path / "nowhere"), str(tmp_path / "nowhere"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "claims.csv does not exist" in done.stderr
    (tmp_path / "claims.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="lacks the column"):
        C.read_csv(tmp_path / "claims.csv", CLAIM_COLUMNS)
