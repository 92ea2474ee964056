"""Shared data types and the shape-letter glossary.

Shape letters used throughout the package:
    B batch, H heads (Ht teacher, Hs student), Q query length, K key length,
    L text length, N visual tokens (boxes or patches), D width, T target length, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

# An attention kind and a layer index, e.g. ("encoder_self", 2).
MapKey = tuple[str, int]


@dataclass
class Example:
    """One task example, independent of model family.

    uid: unique id (VQA question_id, COCO image id + caption index, Multi30K line number).
    image_id: the key of the image in feature / pixel stores, or None (text-only).
    source: input text without the task prefix (question, "" for captions, English sentence).
    target: the training target text (VQA: the answer with the highest soft score).
    references: the evaluation references (VQA: the 10 human answers; captions: all captions; MT: [de]).
    target_weight: loss weight of this example (VQA soft score of ``target``; else 1.0).
    answer_type: VQA answer type ("yes/no", "number", "other") or None.
    answer_scores: VQA: the candidate training answers and their soft scores, sorted by answer (VL-T5's Karpathy
        ``label``: LXMERT-normalised answers of the 3,129-answer vocabulary; official files: min(1, count / 3) per
        distinct answer; empty when no answer is in the vocabulary); None when not known (other tasks, examples built
        by hand). ``amad.data.targets`` samples from it (VL-T5's recipe).
    targets: several weighted training targets of one example (BLIP's VQA recipe: every distinct answer with weight
        count / n, set by ``amad.data.targets``); empty = the one ``(target, target_weight)``.
    """

    uid: str
    image_id: str | None
    source: str
    target: str
    references: list[str]
    target_weight: float = 1.0
    answer_type: str | None = None
    answer_scores: tuple[tuple[str, float], ...] | None = None
    targets: tuple[tuple[str, float], ...] = ()


@dataclass
class Batch:
    """A collated batch, shared by teacher and student of one family.

    input_ids / attention_mask: (B, L) text source with task prefix; mask is bool, True = real token.
    labels: (B, T) target ids, -100 on padding (None at generation time); (R, T) when examples carry several
    targets (``label_owner``).
    label_weights: (B,) per-example loss weights ((R,) with ``label_owner``).
    label_owner: (R,) long, the example row each label row belongs to (BLIP's VQA recipe trains on every answer of
    a question); None: label row i belongs to example i.
    vis_feats: (B, N, D) region/patch features (VL-T5); vis_boxes: (B, N, 4) normalised x1, y1, x2, y2;
    vis_mask: (B, N) bool.
    pixel_values: (B, 3, H, W) preprocessed images (BLIP).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor | None = None
    label_weights: torch.Tensor | None = None
    label_owner: torch.Tensor | None = None
    vis_feats: torch.Tensor | None = None
    vis_boxes: torch.Tensor | None = None
    vis_mask: torch.Tensor | None = None
    pixel_values: torch.Tensor | None = None
    uids: list[str] = field(default_factory=list)
    references: list[list[str]] = field(default_factory=list)
    answer_types: list[str | None] = field(default_factory=list)

    def to(self, device: torch.device | str) -> Batch:
        out = {}
        for name, value in self.__dict__.items():
            out[name] = value.to(device) if isinstance(value, torch.Tensor) else value
        return Batch(**out)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class AttentionMaps:
    """Captured attention probabilities.

    probs[(kind, layer)]: (B, H, Q, K) pre-dropout post-softmax probabilities.
    query_mask[kind]: (B, Q) bool and key_mask[kind]: (B, K) bool, True = valid position. Absent means every
    position is valid (the capture backend leaves them empty; the model wrapper fills in the ones that mask
    something, e.g. padded text, and leaves out never-padded image patches).
    values[(kind, layer)]: (B, H, K, D) detached per-head value-output circuits V_i W_O^i, recorded only when the
    capture spec asks for them (``CaptureSpec(values=True)``); the layer outputs Σ_i probs[:, i] @ values[:, i].
    """

    probs: dict[MapKey, torch.Tensor] = field(default_factory=dict)
    values: dict[MapKey, torch.Tensor] = field(default_factory=dict)
    query_mask: dict[str, torch.Tensor] = field(default_factory=dict)
    key_mask: dict[str, torch.Tensor] = field(default_factory=dict)

    def __getitem__(self, key: MapKey) -> torch.Tensor:
        return self.probs[key]

    def __contains__(self, key: object) -> bool:
        return key in self.probs

    def __len__(self) -> int:
        return len(self.probs)

    def keys(self):
        return self.probs.keys()


@dataclass
class ModelOutput:
    """What every family's forward(batch) returns.

    logits: (B, T, V) decoder logits; loss: scalar task loss (weighted CE over valid target tokens);
    target_mask: (B, T) bool, True on real target tokens; attentions: the maps requested through amad.capture.
    """

    logits: torch.Tensor
    loss: torch.Tensor
    target_mask: torch.Tensor
    attentions: AttentionMaps = field(default_factory=AttentionMaps)
