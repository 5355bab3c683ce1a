"""The `artifacts` scenario (#26): `run.log_artifact` of a directory of checkpoints next to a
plain copy of it (shutil.copytree) side by side, and logging it again unchanged (what that
costs: hashing, no write). 1 GB (8 files of 128 MB); --quick: 256 MB."""

from __future__ import annotations

import os
import shutil
import statistics
import time
from typing import Any

import runlake

Rows = list[tuple[str, str, str]]


def artifacts(path: str, quick: bool) -> tuple[dict[str, Any], Rows]:
    files, size = 8, (32 if quick else 128) << 20
    source = f"{path}/checkpoints"
    os.makedirs(source)
    chunk = os.urandom(1 << 20)
    for i in range(files):
        with open(f"{source}/shard-{i}.pt", "wb") as fh:
            for _ in range(size >> 20):
                fh.write(chunk[: (1 << 20) - i] + bytes([i]) * i)  # distinct content per file
    total = files * size
    copy_s, log_s, relog_s = [], [], []
    for rep in range(3):  # side by side, interleaved; fresh destinations each time
        target = f"{path}/copy-{rep}"
        t0 = time.perf_counter()
        shutil.copytree(source, target)
        copy_s.append(time.perf_counter() - t0)
        shutil.rmtree(target)
        root = f"{path}/root-{rep}"
        run = runlake.init("bench", root=root)
        art = runlake.Artifact("ckpt", type="model")
        art.add_dir(source)
        t0 = time.perf_counter()
        run.log_artifact(art)
        log_s.append(time.perf_counter() - t0)
        again = runlake.Artifact("ckpt", type="model")
        again.add_dir(source)
        t0 = time.perf_counter()
        version = run.log_artifact(again).version
        relog_s.append(time.perf_counter() - t0)
        assert version == "v0"  # unchanged: no new version, nothing written
        run.finish()
        shutil.rmtree(root)
    mb = total / 2**20
    med = {
        "copy_s": statistics.median(copy_s),
        "log_s": statistics.median(log_s),
        "relog_s": statistics.median(relog_s),
    }
    out = {"bytes": total, **med, "log_vs_copy": med["log_s"] / med["copy_s"]}
    rows: Rows = [
        ("artifacts", f"plain copy of {mb:.0f} MB ({files} files)", f"{mb / med['copy_s']:.0f} MB/s"),
        (
            "artifacts",
            "run.log_artifact of the same directory",
            f"{mb / med['log_s']:.0f} MB/s ({out['log_vs_copy']:.2f}x the copy's time)",
        ),
        (
            "artifacts",
            "logged again unchanged (hashing only)",
            f"{mb / med['relog_s']:.0f} MB/s, {med['relog_s']:.2f} s",
        ),
    ]
    return out, rows
