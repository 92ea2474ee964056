"""Result and cost tables: row order, mean ± std strings, deltas, n/a, published columns, LaTeX and CSV."""

from __future__ import annotations

import re
from io import StringIO

import pandas as pd
import pytest
from report_fixtures import make_results

from amad_suite.reporting.aggregate import group_runs, summarize
from amad_suite.reporting.collect import load_eval_runs
from amad_suite.reporting.render import latex_escape
from amad_suite.reporting.tables import format_stat, task_table


def _md_rows(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


def _md_header(text: str) -> list[str]:
    return [c.strip() for c in next(line for line in text.splitlines() if line.startswith("|")).strip("|").split(" | ")]


@pytest.fixture(scope="module")
def groups(tmp_path_factory):
    return group_runs(load_eval_runs(make_results(tmp_path_factory.mktemp("t"))))


def test_summarize_uses_sample_std_and_skips_missing():
    stat = summarize([1.0, None, 3.0])
    assert (stat.mean, stat.n) == (2.0, 2)
    assert stat.std == pytest.approx(2**0.5)  # ddof=1
    assert format_stat(stat) == "2.00 ± 1.41"
    assert format_stat(summarize([4.0])) == "4.00"
    assert format_stat(summarize([None, None])) == "n/a"


def test_vqa_rows_in_paper_order_grouped_by_family(report):
    reports, _ = report
    rows = _md_rows((reports / "tables" / "vqa.md").read_text())
    order = [(r[0], r[1]) for r in rows]
    prior = "Question prior (no image)"
    methods = ["Teacher", prior, "No KD (ground truth)", "Logit KD", "One-to-one", "AMAD (KL)"]
    assert order == [("VL-T5", m) for m in methods] + [("BLIP", m) for m in methods]
    caption_rows = _md_rows((reports / "tables" / "caption.md").read_text())
    assert prior not in {r[1] for r in caption_rows}  # only VQA teachers carry the prior


def test_question_prior_row_is_a_reference_not_a_model(report):
    reports, _ = report
    text = (reports / "tables" / "vqa.md").read_text()
    header = _md_header(text)
    row = {(r[0], r[1]): dict(zip(header, r)) for r in _md_rows(text)}[("BLIP", "Question prior (no image)")]
    assert (row["accuracy"], row["n"], row["Heads"]) == ("52.00", "1", "—")
    assert row["Δ accuracy vs logit"] == "-3.50"  # 52.00 - 55.50
    assert "never sees the image" in text
    assert "never sees the image" not in (reports / "tables" / "caption.md").read_text()
    frame = pd.read_csv(reports / "tables" / "vqa.csv")
    assert list(frame["role"][:3]) == ["teacher", "reference", "student"]


def test_vqa_cells_mean_std_and_delta_to_logit(report):
    reports, _ = report
    text = (reports / "tables" / "vqa.md").read_text()
    header = _md_header(text)
    rows = {(r[0], r[1]): dict(zip(header, r)) for r in _md_rows(text)}
    acc, delta = "accuracy", "Δ accuracy vs logit"
    assert rows[("VL-T5", "Logit KD")][acc] == "55.50 ± 0.71"
    assert rows[("VL-T5", "AMAD (KL)")][acc] == "58.50 ± 0.71"
    assert rows[("VL-T5", "AMAD (KL)")][delta] == "+3.00"
    assert rows[("VL-T5", "No KD (ground truth)")][delta] == "-5.00"
    assert rows[("VL-T5", "Logit KD")][delta] == "—"
    assert rows[("VL-T5", "Teacher")][acc] == "70.00"  # one run: plain mean
    assert rows[("VL-T5", "Teacher")]["n"] == "1" and rows[("BLIP", "One-to-one")]["n"] == "2"
    assert rows[("VL-T5", "Teacher")]["Heads"] == "8" and rows[("VL-T5", "AMAD (KL)")]["Heads"] == "4"
    assert "accuracy/other" not in header  # no run reports it
    assert not any(h.startswith("paper") for h in header)  # nothing published


def test_caption_spice_unavailable_is_na_not_zero(report):
    reports, _ = report
    text = (reports / "tables" / "caption.md").read_text()
    header = _md_header(text)
    assert header[4:12] == ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE"]
    spice = [dict(zip(header, r))["SPICE"] for r in _md_rows(text)]
    assert spice == ["n/a"] * 5
    frame = pd.read_csv(reports / "tables" / "caption.csv")
    assert frame["SPICE"].isna().all()


def test_published_columns_only_for_filled_metrics(groups):
    published = {"vqa": {"vlt5": {"amad": {"accuracy": 60.0}, "teacher": {"accuracy": 71.25}}}}
    table = task_table(groups, "vqa", published)
    assert table.columns[-2:] == ["paper accuracy", "Δ paper accuracy"]
    assert "paper accuracy/yes/no" not in table.columns
    cells = {(r[0], r[1]): r[-2:] for r in table.rows}
    assert cells[("VL-T5", "AMAD (KL)")] == ["60.00", "-1.50"]
    assert cells[("VL-T5", "Teacher")] == ["71.25", "-1.25"]
    assert cells[("VL-T5", "Logit KD")] == ["—", "—"]
    assert cells[("BLIP", "AMAD (KL)")] == ["—", "—"]
    deltas = table.frame.loc[table.frame["method"] == "amad", "delta_paper_accuracy"].tolist()
    assert deltas[0] == -1.5 and pd.isna(deltas[1])
    other = task_table(groups, "caption", published)
    assert not any(c.startswith("paper") for c in other.columns)


def test_latex_is_structurally_valid(report):
    reports, _ = report
    for name in ("vqa", "caption", "translation", "cost"):
        tex = (reports / "tables" / f"{name}.tex").read_text()
        assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
        assert tex.count("\\begin{table}") == tex.count("\\end{table}") == 1
        spec = re.search(r"\\begin\{tabular\}\{([lr]+)\}", tex).group(1)
        body = tex.split("\\toprule\n")[1].split("\\bottomrule")[0]
        rows = [line for line in body.splitlines() if not line.startswith("\\midrule")]
        assert rows and all(line.endswith(" \\\\") for line in rows)
        assert all(len(re.findall(r"(?<!\\)&", line)) == len(spec) - 1 for line in rows)
        assert not re.search(r"(?<!\\)[_%#]", body)  # specials escaped
    vqa = (reports / "tables" / "vqa.tex").read_text()
    assert "55.50 $\\pm$ 0.71" in vqa and "$\\Delta$ accuracy vs logit" in vqa
    assert vqa.count("\\midrule") == 2  # header rule + one family boundary


def test_latex_escape():
    assert latex_escape("one_to_one 50% & #1 ±") == r"one\_to\_one 50\% \& \#1 $\pm$"


def test_csv_round_trip(report):
    reports, _ = report
    frame = pd.read_csv(StringIO((reports / "tables" / "vqa.csv").read_text()))
    assert list(frame["method"][:6]) == ["teacher", "question_prior", "none", "logit", "one_to_one", "amad"]
    amad = frame[(frame["family"] == "vlt5") & (frame["method"] == "amad")].iloc[0]
    assert amad["accuracy"] == pytest.approx(58.5)
    assert amad["accuracy_std"] == pytest.approx(2**-0.5)
    assert amad["delta_vs_logit"] == pytest.approx(3.0)
    assert amad["n"] == 2
    teacher = frame.iloc[0]
    assert pd.isna(teacher["accuracy_std"]) and teacher["role"] == "teacher"


def test_cost_table_dedups_students_and_computes_speedup(report):
    reports, _ = report
    frame = pd.read_csv(reports / "tables" / "cost.csv")
    vqa = frame[(frame["family"] == "vlt5") & (frame["task"] == "vqa")]
    assert list(vqa["role"]) == ["teacher", "student"]  # 8 student runs of one size -> one row
    student = vqa.iloc[1]
    assert student["methods"] == "none logit one_to_one amad"
    assert student["params"] == 5_000_000
    assert student["latency_ms_per_sample"] == pytest.approx(2.05)  # mean over seeds 2.0 and 2.1 ms
    assert student["speedup_vs_teacher"] == pytest.approx(4.0 / 2.05)
    assert vqa.iloc[0]["speedup_vs_teacher"] == pytest.approx(1.0)
    md_rows = _md_rows((reports / "tables" / "cost.md").read_text())
    assert md_rows[1][5:9] == ["5.00", "2.05", "500.0", "1.95×"]
    assert len(frame) == 8  # 4 (family, task) pairs x (teacher + one student size)


def test_a_teacher_that_saw_test_images_marks_its_setups_rows(tmp_path):
    import json

    from amad_suite.reporting.collect import teacher_leaks

    results = make_results(tmp_path, pairs=(("vlt5", "vqa"), ("blip", "vqa")))
    info = results / "teachers" / "blip-vqa" / "run_info.json"
    info.write_text(json.dumps({"load_report": {"saw_test_split": "Salesforce/blip-vqa-base trained on VQA val"}}))
    (results / "teachers" / "vlt5-vqa" / "run_info.json").write_text(json.dumps({"load_report": {}}))
    leaks = teacher_leaks(results, [("vlt5", "vqa"), ("blip", "vqa")])
    assert leaks == {("blip", "vqa"): "Salesforce/blip-vqa-base trained on VQA val"}
    table = task_table(group_runs(load_eval_runs(results)), "vqa", {}, leaks=leaks)
    families = {r[0] for r in table.rows}
    assert families == {"VL-T5", "BLIP †"} and "† BLIP's teacher saw test images: Salesforce" in table.caption
    flagged = table.frame.loc[table.frame["family"] == "blip", "teacher_saw_test_split"]
    assert (
        flagged.notna().all()
        and table.frame.loc[table.frame["family"] == "vlt5", "teacher_saw_test_split"].isna().all()
    )
