"""The reliability workspace (smoke data, two teachers, one finished student), built once for the session."""

import pytest
from reliability_support import Workspace


@pytest.fixture(scope="session")
def ws(tmp_path_factory) -> Workspace:
    return Workspace.build(tmp_path_factory.mktemp("reliability"))
