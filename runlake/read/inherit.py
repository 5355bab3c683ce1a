"""A fork's (or a rewind's) inherited summary: the last value of every key in a node's
effective history up to a step, read from its chain's manifests: no catalog, no listing of the
root, the same walk, file selection and scan as `history()`. What `init(fork_from=...)` needs
before the run's first log, in a process that may never read anything else."""

from __future__ import annotations

from typing import Any

import duckdb

from ..errors import CorruptPartError
from ..store import manifests
from ..store.storage import Storage
from . import sql as sqlmod
from .assemble import last_values
from .lineage import Link, Node, clip, own_parts, walk
from .reader import read_series


def inherited_summary(
    storage: Storage, project: str, run_id: str, segment: int, max_step: int
) -> dict[str, Any]:
    """Last value of every key in a node's effective history up to `max_step` (a fork's or a
    rewind's inherited summary), read from its chain's manifests: no catalog, no listing of
    the root, the same walk, file selection and scan as `history()`.

    A compaction may move a part between the listing and the read: then the chain is read
    again (its pack pointers now say where the rows went).
    """
    for attempt in range(3):
        try:
            return _inherited_once(storage, project, run_id, segment, max_step)
        except (duckdb.IOException, FileNotFoundError, CorruptPartError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _inherited_once(
    storage: Storage, project: str, run_id: str, segment: int, max_step: int
) -> dict[str, Any]:
    links: dict[Node, Link] = {}
    files: dict[Node, list[tuple[str, int, int, bool]]] = {}
    node: Node | None = (run_id, segment)
    while node is not None:
        doc = manifests.read_segment(storage, project, *node)
        links[node] = (doc.parent_run_id, doc.parent_segment, doc.cutoff)
        pointer = manifests.read_packed(storage, project, *node)
        packed = [(int(p["step_lo"]), int(p["step_hi"])) for p in (pointer.packs if pointer else [])]
        refs = [
            (storage.engine_path(f"{storage.root}/{p['pack']}"), int(p["step_lo"]), int(p["step_hi"]), True)
            for p in (pointer.packs if pointer else [])
        ]
        listed = storage.list_parts(storage.paths.segment_dir(project, *node))
        refs += [
            (storage.engine_path(p.path), p.step_lo, p.step_hi, False) for p in own_parts(listed, packed)
        ]
        files[node] = sorted(refs, key=lambda f: (f[1], f[0]))
        node = doc.parent
        project = doc.parent_project or project
    closure = clip(walk(links, (run_id, segment))[0], max_step)
    con = duckdb.connect(":memory:")
    try:
        if not storage.is_local:
            con.register_filesystem(storage.fs)
        sqlmod.install(con, only=("part_rows", "pack_rows"))
        return last_values(read_series(con, storage, files, closure, None))
    finally:
        con.close()
