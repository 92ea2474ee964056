"""COCO captions in Karpathy's ``dataset_coco.json`` format.

Image key = the file stem of ``filename``. ``restval`` is merged into ``train``. Training examples: one per caption
(uid "<key>#<sentid>", target = that caption). Evaluation examples: one per image (uid "<key>", target = the first
caption). references = all captions of the image in both cases; source is "".
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from amad.data.formats.files import apply_limit, format_error, read_json
from amad.registry import unknown_name
from amad.errors import DataError
from amad.types import Example

SPLITS = ("train", "val", "test")
SPLIT_MEMBERS = {"train": {"train", "restval"}, "val": {"val"}, "test": {"test"}}
FILE_NAME = "dataset_coco.json"


def load_captions(root: Path, split: str, *, train: bool, limit: int | None = None) -> list[Example]:
    """Load a Karpathy caption split from ``<root>/dataset_coco.json``.

    Args:
        root: the caption data folder.
        split: "train" (train + restval), "val" or "test".
        train: one example per caption (True) or per image (False).
        limit: keep the first N examples.
    """
    if split not in SPLITS:
        raise unknown_name("caption split", split, SPLITS)
    path = root / FILE_NAME
    data = read_json(path, "caption file")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise format_error("caption file", path, "Karpathy dataset_coco.json ({'images': [...]})")
    examples: list[Example] = []
    for image in data["images"]:
        try:
            if image["split"] not in SPLIT_MEMBERS[split]:
                continue
            key = PurePosixPath(image["filename"]).stem
            sentences = [(s["sentid"], s["raw"].strip()) for s in image["sentences"]]
        except (KeyError, TypeError, AttributeError):
            raise format_error("caption file", path, "Karpathy (split, filename, sentences[].raw/sentid)") from None
        if not sentences:
            raise DataError(f"image {image['filename']} has no captions in {path}: re-create the caption file")
        references = [raw for _, raw in sentences]
        if train:
            examples += [Example(f"{key}#{sid}", key, "", raw, references) for sid, raw in sentences]
        else:
            examples.append(Example(key, key, "", references[0], references))
    return apply_limit(examples, limit)
