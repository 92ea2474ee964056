"""Progress for long work: a tqdm bar on a terminal, periodic log lines otherwise (logs, ``dvc queue``, CI).

One class for every long job (training steps, evaluation batches, downloads in bytes, file conversions). Off a
terminal it logs ``desc done/total (rate, ETA) extras`` every ``every`` units of work, or every ``every_s``
seconds when no step interval is given (downloads).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger("amad.progress")
LOG_EVERY_S = 30.0


class Progress:
    """Counts work done.

    Args:
        total: the amount of work (None when unknown, e.g. a download without a Content-Length).
        desc: what is being done, the first word of every line.
        unit: ``"it"`` for steps, ``"B"`` for bytes (shown in MB), anything else for counts of that unit.
        initial: work already done (a resumed run or download).
        every: log every this many units (steps); None: log every ``every_s`` seconds.
        enabled: False prints nothing (other ranks of a multi-GPU run, tests).
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "it",
        initial: int = 0,
        every: int | None = None,
        every_s: float = LOG_EVERY_S,
        enabled: bool = True,
    ) -> None:
        self.total, self.desc, self.unit, self.enabled = total, desc, unit, enabled
        self.every, self.every_s = (max(1, every) if every else None), every_s
        self.done = self.start_done = initial
        self.start = self.last = time.monotonic()
        self.bar = None
        if enabled and sys.stderr.isatty():
            scale = unit == "B"
            self.bar = tqdm(
                total=total, initial=initial, desc=desc, unit=unit, unit_scale=scale,
                unit_divisor=1024 if scale else 1000, dynamic_ncols=True,
            )  # fmt: skip

    def update(self, n: int = 1, **postfix: float) -> None:
        """Add ``n`` units of work; ``postfix`` values (e.g. ``loss=``) go on the bar or the log line."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
            return
        if not self.enabled:
            return
        now = time.monotonic()
        if self.every is not None:
            due = self.done % self.every < n or self.done == self.total
        else:
            due = now - self.last >= self.every_s
        if due:
            self.last = now
            log.info("%s", self.line(now, postfix))

    def line(self, now: float, postfix: dict[str, Any]) -> str:
        elapsed = now - self.start
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 and self.total else float("nan")
        extra = " ".join(f"{k}={v:.4g}" for k, v in postfix.items())
        if self.unit == "B":
            total = f"{self.total / 1e6:.1f} MB" if self.total is not None else "unknown size"
            return f"{self.desc}: {self.done / 1e6:.1f} MB of {total} ({rate / 1e6:.2f} MB/s, ETA {eta:.0f}s)"
        total = self.total if self.total is not None else "?"
        return f"{self.desc} {self.done}/{total} ({rate:.2f} {self.unit}/s, ETA {eta:.0f}s) {extra}".rstrip()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
