"""Spilling: where a run's parts and state wait on local disk while its storage is down.

Files mirror their place under the root: <spill dir>/<hash of the root>/history/..., runs/...
A later flush, `finish()`, or `runlake sync` uploads them (parts first, state last) and
removes each one once it is stored. Nothing is ever dropped.
"""

from __future__ import annotations

import hashlib
import os

from . import settings
from .storage import Storage, write_local_atomic


def spill_root(storage: Storage, local_dir: str | None = None) -> str:
    """The local spill directory of a root (settings.spill_dir: `init(dir=)`, $RUNLAKE_SPILL_DIR, ...)."""
    url = storage.fs.unstrip_protocol(storage.root) if not storage.is_local else storage.root
    return os.path.join(settings.spill_dir(local_dir), hashlib.sha256(url.encode()).hexdigest()[:16])


def put(storage: Storage, target: str, data: bytes, local_dir: str | None = None) -> str:
    """Keep `data` for `target` on local disk (atomically, synced); returns the spill file."""
    path = os.path.join(spill_root(storage, local_dir), storage.paths.relative(target))
    write_local_atomic(path, data, fsync=True)
    return path


def pending(storage: Storage, prefix: str = "", local_dir: str | None = None) -> list[tuple[str, str]]:
    """(spill file, target) pairs under `prefix` (relative to the root): parts before state."""
    base = spill_root(storage, local_dir)
    root = storage.root.rstrip("/")
    out = []
    for dirpath, _dirs, files in os.walk(os.path.join(base, prefix) if prefix else base):
        for name in files:
            if ".tmp" in name:
                continue
            local = os.path.join(dirpath, name)
            rel = os.path.relpath(local, base).replace(os.sep, "/")
            out.append((local, f"{root}/{rel}"))
    # parts (history/...) first, manifests (runs/...) after: state must not point past the data
    return sorted(out, key=lambda pair: (not pair[1].startswith(f"{root}/history/"), pair[1]))


def upload(
    storage: Storage, prefix: str = "", attempts: int = 1, local_dir: str | None = None
) -> tuple[int, list[str]]:
    """Upload spilled files; returns (how many were uploaded, targets still waiting)."""
    done, waiting = 0, list[str]()
    items = pending(storage, prefix, local_dir)
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
