"""Paper scale: one h5 per task whose groups are external links into the official VL-T5/LXMERT obj36 files.

The official COCO features are split by image set (train2014_obj36.h5, val2014_obj36.h5); a FeatureStore reads one
file, so this writes a small index file of h5 external links (no feature is copied). Usage:

    python -m amad.data.link_features OUT.h5 OFFICIAL.h5 [OFFICIAL.h5 ...]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import h5py

from amad.errors import DataError


def link_features(out_path: str | Path, official: Sequence[str | Path]) -> int:
    """Write ``out_path`` linking every image group of the ``official`` files; returns the number of images."""
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    count = 0
    with h5py.File(tmp, "w") as out:
        for src in official:
            src = Path(src)
            if not src.is_file():
                raise DataError(f"official feature file {src} not found: place it there (see the manifest)")
            try:
                with h5py.File(src, "r") as f:
                    keys = list(f.keys())
            except OSError:
                raise DataError(f"official feature file {src} is corrupt: delete it and download it again") from None
            for key in keys:
                if key not in out:
                    out[key] = h5py.ExternalLink(str(src.resolve()), f"/{key}")
                    count += 1
    os.replace(tmp, out_path)
    return count


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("official", nargs="+")
    args = parser.parse_args(argv)
    from amad.cli import run_stage

    run_stage(lambda: print(f"linked {link_features(args.out, args.official)} images into {args.out}"))


if __name__ == "__main__":
    main()
