"""Data the models read: loaders of the real formats (``amad.data.formats``), the visual stores of VL-T5 region
features and BLIP images (``amad.data.visual``), and tokenizers (``amad.data.tokenizer``).

Fetching files and building the mini data sets belong to the suite (``amad_suite.fetch``, ``amad_suite.mini``).
"""

from amad.data.formats.loaders import load_examples

__all__ = ["load_examples"]
