"""The code each DVC stage runs, for exact dependencies in dvc.yaml (issue 14 §2).

A stage runs its script and every project module the script can import, at module level or inside a function
(lazy imports are followed too, so an inference function imported only when a VQA model is scored still counts).
:func:`stage_code` walks that closure statically with ``ast`` and adds the package data files that modules read
(``DATA_FILES``).

dvc.yaml's ``code`` stage writes one checksum list per stage script, ``results/code/<script>.sha256`` (the format of
``sha256sum``: ``<hash>  <path>`` per file of the closure), and every other stage depends on its script's list
instead of on each source path. A stage reruns exactly when a file it runs changed, as with per-file deps, while
dvc.lock, which DVC parses and rewrites after every stage, stays a few hundred lines instead of ten thousand.

    python -m amad_suite.stage_deps                        # the code each stage script runs
    python -m amad_suite.stage_deps --digest results/code  # write the checksum lists (the code stage)
    python -m amad_suite.stage_deps --check                # exit 1 when dvc.yaml's stages do not use their lists
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("amad", "amad_suite")
# Files that modules read at run time, next to them in the package.
DATA_FILES: dict[str, tuple[str, ...]] = {
    "amad/losses/cpu_kernel.py": ("amad/losses/csrc",),
    "amad_suite/fetch/manifest.py": ("amad_suite/fetch/manifests",),
}
CODE_PREFIXES = ("stages/", *(f"{p}/" for p in PACKAGES), *PACKAGES)


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The file of project module ``name`` (a package's ``__init__.py``), or None for other modules."""
    if name.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports anywhere in its body (``from a import b`` gives ``a`` and
    ``a.b``, as ``b`` may be a submodule)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def closure(script: Path, root: Path = ROOT) -> set[Path]:
    """The script and every project file it can import, parents' ``__init__.py`` included."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_modules(path):
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
                found = module_file(".".join(parts[:i]), root)
                if found is not None and found not in seen:
                    todo.append(found)
    return seen


def _all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def compress(files: set[Path], root: Path = ROOT) -> list[str]:
    """Relative paths, a folder standing for its files wherever every file under it is in ``files``."""
    out: set[Path] = set()
    for path in files:
        best = path
        for parent in path.parents:
            if parent == root or root not in parent.parents:
                break
            if _all_files(parent) <= files:
                best = parent
        out.add(best)
    return sorted(p.relative_to(root).as_posix() for p in out)


def stage_code(script: str | Path, root: Path = ROOT) -> list[str]:
    """The code deps of a stage script: the script, its import closure and the data files those modules read."""
    files = closure(root / script, root)
    for rel in [f.relative_to(root).as_posix() for f in files]:
        for extra in DATA_FILES.get(rel, ()):
            files |= _all_files(root / extra)
    return compress(files, root)


DIGEST_DIR = "results/code"


def digest_path(script: str | Path) -> str:
    """The checksum list a stage running ``script`` depends on."""
    return f"{DIGEST_DIR}/{Path(script).stem}.sha256"


def stage_files(script: str | Path, root: Path = ROOT) -> list[Path]:
    """Every file the stage running ``script`` executes or reads as code, sorted."""
    files: set[Path] = set()
    for rel in stage_code(script, root):
        path = root / rel
        files |= _all_files(path) if path.is_dir() else {path}
    return sorted(files)


def digest_text(script: str | Path, root: Path = ROOT) -> str:
    """``sha256sum`` output for the stage's files (relative paths): verifiable with ``sha256sum -c``."""
    lines = []
    for path in stage_files(script, root):
        lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(root).as_posix()}\n")
    return "".join(lines)


def write_digests(out_dir: str | Path, root: Path = ROOT) -> list[Path]:
    """Write ``<out_dir>/<script>.sha256`` for every stage script; returns the files written."""
    from amad.atomic import write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for script in sorted((root / "stages").glob("*.py")):
        written.append(write_text(out / f"{script.stem}.sha256", digest_text(script.relative_to(root), root)))
    return written


def dvc_code_deps(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, tuple[str, list[str]]]:
    """stage name -> (its script, its deps that are code or code digests), for every stage that runs a script."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = next((w for w in body["cmd"].split() if w.startswith("stages/")), None)
        if script is None:
            continue
        code = [
            d
            for d in body.get("deps", [])
            if isinstance(d, str) and (d.startswith(CODE_PREFIXES) or d.startswith(DIGEST_DIR))
        ]
        out[name] = (script, code)
    return out


def check(dvc_yaml: Path = ROOT / "dvc.yaml") -> list[str]:
    """One line per problem: a stage that does not depend on exactly its script's checksum list, or a code stage
    that does not write the lists from all the code."""
    problems = []
    for name, (script, code) in dvc_code_deps(dvc_yaml).items():
        if code != [digest_path(script)]:
            problems.append(f"{name}: its code deps must be [{digest_path(script)}] alone, got {code}")
    stage = yaml.safe_load(dvc_yaml.read_text())["stages"].get("code")
    if stage is None:
        problems.append("no code stage: add one that runs python -m amad_suite.stage_deps --digest results/code")
    else:
        if f"--digest {DIGEST_DIR}" not in stage["cmd"]:
            problems.append(f"the code stage must run python -m amad_suite.stage_deps --digest {DIGEST_DIR}")
        if sorted(stage.get("deps", [])) != sorted([*PACKAGES, "stages"]):
            problems.append(f"the code stage must depend on {', '.join([*PACKAGES, 'stages'])}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="check dvc.yaml's code deps")
    parser.add_argument("--digest", metavar="DIR", help="write one checksum list per stage script into DIR")
    args = parser.parse_args()
    if args.digest:
        root = Path.cwd()  # the DVC repository the code stage runs in
        for path in write_digests(args.digest, root):
            print(f"{path}: {len(path.read_text().splitlines())} files")
        return
    if args.check:
        problems = check()
        print("\n".join(problems) or "every stage depends on its script's checksum list")
        sys.exit(1 if problems else 0)
    for script in sorted((ROOT / "stages").glob("*.py")):
        print(f"{script.relative_to(ROOT)}:")
        for dep in stage_code(script.relative_to(ROOT)):
            print(f"  - {dep}")


if __name__ == "__main__":
    main()
