"""Claims: paired t-intervals over seeds, the qualification checks, and each claim's delta and verdict."""

from __future__ import annotations

import math

import pytest

from amad_suite.records import EvalRecord
from amad_suite.reporting.aggregate import group_runs
from amad_suite.reporting.claims import ClaimsConfig, claims_rows, head_ratio_rows, qualify, qualify_all
from amad_suite.reporting.stats import paired, slope, t975, t_interval, verdict


def test_t_quantiles_and_intervals_match_textbook_values():
    assert (t975(1), t975(2), t975(10), t975(30)) == (12.706, 4.303, 2.228, 2.042)
    assert t975(35) == 2.021 and t975(1000) == 1.960
    interval = t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, se 1/sqrt(3), t 4.303
    assert interval.mean == 2.0 and interval.ci_high - 2.0 == pytest.approx(4.303 / math.sqrt(3))
    assert t_interval([5.0]).ci_low is None and verdict(t_interval([5.0])) == "inconclusive"


def test_paired_differences_use_shared_seeds_and_the_shift():
    a, b = {0: 10.0, 1: 11.5, 2: 12.0, 3: 99.0}, {0: 8.0, 1: 9.0, 2: 10.0}
    d = paired(a, b)
    assert d.values == (2.0, 2.5, 2.0) and d.positive == 3 and verdict(d) == "supported"
    assert verdict(paired({0: 2.0, 1: 3.0, 2: 1.0}, {0: 0.0, 1: 0.0, 2: 0.0})) == "inconclusive"  # 2 ± 2.48
    assert paired(a, b, shift=-5.0).values == (-3.0, -2.5, -3.0)
    assert verdict(paired(b, a)) == "contradicted" and paired({0: 1.0}, {1: 1.0}) is None


def test_slope_is_fitted_per_seed():
    points = {0.0: {0: 1.0, 1: 2.0}, 1.0: {0: 3.0, 1: 3.0}, 2.0: {0: 5.0, 1: 4.0}}
    s = slope(points)
    assert s.values == (2.0, 1.0) and s.mean == 1.5


def _record(method, seed, value, heads, role="student", task="caption", coverage=None):
    return EvalRecord(
        run=f"vlt5-{task}-{method}-h{heads}-s{seed}",
        role=role,
        family="vlt5",
        task=task,
        method=method,
        seed=seed,
        preset="mini",
        metrics={"CIDEr": value},
        headline="CIDEr",
        model={"heads": heads},
        coverage=coverage or {},
    )


def _study(values: dict[tuple[str, int], list[float]], teacher=300.0, baseline=40.0):
    runs = [_record("teacher", None, teacher, 8, role="teacher")]
    runs.append(_record("frequent_caption", None, baseline, 0, role="reference"))
    for (method, heads), per_seed in values.items():
        for seed, value in enumerate(per_seed):
            cover = {"encoder_self/0/0": [0.1] * heads + [1.0 if method == "one_to_one" else 0.3] * (8 - heads)}
            runs.append(_record(method, seed, value, heads, coverage=cover))
    return group_runs(runs)


def test_qualification_needs_a_clear_teacher_gap_and_a_student_above_the_baseline():
    ok = qualify(_study({("none", 4): [100.0, 102.0, 104.0]}), "vlt5", "caption", "none", "frequent_caption")
    assert ok.qualifies and ok.no_kd.mean == 102.0
    noisy = qualify(_study({("none", 4): [10.0, 290.0, 150.0]}), "vlt5", "caption", "none", "frequent_caption")
    assert not noisy.qualifies and "teacher does not beat" in noisy.failed[0]
    blind = qualify(_study({("none", 4): [41.0, 39.0, 40.5]}), "vlt5", "caption", "none", "frequent_caption")
    assert blind.failed == ("no-KD student not above the frequent_caption baseline",)
    single = qualify(_study({("none", 4): [100.0]}), "vlt5", "caption", "none", "frequent_caption")
    assert single.failed == ("fewer than 2 seeds of the no-KD student (none)",)


def test_claims_rows_compute_every_claim_with_signs_that_favour_it():
    groups = _study(
        {
            ("none", 8): [100.0, 102.0, 104.0],
            ("none", 4): [100.0, 101.0, 103.0],
            ("logit", 4): [110.0, 111.0, 113.0],
            ("one_to_one", 8): [200.0, 210.0, 205.0],
            ("amad", 8): [199.0, 208.0, 206.0],
            ("one_to_one", 4): [180.0, 190.0, 185.0],
            ("amad", 4): [190.0, 201.0, 194.0],
        }
    )
    q = qualify_all(groups, "none", {"caption": "frequent_caption"})
    assert [(x.student_heads, x.qualifies) for x in q] == [(4, True), (8, True)]
    rows = {
        r["claim"] + str(r["student_heads"]): r
        for r in claims_rows(groups, q, ClaimsConfig(margin={"caption": 5.0}), "mini")
    }
    assert rows["C14"]["delta"] == pytest.approx(10.0) and rows["C14"]["verdict"] == "supported"
    assert rows["C14"]["per_seed"] == "+10.00 +11.00 +9.00" and rows["C14"]["positive_seeds"] == "3/3"
    assert rows["C28"]["delta"] == pytest.approx(5.0 + (-1.0 - 2.0 + 1.0) / 3, abs=1e-3)  # non-inferiority, margin 5
    assert "+ 5 (margin)" in rows["C28"]["comparison"]
    assert rows["C34"]["delta"] == pytest.approx(83.6666, abs=1e-3) and rows["C44"]["verdict"] == "supported"
    assert rows["C58,4"]["n_seeds"] == 3  # slope of (amad - one_to_one) over log2(8/8)=0 and log2(8/4)=1
    assert rows["C58,4"]["delta"] == pytest.approx(10.0 - (-1.0 - 2.0 + 1.0) / 3, abs=1e-3)
    assert rows["C64"]["delta"] == pytest.approx(0.7) and rows["C64"]["verdict"] == "supported"


def test_a_setup_that_fails_qualification_enters_no_claim():
    groups = _study({("none", 4): [41.0, 39.0, 40.5], ("amad", 4): [200.0, 201.0, 202.0], ("one_to_one", 4): [1, 2, 3]})
    q = [qualify(groups, "vlt5", "caption", "none", "frequent_caption")]
    assert claims_rows(groups, q, ClaimsConfig(), "mini") == []


def test_head_ratio_rows_carry_intervals():
    rows = head_ratio_rows(_study({("amad", 4): [1.0, 2.0, 3.0]}))
    (row,) = rows
    assert (row["teacher_heads"], row["student_heads"], row["n_seeds"], row["mean"]) == (8, 4, 3, 2.0)
    assert row["ci_low"] == pytest.approx(2.0 - 4.303 / math.sqrt(3), abs=1e-4)


def test_each_head_count_qualifies_on_its_own_no_kd_student():
    groups = _study(
        {
            ("none", 8): [100.0, 102.0, 104.0],
            ("none", 2): [41.0, 39.0, 40.5],  # at 2 heads the no-KD student is no better than the blind baseline
            ("one_to_one", 8): [200.0, 210.0, 205.0],
            ("amad", 8): [199.0, 208.0, 206.0],
            ("one_to_one", 2): [180.0, 190.0, 185.0],
            ("amad", 2): [190.0, 201.0, 194.0],
        }
    )
    q = qualify_all(groups, "none", {"caption": "frequent_caption"})
    assert {x.student_heads: x.qualifies for x in q} == {2: False, 8: True}
    rows = claims_rows(groups, q, ClaimsConfig(), "mini")
    assert {r["student_heads"] for r in rows} == {8} and not any(r["claim"] == "C5" for r in rows)
