"""JSON files are parsed once per process while unchanged, within a byte budget."""

from __future__ import annotations

import json
import os

import pytest

import amad.data.formats.json_cache as jc
from amad.errors import DataError


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    jc.clear_json_cache()
    monkeypatch.delenv("AMAD_JSON_CACHE_MB", raising=False)
    yield
    jc.clear_json_cache()


def test_parsed_once_and_again_after_a_change(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"annotations": [1, 2]}))
    calls = []
    real = json.load
    monkeypatch.setattr(jc.json, "load", lambda fh: calls.append(1) or real(fh))
    first = jc.load_json_cached(path)
    assert jc.load_json_cached(str(path)) is first and len(calls) == 1
    path.write_text(json.dumps({"annotations": [3]}))
    os.utime(path, ns=(1, 1))
    assert jc.load_json_cached(path) == {"annotations": [3]} and len(calls) == 2


def test_budget_and_bad_setting(tmp_path, monkeypatch):
    path = tmp_path / "a.json"
    path.write_text("[1, 2, 3]")
    monkeypatch.setenv("AMAD_JSON_CACHE_MB", "0")
    assert jc.load_json_cached(path) is not jc.load_json_cached(path)  # cache off
    monkeypatch.setenv("AMAD_JSON_CACHE_MB", "lots")
    with pytest.raises(DataError, match="AMAD_JSON_CACHE_MB='lots' is not a number"):
        jc.load_json_cached(path)
