"""dvc.yaml: every stage depends on exactly the code it runs (through its script's checksum list) and declares
exactly the params it reads (issue 14 §2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from amad_suite import stage_deps
from amad_suite.pipeline.params import STAGE_PARAMS

ROOT = stage_deps.ROOT
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
# dvc.yaml stage -> (STAGE_PARAMS entry, the items its templates fill in)
KINDS = {
    "code": ("code", {}),
    "download": ("download", {}),
    "extract_features": ("extract_features", {}),
    "teacher": ("teacher", {"setup": "${item}"}),
    "teacher_budget": ("teacher", {"setup": "${item}"}),
    "evaluate_teacher": ("evaluate_teacher", {}),
    "evaluate_teacher_budget": ("evaluate_teacher", {}),
    "distill": ("distill", {"setup": "${item.setup}", "method": "${item.method}", "seeds": "seeds"}),
    "distill_budget": ("distill", {"setup": "${item.setup}", "method": "${item.method}", "seeds": "budget_seeds"}),
    "evaluate": ("evaluate", {"seeds": "seeds"}),
    "evaluate_budget": ("evaluate", {"seeds": "budget_seeds"}),
    "report": ("report", {}),
}


def test_every_stage_has_a_params_contract() -> None:
    assert set(STAGES) == set(KINDS)


def test_every_stage_depends_on_its_scripts_checksum_list() -> None:
    assert stage_deps.check() == []


def test_checksum_lists_cover_the_closure_and_change_with_a_file(tmp_path) -> None:
    written = {p.name: p.read_text() for p in stage_deps.write_digests(tmp_path / "code")}
    assert set(written) == {f"{p.stem}.sha256" for p in (ROOT / "stages").glob("*.py")}
    listed = [line.split("  ", 1)[1] for line in written["distill.sha256"].splitlines()]
    assert "stages/distill.py" in listed and "amad/losses/head_alignment.py" in listed
    assert "amad/losses/csrc/mixture_kl.c" in listed  # a data file the loss compiles
    assert not any(p.startswith("amad_suite/reporting") for p in listed)
    fake = tmp_path / "repo"
    for rel in listed:
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_bytes((ROOT / rel).read_bytes())
    assert stage_deps.digest_text("stages/distill.py", fake) == written["distill.sha256"]
    (fake / "amad/losses/head_alignment.py").write_text("# edited\n")
    assert stage_deps.digest_text("stages/distill.py", fake) != written["distill.sha256"]


@pytest.mark.parametrize("stage", sorted(KINDS))
def test_params_are_exactly_what_the_stage_reads(stage: str) -> None:
    kind, items = KINDS[stage]
    body = STAGES[stage].get("do", STAGES[stage])
    declared = set(body.get("params", []))
    reads = {pattern.format(**items) for pattern in STAGE_PARAMS[kind]}
    interpolated = {"compute.launcher"} if "${compute.launcher}" in body["cmd"] else set()
    assert declared == reads | interpolated


def test_a_renderer_edit_reruns_only_the_report_and_inference_code_reruns_evaluations() -> None:
    deps = {name: set(stage_deps.stage_code(script)) for name, (script, _) in stage_deps.dvc_code_deps().items()}

    def covered(stage: str, path: str) -> bool:
        return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps[stage])

    renderer = "amad_suite/reporting/render.py"
    assert [s for s in deps if covered(s, renderer)] == ["report"]
    rank = "amad/models/blip/model.py"  # BLIP's rank inference and generate
    for stage in ("evaluate", "evaluate_budget", "evaluate_teacher", "evaluate_teacher_budget"):
        assert covered(stage, rank) and covered(stage, "amad/evaluation.py") and covered(stage, "amad/metrics")
    for stage in ("teacher", "distill"):  # train.select_on_val scores validation data: metrics yes, reporting no
        assert covered(stage, "amad/metrics") and not covered(stage, "amad_suite/reporting")


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "stages").glob("*.py")))
def test_modules_loaded_at_run_time_are_in_the_static_closure(script: str) -> None:
    """Importing the script (its main not run) loads only modules the static analysis lists: nothing dynamic."""
    code = (
        "import json, runpy, sys; runpy.run_path(sys.argv[1], run_name='not_main'); "
        "print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None))))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "stages" / script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    loaded = {p for p in json.loads(out.stdout.splitlines()[-1]) if p.startswith(str(ROOT)) and "/.venv/" not in p}
    closure = {str(p) for p in stage_deps.closure(ROOT / "stages" / script)}
    assert loaded <= closure, sorted(loaded - closure)
