"""Spilling: where a run's parts and state wait on local disk while its storage is down.

Files mirror their place under the root: <spill dir>/<hash of the root>/history/..., runs/...
A later flush, `finish()`, or `runlake sync` uploads them (parts first, state last) and
removes each one once it is stored. Nothing is ever dropped.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import polars as pl

from ._storage import Storage


def spill_root(storage: Storage) -> str:
    """The local spill directory of a root: $RUNLAKE_SPILL_DIR, else ~/.cache/runlake/spill."""
    base = os.environ.get("RUNLAKE_SPILL_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "runlake", "spill"
    )
    url = storage.fs.unstrip_protocol(storage.root) if not storage.is_local else storage.root
    return os.path.join(base, hashlib.sha256(url.encode()).hexdigest()[:16])


def _relative(storage: Storage, target: str) -> str:
    prefix = storage.root.rstrip("/") + "/"
    if not target.startswith(prefix):
        raise ValueError(f"{target} is not under the root {storage.root}")
    return target[len(prefix) :]


def put(storage: Storage, target: str, data: bytes) -> str:
    """Keep `data` for `target` on local disk (atomically); returns the spill file."""
    path = os.path.join(spill_root(storage), _relative(storage, target))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def pending(storage: Storage, prefix: str = "") -> list[tuple[str, str]]:
    """(spill file, target) pairs under `prefix` (relative to the root): parts before state."""
    base = spill_root(storage)
    out = []
    for dirpath, _dirs, files in os.walk(os.path.join(base, prefix) if prefix else base):
        for name in files:
            if name.endswith(".tmp"):
                continue
            local = os.path.join(dirpath, name)
            rel = os.path.relpath(local, base).replace(os.sep, "/")
            out.append((local, f"{storage.root.rstrip('/')}/{rel}"))
    # parts (history/...) first, manifests (runs/...) after: state must not point past the data
    return sorted(
        out, key=lambda pair: (not pair[1].startswith(f"{storage.root.rstrip('/')}/history/"), pair[1])
    )


def upload(storage: Storage, prefix: str = "", attempts: int = 1) -> tuple[int, list[str]]:
    """Upload spilled files; returns (how many were uploaded, targets still waiting)."""
    done, waiting = 0, list[str]()
    items = pending(storage, prefix)
    for index, (local, target) in enumerate(items):
        with open(local, "rb") as fh:
            data = fh.read()
        try:
            storage.write_with_retry(target, data, attempts=attempts)
        except OSError:
            waiting.extend(t for _, t in items[index:])
            break
        os.remove(local)
        done += 1
    return done, waiting


def sync(root: Any = None, *, storage_options: dict[str, Any] | None = None) -> pl.DataFrame:
    """Upload everything spilled for a root while its storage was down (`runlake sync`)."""
    from .lake import get_storage

    storage = get_storage(root, storage_options)
    started = time.time()
    items = pending(storage)
    done, waiting = upload(storage, attempts=4)
    return pl.DataFrame(
        {
            "spilled": [len(items)],
            "uploaded": [done],
            "waiting": [len(waiting)],
            "seconds": [round(time.time() - started, 3)],
        }
    )
