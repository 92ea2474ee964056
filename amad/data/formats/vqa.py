"""VQA-2.0 loaders: the official questions/annotations format and VL-T5's Karpathy split.

Every question becomes one Example: source = question, references = the human answers (raw strings),
target = the answer with the highest VQA soft score min(1, count / 3) (ties: the most frequent, then alphabetical),
target_weight = that score, answer_scores = the candidates a recipe may sample a training target from: VL-T5's
Karpathy ``label`` (LXMERT-normalised answers of the 3,129-answer vocabulary with their scores) when the record has
one, else min(1, count / 3) of every distinct human answer (see ``amad.data.targets``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from amad.data.formats.files import apply_limit, format_error, read_json
from amad.registry import unknown_name
from amad.errors import ConfigError, DataError
from amad.types import Example

SPLITS = ("train", "val", "test")
FORMATS = ("official", "karpathy")
COCO_KEY_FORMAT = "COCO_{data_subtype}_{image_id:012d}"
PLAIN_KEY_FORMAT = "{image_id}"
# The official annotation files the Karpathy split's answers come from, by image-key prefix.
KARPATHY_ANNOTATIONS = {
    "COCO_train2014_": "v2_mscoco_train2014_annotations.json",
    "COCO_val2014_": "v2_mscoco_val2014_annotations.json",
}


def soft_score(count: int) -> float:
    """VQA soft score of an answer given by ``count`` of the annotators: min(1, count / 3)."""
    return min(1.0, count / 3)


def select_target(answers: list[str]) -> tuple[str, float]:
    """The training target among human answers and its soft score (ties: most frequent, then alphabetical)."""
    counts = Counter(a.strip() for a in answers)
    best = min(counts, key=lambda a: (-soft_score(counts[a]), -counts[a], a))
    return best, soft_score(counts[best])


def answer_scores(answers: list[str]) -> tuple[tuple[str, float], ...]:
    """Every distinct human answer (stripped) with its soft score, sorted by answer."""
    counts = Counter(a.strip() for a in answers)
    return tuple((a, soft_score(counts[a])) for a in sorted(counts))


def _label_scores(label: object, path: Path) -> tuple[tuple[str, float], ...]:
    """A Karpathy record's ``label`` ({answer: score}) as sorted (answer, score) pairs."""
    if not isinstance(label, dict) or not all(
        isinstance(a, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        for a, v in label.items()
    ):
        raise format_error("VL-T5 Karpathy VQA file", path, "VL-T5 karpathy (label: {answer: score >= 0})")
    return tuple((a, float(label[a])) for a in sorted(label))


def _example(
    qid: object,
    key: str,
    question: str,
    answers: list[str],
    answer_type: str | None,
    scores: tuple[tuple[str, float], ...] | None = None,
) -> Example:
    target, score = select_target(answers)
    return Example(
        uid=str(qid),
        image_id=key,
        source=question,
        target=target,
        references=list(answers),
        target_weight=score,
        answer_type=answer_type,
        answer_scores=answer_scores(answers) if scores is None else scores,
    )


def _answers_by_qid(path: Path, wanted: set | None = None) -> dict[int, dict]:
    """question_id -> annotation (only ``wanted`` ids when given), validated."""
    data = read_json(path, "VQA annotations file")
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise format_error("VQA annotations file", path, "VQA-2.0 annotations ({'annotations': [...]})")
    out: dict[int, dict] = {}
    for ann in data["annotations"]:
        try:
            qid = ann["question_id"]
            if wanted is not None and qid not in wanted:
                continue
            answers = [a["answer"] for a in ann["answers"]]
        except (KeyError, TypeError):
            raise format_error("VQA annotations file", path, "VQA-2.0 annotations (question_id, answers)") from None
        if not answers:
            raise DataError(f"question {qid} has an empty answers list in {path}: fix or re-create the annotations")
        out[qid] = ann
    return out


def _load_official(root: Path, split: str, image_key_format: str | None) -> list[Example]:
    q_path, a_path = root / f"questions_{split}.json", root / f"annotations_{split}.json"
    data = read_json(q_path, "VQA questions file")
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise format_error("VQA questions file", q_path, "VQA-2.0 questions ({'questions': [...]})")
    subtype = data.get("data_subtype", "")
    if image_key_format is None:
        image_key_format = COCO_KEY_FORMAT if data.get("data_type") == "mscoco" else PLAIN_KEY_FORMAT
    annotations = _answers_by_qid(a_path)
    examples = []
    for q in data["questions"]:
        try:
            qid, image_id, text = q["question_id"], q["image_id"], q["question"]
        except (KeyError, TypeError):
            raise format_error("VQA questions file", q_path, "VQA-2.0 questions (question_id, image_id)") from None
        ann = annotations.get(qid)
        if ann is None:
            raise DataError(f"question {qid} has no annotations in {a_path}: re-create the annotations file")
        try:
            key = image_key_format.format(image_id=image_id, data_subtype=subtype)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"image_key_format {image_key_format!r} failed ({exc!r}): use the fields image_id and data_subtype"
            ) from None
        answers = [a["answer"] for a in ann["answers"]]
        examples.append(_example(qid, key, text, answers, ann.get("answer_type")))
    return examples


def _load_karpathy(root: Path, split: str) -> list[Example]:
    path = root / f"karpathy_{split}.json"
    records = read_json(path, "VL-T5 Karpathy VQA file")
    if not isinstance(records, list):
        raise format_error("VL-T5 Karpathy VQA file", path, "VL-T5 karpathy (a list of question records)")
    try:
        rows = [(r["question_id"], r["img_id"], r["sent"], r.get("answer_type")) for r in records]
        labels = [r.get("label") for r in records]
    except (KeyError, TypeError, AttributeError):
        raise format_error("VL-T5 Karpathy VQA file", path, "VL-T5 karpathy (img_id, sent, question_id)") from None
    prefixes = tuple(KARPATHY_ANNOTATIONS)
    if all(key.startswith(prefixes) for _, key, _, _ in rows):
        needed = sorted({name for p, name in KARPATHY_ANNOTATIONS.items() if any(r[1].startswith(p) for r in rows)})
    else:  # keys of another form: search both official files
        needed = sorted(KARPATHY_ANNOTATIONS.values())
    annotations: dict[int, dict] = {}
    for name in needed:
        annotations.update(_answers_by_qid(root / name, {r[0] for r in rows}))
    examples = []
    for (qid, key, question, answer_type), label in zip(rows, labels):
        ann = annotations.get(qid)
        if ann is None:
            files = ", ".join(str(root / n) for n in needed)
            raise DataError(f"question {qid} has no annotations in {files}: use the official annotation files")
        answers = [a["answer"] for a in ann["answers"]]
        scores = None if label is None else _label_scores(label, path)
        examples.append(_example(qid, key, question, answers, answer_type or ann.get("answer_type"), scores))
    return examples


def load_vqa(
    root: Path,
    split: str,
    *,
    train: bool,
    format: str = "official",
    image_key_format: str | None = None,
    limit: int | None = None,
) -> list[Example]:
    """Load a VQA split (one Example per question; ``train`` does not change VQA examples).

    Args:
        root: folder with questions_{split}.json + annotations_{split}.json (official), or karpathy_{split}.json +
            v2_mscoco_{train,val}2014_annotations.json (karpathy).
        format: "official" or "karpathy".
        image_key_format: str.format pattern with image_id, data_subtype (official only; default: COCO file stems
            for data_type "mscoco", else "{image_id}"). Karpathy records carry the key (img_id) already.
        limit: keep the first N examples.
    """
    if format not in FORMATS:
        raise unknown_name("VQA format", format, FORMATS)
    if split not in SPLITS:
        raise unknown_name("VQA split", split, SPLITS)
    examples = _load_karpathy(root, split) if format == "karpathy" else _load_official(root, split, image_key_format)
    return apply_limit(examples, limit)
