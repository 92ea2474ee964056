"""The rehearsal harness: a throwaway repository on the rehearsal preset, the miniature world on loopback, two
``dvc repro`` runs and the checks that matter for the real paper run.

Checks after the first run: every stage ran; the Drive files came through the interstitial; the dropped
``Epoch30.pth`` transfer was resumed (a Range request); the corrupt Multi30K file was refused and fetched again
(the file in place is the miniature, byte for byte); the COCO features came from LXMERT's tsv fallback; every
teacher, student and evaluation exists; the report was written. Then a file is placed by hand under data/raw and
``dvc repro`` runs again: nothing under data/raw may disappear or change, and only the data stages (download,
extract_features, which depend on data/raw itself) may run again.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amad.errors import DataError
from amad_suite.config import load_params
from amad_suite.fetch.routing import PREFIX_ENV
from amad_suite.rehearsal.hub import FIXTURES, build_hub
from amad_suite.rehearsal.server import DRIVE_FILES_HOST, LoopbackServer
from amad_suite.rehearsal.world import CORRUPT_ONCE, CUT_ONCE, World, build_world, write_manifest
from amad_suite.testing import make_repo, pipeline_env, run

PLACED = "data/raw/placed_by_hand/README.txt"
DATA_STAGES = ("download", "extract_features@")  # may run again after a file is placed under data/raw
REPRO_TIMEOUT_S = 1800


@dataclass
class Outcome:
    """What one rehearsal did: stages run by each repro, their wall times, and the loopback requests."""

    repo: Path
    first: list[str] = field(default_factory=list)
    second: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    requests: list[tuple[str, str, dict, str | None, str]] = field(default_factory=list)


def _ran(stdout: str) -> list[str]:
    return [line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")]


def _snapshot(raw: Path) -> dict[str, str]:
    return {p.relative_to(raw).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.rglob("*")
            if p.is_file()}  # fmt: skip


def prepare(workdir: Path, seed: int = 0) -> tuple[Path, World]:
    """The throwaway repository on the rehearsal preset, with the manifest and the tiny hub folders in place."""
    if not FIXTURES.is_dir():
        raise DataError(f"{FIXTURES} not found: run the rehearsal from a git checkout of amad")
    repo = make_repo(workdir / "amad", "paper")
    env = pipeline_env()
    run([sys.executable, "-m", "amad_suite.preset", "rehearsal"], repo, env)
    run(["git", "commit", "-qam", "rehearsal preset"], repo, env)
    params = load_params(repo / "params.yaml")
    world = build_world(params, seed)
    write_manifest(world, repo / params["data"]["manifest"])
    build_hub(repo / Path(params["data"]["tokenizer"]["source"]).parent, params, seed)
    return repo, world


def check_downloads(repo: Path, world: World, requests: list) -> None:
    """The loopback scenario happened as designed, and what is in place is the miniature."""
    sent = [(host, path, q.get("id"), rng, what) for host, path, q, rng, what in requests]
    epoch30 = [r for r in sent if r[0] == DRIVE_FILES_HOST and r[2] in world.site.drive_files and
               world.site.drive_files[r[2]][0] == "Epoch30.pth"]  # fmt: skip
    what = [r[4] for r in epoch30]
    if what[:2] != ["interstitial", "cut"] or "file" not in what or not any(r[3] for r in epoch30 if r[4] == "file"):
        raise AssertionError(f"Epoch30.pth was not confirmed, cut and resumed with a Range request: {epoch30}")
    corrupt = [r[4] for r in sent if r[1].endswith("/" + CORRUPT_ONCE.removeprefix("multi30k/"))]
    if corrupt != ["corrupt", "file"]:
        raise AssertionError(f"{CORRUPT_ONCE} was not refused once and fetched again: {corrupt}")
    raw = repo / "data" / "raw"
    for rel in (CUT_ONCE, CORRUPT_ONCE):
        if (raw / rel).read_bytes() != world.files[rel]:
            raise AssertionError(f"data/raw/{rel} is not the file the server meant to send")
    for subset in ("train2014", "val2014"):
        if (
            not (raw / "features" / "coco" / f"{subset}_obj36.h5").is_file()
            or (raw / "features" / "coco" / f"{subset}_obj36.zip").exists()
        ):
            raise AssertionError(f"the LXMERT fallback did not produce features/coco/{subset}_obj36.h5")
    if not any(what == "listing" for *_, what in sent):
        raise AssertionError("no Google Drive folder listing was requested")


def check_results(repo: Path, params: dict[str, Any]) -> None:
    """Every teacher, student and evaluation of the preset exists; the report was written."""
    suite = params["suite"]
    groups = [(suite["setups"], suite["methods"], suite["seeds"])]
    groups.append((suite["budget_setups"], suite.get("budget_methods", suite["methods"]), suite["budget_seeds"]))
    missing = []
    for setups, methods, seeds in groups:
        for setup in setups:
            if not (repo / "results" / "eval" / f"{setup}-teacher" / "teacher.json").is_file():
                missing.append(f"{setup} teacher evaluation")
            for method in methods:
                found = list((repo / "results" / "eval").glob(f"{setup}-{method}*/s*.json"))
                if len(found) < len(seeds):
                    missing.append(f"{setup} {method}: {len(found)} of {len(seeds)} evaluated seeds")
    if not (repo / "reports" / "summary.json").is_file():
        missing.append("reports/summary.json")
    if missing:
        raise AssertionError(f"the rehearsal is missing {missing}")
    blip = json.loads((repo / "results" / "teachers" / "blip-vqa" / "run_info.json").read_text())["load_report"]
    if not blip["source"].endswith("model_base_capfilt_large.pth") or blip.get("saw_test_split"):
        raise AssertionError(f"the BLIP VQA teacher did not start from the pre-training checkpoint: {blip}")


def rehearse(workdir: Path, seed: int = 0, log=print) -> Outcome:
    """Run the whole rehearsal in ``workdir`` (see the module docstring); raises AssertionError on a failed check."""
    started = time.perf_counter()
    repo, world = prepare(workdir, seed)
    outcome = Outcome(repo=repo, seconds={"prepare": time.perf_counter() - started})
    params = load_params(repo / "params.yaml")
    with LoopbackServer(world.site) as server:
        env = pipeline_env() | {PREFIX_ENV: server.prefix}
        log(f"rehearsal: dvc repro in {repo} (downloads from {server.prefix})")
        tick = time.perf_counter()
        outcome.first = _ran(run(["dvc", "repro"], repo, env, timeout=REPRO_TIMEOUT_S).stdout)
        outcome.seconds["first repro"] = time.perf_counter() - tick
        outcome.requests = list(server.site.requests)
        check_downloads(repo, world, outcome.requests)
        check_results(repo, params)
        before = _snapshot(repo / "data" / "raw")
        (repo / PLACED).parent.mkdir(parents=True, exist_ok=True)
        (repo / PLACED).write_text("placed by hand after the first run; dvc repro must keep it\n")
        tick = time.perf_counter()
        outcome.second = _ran(run(["dvc", "repro"], repo, env, timeout=REPRO_TIMEOUT_S).stdout)
        outcome.seconds["second repro"] = time.perf_counter() - tick
    after = _snapshot(repo / "data" / "raw")
    changed = sorted(rel for rel, digest in before.items() if after.get(rel) != digest)
    if changed or PLACED.removeprefix("data/raw/") not in after:
        raise AssertionError(f"the second dvc repro deleted or changed files under data/raw: {changed[:10]}")
    again = [stage for stage in outcome.second if not stage.startswith(DATA_STAGES)]
    if again:
        raise AssertionError(f"placing a file under data/raw re-ran more than the data stages: {again}")
    outcome.seconds["total"] = time.perf_counter() - started
    return outcome
