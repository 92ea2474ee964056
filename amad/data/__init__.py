"""Data: manifest, downloads and mirrors; loaders of the real formats; mini-suite builders; visual stores.

Import the heavy parts from their modules (``amad.data.features``, ``amad.data.images``, ``amad.data.tokenizer``).
"""

from amad.data.download import fetch, fetch_all, missing_files_message
from amad.data.loaders import load_examples
from amad.data.manifest import Manifest, ManifestEntry, load_manifest
from amad.data.mirror import resolve_mirror, validate_mirror

__all__ = [
    "Manifest",
    "ManifestEntry",
    "fetch",
    "fetch_all",
    "load_examples",
    "load_manifest",
    "missing_files_message",
    "resolve_mirror",
    "validate_mirror",
]
