"""Helpers shared by the format loaders: required files, JSON parsed once per process, format errors, limits."""

from __future__ import annotations

import json
from pathlib import Path

from amad.data.formats.json_cache import load_json_cached
from amad.errors import ConfigError, DataError
from amad.types import Example

CREATED_BY = "the download stage creates it at paper scale, the mini-data stage in the mini suite"



def require_file(path: Path, what: str) -> Path:
    """Return ``path`` if it is a file, else raise DataError naming it and the stage that creates it."""
    if not path.is_file():
        raise DataError(f"missing {what} {path}: {CREATED_BY} (or point the task root at the folder holding it)")
    return path


def read_json(path: Path, what: str) -> object:
    """Parse a JSON file (once per process; callers must not change the result); a missing or corrupt file raises
    DataError."""
    require_file(path, what)
    try:
        return load_json_cached(path)  # parsed once per process: paper-scale annotations are hundreds of MB
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{what} {path} is not valid JSON ({exc}): re-create or re-download it") from None


def format_error(what: str, path: Path, expected: str) -> DataError:
    """A DataError for a file that parses but is not in the expected format."""
    return DataError(f"{what} {path} is not in the {expected} format: re-create or re-download it")


def apply_limit(examples: list[Example], limit: int | None) -> list[Example]:
    """Keep the first ``limit`` examples (all when None)."""
    if limit is None:
        return examples
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigError(f"limit must be a non-negative integer or null, got {limit!r}")
    return examples[:limit]
