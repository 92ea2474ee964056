"""A battery of bad inputs and faults driven through the real stage entry points, in-process (issue 13).

Every case must: exit non-zero; print exactly one line that begins ``error:``; show no traceback; write no model;
and leave every earlier output byte-identical. The workspace (smoke data, two teachers, one finished student and
its evaluation) is built once per module; each case edits a copy of what it breaks and restores params.yaml.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import yaml
from reliability_support import CASES, Workspace

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_one_error_line_and_changes_nothing(ws: Workspace, case, capfd) -> None:
    before = ws.snapshot()
    with ws.case(case.params) as out:
        if case.prepare is not None:
            case.prepare(ws, out)
        code, stderr = ws.run(case.command(ws, out), capfd)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert code != 0, f"{case.name}: exit 0\n{stderr[-2000:]}"
    assert "Traceback" not in stderr, f"{case.name}: traceback\n{stderr[-3000:]}"
    assert len(errors) == 1, f"{case.name}: {len(errors)} error lines\n{stderr[-2000:]}"
    assert case.expect in errors[0], f"{case.name}: {errors[0]!r} lacks {case.expect!r}"
    assert not list(out.rglob("model")), f"{case.name} wrote a model"
    assert ws.snapshot() == before, f"{case.name} changed an earlier output"


def test_yaml_1_1_numbers_are_accepted_where_a_number_is_expected(ws: Workspace, capfd) -> None:
    text = ws.params_text.replace("lr: 0.001", "lr: 1e-3")
    assert text != ws.params_text and isinstance(yaml.safe_load(text)["distill"]["train"]["lr"], str)
    out = ws.scratch("yaml11")
    with ws.case(text):
        code, stderr = ws.run(ws.distill_cmd(out), capfd)
    assert code == 0, stderr[-2000:]


def test_a_killed_save_leaves_a_temporary_folder_that_the_next_run_removes(ws: Workspace, capfd) -> None:
    out = ws.scratch("leftover")
    shutil.copytree(ws.student_dir, out)
    shutil.rmtree(out / "s0" / "model")
    leftover = out / "s0" / ".model.tmp-99999"
    shutil.copytree(ws.student / "model", leftover)
    code, _ = ws.run(ws.distill_cmd(out), capfd)
    assert code == 0 and not leftover.exists() and (out / "s0" / "model" / "amad_model.json").exists()


def test_a_failed_rerun_into_a_finished_run_keeps_its_history(ws: Workspace, capfd) -> None:
    out = ws.scratch("finished")
    shutil.copytree(ws.student_dir, out)
    history = out / "s0" / "dvclive"
    before = {p.relative_to(history): p.read_bytes() for p in history.rglob("*") if p.is_file()}
    data = ws.scratch("nan-data")
    shutil.copytree(ws.data, data)
    with h5py.File(data / "features" / "vqa.h5", "r+") as fh:  # every region feature NaN: step 1 is not finite
        for key in fh:
            if isinstance(fh[key], h5py.Group) and "features" in fh[key]:
                fh[key]["features"][...] = np.nan
    params = yaml.safe_load(ws.params_text)
    params["distill"]["train"]["max_steps"] = 5  # other params than the finished run's: it trains again
    with ws.case(yaml.safe_dump(params, sort_keys=False)):
        code, stderr = ws.run(ws.distill_cmd(out, data=data), capfd)
    assert code == 2 and "error:" in stderr
    after = {p.relative_to(history): p.read_bytes() for p in history.rglob("*") if p.is_file()}
    assert after == before and (out / "s0" / "model" / "amad_model.json").exists()


def test_a_finished_seed_is_kept_and_a_new_seed_trains(ws: Workspace, capfd) -> None:
    out = ws.scratch("seeds")
    shutil.copytree(ws.student_dir, out)
    kept = (out / "s0" / "model" / "model.safetensors").stat().st_mtime_ns
    params = yaml.safe_load(ws.params_text)
    params["suite"]["seeds"] = [0, 1]
    with ws.case(yaml.safe_dump(params, sort_keys=False)):
        code, stderr = ws.run(ws.distill_cmd(out), capfd)
    assert code == 0, stderr[-2000:]
    assert (out / "s0" / "model" / "model.safetensors").stat().st_mtime_ns == kept
    assert (out / "s1" / "model" / "amad_model.json").exists()
    params["suite"]["seeds"] = [1]
    with ws.case(yaml.safe_dump(params, sort_keys=False)):
        code, _ = ws.run(ws.distill_cmd(out), capfd)
    assert code == 0 and not (out / "s0").exists()  # the stage's output holds exactly the listed seeds


def test_the_battery_has_thirty_distinct_cases() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names)) and len(names) >= 30


def test_tuning_scores_each_value_on_validation_and_names_the_best(ws: Workspace, capfd) -> None:
    out, work = ws.scratch("tune") / "tau.csv", ws.scratch("tune-work")
    argv = ["-m", "amad_suite.tune", "--setup", "vlt5-vqa", "--method", "amad", "--option", "amad_kl.tau"]
    code, stderr = ws.run([*argv, "--values", "1.0", "0.5", "--work", str(work), "--out", str(out)], capfd)
    assert code == 0, stderr[-2000:]
    lines = out.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    rows = [line.split(",") for line in lines if not line.startswith("#")]
    assert "# split: validation" in header and any(line.startswith("# chosen: ") for line in header)
    assert rows[0] == ["value", "seed", "headline", "val_metric"] and [r[0] for r in rows[1:]] == ["1.0", "0.5"]
    assert all(0 <= float(r[3]) <= 100 for r in rows[1:])
    info = (work / "vlt5-vqa-amad-amad_kl.tau=0.5" / "s0" / "run_info.json").read_text()
    assert '"tau": 0.5' in info  # the value reached the loss, not just the folder name
    code, stderr = ws.run([*argv[:-1], "amad_kl.tua", "--values", "1", "--work", str(work), "--out", str(out)], capfd)
    assert code == 2 and "did you mean 'tau'" in stderr, stderr[-500:]


def test_tuning_the_teacher_trains_it_as_the_teacher_stage_would(ws: Workspace, capfd) -> None:
    out, work = ws.scratch("tune-teacher") / "steps.csv", ws.scratch("tune-teacher-work")
    key = "teacher.setups.vlt5-vqa.train.max_steps"
    argv = ["-m", "amad_suite.tune", "--setup", "vlt5-vqa", "--method", "teacher", "--param", key]
    code, stderr = ws.run([*argv, "--values", "3", "--work", str(work), "--out", str(out)], capfd)
    assert code == 0, stderr[-2000:]
    rows = [line.split(",") for line in out.read_text().splitlines() if not line.startswith("#")]
    assert rows[0] == ["value", "seed", "headline", "val_metric"] and len(rows) == 2 and rows[1][0] == "3"
    assert 0 <= float(rows[1][3]) <= 100
    info_file = work / f"vlt5-vqa-teacher-{key}=3" / "run_info.json"
    info, stamp = info_file.read_text(), info_file.stat().st_mtime_ns
    assert '"max_steps": 3' in info and '"stage": "teacher"' in info
    code, stderr = ws.run([*argv, "--values", "3", "--within", "1", "--work", str(work), "--out", str(out)], capfd)
    assert code == 0 and info_file.stat().st_mtime_ns == stamp  # a finished teacher with the same params is kept
    assert "the first listed within 1 of the best mean" in out.read_text()
    student_key = "student.setups.vlt5-vqa.train.max_steps"
    code, stderr = ws.run([*argv[:-1], student_key, "--values", "3", "--work", str(work), "--out", str(out)], capfd)
    assert code == 2 and "--method teacher tunes a teacher setting" in stderr, stderr[-500:]
