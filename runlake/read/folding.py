"""How the catalog folds manifests into its tables: which document a file is (a registry of
names to typed documents), and what each kind does (identities and segments upserted, states
and beats folded in one statement each, the lineage walked into `closure`, pack manifests and
pointers indexed, parts of changed segment directories listed again). Runs inside the catalog's
refresh transaction; everything it derives goes into the catalog's `CatalogState`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import duckdb

from ..errors import RunlakeError
from ..store.layout import (
    ALERT_RE,
    ARTIFACT_EDGE_RE,
    PACKED_RE,
    RELIST_RE,
    SEGMENT_RE,
    SHARED_RE,
    parse_part,
    split_meta_path,
    visible_parts,
)
from ..store.liveness import derive_state
from ..store.manifests import (
    AlertDoc,
    ArtifactEdgeDoc,
    BeatDoc,
    RepairDoc,
    RunIdentity,
    SegmentDoc,
    StateDoc,
)
from ..store.storage import written_at
from . import pack_index, records, tables
from .lineage import Node, own_parts, walk

NodeKey = tuple[str, str, int]  # project, run_id, segment
# the tables with rows of a run (a run whose run.json is gone leaves all of them)
_RUN_TABLES = ("run_meta", "segments", "parts", "archived_parts", "alerts", "artifact_usage", "stream_files")

# The registry: a manifest's file name -> its document type (segment-<k>.json: SegmentDoc)
# -> the Folding method that folds a batch of them into the tables. FOLDS is in fold order: a
# segment needs its run's identity, a state its segments, a beat its state. A new kind of
# document is one entry in each (and its fold method).
DOCUMENTS: dict[str, type[Any]] = {"run.json": RunIdentity, "state.json": StateDoc, "beat.json": BeatDoc}


def document_type(name: str) -> type[Any] | None:
    """The document type of a manifest file name, or None (not one the catalog folds)."""
    if name in DOCUMENTS:
        return DOCUMENTS[name]
    if ALERT_RE.fullmatch(name):
        return AlertDoc
    if ARTIFACT_EDGE_RE.fullmatch(name):
        return ArtifactEdgeDoc
    return SegmentDoc if SEGMENT_RE.fullmatch(name) else None


def _written(token: str, now: float) -> float:
    """When a manifest was written by a clock the reader trusts: the storage's, from the
    listing, or else now (when this reader first saw it); never later than now."""
    at = written_at(token)
    return now if at is None else min(at, now)


def _liveness(state: StateDoc) -> dict[str, Any]:
    """The fields of a state that say whether its writer is alive."""
    return {
        "state": state.state,
        "heartbeat": state.heartbeat,
        "host": state.host,
        "pid": state.pid,
        "pid_start": state.pid_start,
        "preempting": state.preempting,
    }


class Folding:
    """The folding side of one catalog (its storage, its state, what one refresh skipped)."""

    def __init__(self, catalog: Any) -> None:  # a Catalog: catalog.py imports this module
        self.catalog = catalog
        self.storage = catalog.storage
        self.problems: list[str] = []  # what the current refresh skipped (warned once, after it)
        self.warned_packs: set[str] = set()
        self.pack_listing: dict[str, str] = {}  # the pack manifests the current refresh listed
        self.forced: set[NodeKey] = set()  # nodes listed for real even when following the log
        self.relisted: set[NodeKey] = set()  # the nodes the current refresh listed again
        self.listing_all = False  # the current refresh lists the root whole: segments too
        self.stream_listing: dict[str, int] | None = None  # the stream files a full listing found

    def read_json(self, path: str) -> dict[str, Any] | None:
        """A manifest: the content its log entry carried, else the file."""
        doc = self.catalog.tail.take_doc(path)
        return doc if doc is not None else self.storage.read_json(path)

    @property
    def state(self) -> Any:  # the catalog's CatalogState (replaced whole by a rollback)
        return self.catalog.state

    def apply(
        self,
        cur: duckdb.DuckDBPyConnection,
        changed: list[str],
        removed: list[str],
        listing: dict[str, str],
        dirty: set[NodeKey],
        pointed: set[NodeKey],
    ) -> None:
        for path in removed:
            self.state.broken.pop(path, None)
            project, run_id, name = split_meta_path(path)
            if name == "run.json":
                for table in _RUN_TABLES:
                    cur.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
                self.forget_links(cur, [n for n in self.state.links if n[0] == run_id])
                cur.execute(
                    "DELETE FROM artifact_files WHERE starts_with(record, ?)",
                    [f"runs/{project}/{run_id}/meta/"],
                )
            elif ALERT_RE.fullmatch(name):
                cur.execute("DELETE FROM alerts WHERE path = ?", [self.storage.paths.relative(path)])
            elif ARTIFACT_EDGE_RE.fullmatch(name):
                record = self.storage.paths.relative(path)
                cur.execute("DELETE FROM artifact_usage WHERE path = ?", [record])
                cur.execute("DELETE FROM artifact_files WHERE record = ?", [record])
            elif (m := SEGMENT_RE.fullmatch(name)) is not None:
                cur.execute("DELETE FROM segments WHERE run_id = ? AND segment = ?", [run_id, int(m[1])])
                cur.execute("DELETE FROM parts WHERE run_id = ? AND segment = ?", [run_id, int(m[1])])
                self.forget_links(cur, [(run_id, int(m[1]))])
            self.state.seen.pop(path, None)

        batches: dict[type[Any], list[tuple[Any, str]]] = {kind: [] for kind in FOLDS}  # (doc, path)
        accepted: list[tuple[str, int, int]] = []  # (run, archived segment, part files expected)
        for path in sorted(changed):
            project, run_id, name = split_meta_path(path)
            if (m := RELIST_RE.fullmatch(name)) is not None:  # parts were swapped: list again
                dirty.add((project, run_id, int(m[1])))
                if name.startswith("repaired-"):  # doctor accepted a loss: what is expected now
                    try:
                        doc = self.read_json(path)
                        repair = (
                            None if doc is None else RepairDoc.from_json(doc, self.storage.engine_path(path))
                        )
                    except RunlakeError as exc:
                        self.problems.append(f"skipping unreadable manifest: {exc}")
                        repair = None
                    if repair is not None and repair.parts is not None:
                        accepted.append((run_id, int(m[1]), int(repair.parts)))
                self.state.seen[path] = listing[path]
                continue
            if (m := SHARED_RE.fullmatch(name)) is not None:  # a shared-mode process flushed parts
                dirty.add((project, run_id, int(m[1])))
                self.state.seen[path] = listing[path]
                continue
            if (m := PACKED_RE.fullmatch(name)) is not None:  # checked against the pack manifests
                pointed.add((project, run_id, int(m[1])))
                self.state.seen[path] = listing[path]
                continue
            kind = document_type(name)
            if kind is None:
                self.state.seen[path] = listing[path]
                continue
            try:
                doc = self.read_json(path)
                typed = None if doc is None else kind.from_json(doc, self.storage.engine_path(path))
            except RunlakeError as exc:  # this run's reads fail naming the file; the others go on
                self.state.broken[path] = (run_id, str(exc))
                self.problems.append(f"skipping unreadable manifest: {exc}")
                continue
            if typed is None:  # vanished between listing and reading
                continue
            self.state.broken.pop(path, None)
            batches[kind].append((typed, path))
            self.state.seen[path] = listing[path]

        for kind, fold in FOLDS.items():
            if batches[kind]:
                fold(self, cur, batches[kind], dirty, listing)
            if kind is SegmentDoc:  # after the segments: a repair lowers their count
                for run_id, segment, parts in accepted:
                    cur.execute(
                        "UPDATE archived_parts SET parts = least(parts, ?) WHERE run_id = ? AND segment = ?",
                        [parts, run_id, segment],
                    )
        self.sync_closure(cur)

    def fold_identities(
        self, cur: duckdb.DuckDBPyConnection, docs: list[tuple[RunIdentity, str]], *_: Any
    ) -> None:
        tables.upsert_identities(cur, [doc for doc, _ in docs])

    def fold_segments(
        self, cur: duckdb.DuckDBPyConnection, docs: list[tuple[SegmentDoc, str]], dirty: set[NodeKey], _: Any
    ) -> None:
        for doc, path in docs:  # its parts are listed again
            project, run_id, _ = split_meta_path(path)
            dirty.add((project, run_id, int(doc.segment)))
        self.insert_segments(cur, [doc for doc, _ in docs])

    def fold_states(
        self,
        cur: duckdb.DuckDBPyConnection,
        docs: list[tuple[StateDoc, str]],
        dirty: set[NodeKey],
        listing: dict[str, str],
    ) -> None:
        self.apply_states(cur, [(split_meta_path(path)[1], doc, path) for doc, path in docs], dirty, listing)

    def fold_beats(
        self, cur: duckdb.DuckDBPyConnection, docs: list[tuple[BeatDoc, str]], _: Any, listing: dict[str, str]
    ) -> None:
        """After the states: a beat only ever moves a running run's heartbeat forward."""
        now = time.time()
        tables.apply_beats(
            cur,
            {
                "run_id": [b.run_id for b, _ in docs],
                "segment": [b.segment for b, _ in docs],
                "heartbeat": [b.heartbeat for b, _ in docs],
                "seen_at": [_written(listing[path], now) for _, path in docs],
            },
        )

    def apply_states(
        self,
        cur: duckdb.DuckDBPyConnection,
        states: list[tuple[str, StateDoc, str]],
        dirty: set[NodeKey],
        listing: dict[str, str],
    ) -> None:
        """Fold state manifests into run_meta in one statement (one per run cost ~1 ms each:
        40 s for 20,000 runs)."""
        ids = [run_id for run_id, _, _ in states]
        known = {
            r: (p, int(seg))
            for r, p, seg in cur.execute(
                "SELECT run_id, project, segment FROM run_meta WHERE run_id IN (SELECT unnest(?))", [ids]
            ).fetchall()
        }
        rows = []
        now = time.time()
        for run_id, state, path in states:
            if run_id not in known:  # a state without identity: a run still being created; read it again
                self.state.seen.pop(path, None)
                continue
            project, old = known[run_id]
            segment = int(state.segment)
            rows.append((run_id, state, segment, _written(listing[path], now)))
            dirty.add((project, run_id, segment))
            if old != segment:
                # a rewind moved the run on: the parts its last writer of the old segment
                # wrote after the state we saw (its final flush) must be listed too
                for earlier in range(min(old, segment), max(old, segment)):
                    dirty.add((project, run_id, earlier))
            self.state.crash_listed.discard((run_id, segment))
        if rows:
            tables.update_states(
                cur,
                {
                    "run_id": [r for r, _, _, _ in rows],
                    "segment": [seg for _, _, seg, _ in rows],
                    "raw_state": [st.state for _, st, _, _ in rows],
                    "state": [derive_state(_liveness(st), now, at) for _, st, _, at in rows],
                    "heartbeat": [st.heartbeat for _, st, _, _ in rows],
                    "host": [st.host for _, st, _, _ in rows],
                    "pid": [st.pid for _, st, _, _ in rows],
                    "pid_start": [st.pid_start for _, st, _, _ in rows],
                    "finished_at": [st.finished_at for _, st, _, _ in rows],
                    "exit_code": [st.exit_code for _, st, _, _ in rows],
                    "config": [json.dumps(st.config or {}) for _, st, _, _ in rows],
                    "summary": [json.dumps(st.summary or {}) for _, st, _, _ in rows],
                    "seen_at": [at for _, _, _, at in rows],
                    # a writer's attributes (null from older writers: run.json's stay)
                    "name": [st.name for _, st, _, _ in rows],
                    "tags": [st.tags for _, st, _, _ in rows],
                    "notes": [st.notes for _, st, _, _ in rows],
                    "group": [st.group for _, st, _, _ in rows],
                    "job_type": [st.job_type for _, st, _, _ in rows],
                    "metrics": [json.dumps(st.metrics) if st.metrics else None for _, st, _, _ in rows],
                    "preempting": [bool(st.preempting) for _, st, _, _ in rows],
                    "parts_written": [st.parts for _, st, _, _ in rows],
                    "deleted_at": [st.deleted_at for _, st, _, _ in rows],
                },
            )

    def insert_segments(self, cur: duckdb.DuckDBPyConnection, segments: list[SegmentDoc]) -> None:
        tables.insert_segments(cur, segments)
        for d in segments:
            node = (d.run_id, int(d.segment))
            link = (d.parent_run_id, d.parent_segment, d.cutoff)
            if self.state.links.get(node, link) != link:  # a segment rewritten: its descendants too
                self.forget_links(cur, [node])
            self.state.links[node] = link

    def forget_links(self, cur: duckdb.DuckDBPyConnection, nodes: Iterable[Node]) -> None:
        """Nodes gone (or changed): every closure is walked again (rare: only a failed create
        or a hand edit takes a lineage row away)."""
        for node in nodes:
            self.state.links.pop(node, None)
        cur.execute("DELETE FROM closure")
        self.state.closed.clear()

    def sync_closure(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Materialise walk() for every node not yet closed (new, or with an ancestor unknown
        when it was last walked) into the `closure` table that the SQL objects read."""
        todo = [n for n in self.state.links if n not in self.state.closed]
        if not todo:
            return
        cols: list[list[Any]] = [[], [], [], [], [], [], []]
        for node in todo:
            rows, complete = walk(self.state.links, node)
            for depth, run_id, segment, lo, hi in rows:
                for col, value in zip(cols, (node[0], node[1], depth, run_id, segment, lo, hi), strict=True):
                    col.append(value)
            if complete:
                self.state.closed.add(node)
        tables.replace_closure(cur, todo, cols)

    def packs(self, cur: duckdb.DuckDBPyConnection, dirty: set[NodeKey], pointed: set[NodeKey]) -> bool:
        return pack_index.fold_packs(self, cur, dirty, pointed)

    def pointers(self, cur: duckdb.DuckDBPyConnection, nodes: set[NodeKey]) -> bool:
        return pack_index.fold_pointers(self, cur, nodes)

    def streams_pending(self, cur: duckdb.DuckDBPyConnection) -> bool:
        return records.streams_pending(self, cur)

    def streams(self, cur: duckdb.DuckDBPyConnection) -> bool:
        return records.fold_streams(self, cur)

    def running_rows(self, cur: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
        """The runs whose writer last said `running` (cached per generation)."""
        if self.state.running is None or self.state.running[0] != self.state.generation:
            self.state.running = (
                self.state.generation,
                cur.execute(
                    "SELECT run_id, project, segment, state, heartbeat, host, pid, pid_start, seen_at, preempting "
                    "FROM run_meta WHERE raw_state = 'running'"
                ).fetchall(),
            )
        return self.state.running[1]

    def update_states(self, cur: duckdb.DuckDBPyConnection, dirty: set[NodeKey]) -> None:
        """Re-derive `crashed` for running runs; a run seen crashing is listed once more."""
        now = time.time()
        for (
            run_id,
            project,
            segment,
            state,
            heartbeat,
            host,
            pid,
            pid_start,
            seen_at,
            preempting,
        ) in self.running_rows(cur):
            doc = {
                "state": "running",
                "heartbeat": heartbeat,
                "host": host,
                "pid": pid,
                "pid_start": pid_start,
                "preempting": preempting,
            }
            derived = derive_state(doc, now, seen_at)
            if derived != state:
                cur.execute("UPDATE run_meta SET state = ? WHERE run_id = ?", [derived, run_id])
                self.state.generation += 1
            if derived in ("crashed", "preempted") and (run_id, segment) not in self.state.crash_listed:
                # parts written after the last state update of a killed writer
                self.state.crash_listed.add((run_id, segment))
                dirty.add((project, run_id, segment))
                self.forced.add((project, run_id, segment))  # parts no entry describes

    def relist(self, cur: duckdb.DuckDBPyConnection, nodes: Iterable[NodeKey]) -> None:
        """List these nodes' segment directories again: their own parts replace the indexed ones
        (a node's parts that a pack holds stay out). Batched: one statement per step, not per node."""
        nodes = list(nodes)
        if not nodes:
            return
        keys: dict[str, list[Any]] = {
            "run_id": [r for _, r, _ in nodes],
            "segment": [seg for _, _, seg in nodes],
        }
        packed: dict[Node, list[tuple[int, int]]] = {}
        for r, seg, lo, hi in tables.packed_ranges(cur, keys):
            packed.setdefault((r, int(seg)), []).append((int(lo), int(hi)))
        following = self.catalog.tail.state.mode == "log" and not self.listing_all
        indexed: dict[Node, list[tuple[str, int]]] = {}
        if following:  # what is indexed now, plus what the log says changed
            for r, seg, path, size in tables.own_parts(cur, keys):
                indexed.setdefault((r, int(seg)), []).append((path, int(size or 0)))
        tables.delete_own_parts(cur, keys)
        rows: list[tuple[str, str, int, int, int, int]] = []
        for project, run_id, segment in nodes:
            node = (project, run_id, segment)
            logged = (
                self.catalog.tail.log_parts(node, indexed.get((run_id, segment), []))
                if following and node not in self.forced
                else None
            )
            if logged is None:
                listed = self.storage.list_parts(self.storage.paths.segment_dir(project, run_id, segment))
            else:
                found = [parse_part(p, size) for p, size in logged]
                listed = visible_parts(
                    sorted((p for p in found if p is not None), key=lambda p: (p.step_lo, p.step_hi, p.path))
                )
            for part in own_parts(listed, packed.get((run_id, segment), [])):
                path = self.storage.engine_path(part.path)
                rows.append((path, run_id, segment, part.step_lo, part.step_hi, part.size))
            self.relisted.add(node)
        tables.insert_parts(cur, rows)


# The registry's second half: document type -> what folds a batch of them, in fold order (a
# segment needs its run's identity, a state its segments, a beat its state). Write-once records
# (alerts, artifact records) are folded by read/records.py.
FOLDS: dict[type[Any], Callable[..., None]] = {
    RunIdentity: Folding.fold_identities,
    SegmentDoc: Folding.fold_segments,
    StateDoc: Folding.fold_states,
    BeatDoc: Folding.fold_beats,
    AlertDoc: records.fold_alerts,
    ArtifactEdgeDoc: records.fold_artifact_edges,
}
