"""VL-T5 behind the DistillModel interface: collate, forward (+ capture), generate, save/load, builders.

Recipe details follow j-min/VL-T5: task prefixes ``vqa:``, ``caption:``, ``translate English to German:``; sources
and targets are tokenised as T5 does (pieces truncated to ``max_length - 1``, then ``</s>``); VQA 20/10 tokens,
captions 20/20, Multi30K 40/40; the task loss is token CE averaged per example and weighted by the example's
weight (VQA soft score). Without a visual store (Multi30K at mini scale) the model runs text-only.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer

from amad.capture import capture_attention
from amad.errors import CheckpointError, ConfigError, DataError
from amad.models.base import (
    FAMILIES,
    META_FILE,
    DistillModel,
    check_compatible,
    generation_lengths,
    weighted_token_loss,
)
from amad.models.sizes import resolve_size
from amad.models.vlt5.checkpoint import copy_teacher_layers, load_hf_t5, load_vlt5_epoch30, teacher_layer_pairs
from amad.models.vlt5.encoder import VLT5ForConditionalGeneration, joint_mask
from amad.models.vlt5.visual import vlt5_config
from amad.types import AttentionMaps, Batch, Example, ModelOutput

TASK_PREFIXES = {"vqa": "vqa:", "caption": "caption:", "translation": "translate English to German:"}
# task -> (max source tokens, max target tokens), VL-T5's script defaults.
DEFAULT_LENGTHS = {"vqa": (20, 10), "caption": (20, 20), "translation": (40, 40)}


def source_text(task: str, source: str) -> str:
    """The encoder input: task prefix + source (``"caption:"`` alone when the source is empty)."""
    return f"{TASK_PREFIXES[task]} {source}".strip()


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=torch.long)  # (B, L)


@FAMILIES.register("vlt5")
class VLT5Model(DistillModel):
    """A VL-T5 of one task ("vqa", "caption" or "translation") around ``VLT5ForConditionalGeneration``.

    Attributes:
        size: the size dict it was built from (saved in amad_model.json).
        max_source_length / max_target_length: token limits (VL-T5's per-task defaults unless given).
    """

    family = "vlt5"
    TASKS = tuple(TASK_PREFIXES)

    def __init__(
        self,
        model: VLT5ForConditionalGeneration,
        tokenizer: Any,
        task: str,
        size: Mapping[str, Any],
        max_source_length: int | None = None,
        max_target_length: int | None = None,
    ) -> None:
        self.check_task(task)
        super().__init__(model, tokenizer, task)
        self.size = dict(size)
        default_source, default_target = DEFAULT_LENGTHS[task]
        self.max_source_length = int(max_source_length or default_source)
        self.max_target_length = int(max_target_length or default_target)

    @classmethod
    def check_task(cls, task: str) -> None:
        """Raise ConfigError unless VL-T5 supports ``task``."""
        if task not in cls.TASKS:
            raise ConfigError(f"unknown VL-T5 task {task!r}: choose one of {', '.join(cls.TASKS)}")

    @classmethod
    def build(
        cls,
        task: str,
        size: str | Mapping[str, Any],
        tokenizer: Any,
        *,
        init: str = "random",
        init_from: str | None = None,
        teacher: DistillModel | None = None,
        layer_pairs: Sequence[tuple[int, int]] | Mapping[str, Sequence[tuple[int, int]]] | None = None,
    ) -> VLT5Model:
        """Build a VL-T5 of ``size`` (name or dict) for ``task``.

        init: "random"; "pretrained" from ``init_from`` (default ``size["pretrained"]``): a file is VL-T5's
        ``Epoch30.pth`` (the teachers), a folder or hub id a Hugging Face T5 (e.g. t5-small for the paper's student
        without VL pre-training; the visual embedding stays random);
        "teacher" (copy ``teacher``'s layers; needs equal d_model, d_ff and num_heads * d_kv). ``layer_pairs``:
        (student_layer, teacher_layer) pairs used for both stacks, or ``{"encoder": [...], "decoder": [...]}``;
        None maps each stack uniformly (``amad.capture.mapping``).
        """
        cls.check_task(task)
        size = resolve_size(size, "vlt5")
        model = cls(VLT5ForConditionalGeneration(vlt5_config(size, tokenizer)), tokenizer, task, size)
        if init == "pretrained":
            source = init_from or size.get("pretrained")
            if not source:
                raise ConfigError("init 'pretrained' needs init_from: a T5 checkpoint folder or hub id (e.g. t5-small)")
            loader = load_vlt5_epoch30 if Path(source).is_file() else load_hf_t5
            model.init_report = loader(model.model, source).to_json()
        elif init == "teacher":
            if not isinstance(teacher, VLT5Model):
                raise ConfigError(f"init 'teacher' needs a VL-T5 teacher model, got {type(teacher).__name__}")
            check_compatible(teacher, model)
            encoder_pairs, decoder_pairs = teacher_layer_pairs(layer_pairs, teacher.model.config, model.model.config)
            report = copy_teacher_layers(model.model, teacher.model, encoder_pairs, decoder_pairs)
            model.init_report = report.to_json()
        elif init != "random":
            raise ConfigError(f"unknown init {init!r}: choose random, pretrained or teacher")
        return model

    # ---- data ---------------------------------------------------------------------------------------------------
    def _encode(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """T5 tokenisation: pieces truncated to ``max_length - 1``, then ``</s>``."""
        pieces = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [[*p[: max_length - 1], self.tokenizer.eos_token_id] for p in pieces]

    def collate(self, examples: Sequence[Example], visual: Any, train: bool) -> Batch:
        """Tokenise sources (with the task prefix) and targets; stack region features when ``visual`` is given.

        Labels are built whenever examples carry targets (train and eval alike, for validation losses); ``train``
        changes nothing for VL-T5. ``visual``: a FeatureStore (``get(image_id) -> (feats (N, F), boxes (N, 4))``)
        or None for text-only.
        """
        if not examples:
            raise DataError("cannot collate an empty list of examples")
        if any(ex.targets for ex in examples):
            raise ConfigError("VL-T5 trains on one target per example: set vqa_targets to top, sample or recipe")
        pad = self.tokenizer.pad_token_id
        sources = self._encode([source_text(self.task, ex.source) for ex in examples], self.max_source_length)
        input_ids = _pad(sources, pad)  # (B, L)
        batch = Batch(
            input_ids=input_ids,
            attention_mask=_pad([[1] * len(s) for s in sources], 0).bool(),  # (B, L)
            uids=[ex.uid for ex in examples],
            references=[list(ex.references) for ex in examples],
            answer_types=[ex.answer_type for ex in examples],
        )
        if all(ex.target for ex in examples):
            targets = self._encode([ex.target for ex in examples], self.max_target_length)
            batch.labels = _pad(targets, -100)  # (B, T)
            batch.label_weights = torch.tensor([float(ex.target_weight) for ex in examples])  # (B,)
        if visual is not None:
            batch.vis_feats, batch.vis_boxes, batch.vis_mask = self._regions(examples, visual)
        return batch

    def _regions(self, examples: Sequence[Example], visual: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        config = self.model.config
        feats, boxes = [], []
        for ex in examples:
            if ex.image_id is None:
                raise DataError(f"example {ex.uid} has no image_id but a feature store was given: pass visual=None")
            f, b = visual.get(ex.image_id)
            feats.append(np.asarray(f, dtype=np.float32))
            boxes.append(np.asarray(b, dtype=np.float32))
        n = max(f.shape[0] for f in feats)
        dims = {f.shape[1] for f in feats}
        if dims != {config.feat_dim}:
            raise DataError(
                f"region features have width {sorted(dims)} but the model's feat_dim is {config.feat_dim}: "
                "set feat_dim in the model size to the feature store's width"
            )
        if n > config.n_boxes:
            raise DataError(
                f"an image has {n} regions but the model reserves {config.n_boxes} box-order rows: "
                f"set n_boxes to {n} in the model size (or keep fewer boxes in the feature store)"
            )
        vis_feats = torch.zeros(len(examples), n, config.feat_dim)  # (B, N, F)
        vis_boxes = torch.zeros(len(examples), n, 4)  # (B, N, 4)
        vis_mask = torch.zeros(len(examples), n, dtype=torch.bool)  # (B, N)
        for i, (f, b) in enumerate(zip(feats, boxes)):
            vis_feats[i, : len(f)] = torch.from_numpy(f)
            vis_boxes[i, : len(b)] = torch.from_numpy(b)
            vis_mask[i, : len(f)] = True
        return vis_feats, vis_boxes, vis_mask

    def _inputs(self, batch: Batch) -> dict[str, torch.Tensor | None]:
        return {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "vis_feats": batch.vis_feats,
            "vis_boxes": batch.vis_boxes,
            "vis_mask": batch.vis_mask,
        }

    # ---- model --------------------------------------------------------------------------------------------------
    def forward(self, batch: Batch, capture: Any = None) -> ModelOutput:
        """Teacher-forced logits (B, T, V), weighted CE task loss, target mask (B, T), requested attention maps."""
        if batch.labels is None:
            raise DataError("VL-T5 forward needs batch.labels: collate examples that have targets")
        labels = batch.labels  # (B, T)
        decoder_input_ids = self.model._shift_right(labels)  # (B, T), starts with the pad/start token
        context = contextlib.nullcontext(None) if capture is None else capture_attention(self.model, capture)
        with context as maps:
            logits = self.model(**self._inputs(batch), decoder_input_ids=decoder_input_ids, use_cache=False).logits
        target_mask = labels != -100  # (B, T)
        loss = weighted_token_loss(logits, labels, batch.label_weights, self.label_smoothing)
        maps = maps if maps is not None else AttentionMaps()
        if capture is not None:
            self._fill_masks(maps, capture, batch, target_mask)
        return ModelOutput(logits=logits, loss=loss, target_mask=target_mask, attentions=maps)

    def _fill_masks(self, maps: AttentionMaps, capture: Any, batch: Batch, target_mask: torch.Tensor) -> None:
        """encoder_self: Q = K = [text ; regions]; decoder_self: Q = K = target; cross: Q target, K [text ; regions]."""
        regions = 0 if batch.vis_feats is None else batch.vis_feats.shape[1]
        joint = joint_mask(batch.attention_mask, batch.vis_mask, batch.attention_mask.shape[1] + regions)  # (B, L+N)
        masks = {
            "encoder_self": (joint, joint),
            "decoder_self": (target_mask, target_mask),
            "cross": (target_mask, joint),
        }
        for kind in capture.layers:
            if kind in masks:
                maps.query_mask[kind], maps.key_mask[kind] = masks[kind]

    @torch.no_grad()
    def generate(
        self,
        batch: Batch,
        num_beams: int = 1,
        max_new_tokens: int | None = None,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
    ) -> list[str]:
        """Greedy (num_beams=1) or beam-search outputs, one string per example (special tokens skipped).

        ``max_length`` / ``min_length`` count the decoder start token, as VL-T5's ``gen_max_length`` does.
        """
        out = self.model.generate(
            **self._inputs(batch),
            num_beams=num_beams,
            **generation_lengths(self.max_target_length, max_new_tokens, min_length, max_length),
            do_sample=False,
        )  # (B, 1 + new)
        return [s.strip() for s in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def attention_layout(self) -> dict[str, tuple[int, int]]:
        """encoder_self / decoder_self / cross -> (layers, heads)."""
        c = self.model.config
        decoder = (int(c.num_decoder_layers), int(c.num_heads))
        return {"encoder_self": (int(c.num_layers), int(c.num_heads)), "decoder_self": decoder, "cross": decoder}

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str) -> None:
        """Write weights (safetensors) + config, tokenizer, and amad_model.json {family, task, size, lengths} last."""
        meta = {
            "family": self.family,
            "task": self.task,
            "size": self.size,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
        }
        self._save_folder(directory, meta)

    @classmethod
    def from_pretrained(cls, directory: str) -> VLT5Model:
        """Load a folder written by ``save_pretrained``.

        Raises:
            CheckpointError: no amad_model.json, another family's folder, missing or mis-shaped weights.
        """
        meta_path = Path(directory, META_FILE)
        if not meta_path.is_file():
            raise CheckpointError(
                f"no {META_FILE} in {directory!r}: give a folder written by save_pretrained (for Epoch30.pth or a "
                "T5 checkpoint use build(init='pretrained') or load_vlt5_epoch30)"
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("family") != cls.family:
            raise CheckpointError(
                f"{directory!r} holds a {meta.get('family')!r} model, not VL-T5: load it with family "
                f"{meta.get('family')!r}"
            )
        model, info = VLT5ForConditionalGeneration.from_pretrained(directory, output_loading_info=True)
        problems = [(kind, keys) for kind in ("missing_keys", "mismatched_keys") if (keys := info.get(kind))]
        if problems:
            kind, keys = problems[0]
            raise CheckpointError(
                f"{directory!r} weights do not fit its config: {len(keys)} {kind.replace('_', ' ')}, first "
                f"{sorted(keys)[0]!r}: save the model again"
            )
        tokenizer = AutoTokenizer.from_pretrained(directory)
        return cls(model, tokenizer, meta["task"], meta["size"], meta["max_source_length"], meta["max_target_length"])
