"""Switch the active preset: ``python -m amad_suite.preset paper`` rewrites params.yaml from configs/presets/paper.yaml.

``python -m amad_suite.preset`` with no argument prints the active preset and the available ones.
"""

from __future__ import annotations

from pathlib import Path

from amad import atomic
from amad_suite.cli import OneLineParser
from amad_suite.config import PRESETS, check_preset, load_params
from amad_suite.pipeline.params import validate_all

PRESET_DIR = Path("configs/presets")


def use(name: str, params_path: Path = Path("params.yaml"), preset_dir: Path = PRESET_DIR) -> Path:
    """Copy the preset over params.yaml after validating it; returns the params path."""
    check_preset(name)
    source = preset_dir / f"{name}.yaml"
    validate_all(load_params(source))
    atomic.write_text(params_path, source.read_text())
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
