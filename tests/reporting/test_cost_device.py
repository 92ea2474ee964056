"""The cost table names the device each model was timed on, and gives no speed-up across devices."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from report_fixtures import make_results

from amad.errors import DataError
from amad_suite.records import parse_record
from amad_suite.reporting.aggregate import group_runs
from amad_suite.reporting.collect import load_eval_runs
from amad_suite.reporting.tables import NA, cost_table

GPU = "cuda:0 (NVIDIA H200)"


def _set_devices(results, devices: dict[str, str]) -> None:
    """Write cost.device into every eval file of the vlt5-vqa setup: 'teacher' or 'student' -> device."""
    for path in (results / "eval").glob("vlt5-vqa-*/*.json"):
        data = json.loads(path.read_text())
        data["cost"]["device"] = devices[data["role"]]
        path.write_text(json.dumps(data))


def _vqa_rows(results):
    table = cost_table(group_runs(load_eval_runs(results)))
    frame = table.frame[(table.frame["family"] == "vlt5") & (table.frame["task"] == "vqa")]
    return table, frame


def test_device_column_and_speedup_on_one_device(tmp_path):
    results = make_results(tmp_path, pairs=(("vlt5", "vqa"),))
    _set_devices(results, {"teacher": GPU, "student": GPU})
    table, frame = _vqa_rows(results)
    assert table.columns[-1] == "Device" and list(frame["device"]) == [GPU, GPU]
    assert frame.iloc[1]["speedup_vs_teacher"] == pytest.approx(4.0 / 2.05)
    assert table.rows[1][-1] == GPU


def test_no_speedup_between_devices_and_na_for_old_records(tmp_path):
    results = make_results(tmp_path, pairs=(("vlt5", "vqa"),))
    _set_devices(results, {"teacher": GPU, "student": "cpu"})
    table, frame = _vqa_rows(results)
    assert pd.isna(frame.iloc[1]["speedup_vs_teacher"])  # a CPU student against a GPU teacher: no speed-up
    assert table.rows[1][-2] == NA
    old = make_results(tmp_path / "old", pairs=(("vlt5", "vqa"),))  # records written before cost.device
    assert _vqa_rows(old)[0].rows[0][-1] == NA


def test_records_accept_a_device_string_only_under_device(tmp_path):
    results = make_results(tmp_path, pairs=(("vlt5", "vqa"),))
    path = next((results / "eval").glob("vlt5-vqa-teacher/*.json"))
    data = json.loads(path.read_text())
    data["cost"]["device"] = GPU
    assert parse_record(data, path).cost["device"] == GPU
    data["cost"]["params"] = "many"
    with pytest.raises(DataError, match="field 'cost' must map names to numbers"):
        parse_record(data, path)
    data["cost"] = {"device": 3}
    with pytest.raises(DataError, match=r"'cost\.device' must be a string"):
        parse_record(data, path)
