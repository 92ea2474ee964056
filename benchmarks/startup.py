"""What a stage pays before it does any work, and what `dvc repro` pays when nothing changed (issue 14 §6).

1. Import time of every stage's modules in a fresh interpreter (what its ``main`` imports, torch and transformers
   included), median of ``--repeats`` runs.
   With ``--breakdown``, where the distill stage's import time goes: the cumulative ``-X importtime`` of the
   packages that dominate it (each counted where it is first imported, so nested entries overlap their parents).
2. Warm starts (amad_suite.warm), side by side: a stage-like script that imports the distill stage's modules and
   exits, started cold (``AMAD_WARM=0``) and warm (handed to a running server), median of ``--repeats`` each.
3. With ``--repo PATH`` (a finished pipeline, e.g. after `make mini`): `dvc repro` with nothing changed, and
   `dvc status`, median of ``--repeats`` runs. Target: no-op repro <= 5 s on the mini preset.

    python benchmarks/startup.py [--repeats 3] [--breakdown] [--repo .]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT = "import importlib, sys; importlib.import_module(sys.argv[1])"
# what each stage's main() imports (stage scripts import only light modules at the top)
STAGE_MODULES = {
    "distill": "amad_suite.pipeline.train_stages",
    "teacher": "amad_suite.pipeline.train_stages",
    "evaluate": "amad_suite.pipeline.eval_stages",
    "report": "amad_suite.reporting",
    "download": "amad_suite.pipeline.data_stages",
    "extract_features": "amad_suite.pipeline.data_stages",
}
STAGE_LIKE = """\
from amad_suite.cli import run_stage


def main():
    import amad_suite.pipeline.train_stages  # noqa: F401


if __name__ == "__main__":
    run_stage(main)
"""
# what a training stage's start-up is made of (first import of each; torch.distributed.tensor and torch._dynamo
# are pulled in by transformers' own model-loading and masking modules, not by amad)
BREAKDOWN = (
    "torch",
    "transformers",
    "transformers.modeling_utils",
    "torch.distributed.tensor",
    "torch._dynamo",
    "accelerate",
    "dvclive",
    "amad.models.vlt5",
    "amad.models.blip",
    "amad_suite.pipeline.train_stages",
)


def import_breakdown(module: str, env: dict[str, str], repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of each BREAKDOWN module's cumulative first-import time (s) when ``module`` loads."""
    runs: dict[str, list[float]] = {name: [] for name in BREAKDOWN}
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", IMPORT, module], cwd=ROOT, env=env, capture_output=True,
            text=True, check=True,
        )  # fmt: skip
        for line in done.stderr.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if len(fields) == 3 and fields[2].strip() in runs:
                runs[fields[2].strip()].append(int(fields[1]) / 1e6)  # cumulative microseconds -> s
    return {name: statistics.median(times) for name, times in runs.items() if times}


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def warm_start(env: dict[str, str], repeats: int) -> tuple[float, float]:
    """Medians (s) of a stage-like script run cold and warm; the warm server is this benchmark's own (a unique
    HF_ variable is part of its key) and is stopped afterwards."""
    from amad_suite import warm

    env = dict(env, HF_STARTUP_BENCHMARK=str(os.getpid()))
    env.pop(warm.CHILD, None)
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "stage_like.py"
        script.write_text(STAGE_LIKE)
        cmd = [sys.executable, str(script)]
        cold = [timed(cmd, ROOT, dict(env, AMAD_WARM="0")) for _ in range(repeats)]
        timed(cmd, ROOT, env)  # starts the server
        if not warm.wait_for_server(env):
            raise SystemExit("the warm server did not come up within 120 s")
        try:
            hot = [timed(cmd, ROOT, env) for _ in range(repeats)]
        finally:
            warm.stop_server(env)
    return statistics.median(cold), statistics.median(hot)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=None, help="a repository with a finished pipeline")
    parser.add_argument("--breakdown", action="store_true", help="where the distill stage's import time goes")
    args = parser.parse_args()
    env = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    print(f"stage start-up (import of the stage's modules in a fresh python, median of {args.repeats})")
    for stage, module in STAGE_MODULES.items():
        times = [timed([sys.executable, "-c", IMPORT, module], ROOT, env) for _ in range(args.repeats)]
        print(f"  {stage:20s} {statistics.median(times):6.2f} s")
    if args.breakdown:
        print("distill stage imports, cumulative at first import (nested entries overlap their parents)")
        for name, seconds in import_breakdown(STAGE_MODULES["distill"], env, args.repeats).items():
            print(f"  {name:36s} {seconds:6.2f} s")
    cold, warm = warm_start(env, args.repeats)
    print(f"distill-like stage, start to exit: cold {cold:.2f} s, warm {warm:.2f} s; cold / warm = {cold / warm:.1f}")
    if args.repo is None:
        return
    for name, cmd in (("dvc status", ["dvc", "status", "-q"]), ("dvc repro, nothing changed", ["dvc", "repro"])):
        times = [timed(cmd, args.repo, env) for _ in range(args.repeats)]
        verdict = "" if name == "dvc status" else f"  target <= 5 s: {'PASS' if max(times) <= 5 else 'MISS'}"
        print(f"{name:28s} {statistics.median(times):6.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}){verdict}")


if __name__ == "__main__":
    main()
