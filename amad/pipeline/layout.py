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
VISUAL_TASKS = ("vqa", "caption")


# Paper scale keeps the manifest's relative paths under data/raw (see amad/data/manifests/paper.yaml).
PAPER_RAW = {"vqa": "vqa", "caption": "coco", "translation": "multi30k"}


@dataclass(frozen=True)
class DataLayout:
    root: Path
    scale: str = "mini"

    def raw(self, task: str) -> Path:
        return self.root / "raw" / (PAPER_RAW[task] if self.scale == "paper" else task)

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer"

    def features(self, task: str) -> Path:
        return self.root / "features" / f"{task}.h5"

    def images(self, task: str) -> Path:
        return self.root / "images" / f"{task}.h5"
