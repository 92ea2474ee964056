"""Tokenizers: mini BPE training, save/load round trip, special ids, vocabulary checks, MiniLM WordPiece."""

from __future__ import annotations

import pytest

from amad.data.tokenizer import SPECIAL_TOKENS, check_vocab, example_texts, load_tokenizer, train_tokenizer
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


def test_minilm_wordpiece_loads_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tok = load_tokenizer("minilm-wordpiece")
    assert len(tok) == 30522 and tok.pad_token_id == 0
    ids = tok("A red circle")["input_ids"]
    assert ids[0] == tok.cls_token_id == 101 and ids[-1] == tok.sep_token_id == 102
    assert tok.decode(ids, skip_special_tokens=True) == "a red circle"


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
