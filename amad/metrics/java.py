"""Java and pycocoevalcap checks shared by the caption metrics (PTBTokenizer, METEOR and SPICE run on Java)."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from amad.errors import AmadError

JAVA_INSTALL_HINT = "install Java with `apt-get install openjdk-17-jre-headless`"


class MetricToolError(AmadError, RuntimeError):
    """An external metric tool (Java, PTBTokenizer, METEOR, SPICE) is missing, failed or timed out."""


def require_java() -> str:
    """Return the path of ``java``; raise MetricToolError with the install command when it is missing."""
    java = shutil.which("java")
    if java is None:
        raise MetricToolError(f"`java` was not found on PATH (caption metrics run Java tools): {JAVA_INSTALL_HINT}")
    return java


@functools.lru_cache(maxsize=1)
def java_major_version() -> int | None:
    """Major version of the ``java`` on PATH (8, 11, 17, ...), or None when it cannot be determined."""
    try:
        out = subprocess.run(
            [require_java(), "-version"], capture_output=True, text=True, timeout=60, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" -> 8


def pycocoevalcap_dir(*parts: str) -> Path:
    """Folder inside the installed pycocoevalcap package (a namespace package: it has no ``__init__``)."""
    import pycocoevalcap

    return Path(next(iter(pycocoevalcap.__path__)), *parts)


def require_writable(folder: Path, tool: str) -> None:
    """Raise MetricToolError when ``tool`` cannot write its temporary files into ``folder``."""
    if not os.access(folder, os.W_OK):
        raise MetricToolError(
            f"{tool} writes temporary files into {folder}, which is not writable: "
            "make that folder writable or install pycocoevalcap into a virtualenv you own"
        )
