"""VL-T5 (j-min/VL-T5) ported onto transformers' T5: the joint [text ; regions] encoder, its visual embedding,
T5's initialisation, checkpoint loading, and the ``vlt5`` family behind the DistillModel interface."""

from amad.models.vlt5.model import VLT5Model

__all__ = ["VLT5Model"]
