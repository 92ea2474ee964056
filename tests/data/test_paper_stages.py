"""The paper-scale download and extract_features stages end to end on tiny files in the real formats, served from a
mirror in VL-T5's own Drive layout: one tokenizer per family, the lock beside data/raw, hand-placed files kept,
feature indexes for all three tasks (Multi30K with Flickr30k features), one shared uint8 COCO image cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from shared_data import SHARED_MULTI30K, needs_multi30k

import amad_suite.fetch.manifest as manifest_mod
from amad_suite.config import load_params
from amad.data.visual.features import FeatureStore, write_features
from amad.data.visual.images import ImageStore
from amad.errors import ConfigError
from amad_suite.pipeline import examples as S
from amad_suite.pipeline.data_stages import run_download, run_extract
from amad_suite.pipeline.layout import DataLayout

REPO = Path(__file__).resolve().parents[2]
HUB = REPO / "tests" / "fixtures" / "hub"
TRAIN = ["COCO_train2014_000000000009", "COCO_train2014_000000000025"]
VAL = ["COCO_val2014_000000000042", "COCO_val2014_000000000073"]
FLICKR = {"trainval": ["1000092795", "10002456"], "test2017": ["1000366164"], "test2018": ["1001773457"]}
pytestmark = needs_multi30k


def write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))


def features(path: Path, keys: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    boxes = np.array([[0, 0, 32, 24]] * 36, dtype=np.float32)
    write_features(path, [(k, np.ones((36, 2048), np.float32) * i, boxes, 64, 48) for i, k in enumerate(keys)])


def make_mirror(root: Path) -> Path:
    """VL-T5's Drive ``datasets/`` folder beside its ``snap/`` folder, plus the other downloads at our paths."""
    ds = root / "datasets"
    records = {s: [{"question_id": i, "img_id": k, "sent": "what is it?"} for i, k in enumerate(keys)] for s, keys in
               (("train", TRAIN), ("val", VAL[:1]), ("test", VAL[1:]))}  # fmt: skip
    for split, recs in records.items():
        write(ds / "vqa" / f"karpathy_{split}.json", recs)
    for sub in ("train", "val"):
        anns = [{"question_id": r["question_id"], "answers": [{"answer": "a cat"}] * 10}
                for s, recs in records.items() if (s == "train") == (sub == "train") for r in recs]  # fmt: skip
        write(ds / "vqa" / f"v2_mscoco_{sub}2014_annotations.json", {"annotations": anns})
    images = [{"split": s, "filename": f"{k}.jpg", "sentences": [{"sentid": i, "raw": "a cat on a mat"}]}
              for i, (k, s) in enumerate(zip(TRAIN + VAL, ["train", "restval", "val", "test"]))]  # fmt: skip
    write(ds / "COCO" / "dataset_coco.json", {"images": images})
    for key in TRAIN + VAL:
        (ds / "COCO" / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (200, 30, 30)).save(ds / "COCO" / "images" / f"{key}.jpg")
    features(ds / "COCO" / "features" / "train2014_obj36.h5", TRAIN)
    features(ds / "COCO" / "features" / "val2014_obj36.h5", VAL)
    for name, keys in FLICKR.items():
        features(ds / "flickr30k" / "features" / f"{name}_boxes36.h5", keys)
    shutil.copytree(SHARED_MULTI30K / "task1", ds / "multi30k-dataset" / "data" / "task1")
    write(root / "snap" / "pretrain" / "VLT5" / "Epoch30.pth", b"not really a checkpoint")
    write(root / "checkpoints" / "blip" / "model_base_capfilt_large.pth", b"not really a checkpoint")
    shutil.copytree(HUB / "bert-wordpiece-tiny", root / "hub" / "bert-base-uncased")
    return root


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("paper")
    manifest = yaml.safe_load(manifest_mod.DEFAULT_MANIFEST.read_text())
    for entry in manifest["groups"]["coco_images"]["files"]:
        entry["count"] = 2  # two tiny images per set instead of 82,783 / 40,504
    (tmp / "paper.yaml").write_text(yaml.safe_dump(manifest))
    patch = pytest.MonkeyPatch()
    patch.setattr(manifest_mod, "DEFAULT_MANIFEST", tmp / "paper.yaml")
    patch.delenv("AMAD_DATA_MIRROR", raising=False)
    params = load_params(REPO / "configs" / "presets" / "paper.yaml")
    params["data"]["mirror"] = str(make_mirror(tmp / "mirror"))
    params["data"]["tokenizer"]["source"] = str(HUB / "t5-unigram-tiny")
    params["features"]["image_size"] = 16
    for task in ("vqa", "caption", "translation"):  # unused at paper scale; valid under either sizes rule
        params["data"][task].update(n_train=1, n_val=1, n_test=1)
    root = tmp / "data"
    write(root / "raw" / "notes" / "hand_placed.txt", "kept")
    run_download(params, str(root), progress=False)
    for item in ("vqa", "caption", "translation", "images"):
        run_extract(params, item, str(root), progress=False)
    yield params, root
    patch.undo()


def test_download_places_files_and_keeps_the_lock_outside_raw(paper):
    _, root = paper
    assert (root / "raw" / "features" / "coco" / "train2014_obj36.h5").is_file()
    assert (root / "raw" / "multi30k" / "task1" / "raw" / "train.en.gz").is_file()
    assert (root / "raw" / "checkpoints" / "vlt5" / "pretrain" / "Epoch30.pth").is_file()
    assert sorted(p.name for p in (root / "raw" / "coco" / "images").glob("*.jpg")) == sorted(
        f"{k}.jpg" for k in TRAIN + VAL
    )
    assert (root / "raw" / "notes" / "hand_placed.txt").read_text() == "kept"
    lock = json.loads((root / "manifest.lock.json").read_text())["files"]
    assert "vqa/karpathy_train.json" in lock and not (root / "raw" / "manifest.lock.json").exists()


def test_each_family_gets_its_own_tokenizer(paper):
    _, root = paper
    layout = DataLayout(root, "paper")
    blip, vlt5 = S.load_tokenizer(layout, family="blip"), S.load_tokenizer(layout, family="vlt5")
    assert len(blip) == 279 and blip.convert_tokens_to_ids(["[DEC]", "[ENC]"]) == [277, 278]
    assert blip.bos_token == "[DEC]" and blip.eos_token == blip.sep_token == "[SEP]" and blip.pad_token_id == 0
    assert len(vlt5) == 310 and vlt5.eos_token_id == 1 and "<extra_id_0>" in vlt5.get_vocab()
    with pytest.raises(ConfigError, match="one tokenizer per family"):
        S.load_tokenizer(layout)


def test_rerun_with_another_mirror_changes_no_output(paper, tmp_path):
    params, root = paper
    before = {p: p.read_bytes() for p in (root / "tokenizer").rglob("*") if p.is_file()}
    lock = (root / "manifest.lock.json").read_bytes()
    params = json.loads(json.dumps(params))
    params["data"]["mirror"] = str(tmp_path)  # an empty folder: nothing is fetched, everything is present
    (tmp_path / "hub" / "bert-base-uncased").mkdir(parents=True)
    (tmp_path / "hub" / "bert-base-uncased" / "vocab.txt").write_text("[PAD]\n")  # a file the mirror "holds"
    run_download(params, str(root), progress=False)
    assert {p: p.read_bytes() for p in (root / "tokenizer").rglob("*") if p.is_file()} == before
    assert (root / "manifest.lock.json").read_bytes() == lock


def test_visual_stores_at_paper_scale(paper):
    _, root = paper
    layout = DataLayout(root, "paper")
    for task, key in (("vqa", TRAIN[1]), ("caption", VAL[0]), ("translation", FLICKR["test2018"][0])):
        store = S.visual_store(layout, "vlt5", task)
        assert isinstance(store, FeatureStore) and store.get(key)[0].shape == (36, 2048), task
    assert len(S.visual_store(layout, "vlt5", "translation")) == 4
    vqa, caption = S.visual_store(layout, "blip", "vqa"), S.visual_store(layout, "blip", "caption")
    assert isinstance(vqa, ImageStore) and vqa.path == caption.path == root / "images" / "coco.h5"
    assert sorted(vqa.keys()) == sorted(TRAIN + VAL) and vqa.get(VAL[1]).shape == (3, 16, 16)
    assert [p.name for p in (root / "images").iterdir()] == ["coco.h5"]
    assert S.visual_store(layout, "blip", "translation") is None
