"""Strict, frozen configuration objects built from params.yaml sections.

Unknown keys, missing keys and wrong types are one-line ConfigErrors with near matches, raised before any work.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from amad.errors import ConfigError
from amad.registry import did_you_mean as _near

T = TypeVar("T")

# The choices of TrainConfig.vqa_targets and .augment: amad.data.targets.TARGET_MODES and
# amad.data.batches.AUGMENT_MODES (not imported: those import torch, which params-only stages never load; a test holds
# them equal).
TARGET_MODES = ("top", "sample", "all", "recipe")
AUGMENT_MODES = ("none", "blip", "blip_keep_sides")
PRESETS = ("mini", "paper", "smoke", "rehearsal", "study")  # overlays: rehearsal (on paper), study (on mini)
TASKS = ("vqa", "caption", "translation")
FAMILY_TASKS = {"vlt5": ("vqa", "caption", "translation"), "blip": ("vqa", "caption")}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}: write it as [a, b, ...] in params.yaml")
        inner = args[0] if args else Any
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or annotation in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        key_t, val_t = args if args else (Any, Any)
        return {_coerce(k, key_t, where): _coerce(v, val_t, f"{where}.{k}") for k, v in value.items()}
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 (PyYAML) reads a hand-written 1e-3 as the string "1e-3"
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from ``data``; unknown or missing keys raise a one-line ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown key {where}.{key}{_near(str(key), list(fields))}: allowed keys are {', '.join(fields)}"
            )
    kwargs = {}
    for name, field in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key {where}.{name} in params.yaml: add it (see configs/presets/mini.yaml)")
    return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (VL-T5's paper settings: AdamW, lr 5e-5, warmup 0.1, clip 5).

    batch_size: examples per micro-batch over all ranks (each of n GPUs takes batch_size / n); one optimizer step
        sees batch_size x grad_accum examples (VL-T5: 80 per GPU x 4 GPUs = 320 = batch_size 80 x grad_accum 4 on
        one GPU, or batch_size 320 x grad_accum 1 on four).
    label_smoothing: of the task loss, for every family (the one setting that controls it; BLIP's recipe is 0.1).
    num_workers: DataLoader worker processes that build batches ahead (0: in the training process); the batches
        are the same either way.
    vqa_targets: VQA training targets (amad.data.targets): top (the top-scored answer), sample (VL-T5: one answer
        drawn in proportion to its score every step), all (BLIP: every distinct answer, weight count / n) or recipe
        (the family's own).
    augment: image augmentation of BLIP batches (amad.data.visual.augment): none, blip (random resized crop, scale
        0.5-1, and horizontal flip, as BLIP) or blip_keep_sides (no flip for texts that say left or right).
    select_on_val: keep the weights that score best on the validation split (the task's headline metric, greedy
        or val_num_beams decoding) instead of the last ones, evaluated every eval_every steps (null: after every
        epoch) and at the last step; val_examples caps the validation examples (null: all).
    """

    epochs: int
    batch_size: int
    lr: float
    warmup: float = 0.1
    clip: float = 5.0
    weight_decay: float = 0.01
    grad_accum: int = 1
    max_steps: int | None = None
    checkpoint_every: int = 200
    log_every: int = 20
    mixed_precision: str | bool = "fp32"
    label_smoothing: float = 0.0
    num_workers: int = 0
    vqa_targets: str = "top"
    augment: str = "none"
    select_on_val: bool = False
    eval_every: int | None = None
    val_examples: int | None = None
    val_num_beams: int = 1

    def __post_init__(self) -> None:
        # "fp32" rather than accelerate's "no": YAML 1.1 reads an unquoted no as false, and `dvc exp run -S`
        # rewrites params.yaml without the quotes. false / "no" are accepted and mean fp32 too.
        value = "fp32" if self.mixed_precision in (False, "no") else self.mixed_precision
        if value not in ("fp32", "bf16", "fp16"):
            raise ConfigError(f"mixed_precision must be fp32, bf16 or fp16, got {self.mixed_precision!r}")
        object.__setattr__(self, "mixed_precision", value)
        at_least_one = ("epochs", "batch_size", "grad_accum", "checkpoint_every", "log_every")
        for key in at_least_one:
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"train.max_steps must be >= 1 (or null for the epochs' steps), got {self.max_steps}")
        if not self.lr > 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")
        ranges = {"warmup": (0.0, 1.0), "label_smoothing": (0.0, 1.0)}
        for key, (low, high) in ranges.items():
            if not low <= getattr(self, key) < high:
                raise ConfigError(f"train.{key} must be in [{low}, {high}), got {getattr(self, key)}")
        for key in ("clip", "weight_decay"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key} must be >= 0 (0 turns it off), got {getattr(self, key)}")
        if self.num_workers < 0:
            raise ConfigError(
                f"train.num_workers must be >= 0 (0 builds batches in the training process), got {self.num_workers}"
            )
        for key, choices in (("vqa_targets", TARGET_MODES), ("augment", AUGMENT_MODES)):
            if getattr(self, key) not in choices:
                raise ConfigError(f"train.{key} must be one of {', '.join(choices)}, got {getattr(self, key)!r}")
        for key in ("eval_every", "val_examples"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"train.{key} must be >= 1 or null, got {value}")
        if self.val_num_beams < 1:
            raise ConfigError(f"train.val_num_beams must be >= 1, got {self.val_num_beams}")

    def record(self) -> dict[str, Any]:
        """The settings as a dict for a run's record and fingerprint.

        ``num_workers`` is left out (it changes no batch), and so are the options in ``RECORDED_IF_SET`` while at
        their defaults: runs finished before those options existed keep their fingerprints (and are not retrained).
        """
        data = dataclasses.asdict(self)
        data.pop("num_workers")
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in RECORDED_IF_SET:
            if data[name] == defaults[name]:
                data.pop(name)
        return data


# TrainConfig options added after runs were recorded: part of a run's record only when set to another value.
RECORDED_IF_SET = ("vqa_targets", "augment", "select_on_val", "eval_every", "val_examples", "val_num_beams")


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml; a missing or unparsable file is a one-line ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found: run from the repository root, or restore it with `git checkout {path}`")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{where}: fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    return data


def section(params: Mapping[str, Any], dotted: str) -> Any:
    """Return params[a][b]... for 'a.b'; a missing key is a ConfigError naming it."""
    node: Any = params
    walked = []
    for part in dotted.split("."):
        walked.append(part)
        if not isinstance(node, Mapping) or part not in node:
            choices = list(node) if isinstance(node, Mapping) else []
            raise ConfigError(f"missing key {'.'.join(walked)} in params.yaml{_near(part, choices)}")
        node = node[part]
    return node


def check_preset(name: Any) -> str:
    if name not in PRESETS:
        raise ConfigError(
            f"unknown preset {name!r}{_near(str(name), list(PRESETS))}: choose one of {', '.join(PRESETS)}"
        )
    return name


def parse_setup(setup: str) -> tuple[str, str]:
    """'vlt5-vqa' -> ('vlt5', 'vqa'), checking that the family has that task."""
    family, _, task = str(setup).partition("-")
    if family not in FAMILY_TASKS:
        raise ConfigError(f"unknown family {family!r} in setup {setup!r}{_near(family, list(FAMILY_TASKS))}")
    if task not in FAMILY_TASKS[family]:
        if family == "blip" and task == "translation":
            raise ConfigError(
                f"setup {setup!r} makes no sense: BLIP has no Multi30K translation task; use vlt5-translation"
            )
        raise ConfigError(
            f"unknown task {task!r} in setup {setup!r}{_near(task, list(FAMILY_TASKS[family]))}: "
            f"{family} supports {', '.join(FAMILY_TASKS[family])}"
        )
    return family, task
