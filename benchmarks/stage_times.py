"""Where a finished `dvc repro` spent its time (issue 15 §6), read from the repository it ran in.

DVC runs stages one after another, so a stage's wall time is the gap between the newest output file of the stage
that finished before it and its own newest output file. Stages are grouped by kind (the part of the name before
``@``); training time proper comes from each run's ``run_info.json`` (``train_seconds``), so the remainder of a
training stage is start-up, data loading, calibration, checkpointing and DVC's own bookkeeping.

    python benchmarks/stage_times.py --repo PATH [--start UNIX_TIME]

``--start`` (the time `dvc repro` began, e.g. from ``date +%s``) adds the first stage's own duration.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import yaml


def newest_mtime(path: Path) -> float | None:
    if path.is_file():
        return path.stat().st_mtime
    times = [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
    return max(times) if times else None


def stage_finish_times(repo: Path) -> dict[str, float]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    finished: dict[str, float] = {}
    for name, stage in lock.get("stages", {}).items():
        times = [newest_mtime(repo / out["path"]) for out in stage.get("outs", [])]
        times = [t for t in times if t is not None]
        if times:
            finished[name] = max(times)
    return finished


def train_seconds(repo: Path) -> dict[str, float]:
    """Training loop seconds per stage kind, from every run_info.json under results/."""
    totals: dict[str, float] = defaultdict(float)
    for info in (repo / "results").rglob("run_info.json"):
        seconds = json.loads(info.read_text()).get("train_seconds")
        if seconds is not None:
            kind = "teacher" if "teachers" in info.parts else "distill"
            totals[kind] += float(seconds)
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--start", type=float, default=None, help="unix time dvc repro started")
    args = parser.parse_args()
    finished = sorted(stage_finish_times(args.repo).items(), key=lambda item: item[1])
    if not finished:
        raise SystemExit(f"no finished stage outputs under {args.repo}: run dvc repro there first")
    previous = args.start if args.start is not None else finished[0][1]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for name, end in finished:
        by_kind[name.split("@")[0]].append(max(0.0, end - previous))
        previous = end
    total = sum(sum(v) for v in by_kind.values())
    print(f"{len(finished)} stages, {total / 60:.1f} min between the first and last stage outputs")
    print(f"{'stage kind':<24}{'stages':>7}{'minutes':>9}{'share':>7}{'mean s':>8}")
    for kind, secs in sorted(by_kind.items(), key=lambda item: -sum(item[1])):
        print(f"{kind:<24}{len(secs):>7}{sum(secs) / 60:>9.1f}{sum(secs) / total:>7.0%}{sum(secs) / len(secs):>8.1f}")
    for kind, seconds in sorted(train_seconds(args.repo).items()):
        print(f"training loops ({kind}): {seconds / 60:.1f} min summed over runs (parallel seeds overlap)")


if __name__ == "__main__":
    main()
