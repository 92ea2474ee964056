"""The README's library snippet runs as written: in this process, and (slow) in a fresh venv with `pip install .`."""

from __future__ import annotations

import os
import re
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_snippet() -> str:
    section = (ROOT / "README.md").read_text().split("## Using the library in your own models", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's library section has no python block"
    return match.group(1)


def test_snippet_runs_in_process(capsys) -> None:
    exec(compile(readme_snippet(), "README.md", "exec"), {})
    assert re.fullmatch(r"task \d+\.\d+ \+ AMAD \d+\.\d+\n", capsys.readouterr().out)


@pytest.mark.slow
def test_snippet_runs_with_the_library_alone(tmp_path) -> None:
    """A fresh venv, `pip install .` (torch first, the CPU wheel the Makefile uses): no DVC, no suite extras."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")} | {"HF_HUB_OFFLINE": "1"}

    def pip(*args: str) -> None:
        done = subprocess.run([python, "-m", "pip", "install", "-q", *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]

    torch_spec = next((f"torch=={v}" for v in [__import__("torch").__version__.split("+")[0]]), "torch")
    pip(torch_spec)
    pip(str(ROOT))
    (tmp_path / "snippet.py").write_text(readme_snippet())
    run = subprocess.run([python, "snippet.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.fullmatch(r"task \d+\.\d+ \+ AMAD \d+\.\d+\n", run.stdout)
    suite_only = ("dvc", "dvclive", "accelerate", "matplotlib", "easy_vqa")  # what .[suite] adds
    present = subprocess.run(
        [python, "-c", f"import importlib.util as u; print([m for m in {suite_only!r} if u.find_spec(m)])"],
        cwd=tmp_path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert present.stdout.strip() == "[]", present.stdout
