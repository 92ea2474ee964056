"""The download and extract_features stages."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from amad.data.mirror import resolve_mirror
from amad.errors import DataError
from amad.pipeline import params as P
from amad.pipeline.io import atomic_dir
from amad.pipeline.layout import DataLayout
from amad.training.run_info import collect, write_json

log = logging.getLogger(__name__)


def _mini_multi30k_source(data_cfg: P.DataConfig) -> Path:
    """The folder holding task1/ of the real Multi30K: data.multi30k, else the mirror (or its multi30k/)."""
    candidates = []
    if data_cfg.multi30k:
        candidates.append(Path(data_cfg.multi30k))
    mirror = resolve_mirror(data_cfg.mirror)
    if mirror is not None:
        candidates += [mirror, mirror / "multi30k"]
    for folder in candidates:
        if (folder / "task1" / "raw").is_dir():
            return folder
    tried = ", ".join(str(c) for c in candidates) or "nothing (data.multi30k and data.mirror are empty)"
    raise DataError(
        f"Multi30K task 1 text not found (tried {tried}): set data.multi30k or data.mirror (or AMAD_DATA_MIRROR) "
        "to a folder containing task1/raw/*.gz"
    )


def _mini_corpus(layout: DataLayout) -> list[str]:
    """Training texts of the three mini tasks, for the tokenizer."""
    from amad.pipeline.setups import train_examples

    texts: list[str] = []
    for task in ("vqa", "caption", "translation"):
        for ex in train_examples(layout, task, "mini"):
            texts.append(ex.source)
            texts.extend(ex.references if task != "vqa" else [ex.target])
    return [t for t in texts if t]


def run_download(params: dict, data_root: str, progress: bool = True) -> None:
    """Mini: build the offline data sets and train the tokenizer. Paper: fetch the manifest's files."""
    P.validate_all(params)
    data_cfg = P.data(params)
    layout = DataLayout(Path(data_root), data_cfg.scale)
    if data_cfg.scale == "mini":
        from amad.data.mini_captions import build_mini_captions
        from amad.data.mini_multi30k import build_mini_multi30k
        from amad.data.mini_vqa import build_mini_vqa
        from amad.data.tokenizer import train_tokenizer

        multi30k = _mini_multi30k_source(data_cfg)  # a missing copy fails here, before anything is written
        summary = {
            "vqa": build_mini_vqa(layout.raw("vqa"), seed=data_cfg.seed, **_sizes(data_cfg.vqa)),
            "caption": build_mini_captions(layout.raw("caption"), seed=data_cfg.seed, **_sizes(data_cfg.caption)),
            "translation": build_mini_multi30k(
                multi30k,
                layout.raw("translation"),
                max_words=data_cfg.translation.max_words,
                **_sizes(data_cfg.translation),
            ),
        }
        if data_cfg.tokenizer.source:
            _copy_tokenizer(data_cfg.tokenizer.source, layout)
        else:
            corpus = _mini_corpus(layout)
            atomic_dir(
                layout.tokenizer,
                lambda tmp: train_tokenizer(corpus, data_cfg.tokenizer.vocab_size, tmp / "tokenizer.json"),
            )
        summary["vocabulary"] = {"vocab_size": data_cfg.tokenizer.vocab_size}
    else:
        from amad.data.download import fetch_all
        from amad.data.manifest import load_manifest

        manifest = load_manifest()
        tasks = sorted({setup.partition("-")[2] for setup in P.suite(params).all_setups})
        entries = [e for task in tasks for e in manifest.for_task(task)]
        unique = list({e.path: e for e in entries}.values())
        fetch_all(unique, layout.root / "raw", mirror=data_cfg.mirror or None, progress=progress)
        if not data_cfg.tokenizer.source:
            raise DataError("data.tokenizer.source is empty: at paper scale set it to a t5-base folder or hub id")
        _copy_tokenizer(data_cfg.tokenizer.source, layout)
        summary = {"files": [e.path for e in unique], "tasks": tasks}
    write_json(layout.root / "download_summary.json", collect({"data": params["data"]}, data_cfg.seed, summary=summary))


def _sizes(size: P.TaskSize) -> dict:
    return {"n_train": size.n_train, "n_val": size.n_val, "n_test": size.n_test}


def _copy_tokenizer(source: str, layout: DataLayout) -> None:
    from amad.data.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(source)
    atomic_dir(layout.tokenizer, lambda tmp: tokenizer.save_pretrained(str(tmp)))


def _image_keys(layout: DataLayout, task: str) -> list[str]:
    from amad.pipeline.setups import examples

    keys: set[str] = set()
    for split in ("train", "val", "test"):
        keys.update(ex.image_id for ex in examples(layout, task, split, train=False, scale=layout.scale) if ex.image_id)
    return sorted(keys)


def run_extract(params: dict, task: str, data_root: str, progress: bool = True) -> None:
    """Mini: weight-free grid features (VL-T5) and the BLIP image cache from the task's images."""
    P.validate_all(params)
    data_cfg, feat_cfg = P.data(params), P.features(params)
    layout = DataLayout(Path(data_root), data_cfg.scale)
    if data_cfg.scale == "paper":
        _extract_paper(task, layout, feat_cfg, progress)
        return
    from amad.data.features import extract_grid_features
    from amad.data.images import cache_images

    keys = _image_keys(layout, task)
    image_dir = layout.raw(task) / "images"
    feats = extract_grid_features(
        image_dir, keys, layout.features(task), grid=feat_cfg.grid, batch_size=feat_cfg.batch_size, progress=progress
    )
    images = cache_images(
        image_dir,
        keys,
        layout.images(task),
        image_size=feat_cfg.image_size,
        batch_size=feat_cfg.batch_size,
        progress=progress,
    )
    log.info("extracted %s: %s", task, json.dumps({"features": feats, "images": images}, default=str)[:300])


PAPER_FEATURES = {
    "vqa": ["features/coco/train2014_obj36.h5", "features/coco/val2014_obj36.h5"],
    "caption": ["features/coco/train2014_obj36.h5", "features/coco/val2014_obj36.h5"],
}


def _extract_paper(task: str, layout: DataLayout, feat_cfg: P.FeaturesConfig, progress: bool) -> None:
    """Paper: link the official obj36 features; cache BLIP images from data/raw/coco/images when present."""
    from amad.data.images import cache_images
    from amad.data.link_features import link_features

    layout.features(task).parent.mkdir(parents=True, exist_ok=True)
    link_features(layout.features(task), [layout.root / "raw" / p for p in PAPER_FEATURES[task]])
    image_dir = layout.root / "raw" / "coco" / "images"
    if not image_dir.is_dir():
        raise DataError(
            f"BLIP needs the COCO 2014 images: place train2014/ and val2014/ images flat in {image_dir} "
            "(file stem = image key, e.g. COCO_val2014_000000391895.jpg), then rerun"
        )
    cache_images(
        image_dir,
        _image_keys(layout, task),
        layout.images(task),
        image_size=feat_cfg.image_size,
        batch_size=feat_cfg.batch_size,
        progress=progress,
    )
