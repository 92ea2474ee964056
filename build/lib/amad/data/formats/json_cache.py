"""Parse each JSON file once per process: VQA's annotation files are ~0.5 GB and every split load reads them.

:func:`load_json_cached` keeps the parsed object per (path, size, mtime), so a changed file is parsed again, within
a budget of file bytes per process (env AMAD_JSON_CACHE_MB, default 4096; 0 turns the cache off). Callers must
treat the returned object as read-only: it is shared by every later call. DataLoader workers and DDP ranks are
separate processes with their own caches.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from amad.errors import DataError

DEFAULT_CACHE_MB = 4096.0
_cache: dict[Path, tuple[tuple[int, int], Any]] = {}
_used = [0]


def _budget() -> int:
    raw = os.environ.get("AMAD_JSON_CACHE_MB", "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_CACHE_MB
    except ValueError:
        raise DataError(f"AMAD_JSON_CACHE_MB={raw!r} is not a number: set it to a size in MiB (0 = off)") from None
    return int(max(mb, 0.0) * 2**20)


def load_json_cached(path: str | Path) -> Any:
    """``json.load`` of ``path``, parsed once per process while the file is unchanged.

    Raises:
        OSError / json.JSONDecodeError / UnicodeDecodeError: as ``json.load`` (callers turn them into DataError).
    """
    path = Path(path).resolve()
    stat = path.stat()
    stamp = (stat.st_size, stat.st_mtime_ns)
    hit = _cache.get(path)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if hit is not None:
        _used[0] -= hit[0][0]
        del _cache[path]
    if _used[0] + stat.st_size <= _budget():
        _cache[path] = (stamp, data)
        _used[0] += stat.st_size
    return data


def clear_json_cache() -> None:
    """Forget every parsed file (tests; or to free memory once the loaders are done)."""
    _cache.clear()
    _used[0] = 0
