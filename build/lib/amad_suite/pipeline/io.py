"""Stage outputs: npz files and the history of a finished run (atomic writes: amad.atomic)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from amad.atomic import atomic_path


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
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
