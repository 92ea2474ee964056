"""Named model sizes (``MODEL_SIZES``) and validation of size dicts.

Tiny sizes train to a useful level on the mini data in about a minute on 2 CPU cores; smoke sizes are the
smallest models that exercise every code path (CI); paper sizes are the published architectures.

Choices worth knowing:
- ``vlt5-tiny-student`` keeps the teacher's width (d_model 128, 4 heads x d_kv 32 = 128) so that
  ``init="teacher"`` can copy whole layers; it halves the heads and drops a layer per stack.
- BLIP students keep the vision width equal to the text width: ``BlipForQuestionAnswering`` requires
  text hidden == encoder hidden == vision hidden. ``blip-small`` therefore keeps 768 and halves depth and heads
  (6 layers x 6 heads of 128) in both towers, so the teacher's layers can initialise it.
- ``blip-tiny-*`` cut the 64-pixel mini images into 16-pixel patches (a 4 x 4 grid, 17 vision tokens). With
  8-pixel patches (65 tokens) the vision tower took half of every BLIP step: a teacher step cost 235 ms instead of
  126 ms on 2 cores, for a caption teacher that scored lower (CIDEr 240 against 260). The VQA teacher scores
  73.1 after 1,500 steps at patch 16 (80.4 after 2,000) where patch 8 reached 84.9: 210 s of training instead of
  about 400.
- ``vlt5-*`` mini sizes assume the mini feature store: ``feat_dim`` 64, ``n_boxes`` 16 (override per run).
- Optional VL-T5 keys: ``pretrained`` (HF T5 folder or hub id), ``vocab_rows`` (embedding rows, e.g. 32200).
- Optional BLIP keys: ``prompt`` (the caption prompt masked out of the loss; BLIP uses "a picture of ", empty at
  mini scale) and ``pretrained``. Label smoothing is a training setting (``TrainConfig.label_smoothing``; BLIP's
  recipe is 0.1), not a size key.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from amad.errors import ConfigError
from amad.registry import Registry

MODEL_SIZES: Registry[dict] = Registry("model size")  # name -> size dict (registered below)

VLT5_KEYS = (
    "d_model",
    "d_kv",
    "d_ff",
    "num_layers",
    "num_decoder_layers",
    "num_heads",
    "feat_dim",
    "n_boxes",
    "dropout",
)
VLT5_OPTIONAL = ("pretrained", "vocab_rows")
BLIP_KEYS = ("vision", "text", "dropout")
BLIP_OPTIONAL = ("prompt", "pretrained")
BLIP_VISION_KEYS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "image_size",
    "patch_size",
)
BLIP_TEXT_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def _vlt5(d_model: int, d_kv: int, d_ff: int, layers: int, heads: int, feat_dim: int, n_boxes: int, dropout: float):
    return {
        "family": "vlt5",
        "d_model": d_model,
        "d_kv": d_kv,
        "d_ff": d_ff,
        "num_layers": layers,
        "num_decoder_layers": layers,
        "num_heads": heads,
        "feat_dim": feat_dim,
        "n_boxes": n_boxes,
        "dropout": dropout,
    }


def _blip(vision: tuple[int, int, int, int, int, int], text: tuple[int, int, int, int], dropout: float, **extra: Any):
    return {
        "family": "blip",
        "vision": dict(zip(BLIP_VISION_KEYS, vision, strict=True)),
        "text": dict(zip(BLIP_TEXT_KEYS, text, strict=True)),
        "dropout": dropout,
        **extra,
    }


# name -> size dict. vision: (hidden, layers, heads, intermediate, image, patch); text: (hidden, layers, heads, ffn)
_SIZES: dict[str, dict[str, Any]] = {
    "vlt5-smoke-teacher": _vlt5(32, 8, 64, 2, 4, 64, 16, 0.0),
    "vlt5-smoke-student": _vlt5(32, 16, 64, 1, 2, 64, 16, 0.0),
    "vlt5-tiny-teacher": _vlt5(128, 16, 256, 3, 8, 64, 16, 0.0),
    "vlt5-tiny-student": _vlt5(128, 32, 256, 2, 4, 64, 16, 0.0),
    "vlt5-base": _vlt5(768, 64, 3072, 12, 12, 2048, 36, 0.1),
    "vlt5-small": _vlt5(512, 64, 2048, 6, 8, 2048, 36, 0.1),
    "blip-smoke-teacher": _blip((32, 2, 4, 64, 32, 16), (32, 2, 4, 64), 0.0),
    "blip-smoke-student": _blip((32, 1, 2, 64, 32, 16), (32, 1, 2, 64), 0.0),
    "blip-tiny-teacher": _blip((128, 3, 8, 256, 64, 16), (128, 3, 8, 256), 0.0),
    "blip-tiny-student": _blip((128, 2, 4, 256, 64, 16), (128, 2, 4, 256), 0.0),
    "blip-base": _blip((768, 12, 12, 3072, 384, 16), (768, 12, 12, 3072), 0.1, prompt="a picture of "),
    "blip-small": _blip((768, 6, 6, 3072, 384, 16), (768, 6, 6, 3072), 0.1, prompt="a picture of "),
}
for _name, _size in _SIZES.items():
    MODEL_SIZES.add(_name, _size)


def _check_keys(where: str, size: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]) -> None:
    allowed = ("family", *required, *optional) if where in ("vlt5", "blip") else required
    unknown = sorted(set(size) - set(allowed))
    missing = [k for k in required if k not in size]
    if unknown or missing:
        problem = f"unknown keys {unknown}" if unknown else f"missing keys {missing}"
        raise ConfigError(f"{where} size has {problem}: allowed keys are {', '.join(allowed)}")
    for key in (*required, *(k for k in ("vocab_rows",) if k in size)):
        value = size[key]
        if key in ("vision", "text"):
            continue
        if key == "dropout":
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ConfigError(f"{where} size key 'dropout' must be a number in [0, 1), got {value!r}")
        elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{where} size key {key!r} must be a positive integer, got {value!r}")


def validate_size(size: Mapping[str, Any], family: str | None = None) -> dict[str, Any]:
    """Check a size dict's keys and value types and return a deep copy.

    Args:
        size: a size dict (schema in the module docstring of ``amad.models.sizes``).
        family: the family the caller builds; the dict's ``family`` must agree when both are given.

    Raises:
        ConfigError: unknown or missing keys (the message lists the allowed keys), bad values, wrong family.
    """
    if not isinstance(size, Mapping):
        raise ConfigError(f"a model size must be a name or a dict, got {type(size).__name__}")
    fam = size.get("family", family)
    if family is not None and fam != family:
        raise ConfigError(f"model size is for family {fam!r} but the model family is {family!r}: use a {family} size")
    if fam == "vlt5":
        _check_keys("vlt5", size, VLT5_KEYS, VLT5_OPTIONAL)
    elif fam == "blip":
        _check_keys("blip", size, BLIP_KEYS, BLIP_OPTIONAL)
        for tower, keys in (("vision", BLIP_VISION_KEYS), ("text", BLIP_TEXT_KEYS)):
            if not isinstance(size[tower], Mapping):
                raise ConfigError(f"blip size key {tower!r} must be a dict with keys {', '.join(keys)}")
            _check_keys(f"blip {tower}", size[tower], keys, ())
    else:
        raise ConfigError(f"model size needs 'family': 'vlt5' or 'blip', got {fam!r}")
    out = copy.deepcopy(dict(size))
    out["family"] = fam
    return out


def resolve_size(size_or_name: str | Mapping[str, Any], family: str | None = None) -> dict[str, Any]:
    """A registered size name or a size dict -> a validated copy of the size dict.

    Raises:
        UnknownNameError: an unknown name (the message lists near matches).
        ConfigError: an invalid dict (see ``validate_size``).
    """
    size = MODEL_SIZES.get(size_or_name) if isinstance(size_or_name, str) else size_or_name
    return validate_size(size, family)
