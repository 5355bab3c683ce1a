"""Shared fixtures: one contract suite over every backend (a local path and memory://)."""

from __future__ import annotations

import os
import uuid

import pytest

# Tests want flushes and heartbeats in tenths of a second, not in seconds.
os.environ.setdefault("RUNLAKE_FLUSH_INTERVAL", "0.2")
os.environ.setdefault("RUNLAKE_HEARTBEAT_TIMEOUT", "3")

import runlake  # noqa: E402


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty root on each backend."""
    if request.param == "local":
        return str(tmp_path / "lake")
    return f"memory://runlake-tests/{uuid.uuid4().hex}"


@pytest.fixture
def local_root(tmp_path) -> str:
    return str(tmp_path / "lake")


@pytest.fixture(autouse=True)
def _finish_open_runs():
    """A test that fails mid-run must not leave a run open for the next one."""
    yield
    while runlake.run is not None:
        runlake.run.finish()


def effective(frame) -> dict[int, dict[str, object]]:
    """A wide history frame -> {step: {key: value}} without system columns or nulls."""
    out: dict[int, dict[str, object]] = {}
    keys = [c for c in frame.columns if c not in ("_step", "_timestamp", "_runtime")]
    for row in frame.iter_rows(named=True):
        out[row["_step"]] = {k: row[k] for k in keys if row[k] is not None}
    return out
