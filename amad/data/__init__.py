"""Data the models read: loaders of the real formats (``amad.data.formats``), the visual stores of VL-T5 region
features and BLIP images and BLIP's training augmentation (``amad.data.visual``), tokenizers
(``amad.data.tokenizer``), VQA training targets per family recipe (``amad.data.targets``), and training micro-batches
built in DataLoader workers (``amad.data.batches``).

Fetching files and building the mini data sets belong to the suite (``amad_suite.fetch``, ``amad_suite.mini``).
"""

from amad.data.formats.loaders import load_examples

__all__ = ["load_examples"]
