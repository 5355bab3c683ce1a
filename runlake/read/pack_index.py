"""Folding packs into the catalog: pack manifests indexed (their members' own parts drop out)
and forgotten when taken away, and packs a member's pointer names whose manifest is missing
(indexed from the pointers, reported). Runs inside the catalog's refresh transaction."""

from __future__ import annotations

import warnings
from typing import Any

import duckdb

from ..errors import RunlakeError
from ..store.manifests import PackManifest, read_packed
from . import tables

NodeKey = tuple[str, str, int]  # project, run_id, segment


def fold_packs(fold: Any, cur: duckdb.DuckDBPyConnection, dirty: set[NodeKey], pointed: set[NodeKey]) -> bool:
    """Index new pack manifests (their members' own parts drop out) and forget removed ones
    (their members are checked against their pack pointers again)."""
    listing = fold.pack_listing
    changed = sorted(p for p, token in listing.items() if fold.state.seen.get(p) != token)
    removed = [p for p in fold.state.pack_manifests if p not in listing and p in fold.state.seen]
    fold.state.pack_manifests = set(listing)
    if not changed and not removed:
        return False
    for path in removed:  # a pack taken away (doctor's quarantine): its nodes are listed again
        pack = fold.storage.engine_path(path[: -len(".json")] + ".parquet")
        members = cur.execute(
            "SELECT s.project, p.run_id, p.segment FROM parts AS p JOIN segments AS s USING (run_id, segment) "
            "WHERE p.path = ? AND p.pack",
            [pack],
        ).fetchall()
        cur.execute("DELETE FROM parts WHERE path = ? AND pack", [pack])
        dirty.update((p, r, int(s)) for p, r, s in members)
        pointed.update((p, r, int(s)) for p, r, s in members)
        fold.forced.update((p, r, int(s)) for p, r, s in members)  # its parts were left out
        fold.state.seen.pop(path, None)
    for path in changed:
        try:
            doc = fold.read_json(path)
            manifest = None if doc is None else PackManifest.from_json(doc, fold.storage.engine_path(path))
        except RunlakeError as exc:  # its members are read through their pointers meanwhile
            fold.problems.append(f"skipping unreadable pack manifest: {exc}")
            fold.state.pack_problems[fold.storage.engine_path(path)] = (None, str(exc))
            continue
        fold.state.pack_problems.pop(fold.storage.engine_path(path), None)
        if manifest is None:
            continue
        pack = fold.storage.engine_path(path[: -len(".json")] + ".parquet")
        tables.index_pack(
            cur,
            pack,
            [(m.run_id, m.segment, m.step_lo, m.step_hi, m.bytes, m.parts) for m in manifest.members],
        )
        fold.state.seen[path] = listing[path]
    return True


def fold_pointers(fold: Any, cur: duckdb.DuckDBPyConnection, nodes: set[NodeKey]) -> bool:
    """A pack a member's pointer names but whose manifest is missing (lost, or a crash
    between quarantining a pack and its manifest) is indexed from the pointers, so its rows
    neither vanish from reads nor look orphaned to `compact`."""
    changed = False
    for project, run_id, segment in sorted(nodes):
        pointer = read_packed(fold.storage, project, run_id, segment)
        for entry in pointer.packs if pointer else []:
            base = f"{fold.storage.root}/{entry['pack'][: -len('.parquet')]}"
            if f"{base}.json" in fold.state.pack_manifests or not fold.storage.exists(f"{base}.parquet"):
                continue
            pack = fold.storage.engine_path(f"{base}.parquet")
            fold.state.pack_problems[pack] = (
                run_id,
                f"pack has no manifest ({base}.json): its rows are read through its members' "
                "pointers (meta/packed-<k>.json); `runlake compact` writes packs with manifests again",
            )
            if pack not in fold.warned_packs:
                fold.warned_packs.add(pack)
                warnings.warn(
                    f"pack {pack} has no manifest ({base}.json); its rows are read through its "
                    "members' pointers (meta/packed-<k>.json); `runlake doctor` reports it",
                    RuntimeWarning,
                    stacklevel=4,
                )
            row = (run_id, segment, int(entry["step_lo"]), int(entry["step_hi"]), 0, None)
            tables.index_pack(cur, pack, [row])
            changed = True
    return changed
