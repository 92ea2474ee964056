"""Weights into a VL-T5 model: VL-T5's released ``Epoch30.pth``, Hugging Face T5 checkpoints, and a teacher's layers.

``Epoch30.pth`` (j-min/VL-T5, pre-trained on COCO+VG) is a plain ``state_dict`` saved from the DDP-wrapped model:
keys may carry ``module.``; older runs name the encoder ``vis_encoder.``; the tied aliases
(``encoder/decoder.embed_tokens``, ``lm_head``, ``encoder.visual_embedding.obj_order_embedding``) and transformers
4.2.1's unused ``decoder.block.0.layer.1.EncDecAttention.relative_attention_bias`` are present as well. We remap as
VL-T5's own loaders do (``utils.load_state_dict`` strips ``module.``, ``trainer_base.load_checkpoint`` renames
``vis_encoder.`` to ``encoder.``), drop the aliases, and then require an exact match of keys and shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amad.capture.mapping import map_layers
from amad.errors import CheckpointError, ConfigError
from amad.models.loading import LoadReport, strict_copy

# The released vocabulary: t5-base SentencePiece 32000 + 100 <extra_id_*> + 100 <vis_extra_id_*>.
VLT5_VOCAB_ROWS = 32200
# Parameters that share storage with ``shared.weight`` in a tied T5 (present in state dicts under these names too).
TIED_ALIASES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight")
# Keys of released checkpoints that the port does not have: an alias of ``shared`` and a bias 4.2.1 never used.
DROPPED_KEYS = (
    "encoder.visual_embedding.obj_order_embedding.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
)
BLIP_MARKERS = ("visual_encoder.", "text_encoder.", "text_decoder.", "vision_model.", "vision_proj.", "itm_head.")
VISUAL_PREFIX = "encoder.visual_embedding."
# Which size parameter a key's dimension comes from, for shape-mismatch hints: (key regex, dim, size name).
_SIZE_HINTS = (
    (r"relative_attention_bias\.weight$", 1, "num_heads"),
    (r"relative_attention_bias\.weight$", 0, "relative_attention_num_buckets"),
    (r"feat_embedding\.0\.weight$", 1, "feat_dim"),
    (r"absolute_vis_pos_embedding\.0\.weight$", 1, "pos_dim + 1 (VL-T5: 5)"),
    (r"img_order_embedding\.weight$", 0, "n_images"),
    (r"shared\.weight$", 0, "vocab_rows"),
    (r"DenseReluDense\.wi\.weight$", 0, "d_ff"),
    (r"DenseReluDense\.wo\.weight$", 1, "d_ff"),
    (r"\.(q|k|v)\.weight$", 0, "num_heads * d_kv"),
    (r"\.o\.weight$", 1, "num_heads * d_kv"),
    (r"(shared|img_order_embedding)\.weight$|\.(q|k|v|wi)\.weight$", 1, "d_model"),
    (r"layer_norm\.weight$|\.(o|wo)\.weight$|_embedding\.\d\.(weight|bias)$", 0, "d_model"),
)


def read_state_dict(path_or_state_dict: str | Path | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict from a mapping, a ``.pth``/``.bin`` (torch.load, weights only) or a ``.safetensors`` file.

    A training checkpoint that nests the weights under ``state_dict``/``model``/``model_state_dict`` is unwrapped.
    """
    if isinstance(path_or_state_dict, Mapping):
        state = dict(path_or_state_dict)
    else:
        path = Path(path_or_state_dict)
        if not path.is_file():
            raise CheckpointError(f"checkpoint file not found: {path}: pass the path of Epoch30.pth (or a state dict)")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt file, pickle of arbitrary objects, ...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"cannot read checkpoint {path}: {first}: re-download the file") from None
    for nest in ("state_dict", "model_state_dict", "model"):
        if isinstance(state.get(nest), Mapping):
            state = dict(state[nest])
            break
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def remap_vlt5_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``module.`` stripped, ``vis_encoder.`` -> ``encoder.``, tied aliases and unused keys dropped."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        if key.startswith("vis_encoder."):
            key = "encoder." + key[len("vis_encoder.") :]
        if key in TIED_ALIASES or key in DROPPED_KEYS:
            continue
        out[key] = value
    return out


def check_family(keys: Sequence[str], source: str) -> None:
    """Raise CheckpointError unless the (remapped) keys look like a T5 / VL-T5 state dict."""
    blip = next((k for k in keys if k.startswith(BLIP_MARKERS)), None)
    if blip is not None:
        raise CheckpointError(
            f"{source} looks like a BLIP checkpoint (key {blip!r}), not VL-T5: use model family 'blip' for it, "
            "or pass VL-T5's Epoch30.pth"
        )
    if "shared.weight" not in keys or not any(k.startswith("encoder.block.") for k in keys):
        first = next(iter(keys), "<none>")
        raise CheckpointError(
            f"{source} is not a T5/VL-T5 checkpoint (no shared.weight / encoder.block.* keys; first key {first!r}): "
            "pass VL-T5's Epoch30.pth or a T5 checkpoint"
        )


def model_shapes(model: nn.Module) -> dict[str, torch.Size]:
    """The model's state-dict keys (tied aliases left out) -> shapes."""
    return {k: v.shape for k, v in model.state_dict().items() if k not in TIED_ALIASES}


def _layer_counts(keys: Sequence[str]) -> str:
    counts = []
    for stack in ("encoder", "decoder"):
        layers = {int(m.group(1)) for k in keys if (m := re.match(rf"{stack}\.block\.(\d+)\.", k))}
        counts.append(f"{len(layers)} {stack}")
    return " / ".join(counts) + " layers"


def _shape_hint(key: str, ckpt: torch.Size, model: torch.Size) -> str:
    for pattern, dim, name in _SIZE_HINTS:
        if re.search(pattern, key) and len(ckpt) > dim and len(model) > dim and ckpt[dim] != model[dim]:
            return f"set {name} to {ckpt[dim]}"
    return "match the checkpoint's sizes"


def compare_state(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size], source: str, allow_missing: str = ""
) -> None:
    """Raise a one-line CheckpointError on a vocabulary, shape, missing-key or unexpected-key mismatch.

    Args:
        state: remapped checkpoint weights.
        expected: ``model_shapes(model)``.
        source: the checkpoint's name for messages.
        allow_missing: a key prefix the checkpoint may lack (e.g. the visual embedding of a text-only T5).
    """
    rows, model_rows = state["shared.weight"].shape[0], expected["shared.weight"][0]
    if rows != model_rows:
        raise CheckpointError(
            f"{source} has a {rows}-row vocabulary but the model has {model_rows} rows (VL-T5 releases use "
            f"{VLT5_VOCAB_ROWS}: t5-base 32100 + 100 <vis_extra_id>): build the model with vocab_rows={rows}"
        )
    for key, value in state.items():
        shape = value.shape
        if key in expected and expected[key] != shape:
            raise CheckpointError(
                f"{source} shape mismatch at {key}: checkpoint {tuple(shape)} vs model {tuple(expected[key])}: "
                f"{_shape_hint(key, shape, expected[key])} in the model size"
            )
    missing = [k for k in expected if k not in state and not (allow_missing and k.startswith(allow_missing))]
    if missing:
        raise CheckpointError(
            f"{source} lacks {len(missing)} key(s) the model needs, first {missing[0]!r} (checkpoint has "
            f"{_layer_counts(list(state))}, model {_layer_counts(list(expected))}): match the model size to it"
        )
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise CheckpointError(
            f"{source} has {len(unexpected)} key(s) the model lacks, first {unexpected[0]!r} (checkpoint has "
            f"{_layer_counts(list(state))}, model {_layer_counts(list(expected))}): match the model size to it"
        )


def load_vlt5_epoch30(model: nn.Module, path_or_state_dict: str | Path | Mapping[str, torch.Tensor]) -> LoadReport:
    """Load VL-T5's released pre-training weights (``Epoch30.pth`` layout) into a VLT5ForConditionalGeneration.

    Every model tensor must come from the checkpoint and every checkpoint tensor must have a place in the model.

    Raises:
        CheckpointError: unreadable file, another family's checkpoint, a vocabulary other than the model's,
            wrong shapes, missing or unexpected keys (one line naming the first offending key and the fix).
    """
    source = "VL-T5 checkpoint" if isinstance(path_or_state_dict, Mapping) else str(path_or_state_dict)
    state = remap_vlt5_keys(read_state_dict(path_or_state_dict))
    check_family(list(state), source)
    compare_state(state, model_shapes(model), source)
    return strict_copy(model, state, source_name=source, family="vlt5")


def load_hf_t5(model: nn.Module, path_or_id: str | Path) -> LoadReport:
    """Copy a Hugging Face T5 checkpoint (t5-base, t5-small; local folder or hub id) into a VL-T5 model.

    Strict (amad.models.loading): only VL-T5's visual embedding and the vocabulary rows past the checkpoint's (the
    ``<vis_extra_id_*>`` box-order rows) keep their initialisation; anything else that cannot be copied raises.
    """
    from transformers import AutoConfig, T5ForConditionalGeneration

    source = str(path_or_id)
    try:
        config = AutoConfig.from_pretrained(source)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"cannot load Hugging Face T5 checkpoint {source!r}: {first[:200]}: pass a local folder with "
            "config.json and weights (the hub is unreachable offline)"
        ) from None
    if config.model_type not in ("t5", "vlt5"):
        raise CheckpointError(
            f"{source} looks like a {config.model_type} checkpoint (model_type {config.model_type!r}), not T5: "
            "pass a T5 checkpoint such as t5-small or t5-base"
        )
    if (
        config.d_model != model.config.d_model
        or config.num_heads * config.d_kv != model.encoder.block[0].layer[0].SelfAttention.inner_dim
    ):
        raise CheckpointError(
            f"{source} has d_model {config.d_model}, {config.num_heads} heads x d_kv {config.d_kv} but the model has "
            f"d_model {model.config.d_model}, {model.config.num_heads} x {model.config.d_kv}: use the checkpoint's "
            "sizes for init 'pretrained'"
        )
    try:
        source_model = T5ForConditionalGeneration.from_pretrained(source, dtype=torch.float32)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"cannot read the T5 weights in {source!r} ({first[:200]}): re-download them") from None
    state = remap_vlt5_keys(source_model.state_dict())
    del source_model
    check_family(list(state), source)
    rows, model_rows = state["shared.weight"].shape[0], model.shared.weight.shape[0]
    if rows > model_rows:
        raise CheckpointError(
            f"{source} has a {rows}-row vocabulary but the model only {model_rows} rows: build the model with the "
            "checkpoint's tokenizer (its rows plus VL-T5's box-order rows)"
        )
    return strict_copy(
        model,
        state,
        source_name=source,
        family="vlt5-from-t5",
        fix="match the model size to the checkpoint (layers, heads, d_kv, d_ff)",
    )


def _merged_bias(teacher_bias: torch.Tensor, student_heads: int) -> torch.Tensor:
    """T5's relative bias (buckets, Ht) -> (buckets, Hs): the sum over each group of Ht/Hs teacher heads.

    A student head built from teacher heads j·r .. j·r + r − 1 scores with the sum of their q·k (T5 has no 1/√d
    scaling), so the matching bias is the sum of theirs.
    """
    buckets, teacher_heads = teacher_bias.shape
    if teacher_heads % student_heads:
        raise ConfigError(
            f"init 'teacher' cannot map the teacher's {teacher_heads} heads onto {student_heads}: the relative "
            f"position bias needs a head count that divides {teacher_heads}"
        )
    return teacher_bias.view(buckets, student_heads, teacher_heads // student_heads).sum(-1)  # (n, Ht) -> (n, Hs)


def copy_teacher_layers(
    student: nn.Module,
    teacher: nn.Module,
    encoder_pairs: Sequence[tuple[int, int]],
    decoder_pairs: Sequence[tuple[int, int]],
) -> LoadReport:
    """Initialise a VL-T5 student from a teacher of equal widths; every student tensor must be filled.

    Copies the shared embedding, the visual embedding, the final layer norms, and each mapped block
    (student_layer <- teacher_layer). With fewer heads at the teacher's width (d_kv grows), the q/k/v/o matrices
    are copied as they are, so student head j holds teacher heads j·r .. j·r + r − 1 (r = Ht/Hs), and the relative
    position bias of block 0 is the sum over each such group (:func:`_merged_bias`).

    Raises:
        ConfigError: widths differ (d_model, d_ff, num_heads * d_kv, feat_dim, vocabulary), a pair is out of range,
            or the head counts cannot be grouped.
    """
    s_cfg, t_cfg = student.config, teacher.config
    widths = {
        "d_model": (s_cfg.d_model, t_cfg.d_model),
        "d_ff": (s_cfg.d_ff, t_cfg.d_ff),
        "num_heads * d_kv": (s_cfg.num_heads * s_cfg.d_kv, t_cfg.num_heads * t_cfg.d_kv),
        "feat_dim": (s_cfg.feat_dim, t_cfg.feat_dim),
        "vocabulary rows": (s_cfg.vocab_size, t_cfg.vocab_size),
    }
    for name, (s, t) in widths.items():
        if s != t:
            raise ConfigError(
                f"init 'teacher' needs equal widths but the student's {name} is {s} and the teacher's {t}: "
                f"set the student's {name} to {t}, or use init 'random' / 'pretrained'"
            )
    source = teacher.state_dict()
    renamed = {k: v for k, v in source.items() if not k.startswith(("encoder.block.", "decoder.block."))}
    bias_key = "layer.0.SelfAttention.relative_attention_bias.weight"
    for stack, pairs in (("encoder", encoder_pairs), ("decoder", decoder_pairs)):
        n_student, n_teacher = len(getattr(student, stack).block), len(getattr(teacher, stack).block)
        for s_layer, t_layer in pairs:
            if not (0 <= s_layer < n_student and 0 <= t_layer < n_teacher):
                raise ConfigError(
                    f"layer pair ({s_layer}, {t_layer}) is out of range for the {stack}: the student has "
                    f"{n_student} and the teacher {n_teacher} layers"
                )
            prefix = f"{stack}.block.{t_layer}."
            for key, value in source.items():
                if key.startswith(prefix) and not key.endswith(bias_key):
                    renamed[f"{stack}.block.{s_layer}.{key[len(prefix) :]}"] = value
        bias = source[f"{stack}.block.0.{bias_key}"]
        same = s_cfg.num_heads == t_cfg.num_heads
        renamed[f"{stack}.block.0.{bias_key}"] = bias if same else _merged_bias(bias, s_cfg.num_heads)
    return strict_copy(
        student,
        renamed,
        source_name="the VL-T5 teacher",
        family="vlt5",
        allow_unused=True,  # teacher layers that no student layer is mapped to
        fix="map every student layer to a teacher layer (distill.layer_map) and keep the teacher's widths",
    )


def teacher_layer_pairs(
    layer_pairs: Sequence[tuple[int, int]] | Mapping[str, Sequence[tuple[int, int]]] | None,
    teacher: Any,
    student: Any,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(encoder pairs, decoder pairs) of (student_layer, teacher_layer) for two VLT5Configs.

    ``layer_pairs``: one list for both stacks, ``{"encoder": [...], "decoder": [...]}``, or None for the uniform
    mapping of ``amad.capture.mapping`` per stack.
    """
    if layer_pairs is None:
        return (
            map_layers("uniform", teacher.num_layers, student.num_layers),
            map_layers("uniform", teacher.num_decoder_layers, student.num_decoder_layers),
        )
    if isinstance(layer_pairs, Mapping):
        unknown = sorted(set(layer_pairs) - {"encoder", "decoder"})
        if unknown:
            raise ConfigError(f"layer_pairs keys must be 'encoder' and 'decoder', got {unknown}")
        return [tuple(p) for p in layer_pairs.get("encoder", [])], [tuple(p) for p in layer_pairs.get("decoder", [])]
    pairs = [tuple(p) for p in layer_pairs]
    return pairs, pairs
