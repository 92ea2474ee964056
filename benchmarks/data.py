"""Mini data throughput (issue 4): grid feature extraction and the BLIP image cache, in images per second, and
the caption-metric time for 5,000 captions x 5 references (through ``benchmarks/metrics.py``).

Measured side by side in one process on the same rendered mini-caption images:
  * grid features: the in-memory feature computation alone vs the full streamed extraction (decode + h5 write);
  * image cache: our PIL/numpy preprocessing vs transformers' ``BlipImageProcessorPil`` at the same size.

    python benchmarks/data.py [--images 400] [--image-size 384] [--skip-metrics]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from amad.data.visual.features import extract_grid_features, grid_features
from amad.data.visual.h5stream import load_rgb
from amad.data.visual.images import cache_images
from amad_suite.mini.captions import build_mini_captions


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} img/s ({seconds:6.2f} s)"


def bench_visual(n_images: int, image_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_mini_captions(root / "captions", n_train=n_images, n_val=0, n_test=0, seed=0)
        image_dir = root / "captions" / "images"
        keys = sorted(p.stem for p in image_dir.glob("*.png"))
        images = [load_rgb(image_dir, key) for key in keys]

        start = time.perf_counter()
        for image in images:
            grid_features(image)
        compute_s = time.perf_counter() - start
        start = time.perf_counter()
        summary = extract_grid_features(image_dir, keys, root / "grid.h5", progress=False)
        extract_s = time.perf_counter() - start
        print(f"grid features ({n_images} images 64 px, N={summary['num_boxes']}, D={summary['feature_dim']})")
        print(f"  compute only     {_rate(n_images, compute_s)}")
        print(f"  full extraction  {_rate(n_images, extract_s)}   ratio full/compute {extract_s / compute_s:5.2f}")

        from transformers.models.blip import BlipImageProcessorPil

        BlipImageProcessorPil(size={"height": image_size, "width": image_size}).save_pretrained(root / "proc")
        print(f"image cache ({n_images} images -> {image_size} px, uint8)")
        timings = {}
        for name, processor in (("ours (PIL+numpy)", None), ("BlipImageProcessorPil", root / "proc")):
            start = time.perf_counter()
            out = root / f"cache-{len(timings)}.h5"
            cache_images(image_dir, keys, out, image_size=image_size, progress=False, processor=processor)
            timings[name] = time.perf_counter() - start
            print(f"  {name:<21}{_rate(n_images, timings[name])}")
        ours, theirs = timings.values()
        print(f"  ratio ours/transformers {ours / theirs:5.2f}")
        start = time.perf_counter()
        cache_images(image_dir, keys, root / "mini.h5", image_size=64, progress=False)
        print(f"  mini 64 px           {_rate(n_images, time.perf_counter() - start)}")


def bench_metrics() -> None:
    import metrics as caption_benchmark  # benchmarks/metrics.py: scripts run with their own folder on sys.path

    result = caption_benchmark.run(5000, 5, repeats=1)
    ours, direct = result["amad_total_s"], result["direct_total_s"]
    print(f"caption metrics ({result['n_captions']} captions x {result['n_refs']} references, SPICE off)")
    print(f"  amad caption_metrics {ours:7.2f} s   pycocoevalcap direct {direct:7.2f} s   ratio {ours / direct:5.2f}")
    print(f"  METEOR JVM start-up  {result['meteor_start_s']:7.2f} s (once per run)")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--image-size", type=int, default=384)
    parser.add_argument("--skip-metrics", action="store_true")
    args = parser.parse_args(argv)
    bench_visual(args.images, args.image_size)
    if not args.skip_metrics:
        bench_metrics()


if __name__ == "__main__":
    main(sys.argv[1:])
