"""Warm starts (amad_suite.warm): a stage script handed to a warm server behaves as ``python script.py`` would.

Each test gets its own server (a unique HF_WARM_TEST variable is part of the server's key) with a short idle
timeout, and stops it afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from amad_suite import warm

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="warm starts are Linux-only")

SCRIPT = """\
import os, sys, time
from amad_suite import warm
from amad_suite.cli import run_stage

def main():
    mode = sys.argv[1]
    env = os.environ
    print("child", warm.started_warm, env.get("AMAD_WARM_CHILD"), "cwd", os.getcwd(), "x", env.get("X"), flush=True)
    print("to stderr", file=sys.stderr)
    if mode == "raise":
        raise RuntimeError("a bug")
    if mode == "nested":  # a stage that starts another (accelerate launch does)
        import subprocess
        subprocess.run([sys.executable, __file__, "0"], check=True)
    if mode == "selfkill":  # the training loop's crash hook does this
        import signal
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "sleep":
        open(sys.argv[2], "w").write(str(os.getpid()))
        time.sleep(60)
    sys.exit(0 if mode == "nested" else int(mode))

if __name__ == "__main__":
    run_stage(main)
"""


@pytest.fixture()
def server(tmp_path):
    """(script, env, run): a stage-like script, the environment of its own warm server, and a runner; the server is
    started by the first run and waited for."""
    script = tmp_path / "stage.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ, HF_WARM_TEST=uuid.uuid4().hex, AMAD_WARM_IDLE_S="30", X="y")
    env.pop(warm.CHILD, None)
    env.pop(warm.SWITCH, None)

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(script), *args]
        return subprocess.run(cmd, cwd=tmp_path, env=kwargs.pop("env", env), capture_output=True, text=True, **kwargs)

    first = run("0")
    assert first.returncode == 0 and "child False None" in first.stdout  # no server yet: it ran in place, started one
    assert warm.wait_for_server(env), "the warm server did not come up"
    yield script, env, run
    warm.stop_server(env)


def test_a_warm_child_gets_the_scripts_argv_cwd_env_streams_and_exit_status(server, tmp_path):
    _, _, run = server
    done = run("3")
    assert done.returncode == 3
    assert f"child True None cwd {tmp_path} x y" in done.stdout
    assert "to stderr" in done.stderr


def test_a_process_a_warm_child_starts_is_warm_started_too(server):
    done = server[2]("nested")
    assert done.returncode == 0 and done.stdout.count("child True None") == 2, done.stdout


def test_an_exception_in_a_warm_child_is_a_traceback_and_status_1(server):
    done = server[2]("raise")
    assert done.returncode == 1
    assert "RuntimeError: a bug" in done.stderr


def test_a_warm_child_killed_by_a_signal_ends_its_stage_script_by_that_signal(server):
    assert server[2]("selfkill").returncode == -signal.SIGKILL


def test_amad_warm_0_runs_the_script_in_its_own_process(server):
    _, env, run = server
    done = run("0", env=dict(env, AMAD_WARM="0"))
    assert done.returncode == 0 and "child False None" in done.stdout


def test_another_start_up_environment_gets_another_server(server):
    _, env, run = server
    done = run("0", env=dict(env, OMP_NUM_THREADS="1"))
    assert "child False None" in done.stdout  # a fork could not change OMP_NUM_THREADS: not the running server's


def test_ctrl_c_reaches_the_warm_child(server, tmp_path):
    script, env, _ = server
    pid_file = tmp_path / "pid"
    client = subprocess.Popen(
        [sys.executable, str(script), "sleep", str(pid_file)], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True
    )
    _wait_for(pid_file)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=30)
    assert client.returncode == 130 and "interrupted" in err  # run_stage's Ctrl-C message, from the child


def test_a_killed_stage_script_takes_its_warm_child_with_it(server, tmp_path):
    script, env, _ = server
    pid_file = tmp_path / "pid"
    client = subprocess.Popen([sys.executable, str(script), "sleep", str(pid_file)], cwd=tmp_path, env=env)
    child = int(_wait_for(pid_file))
    client.kill()
    client.wait()
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def _wait_for(path: Path) -> str:
    deadline = time.monotonic() + 30
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.read_text()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"
