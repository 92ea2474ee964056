"""params.yaml validation: every preset is valid; typos fail with one-line errors naming the fix."""

import copy
from pathlib import Path

import pytest
import yaml

from amad.errors import ConfigError, UnknownNameError
from amad_suite.config import load_params, parse_setup
from amad_suite.pipeline import params as P
from amad_suite.preset import use
from amad_suite.testing import run, stage_cmd

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "configs" / "presets"


def _preset(name: str) -> dict:
    return load_params(PRESETS / f"{name}.yaml")


@pytest.mark.parametrize("name", ["mini", "smoke", "paper"])
def test_every_preset_validates(name):
    cfg = P.validate_all(_preset(name))
    assert cfg.setups and cfg.methods and cfg.seeds


def test_committed_params_is_the_mini_preset():
    assert (ROOT / "params.yaml").read_text() == (PRESETS / "mini.yaml").read_text()


def test_mini_students_have_fewer_heads_and_layers_than_teachers():
    from amad.models.sizes import resolve_size

    params = _preset("mini")
    for setup in P.suite(params).all_setups:
        family, _ = parse_setup(setup)
        teacher = resolve_size(P.teacher_setup(params, setup)[0].size, family)
        student = resolve_size(P.student_setup(params, setup).size, family)
        if family == "vlt5":
            assert student["num_heads"] < teacher["num_heads"]
            assert student["num_layers"] < teacher["num_layers"]
        else:
            assert student["text"]["num_attention_heads"] < teacher["text"]["num_attention_heads"]
            assert student["vision"]["num_hidden_layers"] < teacher["vision"]["num_hidden_layers"]


def test_unknown_top_level_key_suggests_near_match():
    params = _preset("mini")
    params["distil"] = params.pop("distill")
    with pytest.raises(ConfigError, match=r"unknown top-level key 'distil'.*did you mean 'distill'"):
        P.validate_all(params)


def test_unknown_nested_key_lists_allowed_keys():
    params = _preset("mini")
    params["distill"]["train"]["learning_rate"] = 1e-3
    with pytest.raises(ConfigError, match=r"unknown key distill.train.learning_rate.*allowed keys are epochs"):
        P.validate_all(params)


def test_unknown_method_suggests_near_match():
    params = _preset("mini")
    params["suite"]["methods"] = ["none", "amda"]
    with pytest.raises(UnknownNameError, match=r"unknown method 'amda': did you mean 'amad'"):
        P.validate_all(params)


def test_unknown_loss_in_a_method_suggests_near_match():
    params = _preset("mini")
    params["distill"]["methods"]["amad"] = {"task": 1.0, "amad_kll": {"weight": 1.0}}
    with pytest.raises(UnknownNameError, match=r"unknown loss 'amad_kll'.*amad_kl"):
        P.validate_all(params)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("budget_setups", ["vlt5-captions"], r"unknown task 'captions'.*did you mean 'caption'"),
        ("budget_setups", ["vlt5-caption"], r"in both suite.setups and suite.budget_setups"),
        ("seeds", [0, 0], r"suite.seeds lists a value twice"),
        ("setups", ["vlt5-vqa", "blip-translation"], r"BLIP has no Multi30K translation task"),
        ("budget_seeds", [], r"suite.budget_seeds is empty but suite.budget_setups is not"),
    ],
)
def test_suite_groups_are_checked(key, value, message):
    params = _preset("mini")
    params["suite"][key] = value
    with pytest.raises(ConfigError, match=message):
        P.validate_all(params)


def test_budget_setups_have_their_own_seeds():
    cfg = P.suite(_preset("mini"))
    assert cfg.all_setups == cfg.setups + cfg.budget_setups
    params = _preset("mini")
    assert P.seeds(params, "budget_seeds") == cfg.budget_seeds and P.seeds(params, "seeds") == cfg.seeds
    params["distill"]["train"]["lr"] = "fast"
    with pytest.raises(ConfigError, match=r"distill.train.lr must be a number"):
        P.validate_all(params)


def test_dvc_yaml_stage_groups_follow_the_suite():
    """The budget stages run suite.budget_setups with suite.budget_seeds: the same command, deps and outputs as their
    twins, with the other seed list."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("teacher", "evaluate_teacher"):
        main, budget = stages[name]["do"], stages[f"{name}_budget"]["do"]
        assert all(budget[key] == main[key] for key in ("cmd", "deps", "params", "outs")), name
    assert stages["teacher_budget"]["foreach"] == "${suite.budget_setups}"
    for name in ("distill", "evaluate"):
        main, budget = stages[name], stages[f"{name}_budget"]
        assert main["matrix"]["setup"] == "${suite.setups}" and budget["matrix"]["setup"] == "${suite.budget_setups}"
        assert main["matrix"]["method"] == "${suite.methods}"
        assert budget["matrix"]["method"] == "${suite.budget_methods}"
        assert budget["cmd"] == main["cmd"].replace("--seeds-key seeds", "--seeds-key budget_seeds")
        assert budget["params"] == [p.replace("suite.seeds", "suite.budget_seeds") for p in main["params"]]
        assert budget["deps"] == main["deps"] and budget["outs"] == main["outs"]


def test_evaluation_params_never_retrain_a_teacher():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    teacher, scored = stages["teacher"]["do"], stages["evaluate_teacher"]["do"]
    assert not any(str(p).startswith("evaluate") for p in teacher["params"])
    assert "evaluate" in scored["params"] and "results/teachers/${item}/model" in scored["deps"]
    assert "--method teacher" in scored["cmd"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"vlt5": "rank"}, r"vqa_inference.vlt5: rank inference is BLIP's recipe only; use generate"),
        ({"blip": "beam"}, r"vqa_inference.blip must be generate or rank, got 'beam'"),
        ({"lxmert": "generate"}, r"unknown family 'lxmert' in evaluate.vqa_inference"),
    ],
)
def test_vqa_inference_is_checked(value, message):
    params = _preset("mini")
    params["evaluate"]["vqa_inference"] = value
    with pytest.raises(ConfigError, match=message):
        P.validate_all(params)


def test_rank_sizes_must_be_positive():
    params = _preset("mini")
    params["evaluate"]["rank_k"] = 0
    with pytest.raises(ConfigError, match=r"evaluate.rank_k must be >= 1, got 0"):
        P.validate_all(params)


@pytest.mark.parametrize("name", ["teacher", "question_prior"])
def test_report_row_labels_are_not_method_names(name):
    params = _preset("mini")
    params["distill"]["methods"][name] = {"task": 1.0}
    with pytest.raises(ConfigError, match=f"cannot define '{name}'"):
        P.validate_all(params)


def test_unknown_preset():
    params = _preset("mini")
    params["preset"] = "papr"
    with pytest.raises(ConfigError, match=r"unknown preset 'papr'.*did you mean 'paper'"):
        P.validate_all(params)


def test_wrong_type_names_the_key():
    params = _preset("mini")
    params["distill"]["train"]["lr"] = "fast"
    with pytest.raises(ConfigError, match=r"distill.train.lr must be a number"):
        P.validate_all(params)


def test_missing_key_names_it():
    params = _preset("mini")
    del params["evaluate"]["num_beams"]
    with pytest.raises(ConfigError, match=r"missing key evaluate.num_beams"):
        P.validate_all(params)


def test_teacher_train_override_merges_over_base():
    params = _preset("mini")
    params["teacher"]["setups"]["vlt5-translation"]["train"] = {"max_steps": 7, "batch_size": 3}
    _, train = P.teacher_setup(params, "vlt5-translation")
    base = params["teacher"]["train"]
    assert (train.max_steps, train.batch_size) == (7, 3)  # the override
    assert (train.lr, train.epochs) == (base["lr"], base["epochs"])  # everything else from teacher.train


def test_method_weight_must_be_a_number():
    params = copy.deepcopy(_preset("mini"))
    params["distill"]["methods"]["amad"]["amad_kl"] = {"weight": "one"}
    with pytest.raises(ConfigError, match=r"distill.methods.amad.amad_kl: weight must be a finite number"):
        P.validate_all(params)


def test_preset_switch_rewrites_params(tmp_path):
    target = tmp_path / "params.yaml"
    use("smoke", target, PRESETS)
    assert yaml.safe_load(target.read_text())["preset"] == "smoke"
    with pytest.raises(ConfigError, match="unknown preset"):
        use("huge", target, PRESETS)
    assert yaml.safe_load(target.read_text())["preset"] == "smoke"  # untouched by the failed switch


def test_stage_prints_one_line_error_and_no_traceback(tmp_path):
    params = _preset("mini")
    params["suite"]["methods"] = ["amda"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cmd = stage_cmd(
        "distill", ROOT, setup="vlt5-vqa", method="amda", seeds_key="seeds", data="data", teacher="t", out="o"
    )
    proc = run(cmd, tmp_path, check=False, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    choices = ", ".join(sorted(params["distill"]["methods"]))
    assert lines == [f"error: unknown method 'amda': did you mean 'amad', 'amad_l2'? choose one of: {choices}"]
    assert not (tmp_path / "o").exists()


def test_evaluate_refuses_a_reserved_method_name_before_loading_anything(tmp_path):
    (tmp_path / "params.yaml").write_text((PRESETS / "smoke.yaml").read_text())
    cmd = stage_cmd(
        "evaluate", ROOT, setup="vlt5-vqa", method="question_prior", seeds_key="seeds", data="data", run="r",
        out="e.json", predictions="p.json",
    )  # fmt: skip
    proc = run(cmd, tmp_path, check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: --method 'question_prior' labels a reference row")
    assert not (tmp_path / "e.json").exists()


def test_missing_teacher_checkpoint_is_a_one_line_error(tmp_path):
    (tmp_path / "params.yaml").write_text((PRESETS / "smoke.yaml").read_text())
    teacher = "results/teachers/vlt5-vqa"
    cmd = stage_cmd(
        "distill", ROOT, setup="vlt5-vqa", method="amad", seeds_key="seeds", data="data", teacher=teacher, out="out"
    )
    proc = run(cmd, tmp_path, check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: missing teacher checkpoint results/teachers/vlt5-vqa/model: run `dvc repro teacher@vlt5-vqa` first "
        "(or check the path)"
    )
    assert not (tmp_path / "out").exists()


def test_evaluating_a_missing_teacher_is_a_one_line_error(tmp_path):
    (tmp_path / "params.yaml").write_text((PRESETS / "smoke.yaml").read_text())
    run_dir = "results/teachers/vlt5-vqa"
    cmd = stage_cmd(
        "evaluate",
        ROOT,
        setup="vlt5-vqa",
        method="teacher",
        data="data",
        run=run_dir,
        out="e.json",
        predictions="p.json",
    )
    proc = run(cmd, tmp_path, check=False, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: missing teacher checkpoint results/teachers/vlt5-vqa/model: run `dvc repro teacher@vlt5-vqa` first"
        )
    )
    student = stage_cmd(
        "evaluate", ROOT, setup="vlt5-vqa", method="amad", data="data", run="r", out="e.json", predictions="p.json"
    )
    proc = run(student, tmp_path, check=False, timeout=120)
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("error: --method teacher takes no --seeds-key, and a student method needs one")
    )
    assert not (tmp_path / "e.json").exists()


def test_mixed_precision_survives_yaml_booleans():
    # `dvc exp run -S` rewrites params.yaml and may drop quotes: an unquoted `no` loads as False.
    params = _preset("smoke")
    params["distill"]["train"]["mixed_precision"] = False
    assert P.distill(params).train.mixed_precision == "fp32"
    params["distill"]["train"]["mixed_precision"] = "fp64"
    with pytest.raises(ConfigError, match="mixed_precision must be fp32, bf16 or fp16"):
        P.validate_all(params)


def test_missing_multi30k_fails_before_the_download_stage_writes_anything(tmp_path):
    from amad.errors import DataError
    from amad_suite.pipeline.data_stages import run_download

    params = _preset("smoke")
    params["data"]["multi30k"] = str(tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"Multi30K task 1 text not found .*set data.multi30k or data.mirror"):
        run_download(params, str(tmp_path / "data"), progress=False)
    assert not (tmp_path / "data").exists()
