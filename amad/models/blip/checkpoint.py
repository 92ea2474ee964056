"""BLIP configs from size dicts, checkpoint loading, and weight initialisation (pretrained / teacher layers).

Every copy is strict (amad.models.loading): a tensor that cannot be copied is an error, never a silent random init.

Built on transformers' port: ``BlipForQuestionAnswering`` (vqa) and ``BlipForConditionalGeneration`` (caption),
always with ``attn_implementation="eager"`` (the only one BLIP has, and the one that yields attention maps).

Pretrained weights (:func:`load_pretrained`) come from a transformers folder or hub id, or from one of BLIP's
original ``.pth`` files (converted by amad.models.blip.original). Checkpoints fine-tuned on VQA v2 have seen the
val2014 images, which hold the Karpathy test split; :func:`karpathy_test_leak` names them, and the load report says so.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering

from amad.errors import CheckpointError, ConfigError
from amad.models.blip import original
from amad.models.loading import LoadReport, strict_copy

log = logging.getLogger(__name__)

INIT_STD = 0.02  # std of every randomly initialised BLIP weight matrix and embedding (BERT / ViT's standard)
HF_CLASSES: dict[str, type] = {"vqa": BlipForQuestionAnswering, "caption": BlipForConditionalGeneration}
ARCH_TASKS = {"BlipForQuestionAnswering": "vqa", "BlipForConditionalGeneration": "caption"}
FAMILY_HINTS = {"t5": "vlt5"}
# Layer stacks per task: (state-dict prefix of layer i, which size tower gives its layer count).
TOWERS: dict[str, dict[str, tuple[str, str]]] = {
    "vqa": {
        "vision": ("vision_model.encoder.layers.", "vision"),
        "question encoder": ("text_encoder.encoder.layer.", "text"),
        "answer decoder": ("text_decoder.bert.encoder.layer.", "text"),
    },
    "caption": {
        "vision": ("vision_model.encoder.layers.", "vision"),
        "caption decoder": ("text_decoder.bert.encoder.layer.", "text"),
    },
}


def special_ids(tokenizer: Any, task: str) -> dict[str, int]:
    """bos ([DEC]), sep/eos ([SEP]), pad and, for VQA, enc ([ENC]) token ids from a tokenizer.

    Raises:
        ConfigError: a needed special token is missing or lies outside the vocabulary.
    """
    vocab = tokenizer.get_vocab()
    enc = next((vocab[t] for t in ("<enc>", "[ENC]") if t in vocab), tokenizer.cls_token_id)
    ids = {
        "bos": tokenizer.bos_token_id,
        "sep": tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id,
        "pad": tokenizer.pad_token_id,
    }
    if task == "vqa":
        ids["enc"] = enc
    for name, value in ids.items():
        if value is None or not 0 <= value < len(tokenizer):
            raise ConfigError(
                f"BLIP needs a {name} token in the tokenizer (got id {value}): use a tokenizer with <s>/[DEC] bos, "
                "</s>/[SEP] eos, <pad> and <enc>/[ENC] tokens"
            )
    return ids


def blip_config(task: str, size: Mapping[str, Any], tokenizer: Any) -> BlipConfig:
    """A BlipConfig for a validated blip size dict; text heads are always set explicitly (HF's default is 8).

    Raises:
        ConfigError: widths not divisible by the head count, image not divisible by the patch, or (VQA) text and
            vision widths that differ.
    """
    vision, text = size["vision"], size["text"]
    for tower, sub in (("vision", vision), ("text", text)):
        if sub["hidden_size"] % sub["num_attention_heads"]:
            raise ConfigError(
                f"blip {tower} hidden_size {sub['hidden_size']} is not divisible by num_attention_heads "
                f"{sub['num_attention_heads']}: change one so that hidden_size % num_attention_heads == 0"
            )
    if vision["image_size"] % vision["patch_size"]:
        raise ConfigError(
            f"blip vision image_size {vision['image_size']} is not divisible by patch_size {vision['patch_size']}: "
            "change one of them"
        )
    if task == "vqa" and text["hidden_size"] != vision["hidden_size"]:
        raise ConfigError(
            f"BLIP VQA needs text hidden_size == vision hidden_size (the answer decoder's cross-attention is sized "
            f"by the vision width but reads the question encoder), got text {text['hidden_size']} and vision "
            f"{vision['hidden_size']}: set both to the same width"
        )
    ids = special_ids(tokenizer, task)
    dropout = float(size["dropout"])
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": text["hidden_size"],
        "encoder_hidden_size": vision["hidden_size"],
        "intermediate_size": text["intermediate_size"],
        "num_hidden_layers": text["num_hidden_layers"],
        "num_attention_heads": text["num_attention_heads"],
        "hidden_dropout_prob": dropout,
        "attention_probs_dropout_prob": dropout,
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["sep"],
        "sep_token_id": ids["sep"],
        "pad_token_id": ids["pad"],
        "initializer_range": INIT_STD,
    }
    # vision attention dropout stays 0: BlipAttention returns post-dropout maps, which would corrupt distillation.
    # initializer_range: BlipVisionConfig defaults to 1e-10, which leaves a randomly initialised vision tower at
    # ~0 (uniform attention, zero q/k gradient: issue 12, B2); every BLIP part gets BERT/ViT's standard 0.02.
    vision_config = {key: vision[key] for key in vision} | {"attention_dropout": 0.0, "initializer_range": INIT_STD}
    # label smoothing stays at transformers' default: the wrapper computes the task loss (DistillModel.label_smoothing)
    return BlipConfig(text_config=text_config, vision_config=vision_config, initializer_range=INIT_STD)


def new_hf_model(task: str, config: BlipConfig) -> nn.Module:
    """A randomly initialised transformers BLIP model for ``task`` (eager attention)."""
    return HF_CLASSES[task]._from_config(config, attn_implementation="eager")


def size_from_config(config: BlipConfig) -> dict[str, Any]:
    """The blip size dict that ``blip_config`` would turn back into ``config``."""
    v, t = config.vision_config, config.text_config
    return {
        "family": "blip",
        "vision": {
            "hidden_size": v.hidden_size,
            "num_hidden_layers": v.num_hidden_layers,
            "num_attention_heads": v.num_attention_heads,
            "intermediate_size": v.intermediate_size,
            "image_size": v.image_size,
            "patch_size": v.patch_size,
        },
        "text": {
            "hidden_size": t.hidden_size,
            "num_hidden_layers": t.num_hidden_layers,
            "num_attention_heads": t.num_attention_heads,
            "intermediate_size": t.intermediate_size,
        },
        "dropout": float(t.hidden_dropout_prob),
    }


def load_hf_blip(source: str, task: str | None = None) -> tuple[nn.Module, str]:
    """Load a transformers BLIP checkpoint (local folder or hub id) with eager attention.

    Args:
        source: a folder with ``config.json`` + weights, or a hub id such as ``Salesforce/blip-vqa-base``.
        task: "vqa" or "caption"; None infers it from the checkpoint's architecture.

    Returns:
        (model, task).

    Raises:
        CheckpointError: unreadable, not BLIP, another task's checkpoint, wrong shapes or missing weights.
    """
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot read a BLIP checkpoint at {source!r} ({first}): give a folder with config.json or a hub id"
        ) from None
    if config.model_type != "blip":
        hint = FAMILY_HINTS.get(config.model_type)
        fix = f"use family {hint!r}, or give a BLIP checkpoint" if hint else "give a BLIP checkpoint"
        raise CheckpointError(f"{source!r} holds a {config.model_type!r} model, not BLIP: {fix}")
    arch_task = next((ARCH_TASKS[a] for a in (config.architectures or []) if a in ARCH_TASKS), None)
    if task is None:
        task = arch_task or "vqa"
    elif arch_task is not None and arch_task != task:
        raise CheckpointError(
            f"{source!r} is a BLIP {arch_task} checkpoint but task {task!r} was asked for: use a {task} checkpoint, "
            "or init='pretrained' to copy the matching weights"
        )
    try:
        model, info = HF_CLASSES[task].from_pretrained(source, attn_implementation="eager", output_loading_info=True)
    except (RuntimeError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot load the BLIP weights in {source!r} ({first}): the weights do not fit its config"
        ) from None
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        raise CheckpointError(
            f"{source!r} lacks {len(missing)} BLIP {task} weights (e.g. {missing[0]}): give a complete checkpoint"
        )
    return model, task


# Checkpoints trained on VQA v2 train + val (BLIP configs/vqa.yaml): hub ids Salesforce/blip-vqa-*, and BLIP's
# model_vqa.pth / model_base_vqa_capfilt_large.pth / model_large_vqa.pth (any file or id naming vqa).
_SAW_VAL2014 = re.compile(r"vqa", re.IGNORECASE)


def karpathy_test_leak(source: str) -> str | None:
    """Why a BLIP checkpoint has seen the Karpathy test images, or None (pre-training and caption checkpoints)."""
    name = str(source).replace("\\", "/").rstrip("/").split("/")[-1]
    if _SAW_VAL2014.search(name):
        return (
            f"{source} was fine-tuned on VQA v2 train+val; the Karpathy test split is part of val2014, so scores on it "
            "are inflated (fine-tune from model_base_capfilt_large.pth instead)"
        )
    return None


def load_pretrained(model: nn.Module, source: str, task: str) -> dict[str, Any]:
    """Fill a transformers BLIP ``model`` of ``task`` from ``source``; return the load report as a dict.

    ``source``: a file is one of BLIP's original ``.pth`` checkpoints (pre-training or fine-tuned; converted to
    transformers' names, modules the task's model lacks dropped); anything else a transformers folder or hub id.
    The report adds ``saw_test_split``: :func:`karpathy_test_leak` of the source (None when clean).

    Raises:
        CheckpointError: unreadable, not BLIP, or a tensor that cannot be copied (strict, see amad.models.loading).
    """
    fix = "match the model to the checkpoint (tokenizer rows, image_size, widths), or use init 'random'"
    if Path(source).is_file():
        state, dropped = original.to_hf_names(original.read_checkpoint(source), task)
        log.info("%s: %d original BLIP tensors converted, %d left out (%s)", source, len(state), len(dropped), task)
    else:
        hf_source, _ = load_hf_blip(source)
        state = hf_source.state_dict()
    report = strict_copy(model, state, source_name=str(source), family="blip", fix=fix).to_json()
    return report | {"saw_test_split": karpathy_test_leak(source)}


def _layer_count(model: nn.Module, tower: str) -> int:
    config = model.config.vision_config if tower == "vision" else model.config.text_config
    return int(config.num_hidden_layers)


def copy_teacher_layers(
    student: nn.Module, teacher: nn.Module, task: str, layer_pairs: Sequence[tuple[int, int]] | None
) -> LoadReport:
    """Initialise a student from teacher weights: layer i of each stack from the teacher layer paired with it.

    Non-layer weights (embeddings, final norms, LM head) are copied by name. Every student tensor must be filled
    (a student of another width cannot be built from the teacher's layers); a student with fewer heads at the
    teacher's width takes the same matrices, so its head j holds teacher heads j·r .. j·r + r − 1 (r = Ht/Hs).

    Args:
        student, teacher: transformers BLIP models of the same task.
        layer_pairs: (student_layer, teacher_layer) pairs applied to every stack; None maps each stack uniformly
            with ``amad.capture.mapping.map_layers("uniform", ...)``, as the capture does.

    Returns:
        The load report (amad.models.loading.LoadReport).

    Raises:
        ConfigError: a pair outside a stack's layer range.
        CheckpointError: student tensors of another shape than the teacher's (the message lists them).
    """
    source = teacher.state_dict()
    pairs_by_prefix: dict[str, dict[int, int]] = {}
    for name, (prefix, tower) in TOWERS[task].items():
        n_student, n_teacher = _layer_count(student, tower), _layer_count(teacher, tower)
        if layer_pairs is None:
            from amad.capture.mapping import map_layers

            pairs = map_layers("uniform", n_teacher, n_student)
        else:
            pairs = [tuple(p) for p in layer_pairs]
        for s, t in pairs:
            if not (0 <= s < n_student and 0 <= t < n_teacher):
                raise ConfigError(
                    f"layer pair ({s}, {t}) is out of range for the BLIP {name} stack ({n_student} student, "
                    f"{n_teacher} teacher layers): give pairs within both"
                )
        pairs_by_prefix[prefix] = dict(pairs)
    renamed: dict[str, torch.Tensor] = {}
    pattern = re.compile(r"^(" + "|".join(re.escape(p) for p in pairs_by_prefix) + r")(\d+)\.(.*)$")
    for name in student.state_dict():
        match = pattern.match(name)
        if match is None:
            if name in source:
                renamed[name] = source[name]
            continue
        prefix, layer, rest = match.group(1), int(match.group(2)), match.group(3)
        t_layer = pairs_by_prefix[prefix].get(layer)
        if t_layer is not None and f"{prefix}{t_layer}.{rest}" in source:
            renamed[name] = source[f"{prefix}{t_layer}.{rest}"]
    report = strict_copy(
        student,
        renamed,
        source_name="the BLIP teacher",
        family="blip",
        fix="init 'teacher' needs the teacher's widths (hidden and intermediate sizes): change the student size "
        "or use init 'random'",
    )
    log.info("BLIP teacher init: %d tensors copied", report.copied)
    return report
