"""sacreBLEU metrics equal the `sacrebleu` command line on the same files, incl. the real Multi30K references."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import SHARED_MULTI30K, needs_multi30k

from amad.errors import DataError
from amad.metrics import tokenized_bleu, translation_metrics

SACREBLEU = Path(sys.executable).parent / "sacrebleu"
MULTI30K = SHARED_MULTI30K / "task1"

HYPS = ["Ein Mann reitet.", "Zwei hunde spielen im Gras", "Eine Frau, die ein Buch liest.", "Kinder am Strand"]
REFS = ["Ein Mann reitet ein Pferd.", "Zwei Hunde spielen im Gras.", "Eine Frau liest ein Buch.", "Kinder am Strand."]


def _cli(refs: list[str], hyps: list[str], tmp_path: Path, *flags: str) -> list[dict]:
    ref_file, hyp_file = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref_file.write_text("\n".join(refs) + "\n", encoding="utf-8")
    hyp_file.write_text("\n".join(hyps) + "\n", encoding="utf-8")
    cmd = [str(SACREBLEU), str(ref_file), "-i", str(hyp_file), "-w", "4", *flags]
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    return out if isinstance(out, list) else [out]


def _assert_matches_cli(hyps: list[str], refs: list[str], tmp_path: Path) -> dict:
    ours = translation_metrics(hyps, refs)
    bleu, chrf = _cli(refs, hyps, tmp_path, "-m", "bleu", "chrf")
    (bleu_lc,) = _cli(refs, hyps, tmp_path, "-m", "bleu", "-lc")
    assert ours["bleu"] == pytest.approx(bleu["score"], abs=1e-4)
    assert ours["signature"] == bleu["signature"]
    assert ours["bleu_lc"] == pytest.approx(bleu_lc["score"], abs=1e-4)
    assert ours["signature_lc"] == bleu_lc["signature"] and "case:lc" in ours["signature_lc"]
    assert ours["chrf"] == pytest.approx(chrf["score"], abs=1e-4)
    assert ours["signature_chrf"] == chrf["signature"]
    return ours


def test_equal_to_sacrebleu_cli(tmp_path: Path) -> None:
    ours = _assert_matches_cli(HYPS, REFS, tmp_path)
    assert ours["bleu_lc"] > ours["bleu"]  # "hunde" only matches "Hunde" when lower-cased
    assert ours["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_tokenized_bleu_equals_cli(tmp_path: Path) -> None:
    hyps = ["ein mann reitet .", "zwei hunde spielen im gras"]
    refs = ["ein mann reitet ein pferd .", "zwei hunde spielen im gras ."]
    ours = tokenized_bleu(hyps, refs)
    (cli,) = _cli(refs, hyps, tmp_path, "-m", "bleu", "-tok", "none", "--force")
    assert ours["bleu_tok"] == pytest.approx(cli["score"], abs=1e-4)
    assert ours["signature_tok"] == cli["signature"] and "tok:none" in ours["signature_tok"]


def _read_gz(name: str) -> list[str]:
    with gzip.open(MULTI30K / "raw" / name, "rt", encoding="utf-8") as handle:
        return handle.read().splitlines()


@needs_multi30k
@pytest.mark.parametrize("split", ["test_2016_flickr", "test_2017_flickr", "test_2018_flickr"])
def test_multi30k_references_score_100_against_themselves(split: str) -> None:
    refs = _read_gz(f"{split}.de.gz")
    assert len(refs) in (1000, 1071)
    result = translation_metrics(refs, refs)
    assert result["bleu"] == pytest.approx(100.0) and result["bleu_lc"] == pytest.approx(100.0)
    tok = (MULTI30K / "tok" / f"{split}.lc.norm.tok.de").read_text(encoding="utf-8").splitlines()
    assert len(tok) == len(refs)
    assert tokenized_bleu(tok, tok)["bleu_tok"] == pytest.approx(100.0)


@needs_multi30k
def test_multi30k_perturbed_hypotheses_match_cli(tmp_path: Path) -> None:
    refs = _read_gz("test_2016_flickr.de.gz")
    hyps = []
    for index, line in enumerate(refs):  # drop, lower-case or keep, deterministically
        words = line.split()
        if index % 3 == 0:
            words = words[:-2]
        elif index % 3 == 1:
            words = [word.lower() for word in words]
        hyps.append(" ".join(words))
    ours = _assert_matches_cli(hyps, refs, tmp_path)
    assert 40 < ours["bleu"] < ours["bleu_lc"] < 100


@pytest.mark.parametrize(
    ("hyps", "refs", "message"),
    [
        ([], [], "translation hypotheses are empty"),
        (["a", "b"], ["a"], "2 hypotheses but 1 references"),
        ("a b", "a b", "lists of sentences, not one string"),
        (["a", None], ["a", "b"], "hypothesis 1 is a NoneType"),
        (["a", "b"], ["a", 3], "reference 1 is a int"),
    ],
)
def test_bad_input(hyps: list, refs: list, message: str) -> None:
    with pytest.raises(DataError, match=message):
        translation_metrics(hyps, refs)
    with pytest.raises(DataError, match=message):
        tokenized_bleu(hyps, refs)
