"""The code each DVC stage runs, for exact ``deps`` in dvc.yaml (issue 14 §2).

A stage runs its script and every project module the script can import, at module level or inside a function
(lazy imports are followed too, so an inference function imported only when a VQA model is scored still counts).
:func:`stage_code` walks that closure statically with ``ast``, adds the package data files that modules read
(``DATA_FILES``), and lists a folder instead of its files when the stage uses all of it.

    python -m amad_suite.stage_deps            # the code deps of every stage script
    python -m amad_suite.stage_deps --check    # exit 1 when dvc.yaml's code deps differ (tests run the same check)
    python -m amad_suite.stage_deps --write    # rewrite the code entries of dvc.yaml's deps lists in place
"""

from __future__ import annotations

import argparse
import ast
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


def dvc_code_deps(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, tuple[str, list[str]]]:
    """stage name -> (its script, the code entries of its deps), for every stage of dvc.yaml."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = next(w for w in body["cmd"].split() if w.startswith("stages/"))
        code = [d for d in body.get("deps", []) if isinstance(d, str) and d.startswith(CODE_PREFIXES)]
        out[name] = (script, code)
    return out


def check(dvc_yaml: Path = ROOT / "dvc.yaml") -> list[str]:
    """One line per stage whose code deps differ from what its script runs (empty when all agree)."""
    problems = []
    for name, (script, code) in dvc_code_deps(dvc_yaml).items():
        want = stage_code(script)
        if sorted(code) != want:
            missing, extra = sorted(set(want) - set(code)), sorted(set(code) - set(want))
            problems.append(f"{name}: missing {missing}, not run {extra}")
    return problems


def write(dvc_yaml: Path = ROOT / "dvc.yaml") -> int:
    """Rewrite, in place, the code entries of every literal ``deps:`` list with what its stage's script runs
    (comments, anchors and the other entries stay as they are); returns the number of lists rewritten.

    A list belongs to the script named by the closest ``stages/<name>.py`` above it (each stage's command comes
    before its deps)."""
    lines = dvc_yaml.read_text().splitlines(keepends=True)
    out, script, rewritten, i = [], None, 0, 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        found = [w for w in line.replace("*", " ").split() if w.startswith("stages/") and w.endswith(".py")]
        script = found[0] if found else script
        i += 1
        if line.strip() == "deps:" or line.strip().startswith("deps: &"):
            start = i
            while (
                i < len(lines) and lines[i].strip().startswith("- ") and lines[i].strip()[2:].startswith(CODE_PREFIXES)
            ):
                i += 1
            if i > start and script is not None:
                pad = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
                out.extend(f"{pad}- {dep}\n" for dep in stage_code(script))
                rewritten += 1
    dvc_yaml.write_text("".join(out))
    return rewritten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with dvc.yaml")
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    args = parser.parse_args()
    if args.write:
        print(f"rewrote {write()} deps lists of dvc.yaml")
        return
    if args.check:
        problems = check()
        print("\n".join(problems) or "dvc.yaml code deps match what every stage runs")
        sys.exit(1 if problems else 0)
    for script in sorted((ROOT / "stages").glob("*.py")):
        print(f"{script.relative_to(ROOT)}:")
        for dep in stage_code(script.relative_to(ROOT)):
            print(f"  - {dep}")


if __name__ == "__main__":
    main()
