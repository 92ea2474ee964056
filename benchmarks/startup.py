"""What a stage pays before it does any work, and what `dvc repro` pays when nothing changed (issue 14 §6).

1. Import time of every stage script in a fresh interpreter (the modules it loads at start, torch and
   transformers included), median of ``--repeats`` runs.
   With ``--breakdown``, where the distill stage's import time goes: the cumulative ``-X importtime`` of the
   packages that dominate it (each counted where it is first imported, so nested entries overlap their parents).
2. With ``--repo PATH`` (a finished pipeline, e.g. after `make mini`): `dvc repro` with nothing changed, and
   `dvc status`, median of ``--repeats`` runs. Target: no-op repro <= 5 s on the mini preset.

    python benchmarks/startup.py [--repeats 3] [--breakdown] [--repo .]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='startup_benchmark')"
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


def import_breakdown(script: Path, env: dict[str, str], repeats: int) -> dict[str, float]:
    """Median over ``repeats`` of each BREAKDOWN module's cumulative first-import time (s) when ``script`` starts."""
    runs: dict[str, list[float]] = {name: [] for name in BREAKDOWN}
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", IMPORT, str(script)], cwd=ROOT, env=env, capture_output=True,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=None, help="a repository with a finished pipeline")
    parser.add_argument("--breakdown", action="store_true", help="where the distill stage's import time goes")
    args = parser.parse_args()
    env = dict(os.environ, DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    print(f"stage start-up (import of the script's modules in a fresh python, median of {args.repeats})")
    for script in sorted((ROOT / "stages").glob("*.py")):
        times = [timed([sys.executable, "-c", IMPORT, str(script)], ROOT, env) for _ in range(args.repeats)]
        print(f"  {script.name:20s} {statistics.median(times):6.2f} s")
    if args.breakdown:
        print("distill stage imports, cumulative at first import (nested entries overlap their parents)")
        for name, seconds in import_breakdown(ROOT / "stages" / "distill.py", env, args.repeats).items():
            print(f"  {name:36s} {seconds:6.2f} s")
    if args.repo is None:
        return
    for name, cmd in (("dvc status", ["dvc", "status", "-q"]), ("dvc repro, nothing changed", ["dvc", "repro"])):
        times = [timed(cmd, args.repo, env) for _ in range(args.repeats)]
        verdict = "" if name == "dvc status" else f"  target <= 5 s: {'PASS' if max(times) <= 5 else 'MISS'}"
        print(f"{name:28s} {statistics.median(times):6.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}){verdict}")


if __name__ == "__main__":
    main()
