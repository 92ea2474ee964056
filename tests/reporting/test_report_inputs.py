"""Bad input: missing or malformed eval files, and the published-numbers file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from report_fixtures import write_eval

from amad.errors import ConfigError, DataError
from amad_suite.reporting import build_report, load_eval_runs, load_published, validate_published
from amad_suite.reporting.schema import TASK_METRICS

REPO = Path(__file__).resolve().parents[2]


def test_no_eval_files_says_run_evaluate(tmp_path):
    with pytest.raises(DataError) as err:
        build_report(tmp_path / "results", tmp_path / "reports")
    message = str(err.value)
    assert "run the evaluate stage" in message and "\n" not in message
    assert not (tmp_path / "reports").exists()


def test_malformed_json_names_the_file(tmp_path):
    bad = tmp_path / "eval" / "vlt5-vqa-amad-s0.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(DataError, match=r"vlt5-vqa-amad-s0\.json: not valid JSON") as err:
        load_eval_runs(tmp_path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("metrics"), "field 'metrics' is missing"),
        (lambda d: d.update(headline="CIDEr"), "headline metric 'CIDEr' is not in 'metrics'"),
        (lambda d: d["metrics"].update(accuracy="high"), "metric 'accuracy' is 'high'"),
        (lambda d: d.update(role="assistant"), "role 'assistant'"),
        (lambda d: d.update(seed="0"), "field 'seed'"),
        (lambda d: d.update(references=[52.0]), "field 'references' must be an object"),
        (lambda d: d["references"]["question_prior"].update(accuracy="low"), "metric 'accuracy' is 'low'"),
        (lambda d: d["references"]["question_prior"].pop("accuracy"), "reference 'question_prior' has no 'accuracy'"),
    ],
)
def test_invalid_eval_fields(tmp_path, change, expected):
    path = write_eval(tmp_path, "vlt5", "vqa", "teacher", None)
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=expected) as err:
        load_eval_runs(tmp_path)
    assert str(path) in str(err.value)


def test_unknown_baseline_method(tmp_path):
    write_eval(tmp_path / "results", "vlt5", "vqa", "logit", 0)
    with pytest.raises(ConfigError, match="unknown baseline method 'logits'; use one of"):
        build_report(tmp_path / "results", tmp_path / "reports", baseline_method="logits")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"vqa2": {}}, "unknown task 'vqa2'; allowed: vqa, caption, translation"),
        ({"vqa": {"t5": {}}}, "unknown family 't5' under 'vqa'; allowed: vlt5, blip"),
        ({"vqa": {"vlt5": {"amda": {}}}}, "unknown method 'amda' under 'vqa.vlt5'; allowed: teacher, none, logit"),
        ({"caption": {"blip": {"amad": {"CIDER": 1.0}}}}, "unknown metric 'CIDER' under 'caption.blip.amad'; allowed:"),
        ({"vqa": {"vlt5": {"amad": {"accuracy": "73.1"}}}}, r"vqa\.vlt5\.amad\.accuracy is '73\.1'; write a number"),
        ({"vqa": ["x"]}, "'vqa' must be a mapping or null"),
    ],
)
def test_published_bad_names(tmp_path, data, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        validate_published(data, tmp_path / "published.yaml")
    assert "published.yaml" in str(err.value) and "\n" not in str(err.value)


def test_published_allows_metrics_and_methods_seen_in_runs(tmp_path):
    data = {"translation": {"vlt5": {"my_method": {"BLEU-tok/test2016": 30.0, "BLEU/test2017": None}}}}
    with pytest.raises(ConfigError, match="unknown method 'my_method'"):
        validate_published(data, tmp_path / "p.yaml")
    kept = validate_published(
        data, tmp_path / "p.yaml", extra_methods=["my_method"], extra_metrics={"translation": ["BLEU-tok/test2016"]}
    )
    assert kept == {"translation": {"vlt5": {"my_method": {"BLEU-tok/test2016": 30.0}}}}  # nulls dropped


def test_shipped_published_file_is_a_valid_all_null_template():
    path = REPO / "reports" / "published.yaml"
    assert load_published(path) == {}  # every value null: nothing invented
    raw = yaml.safe_load(path.read_text())
    assert set(raw) == {"vqa", "caption", "translation"}
    assert set(raw["translation"]) == {"vlt5"}  # BLIP has no Multi30K
    for task, families in raw.items():
        for rows in families.values():
            assert "teacher" in rows and "amad" in rows and "logit" in rows
            for metrics in rows.values():
                assert set(metrics) <= set(TASK_METRICS[task])
                assert all(v is None for v in metrics.values())


def test_published_file_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_published(tmp_path / "nope.yaml")
    bad = tmp_path / "published.yaml"
    bad.write_text("vqa: [unclosed\n")
    with pytest.raises(DataError, match=r"published\.yaml: not valid YAML"):
        load_published(bad)


def test_build_report_adds_paper_columns_from_published_file(tmp_path):
    results = tmp_path / "results"
    for method, seed in (("teacher", None), ("logit", 0), ("amad", 0), ("amad", 1)):
        write_eval(results, "vlt5", "vqa", method, seed)
    published = tmp_path / "published.yaml"
    published.write_text("vqa:\n  vlt5:\n    amad: {accuracy: 60.0, accuracy/other: null}\n    logit: {accuracy: null}")
    written = build_report(results, tmp_path / "reports", published_path=published)
    assert set(written) == {
        *(f"tables/{n}.{e}" for n in ("vqa", "cost", "qualification") for e in ("md", "tex", "csv")),
        *(f"tables/head_ratio.{e}" for e in ("md", "tex")),
        *(f"claims.{e}" for e in ("md", "tex", "csv")),
        "head_ratio.csv",
        "figures/metric_vqa.png",  # no histories or npz files: no other figures
        "figures/head_ratio.png",
        "summary.json",
        "results.md",
    }
    md = (tmp_path / "reports" / "tables" / "vqa.md").read_text()
    assert "| paper accuracy | Δ paper accuracy |" in md
    # Δ logit is +3.50: the only logit run is seed 0 (55.0); Δ paper is 58.50 - 60.00
    assert "| VL-T5 | AMAD (KL) | 4 | 2 | 58.50 ± 0.71 | 68.50 ± 0.71 | 38.50 ± 0.71 | +3.50 | 60.00 | -1.50 |" in md
    assert "Paper columns come from the hand-filled reports/published.yaml" in written["results.md"].read_text()
