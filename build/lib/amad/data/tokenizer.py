"""Tokenizers: train the mini-suite tokenizer, load any tokenizer by path or name, check it fits a model.

Mini scale: :func:`train_tokenizer` trains a BPE model with the ``tokenizers`` library on the mini corpora
(English and German Multi30K sentences, captions, questions, answers) and saves one ``tokenizer.json``.
Choices: a base alphabet of printable ASCII plus German letters (no ``<unk>`` on ordinary text); NFKC
normalisation that **keeps case** (German nouns are capitalised and sacreBLEU is case-sensitive);
a Metaspace pre-tokenizer (T5/SentencePiece style "▁word" pieces, so ``decode`` restores the spacing) followed by
isolated punctuation (a small vocabulary is not spent on "dog." vs "dog,"); T5-style specials
``<pad>``=0, ``</s>``=1, ``<unk>``=2, ``<s>``=3 (BLIP's [DEC] bos), ``<enc>``=4 (BLIP's [ENC]); every encoded
sequence gets ``</s>`` appended by the post-processor, as T5 does.

Paper scale (loaded from a local folder or a hub id, ``HF_HUB_OFFLINE`` respected):
VL-T5 uses ``t5-base``'s SentencePiece vocabulary (32,100 tokens; the model's embeddings are resized to 32,200
rows for the ``<vis_extra_id_*>`` box ids), BLIP uses ``bert-base-uncased``'s WordPiece (30,522 + [DEC], [ENC]).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from amad.atomic import atomic_path
from amad.errors import ConfigError, DataError

__all__ = [
    "BLIP_BOS",
    "BLIP_ENC",
    "SPECIAL_TOKENS",
    "build_blip_tokenizer",
    "check_vocab",
    "example_texts",
    "load_tokenizer",
    "save_tokenizer",
    "train_tokenizer",
]

SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>", "<s>", "<enc>")  # ids 0..4 in this order
ROLES = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>", "bos_token": "<s>"}
# BLIP's additions to bert-base-uncased (BLIP ``init_tokenizer``): [DEC] is the decoder bos (id 30522), [ENC] the
# question-encoder start token (id 30523); 30,524 rows, as ``text_config.vocab_size`` of the Salesforce/blip-* models.
BLIP_BOS = "[DEC]"
BLIP_ENC = "[ENC]"
# Always in the vocabulary, so ordinary English/German text round-trips even with characters the corpus lacks.
BASE_ALPHABET = "".join(chr(c) for c in range(33, 127)) + "äöüÄÖÜßéè▁"


def example_texts(examples: Iterable) -> Iterator[str]:
    """Every text of ``amad.types.Example`` objects (source, target, references), for tokenizer training."""
    for example in examples:
        yield from (text for text in (example.source, example.target, *example.references) if text)


def _wrap(tokenizer_object, name: str = ""):
    """PreTrainedTokenizerFast around a ``tokenizers.Tokenizer`` with our special-token roles (those it has)."""
    from transformers import PreTrainedTokenizerFast

    vocab = tokenizer_object.get_vocab()
    roles = {role: token for role, token in ROLES.items() if token in vocab}
    extra = ["<enc>"] if "<enc>" in vocab else []
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object, extra_special_tokens=extra, name_or_path=name, **roles
    )


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_path: str | Path):
    """Train the mini BPE tokenizer and save it atomically as a ``tokenizer.json`` file.

    Args:
        texts: training sentences (any iterable; consumed once).
        vocab_size: the target size including the 5 special tokens (the result may be smaller when the corpus
            has fewer distinct pieces).
        out_path: the ``.json`` file to write, or a folder to write ``tokenizer.json`` into.

    Returns:
        The tokenizer as a ``PreTrainedTokenizerFast`` (as :func:`load_tokenizer` would return it).
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    if vocab_size <= len(SPECIAL_TOKENS):
        raise ConfigError(f"tokenizer vocab_size must exceed {len(SPECIAL_TOKENS)} (got {vocab_size}): raise it")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
            pre_tokenizers.Punctuation(behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=list(BASE_ALPHABET),
        show_progress=False,
    )
    seen = [0]

    def corpus() -> Iterator[str]:
        for text in texts:
            if text and text.strip():
                seen[0] += 1
                yield text

    tok.train_from_iterator(corpus(), trainer=trainer)
    if not seen[0]:
        raise DataError("tokenizer training corpus is empty: check that the mini data stages produced text")
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", SPECIAL_TOKENS.index("</s>"))]
    )
    out_path = Path(out_path)
    if out_path.suffix != ".json":
        out_path = out_path / "tokenizer.json"
    with atomic_path(out_path) as tmp:
        tok.save(str(tmp))
    return _wrap(tok, str(out_path))


def _from_json_file(path: Path):
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception subclasses on bad json
        raise DataError(
            f"tokenizer file {path} is unreadable ({exc}): delete it and re-run the tokenizer stage"
        ) from None
    return _wrap(tok, str(path))


def load_tokenizer(name: str | Path):
    """Load a tokenizer as a ``PreTrainedTokenizerFast``.

    Args:
        name: a ``tokenizer.json`` file; a folder (with ``tokenizer_config.json``: loaded by ``AutoTokenizer``,
            e.g. a saved t5-base or bert-base-uncased; with only ``tokenizer.json``: as that file);
            or a hub id
            (``t5-base``, ``Salesforce/blip-image-captioning-base``; fails fast when ``HF_HUB_OFFLINE=1``).
    """
    from transformers import AutoTokenizer

    path = Path(name)
    if path.is_file():
        return _from_json_file(path)
    if path.is_dir():
        if (path / "tokenizer_config.json").is_file():
            return AutoTokenizer.from_pretrained(str(path))
        if (path / "tokenizer.json").is_file():
            return _from_json_file(path / "tokenizer.json")
        raise ConfigError(f"tokenizer folder {path} has neither tokenizer.json nor tokenizer_config.json: fix the path")
    looks_local = str(name).startswith((".", "/", "~")) or str(name).endswith(".json") or str(name).count("/") > 1
    if looks_local:
        raise ConfigError(f"tokenizer {str(name)!r} not found: run the tokenizer stage or fix the path")
    try:
        return AutoTokenizer.from_pretrained(str(name))
    except (OSError, ValueError) as exc:
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"cannot load tokenizer {str(name)!r} from the hub{offline} ({reason}): download it to a local "
            "folder and pass that folder's path"
        ) from None


def build_blip_tokenizer(source: str | Path):
    """BLIP's tokenizer: bert-base-uncased WordPiece plus ``[DEC]`` (bos) and ``[ENC]``, as BLIP's ``init_tokenizer``.

    The HF BLIP port expects bos = [DEC], sep = eos = [SEP], pad = [PAD]; [ENC] starts VQA questions. From
    bert-base-uncased's 30,522 tokens this gives [DEC] = 30522, [ENC] = 30523 and 30,524 rows.

    Args:
        source: a folder holding ``vocab.txt`` (a saved bert-base-uncased), a ``vocab.txt`` file, or a hub id
            (``bert-base-uncased``; fails fast with a one-line ConfigError when offline).

    Returns:
        A fast BERT tokenizer (save it with ``save_pretrained``; reload it with :func:`load_tokenizer`).
    """
    from transformers import BertTokenizerFast

    path = Path(source)
    if path.is_file():
        if path.name != "vocab.txt":
            raise ConfigError(
                f"BLIP tokenizer source {path} is a file but not a vocab.txt: pass vocab.txt or its folder"
            )
        path = path.parent
    if path.is_dir():
        if not (path / "vocab.txt").is_file() and not (path / "tokenizer.json").is_file():
            raise ConfigError(f"BLIP tokenizer folder {path} has no vocab.txt: pass a saved bert-base-uncased folder")
        tok = BertTokenizerFast.from_pretrained(str(path))  # v5 ignores vocab_file=: load the folder instead
    else:
        try:
            tok = BertTokenizerFast.from_pretrained(str(source))
        except (OSError, ValueError) as exc:
            offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"cannot load the BLIP base tokenizer {str(source)!r}{offline} ({reason}): pass a local folder "
                "holding bert-base-uncased's vocab.txt"
            ) from None
    vocab = tok.get_vocab()
    words = [t for t in vocab if t not in tok.all_special_tokens and not t.startswith("[unused")]
    if len(words) < 100:  # transformers v5 quietly builds a specials-only vocabulary when the files are missing
        raise ConfigError(
            f"BLIP tokenizer source {str(source)!r} gave a vocabulary of {len(words)} words (offline, or not a "
            "WordPiece vocabulary?): pass a local folder holding bert-base-uncased's vocab.txt"
        )
    if BLIP_BOS not in vocab:
        tok.add_special_tokens({"bos_token": BLIP_BOS})
    if BLIP_ENC not in vocab:
        tok.add_special_tokens({"additional_special_tokens": [BLIP_ENC]})
    tok.bos_token, tok.eos_token = BLIP_BOS, tok.sep_token
    missing = [name for name in ("pad_token", "sep_token", "cls_token") if getattr(tok, name) is None]
    if missing:
        raise ConfigError(f"BLIP tokenizer source {source} lacks {missing}: use bert-base-uncased's vocabulary")
    return tok


# Keys transformers writes from the loading environment (e.g. HF_HUB_OFFLINE); dropped so that a saved tokenizer
# is byte-identical wherever it was made, and a rerun of the download stage changes nothing downstream.
_VOLATILE_CONFIG_KEYS = ("is_local", "local_files_only", "name_or_path", "_commit_hash")


def save_tokenizer(tokenizer, folder: str | Path) -> None:
    """``save_pretrained`` into ``folder`` without the environment-dependent config keys (same bytes every time)."""
    import json

    folder = Path(folder)
    tokenizer.save_pretrained(str(folder))
    config_path = folder / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        for key in _VOLATILE_CONFIG_KEYS:
            config.pop(key, None)
        text = json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        config_path.write_text(text, encoding="utf-8")


def check_vocab(tokenizer, model_vocab_size: int, *, reserved_extra: int = 0) -> None:
    """Raise ConfigError when the tokenizer's ids (plus ``reserved_extra`` rows, e.g. VL-T5's 100
    ``<vis_extra_id>`` box ids) do not fit in the model's ``model_vocab_size`` embedding rows."""
    needed = len(tokenizer) + reserved_extra
    if needed > model_vocab_size:
        extra = f" + {reserved_extra} reserved" if reserved_extra else ""
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise ConfigError(
            f"tokenizer {name!r} needs {needed} embedding rows ({len(tokenizer)} tokens{extra}) but the model has "
            f"{model_vocab_size}: set the model's vocab_size to >= {needed} or use the model's own tokenizer"
        )
