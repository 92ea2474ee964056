"""Mini VQA: the ``easy-vqa`` package's synthetic set converted to the official VQA-2.0 json format.

easy-vqa ships 4,000 train and 1,000 test 64x64 images with ~9.6 questions each and 13 answers (yes/no, 3 shapes,
8 colours). Splits are made by image: val is carved out of easy-vqa's train images, test comes from its test
images. Image ids are globally unique ints: easy-vqa train image i -> 10000 + i, test image i -> 20000 + i; the
image key (file stem, h5 group) is ``str(image_id)``; question_id = image_id * 100 + the question's index on
that image. easy-vqa has one exact answer per question, so each annotation repeats it 10 times.

Also holds the small atomic-output helpers shared by the mini builders (:func:`staged_dir`, :func:`write_json`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from amad import atomic
from amad.atomic import staged_dir
from amad.errors import ConfigError

__all__ = ["build_mini_vqa", "question_type", "staged_dir", "write_json"]

TRAIN_ID_BASE = 10000
TEST_ID_BASE = 20000
ANSWERS_PER_QUESTION = 10
# Longest-prefix question types, in the spirit of the official VQA ``mscoco_question_types.txt``.
QUESTION_TYPES = (
    "what color is the",
    "what shape is the",
    "what shape does",
    "what is the",
    "is there a",
    "is there not",
    "does the image not contain",
    "does the image contain",
    "is a",
    "is no",
)


def write_json(path: str | Path, obj: object) -> None:
    """Write ``obj`` as compact UTF-8 JSON, atomically."""
    atomic.write_text(path, json.dumps(obj, ensure_ascii=False))


def question_type(question: str) -> str:
    """The longest known prefix of the question, else its first two words (e.g. "what color is the")."""
    text = question.lower().rstrip("?").strip()
    for prefix in QUESTION_TYPES:
        if text == prefix or text.startswith(prefix + " "):
            return prefix
    return " ".join(text.split()[:2])


def _by_image(questions: tuple[list, list, list]) -> dict[int, list[tuple[str, str]]]:
    texts, answers, image_ids = questions
    grouped: dict[int, list[tuple[str, str]]] = {}
    for text, answer, image_id in zip(texts, answers, image_ids):
        grouped.setdefault(int(image_id), []).append((text, answer))
    return grouped


def _header(subtype: str) -> dict:
    return {
        "info": {"description": "easy-vqa (pip package easy-vqa 1.0) in VQA-2.0 format", "version": "1.0"},
        "license": {"name": "MIT", "url": "https://github.com/vzhou842/easy-VQA"},
        "data_type": "easy-vqa",
        "data_subtype": subtype,
    }


def _write_split(root: Path, split: str, images: list[int], base: int, grouped: dict, paths: dict) -> dict:
    questions, annotations = [], []
    for easy_id in sorted(images):
        image_id = base + easy_id
        shutil.copyfile(paths[easy_id], root / "images" / f"{image_id}.png")
        for index, (text, answer) in enumerate(grouped.get(easy_id, [])):
            question_id = image_id * 100 + index
            questions.append({"image_id": image_id, "question": text, "question_id": question_id})
            annotations.append(
                {
                    "question_id": question_id,
                    "image_id": image_id,
                    "question_type": question_type(text),
                    "answer_type": "yes/no" if answer in ("yes", "no") else "other",
                    "multiple_choice_answer": answer,
                    "answers": [
                        {"answer": answer, "answer_confidence": "yes", "answer_id": k + 1}
                        for k in range(ANSWERS_PER_QUESTION)
                    ],
                }
            )
    write_json(root / f"questions_{split}.json", {**_header(split), "task_type": "Open-Ended", "questions": questions})
    write_json(root / f"annotations_{split}.json", {**_header(split), "annotations": annotations})
    return {"images": len(images), "questions": len(questions)}


def build_mini_vqa(out_dir: str | Path, *, n_train: int, n_val: int, n_test: int, seed: int = 0) -> dict:
    """Convert a seeded, image-level subset of easy-vqa into ``questions_S.json`` / ``annotations_S.json``.

    Args:
        out_dir: the VQA root to (re)create atomically; images go to ``out_dir/images/<image_id>.png``.
        n_train, n_val: numbers of easy-vqa *train images* for train and val (disjoint; sum <= 4000).
        n_test: number of easy-vqa *test images* (<= 1000). Every image brings all its questions.
        seed: the subset and split are a deterministic function of the seed.

    Returns:
        {"train"|"val"|"test": {"images": n, "questions": q}, "answers": [the 13 easy-vqa answers]}.
    """
    import easy_vqa

    train_paths, test_paths = easy_vqa.get_train_image_paths(), easy_vqa.get_test_image_paths()
    if min(n_train, n_val, n_test) < 0 or n_train + n_val > len(train_paths) or n_test > len(test_paths):
        raise ConfigError(
            f"mini VQA asks for {n_train}+{n_val} train/val and {n_test} test images but easy-vqa has "
            f"{len(train_paths)} and {len(test_paths)}: lower n_train/n_val/n_test"
        )
    rng = np.random.default_rng(seed)
    train_order = [int(i) for i in rng.permutation(sorted(train_paths))]
    test_order = [int(i) for i in rng.permutation(sorted(test_paths))]
    splits = {
        "train": (train_order[n_val : n_val + n_train], TRAIN_ID_BASE, _by_image(easy_vqa.get_train_questions())),
        "val": (train_order[:n_val], TRAIN_ID_BASE, None),
        "test": (test_order[:n_test], TEST_ID_BASE, _by_image(easy_vqa.get_test_questions())),
    }
    summary: dict = {}
    with staged_dir(out_dir) as root:
        (root / "images").mkdir()
        for split, (images, base, grouped) in splits.items():
            grouped = grouped if grouped is not None else splits["train"][2]
            paths = test_paths if split == "test" else train_paths
            summary[split] = _write_split(root, split, images, base, grouped, paths)
    summary["answers"] = list(easy_vqa.get_answers())
    return summary
