"""Where the pipeline's data live under the data root (paths come in from dvc.yaml through argv)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TRAIN_SPLIT = {"vqa": "train", "caption": "train", "translation": "train"}
VAL_SPLIT = {"vqa": "val", "caption": "val", "translation": "val"}
TEST_SPLITS = {
    "vqa": {"test": "test"},
    "caption": {"test": "test"},
    "translation": {"test2016": "test_2016_flickr", "test2017": "test_2017_flickr", "test2018": "test_2018_flickr"},
}
VISUAL_TASKS = ("vqa", "caption")  # at mini scale; see visual_tasks(scale)
# Paper scale follows VL-T5: Multi30K also gets the Flickr30k region features (mmt_data.py).
PAPER_VISUAL_TASKS = ("vqa", "caption", "translation")
# Tasks whose BLIP images come from the one shared COCO cache at paper scale.
COCO_IMAGE_TASKS = ("vqa", "caption")
FAMILIES = ("vlt5", "blip")


# Paper scale keeps the manifest's relative paths under data/raw (see amad/data/manifests/paper.yaml).
PAPER_RAW = {"vqa": "vqa", "caption": "coco", "translation": "multi30k"}


def visual_tasks(scale: str) -> tuple[str, ...]:
    """Tasks with a visual input at this scale: Multi30K is text-only in the mini suite, visual at paper scale."""
    return PAPER_VISUAL_TASKS if scale == "paper" else VISUAL_TASKS


@dataclass(frozen=True)
class DataLayout:
    root: Path
    scale: str = "mini"

    def raw(self, task: str) -> Path:
        return self.root / "raw" / (PAPER_RAW[task] if self.scale == "paper" else task)

    @property
    def raw_root(self) -> Path:
        """Downloads and hand-placed files (paper) or the built mini data sets; never deleted by DVC."""
        return self.root / "raw"

    @property
    def raw_digest(self) -> Path:
        """One hash of everything under data/raw: what the training and evaluation stages depend on, instead of
        the thousands of files themselves (DVC would stat every one of them for every stage)."""
        return self.root / "raw_digest.json"

    @property
    def manifest_lock(self) -> Path:
        """The checksum lock of the downloads, kept outside data/raw so that recording a hash never changes it."""
        return self.root / "manifest.lock.json"

    @property
    def tokenizer(self) -> Path:
        """The tokenizer folder: one shared tokenizer (mini), or one sub-folder per family (tokenizer_dir)."""
        return self.root / "tokenizer"

    def tokenizer_dir(self, family: str) -> Path:
        """The family's own tokenizer (``tokenizer/<family>``, written at paper scale), else the shared one."""
        own = self.tokenizer / family
        return own if own.is_dir() else self.tokenizer

    def features(self, task: str) -> Path:
        return self.root / "features" / f"{task}.h5"

    @property
    def images_dir(self) -> Path:
        """The BLIP image caches (one DVC output folder)."""
        return self.root / "images"

    def images(self, task: str) -> Path:
        """The BLIP image cache a task reads: at paper scale one COCO cache shared by VQA and captions."""
        if self.scale == "paper" and task in COCO_IMAGE_TASKS:
            return self.images_dir / "coco.h5"
        return self.images_dir / f"{task}.h5"
