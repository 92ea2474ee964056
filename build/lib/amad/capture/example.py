"""The attention maps of one example, for figures: the last layer of every kind, padding cut away."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from amad.capture.spec import CaptureSpec
from amad.types import Example


@torch.no_grad()
def attention_example(model: Any, example: Example, visual: Any) -> dict[str, np.ndarray]:
    """The last layer of every attention kind for one example: name '<kind>/<layer>' -> (H, Q, K).

    ``model`` is an ``amad.models.DistillModel`` (collate, forward with a capture spec, attention_layout)."""
    model.eval()
    device = next(model.parameters()).device
    layout = model.attention_layout()
    spec = CaptureSpec(layers={kind: [n_layers - 1] for kind, (n_layers, _) in layout.items()})
    batch = model.collate([example], visual, train=False).to(device)
    out = model(batch, capture=spec)
    arrays = {}
    for (kind, layer), probs in out.attentions.probs.items():
        q_mask = out.attentions.query_mask.get(kind)
        k_mask = out.attentions.key_mask.get(kind)
        maps = probs[0].float()  # (H, Q, K)
        if q_mask is not None:
            maps = maps[:, q_mask[0].bool()]
        if k_mask is not None:
            maps = maps[:, :, k_mask[0].bool()]
        arrays[f"{kind}/{layer}"] = maps.cpu().numpy()
    return arrays
