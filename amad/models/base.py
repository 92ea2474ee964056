"""The one interface the trainer sees, whatever the model family."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from torch import nn

from amad.types import Batch, Example, ModelOutput


class DistillModel(nn.Module, ABC):
    """A teacher or student of one family and one task.

    Subclasses hold ``self.model`` (the transformers model) and ``self.tokenizer``. The trainer only calls the
    methods below and never branches on the family.
    """

    family: str = ""

    def __init__(self, model: nn.Module, tokenizer: Any, task: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.task = task

    @abstractmethod
    def collate(self, examples: Sequence[Example], visual: Any, train: bool) -> Batch:
        """Tokenise and stack examples; ``visual`` is a FeatureStore, an ImageStore or None."""

    @abstractmethod
    def forward(self, batch: Batch, capture: Any = None) -> ModelOutput:
        """Logits, task loss, target mask, and the attention maps requested by ``capture`` (a CaptureSpec)."""

    @abstractmethod
    def generate(self, batch: Batch, num_beams: int = 1, max_new_tokens: int | None = None) -> list[str]:
        """Decoded predictions, one string per example."""

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

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[0])
