"""The one interface the trainer sees, whatever the model family."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from amad.atomic import staged_dir
from amad.errors import CheckpointError, ConfigError
from amad.registry import Registry
from amad.types import Batch, Example, ModelOutput

FAMILIES: Registry[type] = Registry("model family")  # family name -> DistillModel subclass
META_FILE = "amad_model.json"  # {family, task, size, ...}: written last, so its presence marks a complete folder


def weighted_token_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None,
    label_smoothing: float = 0.0,
    examples: int | None = None,
) -> torch.Tensor:
    """Token cross-entropy averaged per row over valid tokens, weighted per row, averaged over the batch.

    Args:
        logits: (B, T, V); labels: (B, T) with -100 on ignored tokens; weights: (B,) or None (all ones).
        examples: divide the weighted sum by this many examples instead of by the B rows (rows that are several
            weighted targets of one example, BLIP's VQA recipe: sum over a question's answers, mean over questions).
    """
    b, t, v = logits.shape
    token = F.cross_entropy(
        logits.reshape(b * t, v).float(),
        labels.reshape(b * t),
        ignore_index=-100,
        reduction="none",
        label_smoothing=label_smoothing,
    ).view(b, t)  # (B*T,) -> (B, T)
    mask = labels != -100  # (B, T)
    per_example = (token * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B,)
    if weights is not None:
        per_example = per_example * weights.to(per_example)
    if examples is not None:
        return per_example.sum() / examples
    return per_example.mean()


def generation_lengths(
    default_new_tokens: int,
    max_new_tokens: int | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
) -> dict[str, int]:
    """The length arguments of transformers' ``generate``.

    ``max_length`` / ``min_length`` count the whole decoded sequence as transformers does: the decoder start token
    (T5) or the prefix the decoder is given (BLIP: [DEC] + prompt), as BLIP's and VL-T5's configs mean them.
    ``max_length`` replaces ``max_new_tokens``; neither given: ``default_new_tokens`` new tokens.
    """
    out: dict[str, int] = {}
    if max_length is not None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"max_length must be a positive integer, got {max_length!r}")
        out["max_length"] = max_length
    else:
        out["max_new_tokens"] = default_new_tokens if max_new_tokens is None else check_new_tokens(max_new_tokens)
    if min_length is not None:
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 0:
            raise ConfigError(f"min_length must be a non-negative integer, got {min_length!r}")
        out["min_length"] = min_length
    return out


def check_new_tokens(max_new_tokens: int) -> int:
    """A decoding length of at least one token (0 would silently fall back to a default in transformers)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}")
    return max_new_tokens


def check_finite_weights(model: nn.Module, where: str) -> None:
    """Raise CheckpointError naming the first parameter that holds NaN or inf (a diverged or damaged model)."""
    for name, param in model.named_parameters():
        if not bool(torch.isfinite(param).all()):
            raise CheckpointError(
                f"{where}: weight {name} holds NaN or inf (a diverged run or a damaged file): retrain or re-download it"
            )


class DistillModel(nn.Module, ABC):
    """A teacher or student of one family and one task.

    Subclasses hold ``self.model`` (the transformers model) and ``self.tokenizer``. The trainer only calls the
    methods below and never branches on the family.

    ``label_smoothing``: of the task loss that ``forward`` returns (0.0 when built or loaded). The training loop
    sets it from ``TrainConfig.label_smoothing``, the one setting that controls it.
    """

    family: str = ""

    def __init__(self, model: nn.Module, tokenizer: Any, task: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.task = task
        self.label_smoothing = 0.0
        # What a pretrained or teacher init copied (amad.models.loading.LoadReport.to_json()); None: random init.
        self.init_report: dict[str, Any] | None = None

    @abstractmethod
    def collate(self, examples: Sequence[Example], visual: Any, train: bool) -> Batch:
        """Tokenise and stack examples; ``visual`` is a FeatureStore, an ImageStore or None."""

    @abstractmethod
    def forward(self, batch: Batch, capture: Any = None) -> ModelOutput:
        """Logits, task loss, target mask, and the attention maps requested by ``capture`` (a CaptureSpec)."""

    @abstractmethod
    def generate(
        self,
        batch: Batch,
        num_beams: int = 1,
        max_new_tokens: int | None = None,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
    ) -> list[str]:
        """Decoded predictions, one string per example (lengths as :func:`generation_lengths`)."""

    def rank_answers(self, batch: Batch, answers: Sequence[str], k: int) -> list[str]:
        """The most likely of ``answers`` for each example (BLIP's rank inference); only some families have it."""
        raise ConfigError(f"{self.family} has no rank inference: set evaluate.vqa_inference.{self.family} to generate")

    @abstractmethod
    def attention_layout(self) -> dict[str, tuple[int, int]]:
        """kind -> (number of layers, number of heads)."""

    @abstractmethod
    def save_pretrained(self, directory: str) -> None:
        """Write weights, config and tokenizer so that ``from_pretrained`` restores the same model."""

    @classmethod
    @abstractmethod
    def from_pretrained(cls, directory: str) -> DistillModel:
        """Load what ``save_pretrained`` wrote."""

    def _save_folder(self, directory: str, meta: dict[str, Any]) -> None:
        """Write the transformers model, the tokenizer and META_FILE into ``directory`` as one atomic folder swap:
        the folder holds a complete model or the previous one, never a mix (amad.atomic.staged_dir)."""
        with staged_dir(directory) as tmp:
            self.model.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[0])


def check_compatible(teacher: DistillModel, student: DistillModel) -> None:
    """Raise ConfigError unless the student can be distilled from the teacher.

    They must be of the same family and task (they share one collated batch), have the same number of vocabulary
    rows (logit distillation compares (B, T, V) tensors), and the same tokenizer vocabulary.
    """
    if teacher.family != student.family:
        raise ConfigError(
            f"teacher family {teacher.family!r} differs from student family {student.family!r}: "
            "distil within one family (they share a batch)"
        )
    if teacher.task != student.task:
        raise ConfigError(f"teacher task {teacher.task!r} differs from student task {student.task!r}: use one task")
    if teacher.vocab_size != student.vocab_size:
        raise ConfigError(
            f"teacher has {teacher.vocab_size} vocabulary rows but the student has {student.vocab_size}: "
            "build the student with the teacher's tokenizer"
        )
    if teacher.tokenizer.get_vocab() != student.tokenizer.get_vocab():
        raise ConfigError(
            "teacher and student tokenizers differ (same size, different tokens): build the student with the "
            "teacher's tokenizer"
        )
