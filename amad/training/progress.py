"""Progress: a tqdm bar on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time

from tqdm.auto import tqdm

log = logging.getLogger("amad.progress")


class Progress:
    """Counts steps; shows a bar on a TTY and logs ``step/total, rate, ETA`` lines every ``every`` steps otherwise."""

    def __init__(self, total: int, desc: str, *, initial: int = 0, every: int = 50, enabled: bool = True) -> None:
        self.total, self.desc, self.every = total, desc, max(1, every)
        self.step = initial
        self.start, self.start_step = time.perf_counter(), initial
        self.bar = None
        if enabled and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)
        self.enabled = enabled

    def update(self, n: int = 1, **postfix: float) -> None:
        self.step += n
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
        elif self.enabled and (self.step % self.every == 0 or self.step == self.total):
            elapsed = time.perf_counter() - self.start
            rate = (self.step - self.start_step) / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.step) / rate if rate > 0 else float("nan")
            extra = " ".join(f"{k}={v:.4g}" for k, v in postfix.items())
            log.info("%s %d/%d (%.2f it/s, ETA %.0fs) %s", self.desc, self.step, self.total, rate, eta, extra)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
