"""The mini suite's data sets, in the real file formats: easy-vqa as VQA-2.0 JSON, rendered scenes as COCO-Karpathy
captions, and a short-sentence subset of the real Multi30K."""
