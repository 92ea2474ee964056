"""The miniature data files, each in the real format of the manifest file it stands in for (bytes, deterministic).

- VL-T5's Karpathy VQA files (``karpathy_{train,val,test}.json``: img_id, sent, question_id, label, answer_type,
  question_type) and the official ``v2_Annotations_{Train,Val}_mscoco.zip`` (10 answers per question);
- Karpathy's ``caption_datasets.zip`` (``dataset_coco.json``, restval included, plus the Flickr files it ships);
- COCO's ``train2014.zip`` / ``val2014.zip`` (``<set>/COCO_<set>_<id>.jpg``, tiny JPEGs of the scenes);
- LXMERT's ``<set>_obj36.zip`` (``mscoco_imgfeat/<set>_obj36.tsv``: base64 fields, 36 boxes x 2048 floats);
- VL-T5's Flickr30k ``<split>_boxes36.h5`` (one group per image stem);
- Multi30K task 1 (``raw/<split>.{en,de}.gz``, ``image_splits/<split>.txt``).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from amad_suite.rehearsal.scenes import COLOURS, MULTI30K_SPLITS, PLACES, Scene, annotator_answers

BOXES, FEATURE_DIM = 36, 2048  # LXMERT / VL-T5 region features
IMAGE_W, IMAGE_H = 64, 48
ZIP_TIME = (2014, 1, 1, 0, 0, 0)  # fixed member times: identical bytes on every build


def _zip(members: dict[str, bytes], *, compress: bool = True) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, compress_type=method)
    return buf.getvalue()


def _json(data: object) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _gz(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), mtime=0)


def jpeg(scene: Scene) -> bytes:
    """A 64 x 48 picture of the scene: the place as background, ``count`` blobs in the object's colour."""
    image = Image.new("RGB", (IMAGE_W, IMAGE_H), PLACES[scene.place])
    draw = ImageDraw.Draw(image)
    for i in range(scene.count):
        x = 6 + i * 20
        draw.ellipse((x, 14, x + 14, 34), fill=COLOURS[scene.colour])
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def vqa_files(scenes: list[Scene], seed: int) -> dict[str, bytes]:
    """karpathy_{train,val,test}.json and the two official annotation zips (paths under the data root)."""
    rng = random.Random(seed + 2)
    splits: dict[str, list[dict]] = {"train": [], "val": [], "test": []}
    annotations: dict[str, list[dict]] = {"train2014": [], "val2014": []}
    for scene in scenes:
        for k, (question, answer, qtype, atype) in enumerate(scene.questions()):
            qid = scene.coco_id * 1000 + k
            answers = annotator_answers(answer, atype, rng)
            counts = {a: answers.count(a) for a in answers}
            annotations[scene.subset].append(
                {
                    "question_type": qtype,
                    "multiple_choice_answer": answer,
                    "answers": [
                        {"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)
                    ],
                    "image_id": scene.coco_id,
                    "answer_type": atype,
                    "question_id": qid,
                }
            )
            if scene.vqa_split:
                splits[scene.vqa_split].append(
                    {
                        "answer_type": atype,
                        "img_id": scene.key,
                        "label": {a: min(1.0, c / 3) for a, c in counts.items()},
                        "question_id": qid,
                        "question_type": qtype,
                        "sent": question[0].upper() + question[1:],
                        "is_topk_optimal": True,
                    }
                )
    files = {f"vqa/karpathy_{split}.json": _json(records) for split, records in splits.items()}
    for subset, zip_name in (("train2014", "Train"), ("val2014", "Val")):
        body = {"info": {}, "license": {}, "data_subtype": subset, "annotations": annotations[subset]}
        files[f"vqa/v2_Annotations_{zip_name}_mscoco.zip"] = _zip({f"v2_mscoco_{subset}_annotations.json": _json(body)})
    return files


def caption_files(scenes: list[Scene]) -> dict[str, bytes]:
    """Karpathy's caption_datasets.zip with dataset_coco.json (and the two Flickr files the real zip holds)."""
    images, sentid = [], 0
    for imgid, scene in enumerate(scenes):
        sentences = []
        for raw in scene.captions():
            sentences.append({"tokens": raw.split(), "raw": raw.capitalize() + ".", "imgid": imgid, "sentid": sentid})
            sentid += 1
        images.append(
            {
                "filepath": scene.subset,
                "sentids": [s["sentid"] for s in sentences],
                "filename": f"{scene.key}.jpg",
                "imgid": imgid,
                "split": scene.caption_split,
                "sentences": sentences,
                "cocoid": scene.coco_id,
            }
        )
    members = {"dataset_coco.json": _json({"images": images, "dataset": "coco"})}
    for name in ("flickr8k", "flickr30k"):
        members[f"dataset_{name}.json"] = _json({"images": [], "dataset": name})
    return {"coco/caption_datasets.zip": _zip(members)}


def image_zips(scenes: list[Scene]) -> dict[str, bytes]:
    """COCO's train2014.zip and val2014.zip (JPEGs are stored, as in the real zips)."""
    out = {}
    for subset in ("train2014", "val2014"):
        members = {f"{subset}/": b""} | {f"{subset}/{s.key}.jpg": jpeg(s) for s in scenes if s.subset == subset}
        out[f"coco/{subset}.zip"] = _zip(members, compress=False)
    return out


def region_features(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(features (36, 2048) float32, mostly zero like pooled ReLU outputs; boxes (36, 4) pixel x1 y1 x2 y2)."""
    features = rng.standard_normal((BOXES, FEATURE_DIM)).astype(np.float32)
    features[rng.random((BOXES, FEATURE_DIM)) < 0.9] = 0.0
    np.abs(features, out=features)
    x1, y1 = rng.uniform(0, IMAGE_W / 2, BOXES), rng.uniform(0, IMAGE_H / 2, BOXES)
    x2, y2 = x1 + rng.uniform(4, IMAGE_W / 2, BOXES), y1 + rng.uniform(4, IMAGE_H / 2, BOXES)
    return features, np.stack([x1, y1, x2, y2], 1).astype(np.float32)


def _detections(rng: np.random.Generator) -> list[np.ndarray]:
    """obj_id, obj_conf, attr_id, attr_conf (36,) as the BUTD detector writes them."""
    return [
        rng.integers(0, 1600, BOXES).astype(np.int64),
        rng.random(BOXES).astype(np.float32),
        rng.integers(0, 400, BOXES).astype(np.int64),
        rng.random(BOXES).astype(np.float32),
    ]


def lxmert_zips(scenes: list[Scene], seed: int) -> dict[str, bytes]:
    """LXMERT's train2014_obj36.zip / val2014_obj36.zip: one tsv row per image, arrays base64-encoded."""
    rng = np.random.default_rng(seed + 3)
    out = {}
    for subset in ("train2014", "val2014"):
        rows = []
        for scene in (s for s in scenes if s.subset == subset):
            features, boxes = region_features(rng)
            arrays = [*_detections(rng), boxes, features]
            b64 = [base64.b64encode(a.tobytes()).decode() for a in arrays]
            rows.append("\t".join([scene.key, str(IMAGE_H), str(IMAGE_W), *b64[:4], str(BOXES), *b64[4:]]))
        tsv = ("\n".join(rows) + "\n").encode()
        out[f"features/coco/{subset}_obj36.zip"] = _zip({f"mscoco_imgfeat/{subset}_obj36.tsv": tsv})
    return out


def flickr_h5_files(pairs: dict[str, list[tuple[str, str, str]]], seed: int) -> dict[str, bytes]:
    """VL-T5's Flickr30k trainval / test2017 / test2018 ``_boxes36.h5`` (groups keyed by image stem)."""
    import h5py

    rng = np.random.default_rng(seed + 4)
    stems: dict[str, list[str]] = {}
    for split, (_, feature_file) in MULTI30K_SPLITS.items():
        stems.setdefault(feature_file, []).extend(stem for _, _, stem in pairs[split])
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, keys in stems.items():
            path = Path(tmp) / f"{name}.h5"
            with h5py.File(path, "w", track_order=False) as h5:
                for key in keys:
                    features, boxes = region_features(rng)
                    obj_id, obj_conf, attr_id, attr_conf = _detections(rng)
                    group = h5.create_group(key)
                    arrays = {"features": features, "boxes": boxes, "img_w": np.int64(IMAGE_W)}
                    arrays |= {"img_h": np.int64(IMAGE_H), "obj_id": obj_id, "obj_conf": obj_conf}
                    arrays |= {"attr_id": attr_id, "attr_conf": attr_conf}
                    for dataset, value in arrays.items():
                        group.create_dataset(dataset, data=value)
            out[f"features/flickr30k/{name}_boxes36.h5"] = path.read_bytes()
    return out


def multi30k_files(pairs: dict[str, list[tuple[str, str, str]]]) -> dict[str, bytes]:
    """Multi30K task 1: ``raw/<split>.{en,de}.gz`` and ``image_splits/<split>.txt``."""
    out = {}
    for split, rows in pairs.items():
        for lang, column in (("en", 0), ("de", 1)):
            out[f"multi30k/task1/raw/{split}.{lang}.gz"] = _gz("".join(f"{row[column]}\n" for row in rows))
        out[f"multi30k/task1/image_splits/{split}.txt"] = "".join(f"{row[2]}.jpg\n" for row in rows).encode()
    return out
