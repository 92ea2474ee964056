"""End to end: the smoke preset through `dvc repro` in a fresh git repo, a targeted `dvc exp run -S`,
and a distill run killed part-way then resumed to identical results."""

import json

import pytest
import torch
import yaml
from repo_support import make_repo, pipeline_env, run, stage_cmd
from shared_data import needs_multi30k

from amad_suite.pipeline import setups as S
from amad_suite.pipeline.layout import DataLayout

pytestmark = [pytest.mark.slow, needs_multi30k]


@pytest.fixture(scope="module")
def smoke_repo(tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("smoke") / "amad", "smoke")
    run(["dvc", "repro"], repo, pipeline_env(), timeout=900)
    return repo


def test_repro_writes_metrics_and_reports(smoke_repo):
    params = yaml.safe_load((smoke_repo / "params.yaml").read_text())
    suite = params["suite"]
    runs = [
        f"{s}-{m}-s{seed}"
        for setups, seeds in ((suite["setups"], suite["seeds"]), (suite["budget_setups"], suite["budget_seeds"]))
        for s in setups
        for m in suite["methods"]
        for seed in seeds
    ]
    assert any(name.startswith("vlt5-translation") for name in runs)
    for name in runs:
        record = json.loads((smoke_repo / "results" / "eval" / f"{name}.json").read_text())
        assert record["run"] == name and record["preset"] == "smoke"
        assert record["metrics"][record["headline"]] is not None
        assert record["cost"]["params"] > 0
        info = json.loads((smoke_repo / "results" / "distill" / name / "run_info.json").read_text())
        assert info["seed"] == record["seed"] and info["versions"]["torch"] and info["git"]["sha"]
        assert info["allocator"] == "glibc-keep-freed"  # the stage scripts keep freed memory (amad_suite/allocator.py)
    for setup in suite["setups"] + suite["budget_setups"]:  # scored by their own stages
        record = json.loads((smoke_repo / "results" / "eval" / f"{setup}-teacher.json").read_text())
        assert record["role"] == "teacher" and record["seed"] is None and record["metrics"][record["headline"]] >= 0
        # VQA teachers also carry the blind question prior (a reference row of the VQA table)
        prior = record["references"].get("question_prior", {})
        assert (setup.endswith("-vqa")) == (0 <= prior.get("accuracy", -1) <= 100), setup
    ranked = json.loads((smoke_repo / "results" / "eval" / "blip-vqa-amad-s0.json").read_text())
    assert ranked["inference"]["method"] == "rank" and ranked["inference"]["answers"] > 1  # BLIP's VQA recipe
    predictions = json.loads((smoke_repo / "results" / "predictions" / "blip-vqa-amad-s0.json").read_text())
    train = S.train_examples(DataLayout(smoke_repo / "data", "mini"), "vqa", "mini")
    assert {p for split in predictions.values() for p in split.values()} <= {ex.target for ex in train}
    generated = json.loads((smoke_repo / "results" / "eval" / "vlt5-vqa-amad-s0.json").read_text())["inference"]
    assert generated == {"method": "generate", "num_beams": 1}
    caption = json.loads((smoke_repo / "results" / "eval" / "blip-caption-amad-s0.json").read_text())["metrics"]
    assert set(caption) >= {"BLEU-4", "METEOR", "ROUGE-L", "CIDEr"}
    assert caption["SPICE"] is None  # unavailable offline: reported as such, never as 0
    for table in ("vqa.md", "vqa.tex", "vqa.csv", "caption.md", "translation.md", "cost.md"):
        assert (smoke_repo / "reports" / "tables" / table).stat().st_size > 0
    figures = list((smoke_repo / "reports" / "figures").glob("*.png"))
    assert any(f.name.startswith("alignment_") for f in figures) and any(f.name.startswith("curves_") for f in figures)
    summary = json.loads((smoke_repo / "reports" / "summary.json").read_text())
    assert "vqa.vlt5.amad.acc" in summary and "caption.blip.logit.cider" in summary
    assert "translation.vlt5.amad.bleu16" in summary
    assert summary["vqa.blip.question_prior.acc"] == pytest.approx(
        json.loads((smoke_repo / "results" / "eval" / "blip-vqa-teacher.json").read_text())["references"][
            "question_prior"
        ]["accuracy"],
        abs=1e-4,
    )


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
        "distill", setup="vlt5-vqa", method="amad", seed=0, data="data", teacher="results/teachers/vlt5-vqa", out=out
    )
    killed = run(cmd, smoke_repo, env | {"AMAD_CRASH_AFTER_STEP": "3"}, check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL right after the step-3 checkpoint
    assert (out / "checkpoint" / "state.pt").exists() and not (out / "model").exists()
    run(cmd, smoke_repo, env)
    info = json.loads((out / "run_info.json").read_text())
    assert info["resumed_from_step"] == 3 and info["steps"] == 6
    reference = smoke_repo / "results" / "distill" / "vlt5-vqa-amad-s0"
    baseline = json.loads((reference / "run_info.json").read_text())
    assert info["final_losses"] == baseline["final_losses"]
    from safetensors.torch import load_file

    ours = load_file(next((out / "model").rglob("*.safetensors")))
    theirs = load_file(next((reference / "model").rglob("*.safetensors")))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    evaluated = tmp_path / "eval.json"
    evaluate = stage_cmd("evaluate", setup="vlt5-vqa", method="amad", seed=0, data="data", run=out, out=evaluated)
    run(evaluate, smoke_repo, env)
    baseline_eval = json.loads((smoke_repo / "results" / "eval" / "vlt5-vqa-amad-s0.json").read_text())
    assert json.loads(evaluated.read_text())["metrics"] == baseline_eval["metrics"]


def test_exp_run_set_param_reruns_only_what_changed(smoke_repo):
    out = run(
        ["dvc", "exp", "run", "-S", "distill.methods.amad.amad_kl.tau=0.5"], smoke_repo, pipeline_env(), timeout=900
    ).stdout
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    assert ran == [
        "distill@blip-caption-amad-0",
        "distill@blip-vqa-amad-0",
        "distill@vlt5-vqa-amad-0",
        "distill_budget@vlt5-translation-amad-0",
        "evaluate@blip-caption-amad-0",
        "evaluate@blip-vqa-amad-0",
        "evaluate@vlt5-vqa-amad-0",
        "evaluate_budget@vlt5-translation-amad-0",
        "report",
    ]
