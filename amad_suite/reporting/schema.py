"""Names, orders and labels shared by the report tables, figures and summary."""

from __future__ import annotations

TASKS: tuple[str, ...] = ("vqa", "caption", "translation")
FAMILIES: tuple[str, ...] = ("vlt5", "blip")
# Students are listed in this order; methods not named here follow alphabetically.
METHOD_ORDER: tuple[str, ...] = (
    "none",
    "logit",
    "one_to_one",
    "head_mean",
    "shd",
    "amad_l2",
    "amad_token_kl",
    "amad",
    "amad_sharp",
)
TEACHER = "teacher"
REFERENCE = "reference"  # the role of baselines that are not trained models (e.g. the question prior)
# Reference rows follow the teacher, in this order (others alphabetically after them).
REFERENCE_ORDER: tuple[str, ...] = ("question_prior", "frequent_caption", "copy_source")
REFERENCE_NOTES: dict[str, str] = {
    "question_prior": "answers each question with its most frequent training answer and never sees the image",
    "frequent_caption": "gives every image the most frequent training caption and never sees the image",
    "copy_source": "returns the English source sentence as the German translation",
}

# The metrics each task reports, in table column order. Metrics found in eval files but not listed here are
# appended alphabetically.
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "vqa": ("accuracy", "accuracy/yes/no", "accuracy/number", "accuracy/other"),
    "caption": ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "SPICE"),
    "translation": (
        "BLEU/test2016",
        "BLEU/test2017",
        "BLEU/test2018",
        "BLEU-lc/test2016",
        "BLEU-lc/test2017",
        "BLEU-lc/test2018",
    ),
}

FAMILY_LABELS: dict[str, str] = {"vlt5": "VL-T5", "blip": "BLIP"}
METHOD_LABELS: dict[str, str] = {
    "teacher": "Teacher",
    "question_prior": "Question prior (no image)",
    "frequent_caption": "Most frequent caption (no image)",
    "copy_source": "Copy of the source",
    "none": "No KD (ground truth)",
    "logit": "Logit KD",
    "one_to_one": "One-to-one",
    "head_mean": "Head mean",
    "amad_l2": "AMAD (L2)",
    "amad_token_kl": "AMAD (token KL)",
    "amad": "AMAD (KL)",
    "amad_sharp": "AMAD (KL, sharp τ)",
    "shd": "Squeezing heads",
}
AMAD_METHODS: frozenset[str] = frozenset({"amad", "amad_sharp", "amad_l2", "amad_token_kl"})
# Preferred attention kind for the example attention figure (first one every model has wins).
KIND_ORDER: tuple[str, ...] = (
    "encoder_self",
    "text_self",
    "vision_self",
    "decoder_self",
    "cross",
    "text_cross",
    "answer_self",
    "answer_cross",
)


def order_key(items: tuple[str, ...], name: str) -> tuple[int, str]:
    """Sort key: position in ``items``, then alphabetical for names not in it."""
    return (items.index(name), "") if name in items else (len(items), name)


def method_key(method: str) -> tuple[int, str]:
    """Sort key for rows: the teacher first, then METHOD_ORDER, then the rest alphabetically."""
    if method == TEACHER:
        return (-1, "")
    return order_key(METHOD_ORDER, method)


def row_key(role: str, method: str) -> tuple[int, tuple[int, str]]:
    """Sort key for table rows: the teacher, then the references (REFERENCE_ORDER), then the students."""
    if role == REFERENCE:
        return (1, order_key(REFERENCE_ORDER, method))
    return (0 if method == TEACHER else 2, method_key(method))


def family_label(family: str) -> str:
    """Display name of a model family."""
    return FAMILY_LABELS.get(family, family)


def method_label(method: str) -> str:
    """Display name of a method."""
    return METHOD_LABELS.get(method, method)


def metric_order(task: str, present: set[str] | list[str]) -> list[str]:
    """The task's known metrics that are present, in paper order, then the other present ones alphabetically."""
    known = TASK_METRICS.get(task, ())
    return [m for m in known if m in present] + sorted(m for m in present if m not in known)


def short_metric(name: str) -> str:
    """A short lower-case key for ``dvc exp show`` columns: accuracy->acc, CIDEr->cider, BLEU/test2016->bleu16."""
    base, _, split = name.partition("/")
    base = base.lower().replace("accuracy", "acc").replace("-", "").replace("_", "")
    if split.startswith("test20") and len(split) == 8:
        return f"{base}{split[-2:]}"
    return f"{base}_{split.replace('/', '_')}" if split else base
