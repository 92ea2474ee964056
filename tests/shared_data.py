"""The skip marker of tests that need the real Multi30K text (``amad_suite.testing.SHARED_MULTI30K``)."""

import pytest

from amad_suite.testing import SHARED_MULTI30K

MISSING = None if (SHARED_MULTI30K / "task1" / "raw").is_dir() else f"no shared Multi30K copy at {SHARED_MULTI30K}"
needs_multi30k = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

__all__ = ["MISSING", "SHARED_MULTI30K", "needs_multi30k"]
