"""The workspace and the cases of the bad-input battery (tests/reliability/test_bad_inputs.py).

The workspace is the smoke preset's data, the vlt5-vqa and blip-caption teachers, one finished vlt5-vqa student
and its evaluation, all made by the stage scripts in this process. A case edits params.yaml and/or damages a copy
of an input, runs one stage script as ``python stages/<stage>.py`` would, and is judged by the test.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import runpy
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARED_MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
SETUPS = ["vlt5-vqa", "blip-caption"]


def damage(path: Path, how: str) -> None:
    """Damage a file in place: ``truncate`` (keep the first half), ``empty``, or ``flip`` (invert 64 bytes in the
    middle)."""
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flip":
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid : mid + 64]) + data[mid + 64 :])
    else:
        raise ValueError(how)


class Workspace:
    """A repository-like folder (params.yaml, data/, results/) that the stage scripts run in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.params = root / "params.yaml"
        self.data = root / "data"
        self.results = root / "results"
        self.teacher = self.results / "teachers" / "vlt5-vqa"
        self.blip_teacher = self.results / "teachers" / "blip-caption"
        self.student_dir = self.results / "distill" / "vlt5-vqa-amad-hsize"
        self.student = self.student_dir / "s0"
        self.params_text = ""
        self._scratch = root / "scratch"

    @classmethod
    def build(cls, root: Path) -> Workspace:
        ws = cls(root)
        params = yaml.safe_load((ROOT / "configs" / "presets" / "smoke.yaml").read_text())
        params["data"]["multi30k"] = str(SHARED_MULTI30K)
        params["suite"].update(setups=SETUPS, budget_setups=[], budget_seeds=[], methods=["logit", "amad"])
        ws.params_text = yaml.safe_dump(params, sort_keys=False)
        ws.params.write_text(ws.params_text)
        steps = [
            ["stages/download.py", "--data", "data"],
            *(["stages/extract_features.py", "--task", t, "--data", "data"] for t in ws.feature_tasks()),
            *(["stages/teacher.py", "--setup", s, "--data", "data", "--out", f"results/teachers/{s}"] for s in SETUPS),
            ws.distill_cmd(ws.student_dir),
            ws.evaluate_cmd(ws.student_dir, ws.results / "eval" / "vlt5-vqa-amad-hsize"),
            ws.evaluate_cmd(ws.teacher, ws.results / "eval" / "vlt5-vqa-teacher", method="teacher"),
        ]
        (root / "published.yaml").write_text("")
        for argv in steps:
            code, output = ws.run(argv)
            if code != 0:
                raise AssertionError(f"building the workspace failed at {argv}: {output[-2000:]}")
        return ws

    def feature_tasks(self) -> list[str]:
        """The extract_features --task values the smoke setups need (VL-T5 VQA features, BLIP caption images)."""
        source = (ROOT / "stages" / "extract_features.py").read_text()
        return ["vqa", "images"] if "images" in source else ["vqa", "caption"]

    # ---- running stage scripts -----------------------------------------------------------------------------------
    def run(self, argv: list[str], capfd=None) -> tuple[int, str]:
        """Run ``python <argv>`` in this process with the workspace as the working directory; (exit code, stderr)."""
        module = argv[1] if argv[0] == "-m" else None
        script = ROOT / argv[0]
        old_argv, old_cwd = sys.argv, os.getcwd()
        sys.argv = [module or str(script), *argv[2 if module else 1 :]]
        os.chdir(self.root)
        code = 0
        try:
            if module:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # an escaped exception is a failure the test reports (as a traceback)
            import traceback

            code = 99
            traceback.print_exception(exc, file=sys.stderr)
        finally:
            sys.argv = old_argv
            os.chdir(old_cwd)
        stderr = capfd.readouterr().err if capfd is not None else ""
        return code, stderr

    def distill_cmd(self, out: Path, data: Path | None = None, teacher: Path | None = None, setup: str = "vlt5-vqa"):
        return [
            "stages/distill.py",
            *("--setup", setup, "--method", "amad", "--seeds-key", "seeds"),
            *("--data", str(data or self.data), "--teacher", str(teacher or self.teacher), "--out", str(out)),
        ]

    def evaluate_cmd(self, run: Path, out: Path, setup: str = "vlt5-vqa", method: str = "amad"):
        """Evaluate the seed folders of ``run`` (or a teacher folder) into the folder ``out``; the predictions go to
        ``results/predictions/<name>`` for the workspace's own results, else beside ``out``."""
        seeds = [] if method == "teacher" else ["--seeds-key", "seeds"]
        own = out.parent == self.results / "eval"
        predictions = self.results / "predictions" / out.name if own else out.with_name(out.name + "-predictions")
        return [
            "stages/evaluate.py",
            *("--setup", setup, "--method", method, *seeds, "--data", str(self.data)),
            *("--run", str(run), "--out", str(out), "--predictions", str(predictions)),
        ]

    def report_cmd(self, results: Path, out: Path):
        return ["stages/report.py", "--results", str(results), "--out", str(out), "--published", "published.yaml"]

    # ---- cases ----------------------------------------------------------------------------------------------------
    def scratch(self, name: str) -> Path:
        path = self._scratch / name
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def case(self, edit: Callable[[dict], None] | str | None) -> Iterator[Path]:
        """params.yaml edited (a function of the params dict, or replacement text) for one case, then restored."""
        if callable(edit):
            params = yaml.safe_load(self.params_text)
            edit(params)
            self.params.write_text(yaml.safe_dump(params, sort_keys=False))
        elif isinstance(edit, str):
            self.params.write_text(edit)
        try:
            yield self.scratch("out")
        finally:
            self.params.write_text(self.params_text)

    def snapshot(self) -> dict[str, str]:
        """sha256 of every file outside the scratch folder (params.yaml included)."""
        out = {}
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and self._scratch not in path.parents:
                out[str(path.relative_to(self.root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        return out

    def copy_of(self, source: Path, name: str) -> Path:
        dest = self.scratch(name)
        shutil.copytree(source, dest)
        return dest


@dataclass(frozen=True)
class Case:
    name: str
    command: Callable[[Workspace, Path], list[str]]
    expect: str  # a piece of the error line
    params: Callable[[dict], None] | str | None = None
    prepare: Callable[[Workspace, Path], None] | None = None


_SMOKE_TRAIN = yaml.safe_load((ROOT / "configs" / "presets" / "smoke.yaml").read_text())["distill"]["train"]


def _set(dotted: str, value) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = copy.deepcopy(value)

    return edit


def _distill(ws: Workspace, out: Path) -> list[str]:
    return ws.distill_cmd(out)


def _evaluate(ws: Workspace, out: Path) -> list[str]:
    return ws.evaluate_cmd(ws.student_dir, out / "eval")


def _with_copy(kind: str, how: str, target: str) -> Callable[[Workspace, Path], list[str]]:
    """A command on a damaged copy: ``kind`` teacher/student/state/live; ``target`` the file inside it."""

    def command(ws: Workspace, out: Path) -> list[str]:
        if kind == "teacher":
            copy_dir = ws.copy_of(ws.teacher, "teacher-copy")
            damage(copy_dir / target, how)
            return ws.distill_cmd(out, teacher=copy_dir)
        if kind == "student":
            copy_dir = ws.copy_of(ws.student_dir, "student-copy")
            damage(copy_dir / "s0" / target, how)
            return ws.evaluate_cmd(copy_dir, out / "eval")
        raise ValueError(kind)

    return command


def _nan_weights(ws: Workspace, out: Path) -> list[str]:
    from safetensors.numpy import load_file, save_file

    copy_dir = ws.copy_of(ws.student_dir, "student-nan")
    path = copy_dir / "s0" / "model" / "model.safetensors"
    weights = load_file(path)
    first = sorted(k for k, v in weights.items() if v.dtype == np.float32)[0]
    weights[first] = np.full_like(weights[first], np.nan)
    save_file(weights, path, metadata={"format": "pt"})
    return ws.evaluate_cmd(copy_dir, out / "eval")


def _nan_features(ws: Workspace, out: Path) -> list[str]:
    data = ws.scratch("data-nan")
    shutil.copytree(ws.data, data)
    with h5py.File(data / "features" / "vqa.h5", "r+") as fh:
        for key in fh:
            if isinstance(fh[key], h5py.Group) and "features" in fh[key]:
                fh[key]["features"][...] = np.nan
    return ws.distill_cmd(out, data=data)


def _resume_with(how: str, target: str) -> Callable[[Workspace, Path], None]:
    """Prepare ``out`` as a killed run (stopped right after its step-3 checkpoint), then damage its resume state
    or its DVCLive history."""

    def prepare(ws: Workspace, out: Path) -> None:
        import signal

        from amad_suite.training import checkpoint as ckpt

        def interrupt(pid: int, sig: int) -> None:  # the loop's crash hook kills the process; here it interrupts
            assert sig == signal.SIGKILL
            raise KeyboardInterrupt

        old_kill, os.kill = os.kill, interrupt
        os.environ["AMAD_CRASH_AFTER_STEP"] = "3"
        try:
            code, _ = ws.run(ws.distill_cmd(out))
        finally:
            os.kill = old_kill
            del os.environ["AMAD_CRASH_AFTER_STEP"]
        assert code == 130 and (out / "s0" / "checkpoint" / ckpt.STATE_FILE).exists()
        if target == "state":
            damage(out / "s0" / "checkpoint" / ckpt.STATE_FILE, how)
        else:
            tsv = next((out / "s0" / "dvclive" / "plots" / "metrics").rglob("*.tsv"))
            if how == "garbage":
                tsv.write_text(tsv.read_text() + "garbage\x00line\n")
            else:
                damage(tsv, how)

    return prepare


def _report(ws: Workspace, out: Path, damage_eval: str | None = None, damage_npz: bool = False) -> list[str]:
    results = ws.copy_of(ws.results, "results-copy")
    if damage_eval:
        damage(results / "eval" / "vlt5-vqa-amad-hsize" / "s0.json", damage_eval)
    if damage_npz:
        damage(results / "distill" / "vlt5-vqa-amad-hsize" / "s0" / "alignment.npz", "truncate")
    return ws.report_cmd(results, out)


CASES: list[Case] = [
    # params: training
    Case("max_steps_negative", _distill, "max_steps must be >= 1", _set("distill.train.max_steps", -5)),
    Case("checkpoint_every_zero", _distill, "checkpoint_every must be >= 1", _set("distill.train.checkpoint_every", 0)),
    Case("log_every_zero", _distill, "log_every must be >= 1", _set("distill.train.log_every", 0)),
    Case("lr_not_a_number", _distill, "lr must be a number, got 'fast'", _set("distill.train.lr", "fast")),
    Case(
        "tau_string",
        _distill,
        "tau must be a finite number, got 'abc'",
        _set("distill.methods.amad.amad_kl.tau", "abc"),
    ),
    Case("tau_zero", _distill, "tau must be > 0", _set("distill.methods.amad.amad_kl.tau", 0)),
    Case("tau_nan", _distill, "tau must be a finite number", _set("distill.methods.amad.amad_kl.tau", float("nan"))),
    Case(
        "option_typo", _distill, "did you mean 'tau'", _set("distill.methods.amad.amad_kl", {"weight": 1.0, "tua": 1.0})
    ),
    Case(
        "weight_nan",
        _distill,
        "weight must be a finite number",
        _set("distill.methods.amad.amad_kl.weight", float("nan")),
    ),
    Case(
        "temperature_zero",
        _distill,
        "logit_kd.temperature must be > 0",
        _set("distill.methods.amad.logit_kd.temperature", 0),
    ),
    Case(
        "unknown_method",
        lambda ws, out: [*ws.distill_cmd(out)[:4], "amadd", *ws.distill_cmd(out)[5:]],
        "did you mean 'amad'",
    ),
    Case("layer_map_unknown", _distill, "layer_map must be uniform or last", _set("distill.layer_map", "diagonal")),
    Case(
        "kind_of_other_family",
        _distill,
        "'vision_self' does not exist",
        _set("distill.kinds.vlt5", ["encoder_self", "vision_self"]),
    ),
    Case("heads_zero", _distill, "heads must be a positive integer", _set("student.setups.vlt5-vqa.heads", 0)),
    Case(
        "heads_not_dividing", _distill, "does not divide the attention width", _set("student.setups.vlt5-vqa.heads", 3)
    ),
    Case("unknown_top_level_key", _distill, "did you mean 'distill'", lambda p: p.update(distil={})),
    Case("invalid_yaml", _distill, "is not valid YAML", "distill: {layer_map: [uniform\n"),
    Case("empty_params", _distill, "must hold a mapping of sections", ""),
    Case("empty_seeds", _distill, "suite.seeds must be a non-empty list", _set("suite.seeds", [])),
    Case("lr_diverges", _distill, "step ", _set("distill.train", {**_SMOKE_TRAIN, "lr": 1.0e3, "max_steps": 60})),
    # params: data and evaluation
    Case(
        "n_train_zero",
        lambda ws, out: ["stages/download.py", "--data", str(out / "data")],
        "data.vqa.n_train must be >= 1",
        _set("data.vqa.n_train", 0),
    ),
    Case("num_beams_zero", _evaluate, "num_beams must be >= 1", _set("evaluate.num_beams", 0)),
    Case("eval_batch_zero", _evaluate, "batch_size must be >= 1", _set("evaluate.batch_size", 0)),
    Case(
        "max_new_tokens_missing_task",
        _evaluate,
        "max_new_tokens lacks ['caption']",
        _set("evaluate.max_new_tokens", {"vqa": 6, "translation": 24}),
    ),
    Case("max_new_tokens_zero", _evaluate, "max_new_tokens.vqa must be >= 1", _set("evaluate.max_new_tokens.vqa", 0)),
    # command line
    Case(
        "seeds_key_unknown",
        lambda ws, out: [*ws.distill_cmd(out)[:6], "abc", *ws.distill_cmd(out)[7:]],
        "invalid choice: 'abc'",
    ),
    Case("blip_translation", lambda ws, out: ws.distill_cmd(out, setup="blip-translation"), "BLIP has no Multi30K"),
    Case("missing_data", lambda ws, out: ws.distill_cmd(out, data=out / "nowhere"), "missing"),
    # files
    Case("teacher_truncated", _with_copy("teacher", "truncate", "model/model.safetensors"), "cannot load the model"),
    Case("student_truncated", _with_copy("student", "truncate", "model/model.safetensors"), "cannot load the model"),
    Case("student_meta_empty", _with_copy("student", "empty", "model/amad_model.json"), "amad_model.json"),
    Case("student_nan_weights", _nan_weights, "holds NaN or inf"),
    Case(
        "teacher_missing", lambda ws, out: ws.distill_cmd(out, teacher=out / "no-teacher"), "missing teacher checkpoint"
    ),
    Case(
        "teacher_of_other_family",
        lambda ws, out: ws.distill_cmd(out, teacher=ws.blip_teacher),
        "differs from student family",
    ),
    Case("features_nan", _nan_features, "NaN or inf"),
    Case("state_truncated", _distill, "fails its integrity check", prepare=_resume_with("truncate", "state")),
    Case("state_flipped_bits", _distill, "fails its integrity check", prepare=_resume_with("flip", "state")),
    Case("dvclive_garbage", _distill, "is not a DVCLive history", prepare=_resume_with("garbage", "live")),
    Case("dvclive_empty", _distill, "is not a DVCLive history", prepare=_resume_with("empty", "live")),
    Case(
        "eval_of_other_task",
        lambda ws, out: ws.evaluate_cmd(ws.student_dir, out / "e", setup="vlt5-caption"),
        "holds a vlt5 vqa model",
    ),
    Case("report_eval_empty", lambda ws, out: _report(ws, out, damage_eval="empty"), "not valid JSON"),
    Case("report_eval_truncated", lambda ws, out: _report(ws, out, damage_eval="truncate"), "not valid JSON"),
    Case("report_npz_truncated", lambda ws, out: _report(ws, out, damage_npz=True), "unreadable npz"),
    Case(
        "preset_show_invalid_yaml", lambda ws, out: ["-m", "amad_suite.preset"], "is not valid YAML", "preset: [mini\n"
    ),
    Case("preset_unknown", lambda ws, out: ["-m", "amad_suite.preset", "papr"], "did you mean 'paper'"),
]
