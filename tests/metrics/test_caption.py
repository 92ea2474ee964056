"""Caption metrics equal pycocoevalcap's scorers called directly; METEOR guards; SPICE reporting; bad input.

One METEOR JVM (several seconds to start) is shared by the whole module.
"""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

from amad.errors import DataError
from amad.metrics import MeteorScorer, MetricToolError, caption_metrics, ptb_tokenize, spice_unavailable_reason

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="PTBTokenizer and METEOR need java")

PREDICTIONS = {
    101: "A man riding a horse on a beach.",
    102: "two dogs playing\nin the grass",
    103: "a plate of food with broccoli",
    104: "A red bus ||| parked on the street",
}
REFERENCES = {
    101: ["A man rides a brown horse along the beach.", "a person on a horse near the ocean", "Man on horseback."],
    102: ["Two dogs play in the grass.", "A pair of dogs running on a lawn", "dogs playing outside"],
    103: ["A plate with broccoli and rice.", "a dish of vegetables and meat", "Food on a white plate."],
    104: ["A red double decker bus on a street.", "a bus parked by the curb", "The red bus is parked."],
}


@pytest.fixture(scope="module")
def meteor() -> MeteorScorer:
    with MeteorScorer() as scorer:
        yield scorer


@pytest.fixture(scope="module")
def ours(meteor: MeteorScorer) -> dict:
    return caption_metrics(PREDICTIONS, REFERENCES, meteor=meteor)


def _coco(captions: dict) -> dict:
    return {key: [{"caption": text} for text in texts] for key, texts in captions.items()}


@needs_java
def test_equal_to_pycocoevalcap_called_directly(ours: dict, meteor: MeteorScorer) -> None:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = PTBTokenizer().tokenize(_coco(REFERENCES))
    res = PTBTokenizer().tokenize(_coco({key: [text] for key, text in PREDICTIONS.items()}))
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    # METEOR on the same JVM, called directly (the tokenizer already turned the newline and "|||" into spaces
    # and "| | |").
    direct = {f"Bleu_{n + 1}": 100 * score for n, score in enumerate(bleu)}
    direct["METEOR"] = 100 * meteor.backend.compute_score(gts, res)[0]
    direct["ROUGE_L"] = 100 * Rouge().compute_score(gts, res)[0]
    direct["CIDEr"] = 100 * Cider().compute_score(gts, res)[0]
    for name, value in direct.items():
        assert ours[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
    assert 0 < ours["Bleu_4"] < ours["Bleu_1"] <= 100 and 0 < ours["METEOR"] < 100 and ours["CIDEr"] > 0


@needs_java
def test_spice_reported_unavailable_not_zero(ours: dict) -> None:
    reason = spice_unavailable_reason()
    if reason is None:
        pytest.skip("Stanford CoreNLP jars are installed here")
    assert ours["SPICE"] is None
    assert "stanford-corenlp-3.6.0.jar" in ours["SPICE_reason"] and "\n" not in ours["SPICE_reason"]


@needs_java
def test_meteor_newline_guard_keeps_protocol_in_sync(meteor: MeteorScorer) -> None:
    gts = {"a": ["a dog\nruns on the grass", "the dog ||| is running"], "b": ["a cat\r\nsleeps"]}
    res = {"a": ["a dog runs\n on grass |||"], "b": ["a cat\nsleeps"]}
    score, per_item = meteor.score(gts, res, timeout=120)
    assert 0 < score <= 1 and len(per_item) == 2
    assert per_item[1] == pytest.approx(meteor.score({"b": ["a cat sleeps"]}, {"b": ["a cat sleeps"]})[1][0])


def _fake_meteor(cmd: list[str]):
    from pycocoevalcap.meteor.meteor import Meteor

    fake = Meteor.__new__(Meteor)  # the real compute_score, talking to a process that misbehaves
    pipe = subprocess.PIPE
    fake.meteor_p = subprocess.Popen(cmd, stdin=pipe, stdout=pipe, stderr=pipe)
    fake.lock = threading.Lock()
    return fake


def test_meteor_hang_raises_and_cannot_deadlock() -> None:
    backend = _fake_meteor(["sleep", "60"])
    scorer = MeteorScorer(backend)
    with pytest.raises(MetricToolError, match=r"METEOR gave no answer within 0\.5 s"):
        scorer.score({"x": ["a dog"]}, {"x": ["a dog"]}, timeout=0.5)
    assert backend.meteor_p.poll() is not None  # the process was killed
    assert backend.lock.acquire(timeout=1)  # Meteor.__del__ can take the lock at exit
    backend.lock.release()
    with pytest.raises(MetricToolError, match="was closed"):
        scorer.score({"x": ["a dog"]}, {"x": ["a dog"]})


def test_meteor_dead_jvm_reports_its_stderr() -> None:
    scorer = MeteorScorer(_fake_meteor(["sh", "-c", "echo 'Error: Could not create the Java VM' >&2"]))
    with pytest.raises(MetricToolError, match=r"METEOR failed \(Error: Could not create the Java VM\)"):
        scorer.score({"x": ["a dog"]}, {"x": ["a dog"]}, timeout=30)


@needs_java
def test_ptb_tokenize_keeps_alignment_with_carriage_returns_and_empty_captions() -> None:
    out = ptb_tokenize({1: ["A man,\rriding.", ""], 2: ["Two  DOGS!"], 3: [""]})
    assert out == {1: ["a man riding", ""], 2: ["two dogs"], 3: [""]}


@needs_java
def test_skipping_meteor_and_spice_is_reported() -> None:
    result = caption_metrics({1: "a dog"}, {1: ["a dog runs", "a brown dog"]}, meteor=False, spice=False)
    assert result["METEOR"] is None and "meteor=False" in result["METEOR_reason"]
    assert result["SPICE"] is None and "spice=False" in result["SPICE_reason"]


@needs_java
def test_spice_failure_and_success_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    import pycocoevalcap.spice.spice as spice_module

    import amad.metrics.caption as caption

    class FailingSpice:
        def compute_score(self, gts, res):
            raise subprocess.CalledProcessError(1, ["java", "-jar", "spice-1.0.jar"])

    class FakeSpice:
        def compute_score(self, gts, res):
            assert set(gts) == set(res) == {"1"}
            return 0.25, []

    monkeypatch.setattr(caption, "spice_unavailable_reason", lambda: None)
    monkeypatch.setattr(spice_module, "Spice", FailingSpice)
    failed = caption_metrics({1: "a dog"}, {1: ["a dog runs"]}, meteor=False)
    assert failed["SPICE"] is None and "Java >= 16" in failed["SPICE_reason"]
    monkeypatch.setattr(spice_module, "Spice", FakeSpice)
    assert caption_metrics({1: "a dog"}, {1: ["a dog runs"]}, meteor=False)["SPICE"] == pytest.approx(25.0)


def test_java_missing_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import amad.metrics.java as java

    monkeypatch.setattr(java.shutil, "which", lambda name: None)
    with pytest.raises(MetricToolError, match=r"apt-get install openjdk-17-jre-headless"):
        caption_metrics({1: "a dog"}, {1: ["a dog"]})


@needs_java
def test_unwritable_tokenizer_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    import amad.metrics.java as java

    real_access = java.os.access
    monkeypatch.setattr(
        java.os, "access", lambda path, mode: "pycocoevalcap" not in str(path) and real_access(path, mode)
    )
    with pytest.raises(MetricToolError, match=r"PTBTokenizer writes temporary files into .*tokenizer.*not writable"):
        ptb_tokenize({1: ["a dog"]})


@pytest.mark.parametrize(
    ("predictions", "references", "message"),
    [
        ({}, {1: ["a dog"]}, "caption predictions are empty"),
        ({1: "a dog", 2: "a cat"}, {1: ["a dog"]}, r"1 predicted without references.*image 2 has no references"),
        ({1: "a dog"}, {1: ["a dog"], 3: ["x"]}, r"1 referenced without prediction.*image 3 has no prediction"),
        ({1: "a dog"}, {1: "a dog"}, "references for image 1 must be a non-empty list of strings"),
        ({1: "a dog"}, {1: []}, "references for image 1 must be a non-empty list"),
        ({1: ["a dog"]}, {1: ["a dog"]}, "prediction for image 1 is a list"),
    ],
)
def test_bad_input(predictions: dict, references: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        caption_metrics(predictions, references, meteor=False)
    assert "\n" not in str(info.value)
