"""Tiny local stand-ins for the Hugging Face hub models the paper preset names, in the hub's own formats.

``t5-base`` / ``t5-small``: ``T5ForConditionalGeneration`` (config.json + model.safetensors) with the Unigram
tokenizer of tests/fixtures/hub/t5-unigram-tiny (tokenizer.json + tokenizer_config.json; 310 tokens, embeddings
padded to 320 rows as t5-base pads 32,100 to 32,128). ``Salesforce/blip-image-captioning-base`` and
``Salesforce/blip-vqa-base``: ``BlipForConditionalGeneration`` / ``BlipForQuestionAnswering`` with the BERT
WordPiece vocabulary of tests/fixtures/hub/bert-wordpiece-tiny plus [DEC] and [ENC] (the rows BLIP adds), and a
``preprocessor_config.json`` as on the hub. Sizes follow the rehearsal preset (the student size for t5-small, the
teachers' sizes for the others), so the pipeline loads them through the code that loads the real hub ids.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "hub"
T5_TOKENIZER = FIXTURES / "t5-unigram-tiny"
BERT_VOCAB = FIXTURES / "bert-wordpiece-tiny" / "vocab.txt"
T5_ROWS = 320  # the tokenizer's 310 tokens padded, as t5-base's 32,100 are to 32,128
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _t5(folder: Path, size: Mapping[str, Any], seed: int) -> None:
    from transformers import T5Config, T5ForConditionalGeneration

    keys = ("d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads")
    config = T5Config(
        vocab_size=T5_ROWS,
        dropout_rate=float(size["dropout"]),
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        **{k: int(size[k]) for k in keys},
    )
    torch.manual_seed(seed)
    T5ForConditionalGeneration(config).save_pretrained(str(folder))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(T5_TOKENIZER / name, folder / name)


def _blip(folder: Path, task: str, size: dict, seed: int) -> None:
    from amad.data.tokenizer import build_blip_tokenizer
    from amad.models.blip.checkpoint import HF_CLASSES, blip_config

    tokenizer = build_blip_tokenizer(BERT_VOCAB)
    torch.manual_seed(seed)
    model = HF_CLASSES[task]._from_config(blip_config(task, size, tokenizer), attn_implementation="eager")
    model.save_pretrained(str(folder))
    shutil.copyfile(BERT_VOCAB, folder / "vocab.txt")
    config = {"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    image = int(size["vision"]["image_size"])
    processor = {
        "do_normalize": True,
        "do_resize": True,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "image_processor_type": "BlipImageProcessor",
        "processor_class": "BlipProcessor",
        "resample": 3,
        "size": {"height": image, "width": image},
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2) + "\n")


def build_hub(root: Path, params: Mapping[str, Any], seed: int = 0) -> dict[str, Path]:
    """Write the tiny hub folders under ``root``; returns hub id -> folder."""
    from amad.models.sizes import resolve_size

    teachers, students = params["teacher"]["setups"], params["student"]["setups"]
    image = int(params["features"]["image_size"])
    folders = {
        "t5-base": root / "t5-base",
        "t5-small": root / "t5-small",
        "Salesforce/blip-image-captioning-base": root / "blip-image-captioning-base",
        "Salesforce/blip-vqa-base": root / "blip-vqa-base",
    }
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    _t5(folders["t5-base"], resolve_size(teachers["vlt5-vqa"]["size"], "vlt5"), seed)
    _t5(folders["t5-small"], resolve_size(students["vlt5-vqa"]["size"], "vlt5"), seed + 1)
    for hub_id, setup, task in (
        ("Salesforce/blip-image-captioning-base", "blip-caption", "caption"),
        ("Salesforce/blip-vqa-base", "blip-vqa", "vqa"),
    ):
        size = resolve_size(teachers[setup]["size"], "blip")
        size["vision"]["image_size"] = image
        _blip(folders[hub_id], task, size, seed + 2)
    return folders
