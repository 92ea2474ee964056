"""Loaders of the real file formats: VQA-2.0 (official and VL-T5's Karpathy split), COCO Karpathy captions and
Multi30K, each into ``amad.types.Example`` records."""
