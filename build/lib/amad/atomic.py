"""Atomic writes: a file or folder appears whole under its name or not at all.

Everything is written to a temporary sibling (``.<name>.tmp-<pid>``) and renamed into place with ``os.replace``
(atomic on one filesystem), so a kill or an error never leaves a half-written output under the real name. A later
write of the same path removes the temporaries a killed writer left behind (:func:`remove_leftovers`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def temporary_sibling(path: str | Path, kind: str = "tmp") -> Path:
    """``<dir>/.<name>.<kind>-<pid><suffix>``: the same folder (so the rename is atomic), the same suffix (so
    writers that choose their format by suffix, such as ``np.savez``, keep it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{kind}-{os.getpid()}{path.suffix}")


def remove_leftovers(path: str | Path) -> list[Path]:
    """Delete the temporary siblings that a killed write of ``path`` left; returns what was removed."""
    path = Path(path)
    removed = []
    for kind in ("tmp", "old"):
        for leftover in path.parent.glob(f".{path.stem}.{kind}-*{path.suffix}"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed.append(leftover)
    return removed


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` to; it is renamed into place when the block ends without an error
    and removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders made); returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any, *, sort_keys: bool = True) -> Path:
    """JSON with two-space indentation and a final newline (values JSON cannot hold are written with ``str``)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")


@contextmanager
def staged_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block ends without an error it replaces ``path`` (an older
    ``path`` goes only once the new one is complete). Leftovers of killed writes go first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp, old = temporary_sibling(path), temporary_sibling(path, "old")
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def atomic_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """``write(tmp_dir)`` inside :func:`staged_dir`: the finished folder replaces ``path``."""
    with staged_dir(path) as tmp:
        write(tmp)
