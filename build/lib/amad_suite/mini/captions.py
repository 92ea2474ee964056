"""Mini captioning set: rendered scenes (:mod:`amad_suite.mini.scenes`) in COCO Karpathy's ``dataset_coco.json``
format.

Image ids are 100000 + a running index over train, val, test (disjoint from the mini VQA ids); the image key is
``str(image_id)`` and the file ``<out_dir>/images/<key>.png``. Every image has 5 reference captions.
"""

from __future__ import annotations

import random
from pathlib import Path

from amad.errors import ConfigError
from amad_suite.mini.scenes import describe_scene, render_scene, sample_scene
from amad_suite.mini.vqa import staged_dir, write_json

__all__ = ["CAPTIONS_PER_IMAGE", "build_mini_captions"]

IMAGE_ID_BASE = 100000
CAPTIONS_PER_IMAGE = 5


def build_mini_captions(
    out_dir: str | Path, *, n_train: int, n_val: int, n_test: int, seed: int = 0, image_size: int = 64
) -> dict:
    """Render ``n_train + n_val + n_test`` scenes and write ``out_dir/dataset_coco.json`` and ``out_dir/images/``.

    Each split draws from its own seeded stream, so e.g. changing n_test does not change the train images.
    The folder is built aside and swapped in atomically.

    Returns:
        {"train"|"val"|"test": {"images": n, "captions": 5n}, "vocabulary": sorted caption words}.
    """
    if min(n_train, n_val, n_test) < 0 or image_size < 16:
        raise ConfigError(
            f"mini captions need n_train/n_val/n_test >= 0 and image_size >= 16 (got {n_train}, {n_val}, {n_test}, "
            f"{image_size}): fix the params"
        )
    images: list[dict] = []
    summary: dict = {}
    vocabulary: set[str] = set()
    with staged_dir(out_dir) as root:
        (root / "images").mkdir()
        for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
            rng = random.Random(f"mini-captions-{seed}-{split}")
            for _ in range(count):
                scene = sample_scene(rng, image_size)
                captions = describe_scene(scene, rng, CAPTIONS_PER_IMAGE)
                imgid = len(images)
                image_id = IMAGE_ID_BASE + imgid
                render_scene(scene).save(root / "images" / f"{image_id}.png")
                first_sentid = imgid * CAPTIONS_PER_IMAGE
                sentences = [
                    {"raw": raw, "tokens": raw.lower().split(), "imgid": imgid, "sentid": first_sentid + k}
                    for k, raw in enumerate(captions)
                ]
                vocabulary.update(token for sentence in sentences for token in sentence["tokens"])
                images.append(
                    {
                        "filepath": "images",
                        "filename": f"{image_id}.png",
                        "imgid": imgid,
                        "cocoid": image_id,
                        "split": split,
                        "sentences": sentences,
                        "sentids": [s["sentid"] for s in sentences],
                    }
                )
            summary[split] = {"images": count, "captions": count * CAPTIONS_PER_IMAGE}
        write_json(root / "dataset_coco.json", {"dataset": "coco", "images": images})
    summary["vocabulary"] = sorted(vocabulary)
    return summary
