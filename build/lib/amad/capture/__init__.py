"""Attention capture for transformers T5 and BLIP, and student <-> teacher layer mapping.

spec = CaptureSpec(layers={"encoder_self": [0, 2], "cross": None})
with capture_attention(model, spec) as maps:
    model(...)
maps.probs[("encoder_self", 2)]  # (B, H, Q, K) pre-dropout probabilities
"""

from amad.capture.base import attention_layout, capture_attention, check_row_sums
from amad.capture.mapping import LAYER_MAPS, map_layers
from amad.capture.spec import CaptureSpec

__all__ = ["LAYER_MAPS", "CaptureSpec", "attention_layout", "capture_attention", "check_row_sums", "map_layers"]
