"""Typed, strict views of params.yaml sections, and the params each stage declares.

Every stage starts with :func:`declared`, which keeps only the keys the stage lists in dvc.yaml (``STAGE_PARAMS``;
a test holds the two equal). Reading anything else then fails with "missing key", so a stage cannot depend on a
param that DVC does not track for it, and changing an undeclared param (``data.mirror`` for the training stages)
reruns nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from amad.errors import ConfigError
from amad.registry import did_you_mean, unknown_name
from amad.training.terms import Term, parse_method
from amad_suite.config import FAMILY_TASKS, TASKS, TrainConfig, check_preset, from_dict, parse_setup, section

TEACHER = "teacher"  # the evaluate stage's --method for a teacher folder; no distill method may take the name
# The blind baselines a teacher's record carries (amad.evaluation): the qualification checks of the report compare
# the no-KD students against them.
QUESTION_PRIOR = "question_prior"  # VQA: each question's most frequent training answer
FREQUENT_CAPTION = "frequent_caption"  # captions: the most frequent training caption for every image
COPY_SOURCE = "copy_source"  # Multi30K: the English source as the German output
BASELINES = {"vqa": QUESTION_PRIOR, "caption": FREQUENT_CAPTION, "translation": COPY_SOURCE}
# Names that label report rows other than students: not method names.
RESERVED_METHODS = (TEACHER, QUESTION_PRIOR, FREQUENT_CAPTION, COPY_SOURCE)


@dataclasses.dataclass(frozen=True)
class SuiteConfig:
    """What the distillation matrix runs: setups x methods x seeds, plus budget setups x methods x their own,
    usually fewer, seeds (setups too slow on a CPU to run every seed)."""

    setups: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    budget_setups: tuple[str, ...] = ()
    budget_seeds: tuple[int, ...] = ()
    budget_methods: tuple[str, ...] = ()  # the methods the budget setups run (pipeline coverage, not evidence)
    # The student head counts every setup runs (a head-ratio study lists several, e.g. [8, 4, 2]); "size" uses
    # student.setups.<setup>.heads (or the size's own).
    student_heads: tuple[int | str, ...] = ("size",)

    @property
    def all_setups(self) -> tuple[str, ...]:
        return self.setups + self.budget_setups


@dataclasses.dataclass(frozen=True)
class TaskSize:
    n_train: int
    n_val: int
    n_test: int
    max_words: int | None = None


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int
    source: str = ""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    scale: str
    mirror: str
    multi30k: str
    seed: int
    vqa: TaskSize
    caption: TaskSize
    translation: TaskSize
    tokenizer: TokenizerConfig
    manifest: str = ""  # paper scale: the data manifest ("" = amad_suite/fetch/manifests/paper.yaml)

    def __post_init__(self) -> None:
        if self.scale not in ("mini", "paper"):
            raise ConfigError(f"data.scale must be mini or paper, got {self.scale!r}")
        if self.scale == "mini":  # the paper scale uses the full splits and ignores these sizes
            for task in ("vqa", "caption", "translation"):
                for key in ("n_train", "n_val", "n_test", "max_words"):
                    value = getattr(getattr(self, task), key)
                    if value is not None and value < 1:
                        raise ConfigError(
                            f"data.{task}.{key} must be >= 1 at mini scale, got {value}: an empty split trains or "
                            "scores nothing"
                        )


@dataclasses.dataclass(frozen=True)
class FeaturesConfig:
    grid: int
    image_size: int
    batch_size: int


@dataclasses.dataclass(frozen=True)
class TeacherSetup:
    size: str | dict
    init_from: str = ""
    train: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class StudentSetup:
    """A student: a named size (or size dict), optional head and depth overrides, and its initialisation.

    heads: the head count at the size's attention width (d_kv or the head size grows as heads shrink).
    layers: the depth of every stack. init: random, pretrained (from init_from) or teacher (the teacher's layers).
    """

    size: str | dict
    heads: int | None = None
    layers: int | None = None
    init: str = "random"
    init_from: str = ""
    train: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.init not in ("random", "pretrained", "teacher"):
            raise ConfigError(f"student init must be random, pretrained or teacher, got {self.init!r}")
        for key in ("heads", "layers"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"student {key} must be a positive integer or null, got {value}")


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    train: TrainConfig
    layer_map: str
    kinds: dict[str, tuple[str, ...]]
    methods: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """How test sets are decoded.

    vqa_inference: family -> "generate" (free decoding; VL-T5's recipe) or "rank" (BLIP's recipe: score the
    ``rank_answers`` most frequent training answers, rescoring the ``rank_k`` with the likeliest first token).
    decoding: setup -> overrides of how it generates (``DECODING_KEYS``): num_beams, max_new_tokens, and
    min_length / max_length counting the decoder's prefix as transformers does (BLIP caption_coco.yaml: num_beams 3,
    min_length 5, max_length 20 with the [DEC] + "a picture of" prefix); max_length replaces max_new_tokens.
    num_workers: DataLoader worker processes that collate test batches ahead (0: in the evaluating process).
    """

    batch_size: int
    num_beams: int
    max_new_tokens: dict[str, int]
    latency_batch: int = 8
    vqa_inference: dict[str, str] = dataclasses.field(default_factory=lambda: {"vlt5": "generate", "blip": "rank"})
    rank_answers: int = 3128
    rank_k: int = 128
    coverage_examples: int = 64  # validation examples on which the students' head coverage is measured (claim C6)
    num_workers: int = 0
    decoding: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("batch_size", "num_beams", "latency_batch", "rank_answers", "rank_k", "coverage_examples"):
            if getattr(self, key) < 1:
                raise ConfigError(f"evaluate.{key} must be >= 1, got {getattr(self, key)}")
        missing = [task for task in TASKS if task not in self.max_new_tokens]
        unknown = sorted(set(self.max_new_tokens) - set(TASKS))
        if missing or unknown:
            problem = f"lacks {missing}" if missing else f"has unknown tasks {unknown}"
            raise ConfigError(f"evaluate.max_new_tokens {problem}: give one value for each of {', '.join(TASKS)}")
        for task, value in self.max_new_tokens.items():
            if value < 1:
                raise ConfigError(f"evaluate.max_new_tokens.{task} must be >= 1, got {value}")
        if self.num_workers < 0:
            raise ConfigError(
                f"evaluate.num_workers must be >= 0 (0 collates in the evaluating process), got {self.num_workers}"
            )
        for setup, options in self.decoding.items():
            parse_setup(setup)
            for key, value in options.items():
                if key not in DECODING_KEYS:
                    raise ConfigError(
                        f"unknown key evaluate.decoding.{setup}.{key}{did_you_mean(key, DECODING_KEYS)}: allowed keys "
                        f"are {', '.join(DECODING_KEYS)}"
                    )
                if value < (0 if key == "min_length" else 1):
                    raise ConfigError(
                        f"evaluate.decoding.{setup}.{key} must be >= {int(key != 'min_length')}, got {value}"
                    )

    def generation(self, setup: str, task: str) -> dict[str, int]:
        """How ``setup`` generates: num_beams and max_new_tokens, overridden and completed (min_length,
        max_length) by ``decoding[setup]``."""
        return {"num_beams": self.num_beams, "max_new_tokens": self.max_new_tokens[task]} | self.decoding.get(setup, {})


DECODING_KEYS = ("num_beams", "max_new_tokens", "min_length", "max_length")


# stage -> the params it reads ({setup} and {method} are the stage's matrix items); dvc.yaml lists the same keys,
# plus those its command interpolates (compute.launcher).
STAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "code": (),  # the code checksums (amad_suite.stage_deps) read no params
    "download": ("preset", "data"),
    "extract_features": ("data.scale", "features"),
    "teacher": ("data.scale", "data.seed", "teacher.train", "teacher.setups.{setup}"),
    "distill": (
        "compute.workers",
        "data.scale",
        "suite.{seeds}",
        "student.setups.{setup}",
        "distill.train",
        "distill.layer_map",
        "distill.kinds",
        "distill.methods.{method}",
    ),
    "evaluate_teacher": ("preset", "data.scale", "evaluate"),
    "evaluate": ("preset", "data.scale", "evaluate", "suite.{seeds}"),
    "report": ("preset", "suite", "report", "distill.methods"),
}
TOP_LEVEL = ("preset", "compute", "suite", "data", "features", "teacher", "student", "distill", "evaluate", "report")


def declared(params: Mapping[str, Any], stage: str, **items: str) -> dict[str, Any]:
    """The part of ``params`` that ``stage`` declares (STAGE_PARAMS, with its items filled in).

    Top-level names are checked against TOP_LEVEL first, so a misspelt section fails in every stage.

    Raises:
        ConfigError: an unknown top-level key, or a declared key missing from params.yaml.
    """
    for key in params:
        if key not in TOP_LEVEL:
            raise ConfigError(f"unknown top-level key {key!r} in params.yaml{did_you_mean(key, TOP_LEVEL)}")
    if "seeds" in items and items["seeds"] not in SEED_LISTS:
        raise ConfigError(f"--seeds-key must be one of {', '.join(SEED_LISTS)}, got {items['seeds']!r}")
    if "setup" in items:  # likewise the setup: blip-translation is named as impossible, not as a missing key
        parse_setup(items["setup"])
    if "method" in items:  # the method is the stage's item: an unknown one gets the method list, not "missing key"
        _check_method(items["method"], section(params, "distill.methods"))
    out: dict[str, Any] = {}
    for pattern in STAGE_PARAMS[stage]:
        dotted = pattern.format(**items)
        value = section(params, dotted)
        node = out
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


SEED_LISTS = ("seeds", "budget_seeds")  # suite.seeds for suite.setups, suite.budget_seeds for suite.budget_setups


def workers(params: Mapping[str, Any]) -> int:
    """``compute.workers``: how many seeds of a stage run at once on a CPU (amad_suite.pipeline.workers)."""
    value = section(params, "compute.workers")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"compute.workers must be an integer >= 1 (1 runs seeds one after another), got {value!r}")
    return value


def seeds(params: Mapping[str, Any], key: str) -> tuple[int, ...]:
    """The seeds of one group of setups: ``suite.seeds`` or ``suite.budget_seeds``."""
    if key not in SEED_LISTS:
        raise ConfigError(f"--seeds-key must be one of {', '.join(SEED_LISTS)}, got {key!r}")
    values = section(params, f"suite.{key}")
    if not isinstance(values, list) or not values or not all(isinstance(v, int) and v >= 0 for v in values):
        raise ConfigError(f"suite.{key} must be a non-empty list of seeds (integers >= 0), got {values!r}")
    if len(set(values)) != len(values):
        raise ConfigError(f"suite.{key} lists a seed twice: {values}; remove the repeat")
    return tuple(values)


def student_heads(value: Any) -> int | None:
    """A student head count of the matrix: ``"size"`` -> None (the setup's own), or a positive integer."""
    if value == "size":
        return None
    try:
        heads = int(value)
    except (TypeError, ValueError):
        heads = 0
    if heads < 1 or isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ConfigError(f"a student head count must be a positive integer or size, got {value!r}")
    return heads


def data_scale(params: Mapping[str, Any]) -> str:
    scale = section(params, "data.scale")
    if scale not in ("mini", "paper"):
        raise ConfigError(f"data.scale must be mini or paper, got {scale!r}")
    return scale


def data_seed(params: Mapping[str, Any]) -> int:
    seed = section(params, "data.seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"data.seed must be an integer, got {seed!r}")
    return seed


@dataclasses.dataclass(frozen=True)
class ClaimsConfig:
    """Which methods the claims compare, and C2's non-inferiority margin per task in headline-metric units."""

    amad: tuple[str, ...] = ("amad",)
    one_to_one: str = "one_to_one"
    logit: str = "logit"
    none: str = "none"
    margin: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.margin) - set(TASKS))
        if unknown or any(v < 0 for v in self.margin.values()):
            raise ConfigError(
                f"report.claims.margin maps tasks ({', '.join(TASKS)}) to margins >= 0, got {self.margin}"
            )


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    baseline: str = "logit"
    claims: ClaimsConfig = dataclasses.field(default_factory=ClaimsConfig)


def report(params: Mapping[str, Any]) -> ReportConfig:
    """The report section: the Δ column's baseline method and the claims' methods (all defined under
    distill.methods)."""
    cfg = from_dict(ReportConfig, section(params, "report"), "report")
    methods = section(params, "distill.methods")
    for name in (*cfg.claims.amad, cfg.claims.one_to_one, cfg.claims.logit, cfg.claims.none):
        _check_method(name, methods)
    return cfg


def merged_train(base: TrainConfig, override: Mapping[str, Any], where: str) -> TrainConfig:
    data = dataclasses.asdict(base) | dict(override)
    return from_dict(TrainConfig, data, where)


def suite(params: Mapping[str, Any]) -> SuiteConfig:
    cfg = from_dict(SuiteConfig, section(params, "suite"), "suite")
    for setup in (*cfg.setups, *cfg.budget_setups):
        parse_setup(setup)  # an unknown family or task, or BLIP with translation, fails here
    twice = sorted(set(cfg.setups) & set(cfg.budget_setups))
    if twice:
        raise ConfigError(f"{twice} are in both suite.setups and suite.budget_setups: keep each setup in one of them")
    for key in ("setups", "budget_setups", "seeds", "budget_seeds"):
        values = getattr(cfg, key)
        if len(set(values)) != len(values):
            raise ConfigError(f"suite.{key} lists a value twice: {list(values)}; remove the repeat")
    for setups, seeds in (("setups", "seeds"), ("budget_setups", "budget_seeds")):
        if getattr(cfg, setups) and not getattr(cfg, seeds):
            raise ConfigError(f"suite.{seeds} is empty but suite.{setups} is not: give at least one seed, e.g. [0]")
    if not cfg.all_setups:
        raise ConfigError("suite.setups and suite.budget_setups are both empty: list at least one setup")
    for heads in cfg.student_heads:
        student_heads(heads)
    if not cfg.student_heads or len(set(cfg.student_heads)) != len(cfg.student_heads):
        raise ConfigError(
            f"suite.student_heads must list distinct head counts (or size), got {list(cfg.student_heads)}"
        )
    methods = section(params, "distill.methods")
    for method in (*cfg.methods, *cfg.budget_methods):
        _check_method(method, methods)
    if cfg.budget_setups and not cfg.budget_methods:
        raise ConfigError("suite.budget_methods is empty but suite.budget_setups is not: list the methods they run")
    return cfg


def _check_method(method: str, methods: Mapping[str, Any]) -> None:
    """Raise UnknownNameError, with near matches, unless ``method`` is defined under distill.methods."""
    if method not in methods:
        raise unknown_name("method", method, methods)


def data(params: Mapping[str, Any]) -> DataConfig:
    return from_dict(DataConfig, section(params, "data"), "data")


def features(params: Mapping[str, Any]) -> FeaturesConfig:
    return from_dict(FeaturesConfig, section(params, "features"), "features")


def teacher_setup(params: Mapping[str, Any], setup: str) -> tuple[TeacherSetup, TrainConfig]:
    parse_setup(setup)
    raw = section(params, "teacher.setups")
    if setup not in raw:
        raise ConfigError(f"teacher.setups has no entry for {setup!r}: add one (see configs/presets/mini.yaml)")
    cfg = from_dict(TeacherSetup, raw[setup], f"teacher.setups.{setup}")
    base = from_dict(TrainConfig, section(params, "teacher.train"), "teacher.train")
    return cfg, merged_train(base, cfg.train, f"teacher.setups.{setup}.train")


def student_setup(params: Mapping[str, Any], setup: str) -> StudentSetup:
    parse_setup(setup)
    raw = section(params, "student.setups")
    if setup not in raw:
        raise ConfigError(f"student.setups has no entry for {setup!r}: add one (see configs/presets/mini.yaml)")
    return from_dict(StudentSetup, raw[setup], f"student.setups.{setup}")


def student_train(params: Mapping[str, Any], setup: str) -> TrainConfig:
    """distill.train with the setup's own overrides (student.setups.<setup>.train) merged on top."""
    return merged_train(distill(params).train, student_setup(params, setup).train, f"student.setups.{setup}.train")


def distill(params: Mapping[str, Any]) -> DistillConfig:
    cfg = from_dict(DistillConfig, section(params, "distill"), "distill")
    if cfg.layer_map not in ("uniform", "last"):
        raise ConfigError(f"distill.layer_map must be uniform or last, got {cfg.layer_map!r}")
    for name in RESERVED_METHODS:
        if name in section(params, "distill.methods"):
            raise ConfigError(f"distill.methods cannot define {name!r}: the name labels a report row; rename it")
    return cfg


def method_terms(params: Mapping[str, Any], method: str) -> tuple[Term, ...]:
    methods = section(params, "distill.methods")
    _check_method(method, methods)
    return parse_method(method, methods[method])


RANK_FAMILIES = ("blip",)  # families whose DistillModel overrides rank_answers (a test keeps this in step)


def evaluate(params: Mapping[str, Any]) -> EvalConfig:
    cfg = from_dict(EvalConfig, section(params, "evaluate"), "evaluate")
    for family, how in cfg.vqa_inference.items():
        if family not in FAMILY_TASKS:
            raise ConfigError(f"unknown family {family!r} in evaluate.vqa_inference: use {' and '.join(FAMILY_TASKS)}")
        if how not in ("generate", "rank"):
            raise ConfigError(f"evaluate.vqa_inference.{family} must be generate or rank, got {how!r}")
        if how == "rank" and family not in RANK_FAMILIES:
            raise ConfigError(f"evaluate.vqa_inference.{family}: rank inference is BLIP's recipe only; use generate")
    return cfg


def validate_all(params: Mapping[str, Any]) -> SuiteConfig:
    """Check every section up front so a typo fails before any work starts."""
    for key in params:
        if key not in TOP_LEVEL:
            raise ConfigError(f"unknown top-level key {key!r} in params.yaml{did_you_mean(key, TOP_LEVEL)}")
    check_preset(section(params, "preset"))
    cfg = suite(params)
    workers(params)
    data(params)
    features(params)
    distill(params)
    evaluate(params)
    report(params)
    for setup in cfg.all_setups:
        teacher_setup(params, setup)
        student_train(params, setup)
    for method in cfg.methods:
        method_terms(params, method)
    return cfg
