"""BLIP on transformers' port: configs from size dicts, checkpoint loading, rank inference, and the ``blip`` family
behind the DistillModel interface."""

from amad.models.blip.model import BlipModel

__all__ = ["BlipModel"]
