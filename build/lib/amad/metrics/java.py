"""Java and pycocoevalcap checks shared by the caption metrics (PTBTokenizer, METEOR and SPICE run on Java)."""

from __future__ import annotations

import os
import shutil
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
