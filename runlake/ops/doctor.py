"""`runlake doctor`: find history parts that cannot be read; with fix, quarantine them and say
which steps of which runs were lost (the part's own run and every run that inherits those steps)."""

from __future__ import annotations

import time
from typing import Any

import polars as pl

from ..read.catalog import HOLES, Catalog, missing_parts
from ..store import manifests
from ..store.layout import PACK_MANIFEST_RE, hive_node, parse_part
from ..store.manifests import RepairDoc
from ..store.parquet import check_part
from ..store.storage import Storage, listed, written_at

_SCHEMA: dict[str, Any] = {
    "path": pl.String,
    "run_id": pl.String,
    "segment": pl.Int64,
    "step_lo": pl.Int64,
    "step_hi": pl.Int64,
    "problem": pl.String,
    "affected_runs": pl.List(pl.String),
    "action": pl.String,
}


def doctor(storage: Storage, catalog: Catalog, *, fix: bool = False) -> pl.DataFrame:
    """Read every part of the root; one row per unreadable part (empty frame: all healthy).

    With `fix=True` each bad part is moved to `<root>/_quarantine/` (kept, never deleted) and
    the index is switched, so queries work again without the lost steps.
    """
    rows = _log_gaps(storage, catalog, fix)
    cur = catalog.cursor(with_parts=False)
    try:
        parts = cur.execute(
            "SELECT p.path, p.run_id, p.segment, p.step_lo, p.step_hi, s.project FROM parts AS p "
            "JOIN segments AS s USING (run_id, segment) ORDER BY p.path"
        ).fetchall()
    finally:
        cur.close()
    checked: dict[str, str | None] = {}  # a pack is shared by many nodes: read it once
    quarantined: dict[str, str] = {}
    for path, run_id, segment, lo, hi, project in parts:
        local = storage.local_path(path)
        if path not in checked:
            checked[path] = check_part(storage.fs, local)
        problem = checked[path]
        if problem is None:
            continue
        cur = catalog.cursor()
        try:
            affected = [
                r[0]
                for r in cur.execute(
                    "SELECT DISTINCT run_id FROM lineage WHERE ancestor_run_id = ? AND ancestor_segment = ? "
                    "AND step_hi >= ? AND step_lo < ? ORDER BY run_id",
                    [run_id, segment, lo, hi],
                ).fetchall()
            ]
        finally:
            cur.close()
        action = "none"
        if fix and local.startswith(f"{storage.paths.packs_dir}/"):
            target = quarantined.get(local) or _quarantine_pack(storage, local)
            quarantined[local] = target
            _drop_pointer(storage, project, run_id, segment, local)
            action = f"quarantined to {storage.engine_path(target)}; lost steps {lo}..{hi} of {run_id} segment {segment}"
        elif fix:
            target = _quarantine(storage, local)
            repair = RepairDoc(segment=segment, quarantined=target, steps=[lo, hi], at=time.time())
            manifests.write(storage, storage.paths.meta(project, run_id, f"repaired-{segment}.json"), repair)
            action = f"quarantined to {storage.engine_path(target)}; lost steps {lo}..{hi} of {run_id} segment {segment}"
        rows.append(
            {
                "path": path,
                "run_id": run_id,
                "segment": segment,
                "step_lo": lo,
                "step_hi": hi,
                "problem": problem,
                "affected_runs": affected,
                "action": action,
            }
        )
    if quarantined_nodes := {(r["run_id"], r["segment"]) for r in rows if r["action"] != "none"}:
        catalog.refresh()  # what is left of the nodes a part was taken from: their count follows
        _accept_loss(storage, catalog, quarantined_nodes)
    rows += _holes(storage, catalog, fix)
    rows += _manifest_problems(storage, catalog)
    for path in strays(storage):
        node = hive_node(path + "/x")
        kind = "a history part" if "/history/" in path else "a pack manifest"
        rows.append(
            {
                "path": storage.engine_path(path),
                "run_id": node[0] if node else None,
                "segment": node[1] if node else None,
                "step_lo": None,
                "step_hi": None,
                "problem": f"a directory named like {kind}: runlake never reads it; remove or rename it",
                "affected_runs": [],
                "action": "none",
            }
        )
    if fix and rows:
        catalog.refresh()
    return pl.DataFrame(rows, schema=_SCHEMA)


def _log_gaps(storage: Storage, catalog: Catalog, fix: bool) -> list[dict[str, Any]]:
    """A full listing of the root compared with the commit log: files a writer changed without
    its entry (killed in between) or changed by hand. The catalog reads them from the root now;
    with `fix` they are added to the log, so every reader sees them."""
    repaired = catalog.relist_root()
    if not repaired:
        return []
    present = [p for p in repaired if storage.exists(p)]
    gone = [p for p in repaired if p not in present]
    if fix:
        storage.journal.repair(present, gone)
        catalog.unlogged.clear()
    rows = []
    for path in present:  # a removal's consequences are what the other checks report
        run_id = path.rsplit("/meta/", 1)[0].rsplit("/", 1)[-1] if "/meta/" in path else None
        rows.append(
            {
                **_row(
                    storage.engine_path(path),
                    run_id,
                    "written without a commit-log entry (a writer killed between the file and its "
                    "entry, or an edit by hand): readers that follow the log miss it until they list the root",
                ),
                "action": "added to the commit log" if fix else "none",
            }
        )
    return rows


# a run is created in milliseconds, its run.json written last: one without it for this long lost it
_CREATING_SECONDS = 60.0


def _manifest_problems(storage: Storage, catalog: Catalog) -> list[dict[str, Any]]:
    """Damaged or missing manifests that reads only warn about (they skip what they cannot
    read): one row each, with what to do. Nothing is changed, with or without `fix`."""
    rows = [
        _row(path, run_id, f"{why}: reads of this run fail (or skip it) until the file is restored")
        for path, run_id, why in catalog.problems()
    ]
    listing, _ = storage.list_manifests({})
    runs: dict[str, list[str]] = {}
    for path in listing:
        runs.setdefault(path.rsplit("/meta/", 1)[0], []).append(path)
    now = time.time()
    for run_dir, files in sorted(runs.items()):
        if any(f.endswith("/meta/run.json") for f in files):
            continue
        ages = [now - at for f in files if (at := written_at(listing[f])) is not None]
        if ages and min(ages) < _CREATING_SECONDS:
            continue  # being created now
        run_id = run_dir.rsplit("/", 1)[-1]
        rows.append(
            _row(
                storage.engine_path(f"{run_dir}/meta/run.json"),
                run_id,
                f"missing: run {run_id!r} has manifests and history but no run.json (deleted or lost), so "
                "no read lists it; restore the file, or delete the run's directories",
            )
        )
    return rows


def _row(path: str, run_id: str | None, problem: str) -> dict[str, Any]:
    return {
        "path": path,
        "run_id": run_id,
        "segment": None,
        "step_lo": None,
        "step_hi": None,
        "problem": problem,
        "affected_runs": [run_id] if run_id else [],
        "action": "none",
    }


def _holes(storage: Storage, catalog: Catalog, fix: bool) -> list[dict[str, Any]]:
    """Nodes missing a part file their writer stored (deleted by hand, lost): one row each;
    with `fix` their state counts what is left, so reads work again without those steps."""
    catalog.refresh()
    cur = catalog.cursor()
    try:
        found = cur.execute(HOLES).fetchall()
        rows = []
        for run_id, segment, written, left, project in found:
            where = storage.paths.segment_dir(project, run_id, int(segment))
            affected = [
                r[0]
                for r in cur.execute(
                    "SELECT DISTINCT run_id FROM lineage WHERE ancestor_run_id = ? AND ancestor_segment = ? "
                    "ORDER BY run_id",
                    [run_id, segment],
                ).fetchall()
            ]
            rows.append(
                {
                    "path": storage.engine_path(where),
                    "run_id": run_id,
                    "segment": int(segment),
                    "step_lo": None,
                    "step_hi": None,
                    "problem": missing_parts(run_id, int(segment), int(written), int(left), where),
                    "affected_runs": affected,
                    "action": "none",
                }
            )
    finally:
        cur.close()
    if fix and rows:
        _accept_loss(storage, catalog, {(r["run_id"], r["segment"]) for r in rows})
        for row in rows:
            row["action"] = "accepted the loss: its state now counts the part files left"
    return rows


def _accept_loss(storage: Storage, catalog: Catalog, nodes: set[tuple[str, int]]) -> None:
    """Each node expects the part files it has now (a quarantined or lost part no longer), so
    its reads work again without those steps: a finished run's current segment in its state
    (a resume counts on from there), an archived segment in `meta/repaired-<k>.json`."""
    cur = catalog.cursor()
    try:
        left = {
            (r, int(s)): (p, int(n), int(s) == int(current))
            for r, s, p, n, current in cur.execute(
                "SELECT s.run_id, s.segment, s.project, coalesce(sum(p.files), 0), r.segment "
                "FROM segments AS s JOIN run_meta AS r USING (run_id) "
                "LEFT JOIN parts AS p ON p.run_id = s.run_id AND p.segment = s.segment GROUP BY ALL"
            ).fetchall()
        }
    finally:
        cur.close()
    for run_id, segment in sorted(nodes):
        if (run_id, segment) not in left:
            continue
        project, count, current = left[(run_id, segment)]
        if not current:
            path = storage.paths.meta(project, run_id, f"repaired-{segment}.json")
            repair = manifests.read(storage, path, RepairDoc) or RepairDoc(segment=segment)
            repair.parts, repair.at = count, time.time()
            manifests.write(storage, path, repair)
            continue
        state = manifests.read_state(storage, project, run_id)
        if (
            state.segment == segment
            and state.parts is not None
            and state.parts > count
            and state.state != "running"
        ):
            state.parts = count
            manifests.write(storage, storage.paths.meta(project, run_id, "state.json"), state)
    catalog.refresh()


def _quarantine(storage: Storage, local: str) -> str:
    """Move a file under <root>/_quarantine/ (kept, never deleted); its new path."""
    target = storage.paths.quarantine(local)
    data = storage.read_bytes(local)
    if data is not None:
        storage.write_atomic(target, data)
        storage.remove(local)
    return target


def _quarantine_pack(storage: Storage, local: str) -> str:
    """A bad pack and then its manifest leave the index together (the manifest is the switch)."""
    target = _quarantine(storage, local)
    manifest = local[: -len(".parquet")] + ".json"
    if storage.exists(manifest):
        _quarantine(storage, manifest)
    return target


def _drop_pointer(storage: Storage, project: str, run_id: str, segment: int, pack: str) -> None:
    doc = manifests.read_packed(storage, project, run_id, segment)
    if doc is None:
        return
    doc.packs = [p for p in doc.packs if not pack.endswith("/" + p["pack"])]
    path = storage.paths.meta(project, run_id, f"packed-{segment}.json")
    if doc.packs:
        doc.step_hi = max(int(p["step_hi"]) for p in doc.packs)
        manifests.write(storage, path, doc)
    else:
        storage.remove(path)


def strays(storage: Storage) -> list[str]:
    """Directories named like a history part or a pack manifest: never read, but a sign that
    something wrote where runlake's files go (what `doctor` reports)."""
    out = []
    for top in (f"{storage.root}/history", storage.paths.packs_dir):
        try:
            found = listed(storage.fs.find, top, withdirs=True, detail=True)
        except FileNotFoundError:
            continue
        for path, info in found.items():
            name = path.rstrip("/").rsplit("/", 1)[-1]
            if info.get("type") == "directory" and (
                parse_part(path, 0) is not None or PACK_MANIFEST_RE.fullmatch(name)
            ):
                out.append(path.rstrip("/"))
    return sorted(out)
