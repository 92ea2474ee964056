"""Switch the active preset: ``python -m amad_suite.preset paper`` rewrites params.yaml from configs/presets/paper.yaml.

``python -m amad_suite.preset`` with no argument prints the active preset and the available ones.

A preset is either a whole file (``configs/presets/<name>.yaml``, copied as it is) or an overlay
(``configs/presets/<name>.overlay.yaml``) that changes a few keys of another preset and nothing else, so the two
cannot drift apart. An overlay file holds ``base: <preset>`` and ``set: {<the changed keys>}``; applying it
(:func:`apply_overlay`) merges ``set`` into the base preset key by key: mappings merge, any other value replaces
the base's. A model ``size`` given as a mapping where the base names a registered size (e.g. ``vlt5-base``) is
merged into that size's dict, so the overlay states only the dimensions it changes and keeps the rest (dropout,
label smoothing, the caption prompt). The written params.yaml says which files it was made from.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from amad import atomic
from amad.errors import ConfigError
from amad_suite.cli import OneLineParser
from amad_suite.config import PRESETS, check_preset, load_params
from amad_suite.pipeline.params import validate_all

PRESET_DIR = Path("configs/presets")
OVERLAY_SUFFIX = ".overlay.yaml"


def apply_overlay(base: Mapping[str, Any], changes: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """``base`` with ``changes`` merged in (see the module docstring); neither argument is modified."""
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        dotted = f"{where}.{key}" if where else str(key)
        current = out.get(key)
        if key == "size" and isinstance(current, str) and isinstance(value, Mapping):
            from amad.models.sizes import resolve_size

            current = resolve_size(current)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = apply_overlay(current, value, dotted)
        elif isinstance(value, Mapping) and current is not None:
            raise ConfigError(f"overlay key {dotted} is a mapping but the base preset's value is {current!r}: fix it")
        else:
            out[key] = copy.deepcopy(value)
    return out


def compose(name: str, preset_dir: Path = PRESET_DIR) -> tuple[dict[str, Any], str]:
    """(params, text of params.yaml) of preset ``name``: its own file, or its overlay applied to its base."""
    check_preset(name)
    whole, overlay = preset_dir / f"{name}.yaml", preset_dir / f"{name}{OVERLAY_SUFFIX}"
    if whole.is_file():
        return load_params(whole), whole.read_text()
    spec = load_params(overlay)
    unknown = sorted(set(spec) - {"base", "set"})
    if unknown or not isinstance(spec.get("set"), Mapping) or spec.get("base") not in PRESETS:
        raise ConfigError(f"{overlay} must hold only 'base: <preset>' and 'set: {{...}}' (got keys {sorted(spec)})")
    base_path = preset_dir / f"{spec['base']}.yaml"
    params = apply_overlay(load_params(base_path), spec["set"])
    header = (
        f"# amad pipeline parameters ({name} preset): {base_path} with {overlay} applied, written by\n"
        f"# `python -m amad_suite.preset {name}`. Edit those two files, not this one.\n"
    )
    return params, header + yaml.safe_dump(params, sort_keys=False, allow_unicode=True, width=120)


def use(name: str, params_path: Path = Path("params.yaml"), preset_dir: Path = PRESET_DIR) -> Path:
    """Write preset ``name`` to params.yaml after validating it; returns the params path."""
    params, text = compose(name, preset_dir)
    validate_all(params)
    atomic.write_text(params_path, text)
    return params_path


def main() -> None:
    parser = OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help=f"one of {', '.join(PRESETS)}")
    args = parser.parse_args()
    if args.name is None:
        active = load_params(Path("params.yaml")).get("preset")
        print(f"active preset: {active} (available: {', '.join(PRESETS)})")
        return
    use(args.name)
    print(f"params.yaml now holds the {args.name!r} preset; run `dvc repro`")


if __name__ == "__main__":
    from amad_suite.cli import run_stage

    run_stage(main)
