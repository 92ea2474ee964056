"""The stage scripts' allocator setting: on with glibc, off with AMAD_SYSTEM_MALLOC=1, recorded in run_info."""

import ctypes.util

import pytest

from amad_suite import allocator
from amad_suite.training.run_info import collect


def test_opt_out_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setenv("AMAD_SYSTEM_MALLOC", "1")
    assert allocator.keep_freed_memory() is False


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="needs a C library")
def test_glibc_takes_the_setting_and_run_info_records_it(monkeypatch):
    monkeypatch.delenv("AMAD_SYSTEM_MALLOC", raising=False)
    monkeypatch.setitem(allocator._state, "kept", False)
    assert collect({}, 0)["allocator"] == "system"
    assert allocator.keep_freed_memory() is True
    assert collect({}, 0)["allocator"] == "glibc-keep-freed"
