"""End to end: the smoke preset through `dvc repro` in a fresh git repo, a targeted `dvc exp run -S`,
and a distill run killed part-way then resumed to identical results."""

import json

import pytest
import torch
import yaml
from shared_data import needs_multi30k

from amad_suite.pipeline import examples as S
from amad_suite.pipeline.layout import DataLayout
from amad_suite.testing import make_repo, pipeline_env, run, stage_cmd

pytestmark = [pytest.mark.slow, needs_multi30k]


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("smoke") / "amad", "smoke")
    run(["dvc", "repro"], repo, pipeline_env(), timeout=900)
    return repo


def _eval(repo, setup: str, method: str, seed: int | None = None) -> dict:
    """A teacher's record (no seed) or a student's at the setup's own head count (the ``hsize`` column)."""
    folder, name = (
        (f"{setup}-{method}", "teacher.json") if seed is None else (f"{setup}-{method}-hsize", f"s{seed}.json")
    )
    return json.loads((repo / "results" / "eval" / folder / name).read_text())


def test_repro_writes_metrics_and_reports(smoke_repo):
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    suite = params["suite"]
    runs = [
        (s, m, seed)
        for setups, methods, seeds in (
            (suite["setups"], suite["methods"], suite["seeds"]),
            (suite["budget_setups"], suite["budget_methods"], suite["budget_seeds"]),
        )
        for s in setups
        for m in methods
        for seed in seeds
    ]
    assert any(setup.startswith("vlt5-translation") for setup, _, _ in runs)
    for setup, method, seed in runs:
        record = _eval(smoke_repo, setup, method, seed)
        assert record["run"] == f"{setup}-{method}-hsize-s{seed}" and record["preset"] == "smoke"
        assert record["variant"] == "hsize"
        assert record["metrics"][record["headline"]] is not None
        assert record["cost"]["params"] > 0
        info = json.loads(
            (smoke_repo / "results" / "distill" / f"{setup}-{method}-hsize" / f"s{seed}" / "run_info.json").read_text()
        )
        assert info["seed"] == record["seed"] and info["versions"]["torch"] and info["git"]["sha"]
        assert "allocator" in info and "load_report" in info
    for setup in suite["setups"] + suite["budget_setups"]:  # scored by their own stages
        record = _eval(smoke_repo, setup, "teacher")
        assert record["role"] == "teacher" and record["seed"] is None and record["metrics"][record["headline"]] >= 0
        # VQA teachers also carry the blind question prior (a reference row of the VQA table)
        prior = record["references"].get("question_prior", {})
        assert (setup.endswith("-vqa")) == (0 <= prior.get("accuracy", -1) <= 100), setup
    ranked = _eval(smoke_repo, "blip-vqa", "amad", 0)
    assert ranked["inference"]["method"] == "rank" and ranked["inference"]["answers"] > 1  # BLIP's VQA recipe
    predictions = json.loads((smoke_repo / "results" / "predictions" / "blip-vqa-amad-hsize" / "s0.json").read_text())
    train = S.train_examples(DataLayout(smoke_repo / "data", "mini"), "vqa")
    assert {p for split in predictions.values() for p in split.values()} <= {ex.target for ex in train}
    generated = _eval(smoke_repo, "vlt5-vqa", "amad", 0)["inference"]
    assert generated == {"method": "generate", "num_beams": 1}
    caption = _eval(smoke_repo, "blip-caption", "amad", 0)["metrics"]
    assert set(caption) >= {"BLEU-4", "METEOR", "ROUGE-L", "CIDEr"}
    assert caption["SPICE"] is None  # unavailable offline: reported as such, never as 0
    for table in ("vqa.md", "vqa.tex", "vqa.csv", "caption.md", "translation.md", "cost.md"):
        assert (smoke_repo / "reports" / "tables" / table).stat().st_size > 0
    figures = list((smoke_repo / "reports" / "figures").glob("*.png"))
    assert any(f.name.startswith("alignment_") for f in figures) and any(f.name.startswith("curves_") for f in figures)
    summary = json.loads((smoke_repo / "reports" / "summary.json").read_text())
    assert "vqa.vlt5.amad.acc" in summary and "caption.blip.logit.cider" in summary
    assert "translation.vlt5.amad.bleu16" in summary
    prior = _eval(smoke_repo, "blip-vqa", "teacher")["references"]["question_prior"]["accuracy"]
    assert summary["vqa.blip.question_prior.acc"] == pytest.approx(prior, abs=1e-4)


def test_exp_show_has_readable_columns(smoke_repo):
    shown = run(["dvc", "exp", "show", "--no-pager", "--csv"], smoke_repo, pipeline_env()).stdout
    header = shown.splitlines()[0].split(",")
    for column in (
        "preset",
        "suite.methods",
        "distill.methods.amad.amad_kl.tau",
        "vqa.vlt5.amad.acc",
        "caption.blip.amad.cider",
        "student.setups.vlt5-vqa.heads",
    ):
        assert column in header, column


def test_repro_with_nothing_changed_runs_nothing(smoke_repo):
    out = run(["dvc", "repro"], smoke_repo, pipeline_env()).stdout
    assert "Running stage" not in out


def test_killed_distill_resumes_to_identical_results(smoke_repo, tmp_path):
    env = pipeline_env()
    out = tmp_path / "resumed"
    cmd = stage_cmd(
        "distill",
        setup="vlt5-vqa",
        method="amad",
        seeds_key="seeds",
        data="data",
        teacher="results/teachers/vlt5-vqa",
        out=out,
    )
    killed = run(cmd, smoke_repo, env | {"AMAD_CRASH_AFTER_STEP": "3"}, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL right after the step-3 checkpoint
    assert (out / "s0" / "checkpoint" / "state.pt").exists() and not (out / "s0" / "model").exists()
    run(cmd, smoke_repo, env)
    info = json.loads((out / "s0" / "run_info.json").read_text())
    assert info["resumed_from_step"] == 3 and info["steps"] == 6
    reference = smoke_repo / "results" / "distill" / "vlt5-vqa-amad-hsize" / "s0"
    baseline = json.loads((reference / "run_info.json").read_text())
    assert info["final_losses"] == baseline["final_losses"]
    from safetensors.torch import load_file

    ours = load_file(next((out / "s0" / "model").rglob("*.safetensors")))
    theirs = load_file(next((reference / "model").rglob("*.safetensors")))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    evaluated, predictions = tmp_path / "eval", tmp_path / "predictions"
    evaluate = stage_cmd(
        "evaluate", setup="vlt5-vqa", method="amad", seeds_key="seeds", data="data", run=out, out=evaluated,
        predictions=predictions,
    )  # fmt: skip
    run(evaluate, smoke_repo, env)
    baseline_eval = _eval(smoke_repo, "vlt5-vqa", "amad", 0)
    assert json.loads((evaluated / "s0.json").read_text())["metrics"] == baseline_eval["metrics"]
    assert not (tmp_path.parent / "predictions").exists()  # written where argv says, nowhere else


def test_exp_run_set_param_reruns_only_what_changed(smoke_repo):
    out = run(
        ["dvc", "exp", "run", "-S", "distill.methods.amad.amad_kl.tau=0.5"], smoke_repo, pipeline_env(), timeout=900
    ).stdout
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    assert ran == [
        "distill@blip-caption-amad-size",
        "distill@blip-vqa-amad-size",
        "distill@vlt5-vqa-amad-size",
        "distill_budget@vlt5-translation-amad-size",
        "evaluate@blip-caption-amad-size",
        "evaluate@blip-vqa-amad-size",
        "evaluate@vlt5-vqa-amad-size",
        "evaluate_budget@vlt5-translation-amad-size",
        "report",
    ]


def test_changing_the_data_mirror_retrains_nothing(smoke_repo, tmp_path):
    out = run(["dvc", "exp", "run", "-S", f"data.mirror={tmp_path}"], smoke_repo, pipeline_env(), timeout=900).stdout
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    assert ran == ["download"]  # its outputs come out the same, so DVC skips everything after it
