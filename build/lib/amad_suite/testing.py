"""Drive the pipeline as a user does, for the slow tests and the benchmarks: a throwaway git repository with a
preset's params, and stage scripts or dvc run in subprocesses. (The library's tiny fixtures are ``amad.testing``.)

``SHARED_MULTI30K`` is where tests and benchmarks find the real Multi30K task 1 text: ``../shared/data/multi30k``
beside the checkout, read in place and never copied into the repository (non-commercial research licence).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"
SKIPPED = ("reports/tables", "reports/figures")  # report outputs: the repo's run writes its own


def pipeline_env() -> dict[str, str]:
    """This interpreter's bin on PATH (dvc, python), offline, quiet, and a git identity for commits."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", AMAD_LOG_LEVEL="WARNING", TQDM_DISABLE="1")
    env.update(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    return env


def run(
    cmd: list[str], cwd: Path, env: dict | None = None, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run ``cmd``; with ``check``, a non-zero exit raises AssertionError with the tails of stdout and stderr."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def stage_cmd(stage: str, root: Path = Path("."), **options: object) -> list[str]:
    """``python <root>/stages/<stage>.py --key value ...`` (underscores in keys become dashes)."""
    args = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    return [sys.executable, str(root / "stages" / f"{stage}.py"), *args]


def make_repo(dest: Path, preset: str) -> Path:
    """Copy this checkout's files (tracked and untracked-not-ignored) to ``dest``, make ``preset`` the active
    params with the Multi30K text read from ../shared, and commit it all in a fresh git repository."""
    env = pipeline_env()
    files = run(["git", "ls-files", "-co", "--exclude-standard"], ROOT).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file() and not rel.startswith(SKIPPED):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = yaml.safe_load((ROOT / "configs" / "presets" / f"{preset}.yaml").read_text())
    params["data"]["multi30k"] = str(SHARED_MULTI30K)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", preset]):
        run(cmd, dest, env)
    return dest
