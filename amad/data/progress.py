"""Progress for long data jobs: tqdm on a terminal, otherwise a log line every LOG_EVERY_S seconds."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger(__name__)
LOG_EVERY_S = 30.0


class Progress:
    """``update(n)`` as work is done; ``close()`` at the end. Bytes are shown in MB, other units as counts."""

    def __init__(self, desc: str, total: int | None, *, unit: str = "B", initial: int = 0, enabled: bool = True):
        self.desc, self.total, self.unit, self.done, self.enabled = desc, total, unit, initial, enabled
        tty = enabled and sys.stderr.isatty()
        scale = unit == "B"
        self.bar = tqdm(
            total=total, initial=initial, unit=unit, unit_scale=scale, unit_divisor=1024 if scale else 1000,
            desc=desc, disable=not tty,
        )  # fmt: skip
        self.start = self.last = time.monotonic()

    def _amount(self, n: int | None) -> str:
        if n is None:
            return "unknown size" if self.unit == "B" else "?"
        return f"{n / 1e6:.1f} MB" if self.unit == "B" else f"{n} {self.unit}"

    def update(self, n: int) -> None:
        self.done += n
        self.bar.update(n)
        if self.enabled and self.bar.disable and time.monotonic() - self.last >= LOG_EVERY_S:
            self.last = time.monotonic()
            pct = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
            log.info("%s: %s of %s%s", self.desc, self._amount(self.done), self._amount(self.total), pct)

    def close(self) -> None:
        self.bar.close()
