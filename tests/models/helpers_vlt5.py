"""Tiny VL-T5 fixtures: a word-level tokenizer, a fake feature store, examples per task, tiny sizes."""

from __future__ import annotations

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from amad import testing
from amad.types import Batch, Example

_PROMPTS = ["vqa", ":", "caption", "translate", "english", "to", "german"]
_ENGLISH = ["what", "color", "is", "the", "shape", "?", "how", "many", "shapes", "are", "there", "red", "blue", "green"]
_ENGLISH2 = ["circle", "square", "triangle", "yes", "no", "one", "two", "three", "a", "small", "large", "on", "left"]
_GERMAN = ["right", "ein", "eine", "roter", "blauer", "kreis", "quadrat", "zwei", "drei", "links", "rechts"]
WORDS = _PROMPTS + _ENGLISH + _ENGLISH2 + _GERMAN
FEAT_DIM = 12
N_BOXES = 5

TINY = testing.TINY_VLT5 | {"feat_dim": FEAT_DIM, "n_boxes": N_BOXES}
# Same widths (d_model 32, 2 heads x 16 = 32 inner), fewer heads and layers: init "teacher" can copy.
TINY_STUDENT = dict(TINY, d_kv=16, num_heads=2, num_layers=1, num_decoder_layers=1)


def make_tokenizer(words: list[str] = WORDS) -> PreTrainedTokenizerFast:
    """The shared word-level test tokenizer (specials 0..4), with the VL-T5 test vocabulary by default."""
    return testing.make_tokenizer(words)


class FakeFeatures:
    """FeatureStore stand-in: image k has ``counts[k]`` regions of deterministic features and valid boxes."""

    def __init__(self, counts: dict[str, int], feat_dim: int = FEAT_DIM) -> None:
        self.counts = counts
        self.feat_dim = feat_dim

    def get(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(image_id))
        n = self.counts[image_id]
        feats = rng.standard_normal((n, self.feat_dim)).astype(np.float32)
        corners = np.sort(rng.uniform(0, 1, (n, 2, 2)), axis=1)  # (N, [min, max], [x, y])
        boxes = np.concatenate([corners[:, 0], corners[:, 1]], axis=1).astype(np.float32)  # x1, y1, x2, y2
        return feats, boxes


vqa_examples = testing.vqa_examples


def translation_examples() -> list[Example]:
    return [
        Example("t1", None, "a red circle", "ein roter kreis", ["ein roter kreis"]),
        Example("t2", None, "two blue squares on the left", "zwei blauer quadrat links", ["zwei blauer quadrat links"]),
    ]


FEATURES = FakeFeatures({"1": 5, "2": 3, "3": 4})


def color_examples() -> list[Example]:
    """One question, three images, three answers: only the regions tell the answers apart."""
    return [
        Example(f"c{i}", str(i), "what color is the shape ?", answer, [answer] * 10)
        for i, answer in zip((1, 2, 3), ("red", "blue", "green"))
    ]


def overfit(model: torch.nn.Module, batch: Batch, steps: int = 120, lr: float = 1e-2) -> float:
    """Train ``model`` (a DistillModel) on one batch; returns the final loss."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model(batch).loss
        loss.backward()
        optimizer.step()
    model.eval()
    return float(loss.detach())
