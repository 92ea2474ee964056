"""amad: attention-map distillation for vision-language Transformers (AMAD, AAAI 2024)."""

__version__ = "0.1.0"
