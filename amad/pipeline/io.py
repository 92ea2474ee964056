"""Atomic writes for stage outputs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def remove_leftovers(path: str | Path) -> list[Path]:
    """Delete the temporary siblings (``.<name>.tmp-<pid>``, ``.<name>.old-<pid>``) that a killed write of
    ``path`` left behind; returns what was removed."""
    path = Path(path)
    removed = []
    for pattern in (f".{path.name}.tmp-*", f".{path.name}.old-*"):
        for leftover in path.parent.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


def atomic_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)`` then swap the finished folder into ``path``; leftovers of killed writes go first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


@contextmanager
def keep_finished_history(out: str | Path, finished_marker: str) -> Iterator[None]:
    """Run a (re)training into ``out`` without losing a finished run's DVCLive history if the new run fails.

    A fresh run restarts DVCLive, which empties ``out/dvclive``; when ``out`` already holds a finished model
    (``out/<finished_marker>`` exists) that history is copied aside first and put back if the run raises, so a
    finished run stays whole: its model, run_info.json and history still belong together.
    """
    out = Path(out)
    live = out / "dvclive"
    finished = (out / finished_marker).exists() and live.is_dir()
    backup = out / f".dvclive.finished-{os.getpid()}"
    if finished:
        shutil.rmtree(backup, ignore_errors=True)
        shutil.copytree(live, backup)
    try:
        yield
    except BaseException:
        if finished:
            shutil.rmtree(live, ignore_errors=True)
            os.replace(backup, live)
        raise
    if finished:
        shutil.rmtree(backup, ignore_errors=True)


def save_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
