"""Tokenizers: mini BPE training, save/load round trip, special ids, vocabulary checks, BLIP's WordPiece."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amad.data.tokenizer import (
    BLIP_BOS,
    BLIP_ENC,
    SPECIAL_TOKENS,
    build_blip_tokenizer,
    check_vocab,
    example_texts,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from amad.errors import ConfigError, DataError
from amad.types import Example

CORPUS = [
    "a red circle to the left of a blue square",
    "there is a small green triangle at the top",
    "what color is the shape?",
    "does the image not contain a gray shape?",
    "Ein Mann mit einem orangefarbenen Hut starrt auf etwas.",
    "Zwei junge Männer spielen draußen Fußball.",
    "A man in an orange hat starring at something.",
    "Two young, White males are outside near many bushes.",
] * 5
SENTENCES = [
    "a blue square below a red circle",
    "is there a triangle in the image?",
    "Ein Hund läuft über die Straße, während es regnet.",
    'Two dogs (3 years old) play outside: "fun"!',
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    return path, train_tokenizer(iter(CORPUS), 300, path)


def test_special_token_ids_and_eos(trained):
    path, tok = trained
    assert path.is_file()
    assert tok.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == [0, 1, 2, 3, 4]
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.bos_token_id) == (0, 1, 2, 3)
    ids = tok("a red circle")["input_ids"]
    assert ids[-1] == 1 and 1 not in ids[:-1]
    assert tok.convert_ids_to_tokens(ids)[:3] == ["▁a", "▁red", "▁circle"]


def test_decode_encode_round_trip_keeps_case_and_spacing(trained):
    _, tok = trained
    for sentence in SENTENCES:
        ids = tok(sentence)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids, skip_special_tokens=True) == sentence


def test_save_and_reload_give_the_same_ids(trained, tmp_path):
    path, tok = trained
    from_file, from_dir = load_tokenizer(path), load_tokenizer(path.parent)
    tok.save_pretrained(tmp_path / "saved")  # tokenizer.json + tokenizer_config.json -> AutoTokenizer path
    from_auto = load_tokenizer(tmp_path / "saved")
    for sentence in SENTENCES:
        expected = tok(sentence)["input_ids"]
        assert from_file(sentence)["input_ids"] == from_dir(sentence)["input_ids"] == expected
        assert from_auto(sentence)["input_ids"] == expected
    assert from_auto.pad_token_id == 0 and from_file.convert_tokens_to_ids("<enc>") == 4
    assert len(from_file) == len(tok) <= 300


def test_check_vocab(trained):
    _, tok = trained
    check_vocab(tok, len(tok))
    check_vocab(tok, len(tok) + 100, reserved_extra=100)
    with pytest.raises(ConfigError, match=rf"needs {len(tok) + 1} embedding rows .* but the model has {len(tok)}"):
        check_vocab(tok, len(tok), reserved_extra=1)
    with pytest.raises(ConfigError, match="vocab_size to >= "):
        check_vocab(tok, 10)


def test_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="vocab_size must exceed 5"):
        train_tokenizer(CORPUS, 5, tmp_path / "t.json")
    with pytest.raises(DataError, match="corpus is empty"):
        train_tokenizer(["", "  "], 100, tmp_path / "t.json")
    assert not (tmp_path / "t.json").exists()
    with pytest.raises(ConfigError, match="not found: run the tokenizer stage"):
        load_tokenizer(tmp_path / "missing" / "tokenizer.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match=r"broken\.json is unreadable"):
        load_tokenizer(tmp_path / "broken.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"has neither tokenizer\.json"):
        load_tokenizer(tmp_path / "empty")


def test_example_texts():
    examples = [Example("1", "7", "what shape?", "circle", ["circle"] * 2), Example("2", None, "", "a dog", ["a dog"])]
    assert list(example_texts(examples)) == ["what shape?", "circle", "circle", "circle", "a dog", "a dog"]


HUB = Path(__file__).resolve().parents[1] / "fixtures" / "hub"


@pytest.mark.parametrize("source", ["bert-wordpiece-tiny", "bert-wordpiece-tiny/vocab.txt"])
def test_blip_tokenizer_adds_dec_and_enc_to_a_wordpiece_vocab(source):
    tok = build_blip_tokenizer(HUB / source)
    n = 277  # the fixture's WordPiece rows; bert-base-uncased has 30,522
    assert len(tok) == n + 2 and tok.convert_tokens_to_ids([BLIP_BOS, BLIP_ENC]) == [n, n + 1]
    assert tok.bos_token_id == n and tok.sep_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("[SEP]")
    assert tok.pad_token_id == 0 and tok.cls_token_id == tok.convert_tokens_to_ids("[CLS]")
    assert tok("A Red circle", add_special_tokens=False)["input_ids"] == tok.convert_tokens_to_ids(
        ["a", "red", "circle"]
    )
    assert tok.tokenize("a [ENC] b [DEC]") == ["a", BLIP_ENC, "b", BLIP_BOS]  # never split into word pieces


def test_blip_tokenizer_appends_dec_and_enc_after_the_bert_vocabulary():
    """[DEC] and [ENC] are the two rows after BERT's: with bert-base-uncased's 30,522 words that is 30,524 rows,
    [DEC] = 30522 and [ENC] = 30523, as text_config of the Salesforce/blip-* models (here the 277-word fixture)."""
    tok = build_blip_tokenizer(HUB / "bert-wordpiece-tiny")
    words = len((HUB / "bert-wordpiece-tiny" / "vocab.txt").read_text().splitlines())
    assert len(tok) == words + 2 and (tok.bos_token_id, tok.convert_tokens_to_ids(BLIP_ENC)) == (words, words + 1)
    assert tok.sep_token_id == tok.convert_tokens_to_ids("[SEP]") and tok.pad_token_id == 0


def test_saved_blip_tokenizer_reloads_identically_and_byte_stable(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    save_tokenizer(build_blip_tokenizer(HUB / "bert-wordpiece-tiny"), first)
    save_tokenizer(build_blip_tokenizer(HUB / "bert-wordpiece-tiny" / "vocab.txt"), second)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert "local_files_only" not in json.loads((first / "tokenizer_config.json").read_text())
    again = load_tokenizer(first)
    assert len(again) == 279 and again.bos_token == BLIP_BOS and again.convert_tokens_to_ids(BLIP_ENC) == 278
    assert build_blip_tokenizer(first).get_vocab() == again.get_vocab()  # a saved BLIP tokenizer is a valid source


def test_blip_tokenizer_bad_sources(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match=r"not a vocab\.txt"):
        build_blip_tokenizer(tmp_path / "notes.txt")
    with pytest.raises(ConfigError, match=r"has no vocab\.txt"):
        build_blip_tokenizer(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"'amad-tests/no-such-tokenizer' gave a vocabulary of 0 words"):
        build_blip_tokenizer("amad-tests/no-such-tokenizer")


def test_tiny_t5_fixture_has_t5_specials():
    tok = load_tokenizer(HUB / "t5-unigram-tiny")
    assert (len(tok), tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (310, 0, 1, 2)
    assert tok.convert_tokens_to_ids(["<extra_id_0>", "<extra_id_9>"]) == [309, 300]
    ids = tok("A red circle.")["input_ids"]
    assert ids[-1] == 1 and tok.decode(ids, skip_special_tokens=True) == "A red circle."


def test_layout_gives_each_family_its_own_tokenizer_where_there_is_one(tmp_path):
    from amad_suite.pipeline.layout import DataLayout

    layout = DataLayout(tmp_path, "paper")
    assert layout.tokenizer_dir("blip") == tmp_path / "tokenizer"  # mini: one shared folder
    (tmp_path / "tokenizer" / "blip").mkdir(parents=True)
    assert layout.tokenizer_dir("blip") == tmp_path / "tokenizer" / "blip"
    assert layout.tokenizer_dir("vlt5") == tmp_path / "tokenizer"
