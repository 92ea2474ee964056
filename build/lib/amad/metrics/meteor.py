"""METEOR 1.5 through pycocoevalcap, guarded against its hangs.

pycocoevalcap's ``Meteor`` talks to one long-lived JVM over a line protocol. Two failure modes are handled:

* a caption with a line break (or "|||") desynchronises the protocol; the text is sanitised first;
* ``compute_score`` keeps its lock when it fails, after which ``Meteor.__del__`` blocks forever at interpreter
  exit. Scoring runs in a worker thread with a timeout; on timeout or error the JVM is killed and the lock is
  replaced, so nothing can hang at exit.

The JVM takes seconds to start (it loads the paraphrase table): create one :class:`MeteorScorer` and reuse it.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Mapping

from amad.metrics.java import MetricToolError, require_java

__all__ = ["MeteorScorer", "meteor_safe"]


def meteor_safe(text: str) -> str:
    """Remove what breaks METEOR's line protocol: line breaks (any whitespace run becomes one space) and "|||"."""
    return " ".join(text.replace("|||", " ").split())


class MeteorScorer:
    """One METEOR JVM with a per-call timeout. Use as a context manager, or call :meth:`close`.

    Args:
        backend: a pycocoevalcap ``Meteor`` (or an object with its ``compute_score``, ``meteor_p`` and ``lock``);
            by default a new one is started.
    """

    def __init__(self, backend: object | None = None) -> None:
        if backend is None:
            require_java()
            from pycocoevalcap.meteor.meteor import Meteor

            backend = Meteor()
        self.backend = backend
        self._closed = False

    def score(
        self, gts: Mapping[str, list[str]], res: Mapping[str, list[str]], timeout: float = 600.0
    ) -> tuple[float, list[float]]:
        """Corpus METEOR and per-item scores (both in [0, 1]) of tokenised captions.

        Args:
            gts: id -> reference captions; res: id -> [one candidate caption]; same ids.
            timeout: seconds to wait for the JVM before killing it.

        Raises:
            MetricToolError: the JVM timed out, died or answered garbage (this scorer is then closed).
        """
        if self._closed:
            raise MetricToolError("this METEOR scorer was closed after an error: create a new MeteorScorer")
        gts_safe = {key: [meteor_safe(ref) for ref in refs] for key, refs in gts.items()}
        res_safe = {key: [meteor_safe(hyp) for hyp in res[key]] for key in gts}
        outcome: dict[str, object] = {}

        def work() -> None:
            try:
                outcome["value"] = self.backend.compute_score(gts_safe, res_safe)
            except BaseException as err:  # reported to the caller below
                outcome["error"] = err

        worker = threading.Thread(target=work, name="meteor-score", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            self.close()  # killing the JVM ends the worker's blocked read
            worker.join(5.0)
            raise MetricToolError(
                f"METEOR gave no answer within {timeout:g} s and was stopped: raise meteor_timeout for large "
                "sets, or check that `java -jar meteor-1.5.jar` runs (it needs about 2 GB of memory)"
            )
        if "error" in outcome:
            detail = self._jvm_stderr() or f"{type(outcome['error']).__name__}: {outcome['error']}"
            self.close()
            first_line = str(detail).strip().splitlines()[0][:200] if str(detail).strip() else "no output"
            raise MetricToolError(
                f"METEOR failed ({first_line}): check that `java -Xmx2G -jar meteor-1.5.jar` runs on this machine"
            )
        score, scores = outcome["value"]
        return float(score), [float(s) for s in scores]

    def _jvm_stderr(self) -> str:
        """The JVM's error output, when it has exited by itself (reading a live JVM's stderr would block)."""
        proc = self.backend.meteor_p
        try:
            proc.wait(timeout=2.0)  # a dying JVM closes stdout just before it exits
        except subprocess.TimeoutExpired:
            return ""
        if proc.stderr is None:
            return ""
        try:
            return proc.stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        """Stop the JVM. Safe to call twice; makes pycocoevalcap's ``Meteor.__del__`` unable to deadlock."""
        if self._closed:
            return
        self._closed = True
        proc = self.backend.meteor_p
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # a broken pipe while flushing to a dead JVM
                    stream.close()
        # compute_score never releases its lock on errors, and Meteor.__del__ acquires it: give it a free one.
        self.backend.lock = threading.Lock()

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
