"""Where tests and benchmarks find the real Multi30K task 1 text: ../shared/data/multi30k beside the checkout.

It is read in place and never copied into the repository (non-commercial research licence). Tests that need it
are skipped, with this path in the reason, where it is absent.
"""

from pathlib import Path

import pytest

SHARED_MULTI30K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "multi30k"
needs_multi30k = pytest.mark.skipif(
    not (SHARED_MULTI30K / "task1" / "raw").is_dir(), reason=f"no shared Multi30K copy at {SHARED_MULTI30K}"
)
