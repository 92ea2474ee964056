"""The rehearsal preset is paper.yaml with only sizes, step counts and source locations changed (a whitelist), and
the overlay mechanism merges as documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from amad.errors import ConfigError
from amad.models.sizes import resolve_size
from amad_suite.config import load_params
from amad_suite.pipeline.params import validate_all
from amad_suite.preset import apply_overlay, compose, use

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "configs" / "presets"
SIZE_KEYS = r"(d_model|d_kv|d_ff|num_layers|num_decoder_layers|num_heads|n_boxes|feat_dim)"
TOWER_KEYS = (
    r"(vision|text)\.(hidden_size|num_hidden_layers|num_attention_heads|intermediate_size|image_size|patch_size)"
)
# Keys the rehearsal may change, and why.
ALLOWED = {
    r"preset": "the run's label: its tables must never pass for the paper's",
    r"data\.manifest|data\.tokenizer\.source": "source location (the rehearsal manifest, a local t5-base)",
    r"(teacher|student)\.setups\.[\w-]+\.init_from": "source location (local folders for hub ids)",
    r"features\.(image_size|batch_size)": "size",
    rf"(teacher|student)\.setups\.[\w-]+\.size\.({SIZE_KEYS}|{TOWER_KEYS})": "model size",
    r"(teacher|distill)\.train\.(max_steps|epochs|checkpoint_every|log_every|batch_size)": "step count / size",
    r"(teacher|student)\.setups\.[\w-]+\.train\.(max_steps|epochs|batch_size)": "step count / size",
    r"data\.(vqa|caption|translation)\.(n_train|n_val|n_test|max_words)": "data count",
    r"evaluate\.(batch_size|latency_batch)": "size",
}


def _leaves(node, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value; model size names are expanded to their dicts so dimensions compare one by one."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "size" and isinstance(value, str):
                value = resolve_size(value)
            out |= _leaves(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: node}


def test_rehearsal_changes_only_whitelisted_keys():
    paper = _leaves(load_params(PRESETS / "paper.yaml"))
    rehearsal, _ = compose("rehearsal", PRESETS)
    changed = {key for key in paper.keys() | _leaves(rehearsal).keys() if paper.get(key) != _leaves(rehearsal).get(key)}
    assert changed, "the overlay changes nothing"
    outside = sorted(key for key in changed if not any(re.fullmatch(p, key) for p in ALLOWED))
    assert outside == [], f"the rehearsal overlay changes keys that are not sizes, step counts or sources: {outside}"
    assert "teacher.setups.blip-vqa.init_from" not in changed  # the paper's own checkpoint, downloaded in miniature
    assert not any(key.startswith(("suite.", "distill.methods", "evaluate.num_beams", "compute.")) for key in changed)


def test_rehearsal_params_validate_and_keep_the_size_extras(tmp_path):
    target = use("rehearsal", tmp_path / "params.yaml", PRESETS)
    params = yaml.safe_load(target.read_text())
    validate_all(params)
    assert params["preset"] == "rehearsal" and params["data"]["scale"] == "paper"
    caption = params["teacher"]["setups"]["blip-caption"]["size"]
    assert caption["prompt"] == "a picture of " and caption["dropout"] == 0.1  # kept from blip-base
    assert target.read_text().startswith("# amad pipeline parameters (rehearsal preset)")


def test_overlay_merge_rules():
    base = {"a": {"b": 1, "c": [1, 2]}, "teacher": {"size": "vlt5-base"}}
    merged = apply_overlay(base, {"a": {"c": [3]}, "new": 1, "teacher": {"size": {"d_model": 8}}})
    assert merged["a"] == {"b": 1, "c": [3]} and merged["new"] == 1
    assert merged["teacher"]["size"]["d_model"] == 8 and merged["teacher"]["size"]["d_ff"] == 3072
    assert base["teacher"]["size"] == "vlt5-base"  # the base is not modified
    with pytest.raises(ConfigError, match=r"overlay key a\.b is a mapping"):
        apply_overlay(base, {"a": {"b": {"x": 1}}})


def test_a_malformed_overlay_is_refused(tmp_path):
    (tmp_path / "paper.yaml").write_text((PRESETS / "paper.yaml").read_text())
    (tmp_path / "rehearsal.overlay.yaml").write_text("base: paper\nchanges: {preset: rehearsal}\n")
    with pytest.raises(ConfigError, match="must hold only 'base: <preset>' and 'set:"):
        compose("rehearsal", tmp_path)
