"""The download and extract_features stages.

Outputs and what survives a rerun (see dvc.yaml): ``data/raw`` (downloads, hand-placed files, the mini data sets)
and ``data/manifest.lock.json`` are persistent, uncached outputs of ``download``: DVC never deletes them, and the
lock sits beside ``data/raw`` so that recording a checksum never changes the folder later stages depend on.
``data/tokenizer`` holds one shared tokenizer (mini) or ``vlt5/`` and ``blip/`` (paper). ``extract_features@<task>``
writes ``data/features/<task>.h5`` and ``extract_features@images`` the BLIP image caches in ``data/images``
(paper: one ``coco.h5`` shared by VQA and captions).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from amad.atomic import atomic_dir
from amad.errors import DataError
from amad_suite.config import check_preset
from amad_suite.fetch.mirror import resolve_mirror
from amad_suite.pipeline import params as P
from amad_suite.pipeline.layout import COCO_IMAGE_TASKS, VISUAL_TASKS, DataLayout, visual_tasks
from amad_suite.training.run_info import collect, write_json

log = logging.getLogger(__name__)
EXTRACT_ITEMS = ("vqa", "caption", "translation", "images")
PAPER_FEATURES = {
    "vqa": ["features/coco/train2014_obj36.h5", "features/coco/val2014_obj36.h5"],
    "caption": ["features/coco/train2014_obj36.h5", "features/coco/val2014_obj36.h5"],
    # VL-T5 mmt_data.py: trainval serves train, val and test_2016_flickr; 2017 and 2018 have their own files.
    "translation": [
        "features/flickr30k/trainval_boxes36.h5",
        "features/flickr30k/test2017_boxes36.h5",
        "features/flickr30k/test2018_boxes36.h5",
    ],
}
BLIP_VOCAB = "hub/bert-base-uncased/vocab.txt"  # the manifest's blip_tokenizer file, under data/raw
COCO_IMAGES = "coco/images"  # where the manifest unpacks the COCO 2014 images, under data/raw


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
    from amad_suite.pipeline.examples import train_examples

    texts: list[str] = []
    for task in ("vqa", "caption", "translation"):
        for ex in train_examples(layout, task):
            texts.append(ex.source)
            texts.extend(ex.references if task != "vqa" else [ex.target])
    return [t for t in texts if t]


def run_download(params: dict, data_root: str, progress: bool = True) -> None:
    """Mini: build the offline data sets and train the tokenizer. Paper: fetch every manifest file (all tasks),
    then write one tokenizer per family (VL-T5: data.tokenizer.source; BLIP: bert-base-uncased + [DEC] + [ENC])."""
    params = P.declared(params, "download")
    check_preset(params["preset"])
    data_cfg = P.data(params)
    layout = DataLayout(Path(data_root), data_cfg.scale)
    read: set[str] | None = None  # paper: the files the pipeline reads (hand-placed extras stay out of the digest)
    if data_cfg.scale == "mini":
        summary = _download_mini(data_cfg, layout)
    else:
        summary, read = _download_paper(data_cfg, layout, progress)
    if not layout.manifest_lock.exists():  # a declared output at both scales; the mini suite downloads nothing
        layout.manifest_lock.parent.mkdir(parents=True, exist_ok=True)
        layout.manifest_lock.write_text('{\n  "files": {}\n}\n', encoding="utf-8")
    record = {k: v for k, v in params["data"].items() if k != "mirror"}  # where files came from changes nothing
    write_json(layout.root / "download_summary.json", collect({"data": record}, data_cfg.seed, summary=summary))
    write_json(layout.raw_digest, raw_digest(layout.raw_root, progress=progress, only=read))


# Files above this size enter the digest by size and modification time instead of content (paper-scale h5 files).
DIGEST_CONTENT_BYTES = 64 << 20


def raw_digest(raw: Path, *, progress: bool = True, only: set[str] | None = None) -> dict:
    """{"files": n, "sha256": ...}: a hash over every file's relative path and content (or, above
    DIGEST_CONTENT_BYTES, size and mtime) under ``raw``; equal trees give equal digests wherever they live.

    ``only``: relative paths (files or folders) to hash; other files, e.g. placed by hand beside the downloads, leave
    the digest, and so every training stage, unchanged. None hashes everything.
    """
    from amad.progress import Progress

    def wanted(rel: str) -> bool:
        return only is None or rel in only or any(rel.startswith(f"{p}/") for p in only)

    files = sorted(p for p in raw.rglob("*") if p.is_file() and wanted(p.relative_to(raw).as_posix()))
    digest = hashlib.sha256()
    with Progress(len(files), "hash data/raw", unit="files", enabled=progress) as bar:
        for path in files:
            stat = path.stat()
            if stat.st_size > DIGEST_CONTENT_BYTES:
                body = f"{stat.st_size}:{stat.st_mtime_ns}"
            else:
                body = hashlib.sha256(path.read_bytes()).hexdigest()
            digest.update(f"{path.relative_to(raw).as_posix()}\t{body}\n".encode())
            bar.update(1)
    return {"files": len(files), "sha256": digest.hexdigest()}


def _download_mini(data_cfg: P.DataConfig, layout: DataLayout) -> dict:
    from amad.data.tokenizer import train_tokenizer
    from amad_suite.mini.captions import build_mini_captions
    from amad_suite.mini.multi30k import build_mini_multi30k
    from amad_suite.mini.vqa import build_mini_vqa

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
        _write_tokenizers(layout, {None: _vlt5_tokenizer(data_cfg.tokenizer.source)})
    else:
        corpus = _mini_corpus(layout)
        atomic_dir(
            layout.tokenizer, lambda tmp: train_tokenizer(corpus, data_cfg.tokenizer.vocab_size, tmp / "tokenizer.json")
        )
    summary["vocabulary"] = {"vocab_size": data_cfg.tokenizer.vocab_size}
    return summary


def _download_paper(data_cfg: P.DataConfig, layout: DataLayout, progress: bool) -> tuple[dict, set[str]]:
    from amad.data.tokenizer import build_blip_tokenizer
    from amad_suite.fetch.download import fetch_all
    from amad_suite.fetch.manifest import load_manifest

    if not data_cfg.tokenizer.source:  # checked before hours of downloading
        raise DataError("data.tokenizer.source is empty: at paper scale set it to a t5-base folder or hub id")
    manifest = load_manifest(data_cfg.manifest or None)
    tasks = sorted(manifest.tasks)
    entries = list({e.path: e for task in tasks for e in manifest.for_task(task)}.values())
    fallbacks = manifest.fallbacks(entries)
    fetch_all(
        entries,
        layout.raw_root,
        mirror=data_cfg.mirror or None,
        progress=progress,
        fallbacks=fallbacks,
        lock_path=layout.manifest_lock,
    )
    tokenizers = {
        "vlt5": _vlt5_tokenizer(data_cfg.tokenizer.source),
        "blip": build_blip_tokenizer(layout.raw_root / BLIP_VOCAB),
    }
    vlt5 = tokenizers["vlt5"]
    if len(vlt5) < 100 or vlt5.pad_token_id is None or vlt5.eos_token_id is None:
        raise DataError(
            f"data.tokenizer.source {data_cfg.tokenizer.source!r} gave a {len(vlt5)}-token tokenizer without "
            "<pad>/</s> (offline?): set it to a local t5-base folder"
        )
    _write_tokenizers(layout, tokenizers)
    rows = {family: len(tokenizer) for family, tokenizer in tokenizers.items()}
    read = {p for e in [*entries, *fallbacks.values()] for p in (e.path, *e.produces, e.into) if p}
    return {"files": [e.path for e in entries], "tasks": tasks, "tokenizer_rows": rows}, read


def _sizes(size: P.TaskSize) -> dict:
    return {"n_train": size.n_train, "n_val": size.n_val, "n_test": size.n_test}


def _vlt5_tokenizer(source: str):
    from amad.data.tokenizer import load_tokenizer

    return load_tokenizer(source)


def _write_tokenizers(layout: DataLayout, tokenizers: dict) -> None:
    """Write ``{family: tokenizer}`` as ``data/tokenizer/<family>`` (family None: the shared folder itself)."""
    from amad.data.tokenizer import save_tokenizer

    def write(tmp: Path) -> None:
        for family, tokenizer in tokenizers.items():
            save_tokenizer(tokenizer, tmp / family if family else tmp)

    atomic_dir(layout.tokenizer, write)


def _image_keys(layout: DataLayout, task: str) -> list[str]:
    from amad_suite.pipeline.examples import examples

    keys: set[str] = set()
    for split in ("train", "val", "test"):
        keys.update(ex.image_id for ex in examples(layout, task, split, train=False) if ex.image_id)
    return sorted(keys)


def _paper_coco_keys(layout: DataLayout) -> list[str]:
    """COCO image keys of the Karpathy caption split and VL-T5's Karpathy VQA files (no annotations parsed)."""
    from amad.data.formats.files import read_json

    keys = set(_image_keys(layout, "caption"))
    for split in ("train", "val", "test"):
        path = layout.raw("vqa") / f"karpathy_{split}.json"
        records = read_json(path, "VL-T5 Karpathy VQA file")
        try:
            keys.update(r["img_id"] for r in records)
        except (KeyError, TypeError):
            raise DataError(f"VL-T5 Karpathy VQA file {path} has records without img_id: re-download it") from None
    return sorted(keys)


def run_extract(params: dict, item: str, data_root: str, progress: bool = True) -> None:
    """One extract_features item: ``vqa`` / ``caption`` / ``translation`` write the VL-T5 features of that task,
    ``images`` the BLIP image caches.

    Features: mini = weight-free grid features (translation is text-only there: an empty marker file); paper = an
    index over the official COCO / Flickr30k region-feature files. Images: mini = one cache per visual task; paper
    = one uint8 COCO cache shared by VQA and captions.
    """
    params = P.declared(params, "extract_features")
    if item not in EXTRACT_ITEMS:
        raise DataError(f"unknown extract_features item {item!r}: use one of {', '.join(EXTRACT_ITEMS)}")
    feat_cfg = P.features(params)
    layout = DataLayout(Path(data_root), P.data_scale(params))
    if item == "images":
        _extract_images(layout, feat_cfg, progress)
    elif item not in visual_tasks(layout.scale):
        from amad.data.visual.h5stream import write_h5_atomic

        write_h5_atomic(layout.features(item), [], attrs={"kind": "none", "reason": f"{item} is text-only here"})
    elif layout.scale == "paper":
        from amad.data.visual.link_features import link_features

        count = link_features(layout.features(item), [layout.raw_root / p for p in PAPER_FEATURES[item]])
        log.info("indexed %d images of the official features for %s", count, item)
    else:
        from amad.data.visual.features import extract_grid_features

        feats = extract_grid_features(
            layout.raw(item) / "images",
            _image_keys(layout, item),
            layout.features(item),
            grid=feat_cfg.grid,
            batch_size=feat_cfg.batch_size,
            progress=progress,
        )
        log.info("extracted %s: %s", item, json.dumps(feats, default=str)[:300])


def _extract_images(layout: DataLayout, feat_cfg: P.FeaturesConfig, progress: bool) -> None:
    from amad.data.visual.images import cache_images

    if layout.scale == "paper":
        image_dir = layout.raw_root / COCO_IMAGES
        if not image_dir.is_dir():
            raise DataError(
                f"BLIP needs the COCO 2014 images in {image_dir}: run the download stage (it fetches and unpacks "
                "train2014.zip and val2014.zip there), or place the images flat in it (stem = key)"
            )
        jobs = {layout.images(COCO_IMAGE_TASKS[0]): (image_dir, _paper_coco_keys(layout))}
    else:
        jobs = {layout.images(t): (layout.raw(t) / "images", _image_keys(layout, t)) for t in VISUAL_TASKS}
    for out, (image_dir, keys) in jobs.items():
        summary = cache_images(
            image_dir, keys, out, image_size=feat_cfg.image_size, batch_size=feat_cfg.batch_size, progress=progress
        )
        log.info("image cache %s: %s", out, summary)
    stale = [p for p in layout.images_dir.glob("*.h5") if p not in jobs]  # e.g. per-task float caches of old runs
    for path in stale:
        log.info("removing %s: no task reads it at %s scale", path, layout.scale)
        path.unlink()
