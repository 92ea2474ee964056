"""Registries of model families and model sizes."""

from amad.registry import Registry

FAMILIES = Registry("model family")
MODEL_SIZES = Registry("model size")
