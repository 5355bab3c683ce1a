"""Shared fixtures: one contract suite over every backend (a local path and memory://)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

# Tests want flushes and heartbeats in tenths of a second, not in seconds.
os.environ.setdefault("RUNLAKE_FLUSH_INTERVAL", "0.2")
os.environ.setdefault("RUNLAKE_HEARTBEAT_TIMEOUT", "3")
# Catalog caches of remote roots go to a throwaway directory, not ~/.cache.
os.environ.setdefault(
    "RUNLAKE_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"runlake-cache-{os.getpid()}")
)
# moto's S3 server accepts any credentials; never let a real profile leak in.
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)
os.environ.pop("AWS_PROFILE", None)
BUCKET = "runlake-tests"

from hypothesis import Phase, settings  # noqa: E402

import runlake  # noqa: E402

# CI replays the same examples every time (a red CI must mean a change broke something);
# locally every run explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("noshrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])
settings.load_profile(
    os.environ.get("RUNLAKE_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "default")
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API server (moto's standalone server) on 127.0.0.1, killed by its PID at the end."""
    exe = Path(sys.executable).with_name("moto_server")
    command = (
        [str(exe)]
        if exe.exists()
        else ([shutil.which("moto_server")] if shutil.which("moto_server") else None)
    )
    if command is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]'; the dev extra has it)")
    port = _free_port()
    proc = subprocess.Popen(
        [*command, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180  # generous: its imports take seconds on busy cores
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start") from None
            time.sleep(0.1)
    import s3fs

    fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
    fs.call_s3("create_bucket", Bucket=BUCKET)  # no location constraint: moto rejects s3fs.mkdir's
    yield endpoint
    os.kill(proc.pid, 9)
    proc.wait()


@pytest.fixture
def s3_root(s3_endpoint, monkeypatch) -> str:
    """A fresh root on the S3 server; its endpoint comes from $RUNLAKE_STORAGE_OPTIONS (subprocesses too)."""
    import json

    monkeypatch.setenv(
        "RUNLAKE_STORAGE_OPTIONS", json.dumps({"client_kwargs": {"endpoint_url": s3_endpoint}})
    )
    return f"s3://{BUCKET}/{uuid.uuid4().hex}"


@pytest.fixture(
    params=[
        "local",
        pytest.param("memory", marks=pytest.mark.memory),
        pytest.param("s3", marks=pytest.mark.s3),
    ]
)
def root(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh, empty root on each backend: one contract suite for all of them."""
    if request.param == "local":
        return str(tmp_path / "lake")
    if request.param == "s3":
        return request.getfixturevalue("s3_root")
    return f"memory://runlake-tests/{uuid.uuid4().hex}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Select tests by what they are (`-m "not s3"`), not by substrings of their names: every
    test that needs the S3 server is marked `s3`, whatever it is called."""
    for item in items:
        if "s3_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.s3)


@pytest.fixture
def flaky_root(tmp_path, monkeypatch):
    """A root on flaky:// (memory:// that fails on demand), with its own spill directory; its
    runs flush only when the test flushes them (a test that needs the background flusher
    registers its run with `flusher._flusher.register`)."""
    from faulty import FlakyFileSystem

    from runlake.write import flusher

    monkeypatch.setenv("RUNLAKE_SPILL_DIR", str(tmp_path / "spill"))
    # runs flush when the test says, not also when the background flusher's tick comes (on a
    # busy machine it lands anywhere: between breaking storage and the flush that should see it)
    monkeypatch.setattr(flusher, "register", lambda run: None)
    FlakyFileSystem.reset()
    yield f"flaky://lake-{uuid.uuid4().hex}"
    FlakyFileSystem.reset()


@pytest.fixture
def local_root(tmp_path) -> str:
    return str(tmp_path / "lake")


@pytest.fixture(autouse=True)
def _finish_open_runs():
    """A test that fails mid-run must not leave a run open for the next one."""
    yield
    for _ in range(100):
        if runlake.run is None:
            break
        runlake.run.finish()
    else:
        raise AssertionError(f"finish() left {runlake.run!r} as the current run")


def effective(frame) -> dict[int, dict[str, object]]:
    """A wide history frame -> {step: {key: value}} without system columns or nulls."""
    out: dict[int, dict[str, object]] = {}
    keys = [c for c in frame.columns if c not in ("_step", "_timestamp", "_runtime")]
    for row in frame.iter_rows(named=True):
        out[row["_step"]] = {k: row[k] for k in keys if row[k] is not None}
    return out
