"""Figures, summary.json, results.md, DVCLive histories and the written-file index."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amad.errors import DataError
from amad_suite.reporting import load_history
from amad_suite.reporting.figures import attention_grid, split_alignment, tile_heads
from amad_suite.reporting.schema import short_metric

PNG = b"\x89PNG\r\n\x1a\n"


def test_figures_exist_and_are_png(report):
    reports, written = report
    expected = {"metric_vqa", "metric_caption", "metric_translation", "curves_teachers", "head_ratio"}
    for pair in ("vlt5-vqa", "blip-vqa", "vlt5-caption", "vlt5-translation"):
        expected |= {f"curves_{pair}", f"attention_{pair}", f"alignment_{pair}-amad"}
    figures = {p.stem for p in (reports / "figures").iterdir()}
    assert figures == expected  # no alignment figure for non-AMAD methods
    for name in expected:
        data = (reports / "figures" / f"{name}.png").read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    assert all(path.is_file() for path in written.values())
    assert not list(reports.rglob("*.tmp-*"))


def test_summary_json_keys_and_values(report):
    reports, _ = report
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["runs"] == 4 * (1 + 4 * 2)
    assert summary["vqa.vlt5.amad.acc"] == 58.5
    assert summary["vqa.blip.teacher.acc"] == 70.0
    assert summary["caption.vlt5.logit.cider"] == 111.0
    assert summary["translation.vlt5.teacher.bleu16"] == 35.0
    assert summary["vqa.blip.question_prior.acc"] == 52.0
    assert len(summary) == 1 + 4 * 5 + 2  # + the question prior of the two VQA pairs
    assert all(len(key) <= 40 for key in summary)


def test_short_metric_names():
    assert [short_metric(m) for m in ("accuracy", "CIDEr", "BLEU/test2016", "BLEU-lc/test2018", "BLEU-4")] == [
        "acc",
        "cider",
        "bleu16",
        "bleulc18",
        "bleu4",
    ]
    assert short_metric("accuracy/yes/no") == "acc_yes_no"


def test_results_index_links_everything_and_states_scale(report):
    reports, written = report
    text = (reports / "results.md").read_text()
    assert "36 evaluated runs (4 teachers, 32 students)" in text
    assert "preset: mini" in text and "not a replication" in text
    assert "0123456789ab" in text
    assert "no paper columns" in text
    for rel in written:
        if rel.endswith((".png", ".tex", ".csv")) or rel.startswith("tables/"):
            assert f"({rel})" in text, rel
    assert "| VL-T5 | AMAD (KL) | 4 | 2 | 58.50 ± 0.71 |" in text  # tables are inlined too


def test_load_history_reads_real_dvclive_output(tmp_path):
    from dvclive import Live

    with Live(str(tmp_path / "dvclive"), dvcyaml=None, save_dvc_exp=False) as live:
        for step in range(3):
            live.log_metric("train/loss", 1.0 / (step + 1))
            live.log_metric("train/amad_kl", 0.5)
            live.next_step()
    history = load_history(tmp_path / "dvclive")
    assert set(history) == {"train/loss", "train/amad_kl"}
    assert history["train/loss"].index.tolist() == [0, 1, 2]
    assert history["train/loss"].tolist() == pytest.approx([1.0, 0.5, 1 / 3])
    assert load_history(tmp_path / "missing") == {}


def test_malformed_history_names_file(tmp_path):
    path = tmp_path / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("epoch\tloss\n0\t1.0\n")
    with pytest.raises(DataError, match=r"loss\.tsv: not a DVCLive step history"):
        load_history(tmp_path / "dvclive")


def test_split_alignment_picks_deepest_layer_with_both_phases(tmp_path):
    a = np.full((4, 2), 0.5)
    arrays = {"early/cross/0": a, "late/cross/0": a, "early/cross/3": a, "late/cross/3": a * 2, "early/cross/5": a}
    chosen = split_alignment(arrays, tmp_path / "alignment.npz")
    assert list(chosen) == ["cross"]
    layer, early, late = chosen["cross"]
    assert layer == 3 and early.max() == 0.5 and late.max() == 1.0
    with pytest.raises(DataError, match=r"alignment\.npz: array 'late/cross' is not"):
        split_alignment({"late/cross": a}, tmp_path / "alignment.npz")


def test_tile_heads_places_heads_side_by_side():
    maps = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)  # (H, Q, K)
    tiled = tile_heads(maps)
    assert tiled.shape == (2, 2 * 4 - 1)
    np.testing.assert_array_equal(tiled[:, :3], maps[0])
    np.testing.assert_array_equal(tiled[:, 4:], maps[1])
    assert np.isnan(tiled[:, 3]).all()


def test_attention_grid_uses_a_kind_every_model_has():
    maps = np.full((2, 3, 3), 1 / 3)  # (H, Q, K)
    teacher = {"encoder_self/0": maps, "cross/0": maps, "cross/1": maps}
    student = {"cross/0": maps[:1]}
    fig = attention_grid([("teacher", teacher), ("student", student), ("absent", {})], "t")
    assert fig._suptitle.get_text().startswith("t · cross")
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["teacher\nlayer 1", "student\nlayer 0"]  # one row per model
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["head 0", "head 1"]
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["head 0"]
    assert attention_grid([("absent", {})], "t") is None
