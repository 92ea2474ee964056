"""The reliability workspace (smoke data, two teachers, one finished student), built once for the session."""

import pytest
from reliability_support import Workspace
from shared_data import MISSING


@pytest.fixture(scope="session")
def ws(tmp_path_factory) -> Workspace:
    if MISSING:  # the workspace's download stage builds the mini data, Multi30K included
        pytest.skip(MISSING)
    return Workspace.build(tmp_path_factory.mktemp("reliability"))
