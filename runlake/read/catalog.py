"""The catalog: an in-memory DuckDB index of a root, folded incrementally from its manifests.

It is derived: every row comes from `runs/*/*/meta/*.json`, pack manifests and listings of
segment directories, so it can be deleted at any time. A reader keeps it in memory (no file
lock is ever held while a user's query runs) and persists a copy (`persist.py`) so the next
process only reads what changed. Training processes never open it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..errors import RunlakeError
from ..store.layout import PACKED_RE, RELIST_RE, SEGMENT_RE, is_pack_manifest, split_meta_path
from ..store.liveness import derive_state
from ..store.manifests import (
    BeatDoc,
    PackManifest,
    RepairDoc,
    RunIdentity,
    SegmentDoc,
    StateDoc,
    read_packed,
)
from ..store.parquet import write_empty
from ..store.storage import Storage, written_at
from . import persist, sql, tables
from .lineage import Index, Link, Node, own_parts, walk
from .sandbox import TABLES as SANDBOX_TABLES
from .sandbox import Sandbox

_PERSIST_EVERY = 2.0


# Nodes with fewer part files than their writers counted: a part was deleted or lost. The
# current segment of a run whose writer is done (a live one may be between a part and its
# state), and archived segments (counted when a rewind or re-fork took the run past them). A
# pack member from an older compaction (files null) makes the count unknown: no verdict.
HOLES = """
WITH expected AS (
    SELECT run_id, segment, parts_written AS written FROM run_meta
    WHERE parts_written IS NOT NULL AND raw_state <> 'running'
    UNION ALL
    SELECT a.run_id, a.segment, a.parts FROM archived_parts AS a
    JOIN run_meta AS r ON r.run_id = a.run_id AND a.segment < r.segment
)
SELECT e.run_id, e.segment, e.written, coalesce(sum(p.files), 0) AS found, s.project
FROM expected AS e
JOIN segments AS s ON s.run_id = e.run_id AND s.segment = e.segment
LEFT JOIN parts AS p ON p.run_id = e.run_id AND p.segment = e.segment
GROUP BY e.run_id, e.segment, e.written, s.project
HAVING found < e.written AND count(*) FILTER (WHERE p.pack AND p.files IS NULL) = 0
"""


def missing_parts(run_id: str, segment: int, written: int, found: int, where: str) -> str:
    """What a read of a node with a lost part says."""
    return (
        f"run {run_id!r} segment {segment} is missing {written - found} of the {written} part file(s) "
        f"its writer stored in {where} ({found} there or in packs): a part was deleted or lost, and "
        "the steps it held cannot be read; `runlake doctor` reports it, `runlake doctor --fix` "
        "accepts the loss"
    )


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


NodeKey = tuple[str, str, int]  # project, run_id, segment


@dataclass
class CatalogState:
    """What a catalog derives from the manifests besides its tables. A refresh that fails
    restores all of it from a copy (`copy()`), so no field can be forgotten in a rollback."""

    seen: dict[str, str] = field(default_factory=dict)  # manifest path -> change token
    links: dict[Node, Link] = field(default_factory=dict)
    closed: set[Node] = field(default_factory=set)  # nodes whose closure rows are complete
    crash_listed: set[tuple[str, int]] = field(default_factory=set)
    pack_manifests: set[str] = field(default_factory=set)
    broken: dict[str, tuple[str, str]] = field(default_factory=dict)  # manifest -> (run id, why)
    # packs whose manifest is unreadable or missing: path -> (a member run id, what is wrong)
    pack_problems: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    # every change to the tables bumps it: the Python index of the small tables and the list of
    # running runs are rebuilt when it moved
    generation: int = 0
    running: tuple[int, list[tuple[Any, ...]]] | None = None

    def copy(self) -> CatalogState:
        return CatalogState(
            dict(self.seen),
            dict(self.links),
            set(self.closed),
            set(self.crash_listed),
            set(self.pack_manifests),
            dict(self.broken),
            dict(self.pack_problems),
            self.generation,
            self.running,
        )


class Catalog:
    """The index of one root, for this process. `close()` releases it."""

    def __init__(self, storage: Storage, persist_path: str | None) -> None:
        self.storage = storage
        self.persist_path = persist_path
        self.con = duckdb.connect(":memory:")
        if not storage.is_local:
            self.con.register_filesystem(storage.fs)
        self._tmp = tempfile.mkdtemp(prefix="runlake-empty-")
        # removed with the catalog, or at exit for one never closed (a default Lake)
        self._tmp_cleanup = weakref.finalize(self, shutil.rmtree, self._tmp, ignore_errors=True)
        self._empty = {pack: self._empty_file(pack) for pack in (False, True)}
        # views over read_parquet(getvariable(...)) bind the variable when they are created
        self.con.execute("SET VARIABLE runlake_parts = ?", [sql.literal([self._empty[False]])])
        self.con.execute("SET VARIABLE runlake_packs = ?", [sql.literal([self._empty[True]])])
        sql.install(self.con)
        self._lock = threading.RLock()
        # everything derived from the manifests besides the tables: copied and restored whole
        # when a refresh fails (see _atomically)
        self.state = CatalogState()
        self._dir_cache: dict[str, tuple[int, dict[str, str]]] = {}
        self._last_persist = 0.0
        self._dirty_since_persist = False
        # when the listing behind the tables was taken (time.time()): a change stamped before it
        # is in them (what a "what changed since" poll may promise, whatever the refresh cadence)
        self.listed_at = 0.0
        self._index: Index | None = None
        self._pack_listing: dict[str, str] = {}  # the pack manifests the current refresh listed
        self._warned_packs: set[str] = set()
        self._problems: list[str] = []  # what the current refresh skipped (warned once, after it)
        self._warned: set[str] = set()
        if persist_path:
            self.state.seen = persist.load(self.con, persist_path)
        for r, s, pr, ps, c in self.con.execute(
            "SELECT run_id, segment, parent_run_id, parent_segment, cutoff FROM segments"
        ).fetchall():
            self.state.links[(r, int(s))] = (pr, ps, c)
        self.state.closed = {
            (r, int(s))
            for r, s in self.con.execute(
                "SELECT DISTINCT c.node_run_id, c.node_segment FROM closure AS c JOIN segments AS s "
                "ON s.run_id = c.run_id AND s.segment = c.segment WHERE s.parent_run_id IS NULL"
            ).fetchall()
        }
        self._sync_closure(self.con)  # nodes a saved copy left unwalked (an ancestor was unknown)
        self.state.pack_manifests = {p for p in self.state.seen if is_pack_manifest(p)}

    def _empty_file(self, pack: bool) -> str:
        """A zero-row part (or pack) file, so `raw_history` works on a root without any."""
        hive = ("project=_",) if pack else ("project=_", "run_id=_", "segment=0")
        directory = os.path.join(self._tmp, *hive)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "pack-empty.parquet" if pack else "part-empty.parquet")
        write_empty(path, pack=pack)
        return path

    def close(self) -> None:
        """Save the copy if it changed, close the connection, remove temporary files."""
        with self._lock:
            self.persist()
            self.con.close()
            self._tmp_cleanup()

    def persist(self, force: bool = False) -> None:
        if not self.persist_path or not (self._dirty_since_persist or force):
            return
        if self.storage.is_local and not os.path.isdir(self.storage.root):
            return  # a read never creates a root
        with self._lock:
            cur = self.con.cursor()
            try:
                persist.save(cur, self.persist_path, self.state.seen)
            finally:
                cur.close()
            self._last_persist = time.monotonic()
            self._dirty_since_persist = False

    # ---- refresh ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Fold manifests that changed since the last refresh into the index: all of it or,
        if anything fails (a read error, a broken manifest), none of it."""
        with self._lock:
            listed_at = time.time()
            listing, dir_cache = self.storage.list_manifests(self._dir_cache)
            changed = [p for p, token in listing.items() if self.state.seen.get(p) != token]
            removed = [p for p in self.state.seen if p not in listing and not is_pack_manifest(p)]
            dirty: set[NodeKey] = set()
            pointed: set[NodeKey] = set()  # nodes whose pack pointer changed
            generation = self.state.generation

            def fold(cur: duckdb.DuckDBPyConnection) -> None:
                if changed or removed:
                    self._apply(cur, changed, removed, listing, dirty, pointed)
                    self.state.generation += 1  # before _update_states: its list of running runs is cached
                if self._fold_packs(cur, dirty, pointed):
                    self.state.generation += 1
                if pointed and self._fold_pointers(cur, pointed):
                    self.state.generation += 1
                self._update_states(cur, dirty)
                if dirty:
                    self._relist(cur, dirty)
                    self.state.generation += 1

            self._problems = []
            packs = self.storage.list_pack_manifests()
            self._pack_listing = packs
            quiet = (
                not changed
                and not removed
                and all(self.state.seen.get(p) == t for p, t in packs.items())
                and not any(p not in packs for p in self.state.pack_manifests)
            )
            if quiet and not self._has_running():
                self._dir_cache = dir_cache
                self.listed_at = listed_at
                return  # nothing to fold and no live run whose state could turn: no transaction
            self._atomically(fold)
            self._dir_cache = dir_cache
            self.listed_at = listed_at
            for problem in dict.fromkeys(self._problems):
                if problem not in self._warned:
                    self._warned.add(problem)
                    warnings.warn(problem, RuntimeWarning, stacklevel=4)
            if self.state.generation != generation:
                self._dirty_since_persist = True
        if self._dirty_since_persist and time.monotonic() - self._last_persist > _PERSIST_EVERY:
            self.persist()

    def _atomically(self, fold: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """Run `fold` in one transaction; if it raises, the tables and every Python-side index
        (seen tokens, links, closed nodes, ...) are as they were, so the next refresh retries."""
        saved = self.state.copy()
        cur = self.con.cursor()
        try:
            cur.begin()
            fold(cur)
            cur.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cur.rollback()
            saved.generation += 1  # whatever was derived from the failed fold is stale
            self.state = saved
            self._index = None
            raise
        finally:
            cur.close()

    def _apply(
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
                for table in ("run_meta", "segments", "parts", "archived_parts"):
                    cur.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
                self._forget_links(cur, [n for n in self.state.links if n[0] == run_id])
            elif (m := SEGMENT_RE.fullmatch(name)) is not None:
                cur.execute("DELETE FROM segments WHERE run_id = ? AND segment = ?", [run_id, int(m[1])])
                cur.execute("DELETE FROM parts WHERE run_id = ? AND segment = ?", [run_id, int(m[1])])
                self._forget_links(cur, [(run_id, int(m[1]))])
            self.state.seen.pop(path, None)

        identities: list[RunIdentity] = []
        segments: list[SegmentDoc] = []
        states: list[tuple[str, StateDoc, str]] = []
        beats: list[tuple[BeatDoc, str]] = []
        accepted: list[tuple[str, int, int]] = []  # (run, archived segment, part files expected)
        for path in sorted(changed):
            project, run_id, name = split_meta_path(path)
            if (m := RELIST_RE.fullmatch(name)) is not None:  # parts were swapped: list again
                dirty.add((project, run_id, int(m[1])))
                if name.startswith("repaired-"):  # doctor accepted a loss: what is expected now
                    try:
                        doc = self.storage.read_json(path)
                        repair = (
                            None if doc is None else RepairDoc.from_json(doc, self.storage.engine_path(path))
                        )
                    except RunlakeError as exc:
                        self._problems.append(f"skipping unreadable manifest: {exc}")
                        repair = None
                    if repair is not None and repair.parts is not None:
                        accepted.append((run_id, int(m[1]), int(repair.parts)))
                self.state.seen[path] = listing[path]
                continue
            if (m := PACKED_RE.fullmatch(name)) is not None:  # checked against the pack manifests
                pointed.add((project, run_id, int(m[1])))
                self.state.seen[path] = listing[path]
                continue
            kind: type[Any] | None = {
                "run.json": RunIdentity,
                "state.json": StateDoc,
                "beat.json": BeatDoc,
            }.get(name)
            if kind is None and SEGMENT_RE.fullmatch(name):
                kind = SegmentDoc
            if kind is None:
                self.state.seen[path] = listing[path]
                continue
            try:
                doc = self.storage.read_json(path)
                typed = None if doc is None else kind.from_json(doc, self.storage.engine_path(path))
            except RunlakeError as exc:  # this run's reads fail naming the file; the others go on
                self.state.broken[path] = (run_id, str(exc))
                self._problems.append(f"skipping unreadable manifest: {exc}")
                continue
            if typed is None:  # vanished between listing and reading
                continue
            self.state.broken.pop(path, None)
            if isinstance(typed, RunIdentity):
                identities.append(typed)
            elif isinstance(typed, StateDoc):
                states.append((run_id, typed, path))
            elif isinstance(typed, BeatDoc):
                beats.append((typed, path))
            else:
                segments.append(typed)
                dirty.add((project, run_id, int(typed.segment)))
            self.state.seen[path] = listing[path]

        if identities:
            tables.upsert_identities(cur, identities)
        if segments:
            self._insert_segments(cur, segments)
        for run_id, segment, parts in accepted:  # after the segments: a repair lowers their count
            cur.execute(
                "UPDATE archived_parts SET parts = least(parts, ?) WHERE run_id = ? AND segment = ?",
                [parts, run_id, segment],
            )
        if states:
            self._apply_states(cur, states, dirty, listing)
        if beats:  # after the states: a beat only ever moves a running run's heartbeat forward
            now = time.time()
            tables.apply_beats(
                cur,
                {
                    "run_id": [b.run_id for b, _ in beats],
                    "segment": [b.segment for b, _ in beats],
                    "heartbeat": [b.heartbeat for b, _ in beats],
                    "seen_at": [_written(listing[path], now) for _, path in beats],
                },
            )
        self._sync_closure(cur)

    def _apply_states(
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
                },
            )

    def _insert_segments(self, cur: duckdb.DuckDBPyConnection, segments: list[SegmentDoc]) -> None:
        tables.insert_segments(cur, segments)
        for d in segments:
            node = (d.run_id, int(d.segment))
            link = (d.parent_run_id, d.parent_segment, d.cutoff)
            if self.state.links.get(node, link) != link:  # a segment rewritten: its descendants too
                self._forget_links(cur, [node])
            self.state.links[node] = link

    def _forget_links(self, cur: duckdb.DuckDBPyConnection, nodes: Iterable[Node]) -> None:
        """Nodes gone (or changed): every closure is walked again (rare: only a failed create
        or a hand edit takes a lineage row away)."""
        for node in nodes:
            self.state.links.pop(node, None)
        cur.execute("DELETE FROM closure")
        self.state.closed.clear()

    def _sync_closure(self, cur: duckdb.DuckDBPyConnection) -> None:
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

    def _fold_packs(self, cur: duckdb.DuckDBPyConnection, dirty: set[NodeKey], pointed: set[NodeKey]) -> bool:
        """Index new pack manifests (their members' own parts drop out) and forget removed ones
        (their members are checked against their pack pointers again)."""
        listing = self._pack_listing
        changed = sorted(p for p, token in listing.items() if self.state.seen.get(p) != token)
        removed = [p for p in self.state.pack_manifests if p not in listing and p in self.state.seen]
        self.state.pack_manifests = set(listing)
        if not changed and not removed:
            return False
        for path in removed:  # a pack taken away (doctor's quarantine): its nodes are listed again
            pack = self.storage.engine_path(path[: -len(".json")] + ".parquet")
            members = cur.execute(
                "SELECT s.project, p.run_id, p.segment FROM parts AS p JOIN segments AS s USING (run_id, segment) "
                "WHERE p.path = ? AND p.pack",
                [pack],
            ).fetchall()
            cur.execute("DELETE FROM parts WHERE path = ? AND pack", [pack])
            dirty.update((p, r, int(s)) for p, r, s in members)
            pointed.update((p, r, int(s)) for p, r, s in members)
            self.state.seen.pop(path, None)
        for path in changed:
            try:
                doc = self.storage.read_json(path)
                manifest = (
                    None if doc is None else PackManifest.from_json(doc, self.storage.engine_path(path))
                )
            except RunlakeError as exc:  # its members are read through their pointers meanwhile
                self._problems.append(f"skipping unreadable pack manifest: {exc}")
                self.state.pack_problems[self.storage.engine_path(path)] = (None, str(exc))
                continue
            self.state.pack_problems.pop(self.storage.engine_path(path), None)
            if manifest is None:
                continue
            pack = self.storage.engine_path(path[: -len(".json")] + ".parquet")
            tables.index_pack(
                cur,
                pack,
                [(m.run_id, m.segment, m.step_lo, m.step_hi, m.bytes, m.parts) for m in manifest.members],
            )
            self.state.seen[path] = listing[path]
        return True

    def _fold_pointers(self, cur: duckdb.DuckDBPyConnection, nodes: set[NodeKey]) -> bool:
        """A pack a member's pointer names but whose manifest is missing (lost, or a crash
        between quarantining a pack and its manifest) is indexed from the pointers, so its rows
        neither vanish from reads nor look orphaned to `compact`."""
        changed = False
        for project, run_id, segment in sorted(nodes):
            pointer = read_packed(self.storage, project, run_id, segment)
            for entry in pointer.packs if pointer else []:
                base = f"{self.storage.root}/{entry['pack'][: -len('.parquet')]}"
                if f"{base}.json" in self.state.pack_manifests or not self.storage.exists(f"{base}.parquet"):
                    continue
                pack = self.storage.engine_path(f"{base}.parquet")
                self.state.pack_problems[pack] = (
                    run_id,
                    f"pack has no manifest ({base}.json): its rows are read through its members' "
                    "pointers (meta/packed-<k>.json); `runlake compact` writes packs with manifests again",
                )
                if pack not in self._warned_packs:
                    self._warned_packs.add(pack)
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

    def _has_running(self) -> bool:
        return bool(self._running_rows(self.con))

    def _running_rows(self, cur: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
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

    def _update_states(self, cur: duckdb.DuckDBPyConnection, dirty: set[NodeKey]) -> None:
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
        ) in self._running_rows(cur):
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

    def _relist(self, cur: duckdb.DuckDBPyConnection, nodes: Iterable[NodeKey]) -> None:
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
        tables.delete_own_parts(cur, keys)
        rows: list[tuple[str, str, int, int, int, int]] = []
        for project, run_id, segment in nodes:
            listed = self.storage.list_parts(self.storage.paths.segment_dir(project, run_id, segment))
            for part in own_parts(listed, packed.get((run_id, segment), [])):
                path = self.storage.engine_path(part.path)
                rows.append((path, run_id, segment, part.step_lo, part.step_hi, part.size))
        tables.insert_parts(cur, rows)

    def fingerprint(self) -> tuple[str, int]:
        """A digest of the manifests the catalog has folded (heartbeat-only files left out) and
        how many: an export stamped with it is current while a refresh finds the same."""
        import hashlib

        with self._lock:
            items = sorted((p, t) for p, t in self.state.seen.items() if not p.endswith("/beat.json"))
        digest = hashlib.sha256("\n".join(f"{p}\t{t}" for p, t in items).encode()).hexdigest()
        return digest, len(items)

    @property
    def generation(self) -> int:
        """Moves on every change to the tables."""
        return self.state.generation

    def relist_all(self) -> None:
        """List every segment again (after a read found a part that a compaction removed)."""
        with self._lock:
            self._pack_listing = self.storage.list_pack_manifests()

            def fold(cur: duckdb.DuckDBPyConnection) -> None:
                self._fold_packs(cur, set(), set())
                nodes = cur.execute("SELECT project, run_id, segment FROM segments").fetchall()
                self._relist(cur, [(p, r, s) for p, r, s in nodes])
                self.state.generation += 1

            self._atomically(fold)

    # ---- querying -----------------------------------------------------------------------
    def problems(self) -> list[tuple[str, str | None, str]]:
        """What the last refresh could not read as it should, (path, run id, what is wrong):
        damaged manifests (their runs' reads fail saying so) and packs without a readable
        manifest (read through their members' pointers): what `doctor` reports besides parts."""
        with self._lock:
            out: list[tuple[str, str | None, str]] = [
                (self.storage.engine_path(p), rid, why) for p, (rid, why) in self.state.broken.items()
            ]
            out += [(p, rid, why) for p, (rid, why) in self.state.pack_problems.items()]
        return sorted(out)

    def broken(self, run_id: str) -> str | None:
        """Why a manifest of `run_id` cannot be read (its reads must fail saying so), or None."""
        return next((why for rid, why in self.state.broken.values() if rid == run_id), None)

    def index(self) -> Index:
        """The lineage links and file index as Python dicts, as of the last refresh."""
        with self._lock:
            if self._index is None or self._index.generation != self.state.generation:
                cur = self.con.cursor()
                try:
                    files: dict[Node, list[tuple[str, int, int, bool]]] = {}
                    for r, s, path, lo, hi, pack in cur.execute(
                        "SELECT run_id, segment, path, step_lo, step_hi, pack FROM parts ORDER BY step_lo, path"
                    ).fetchall():
                        files.setdefault((r, int(s)), []).append((path, int(lo), int(hi), bool(pack)))
                    current = {
                        r: int(s) for r, s in cur.execute("SELECT run_id, segment FROM run_meta").fetchall()
                    }
                    holes = {
                        (r, int(s)): missing_parts(
                            r, int(s), int(written), int(found), self.storage.paths.segment_dir(p, r, int(s))
                        )
                        for r, s, written, found, p in cur.execute(HOLES).fetchall()
                    }
                finally:
                    cur.close()
                self._index = Index(self.state.generation, current, dict(self.state.links), files, holes)
            return self._index

    def snapshot(self) -> duckdb.DuckDBPyConnection:
        """An independent in-memory DuckDB database holding a copy of the tables and every
        view, as of now: `runlake.connect()`'s answer."""
        con = duckdb.connect(":memory:")
        if not self.storage.is_local:
            con.register_filesystem(self.storage.fs)
        cur = self.cursor()
        try:
            query = "SELECT getvariable('runlake_parts'), getvariable('runlake_packs')"
            files = cur.execute(query).fetchall()[0]
            con.execute("SET VARIABLE runlake_parts = ?", [files[0]])
            con.execute("SET VARIABLE runlake_packs = ?", [files[1]])
            sql.install(con)
            for table in persist.TABLES:
                rows = cur.sql(f"SELECT * FROM {table}").to_arrow_table()
                con.register("runlake_copy", rows)
                con.execute(f"INSERT INTO {table} SELECT * FROM runlake_copy")
                con.unregister("runlake_copy")
        finally:
            cur.close()
        return con

    def sandbox(self, memory: str | None = None) -> tuple[int, Sandbox, list[tuple[str, int | None]]]:
        """A locked-down connection for user SQL over a copy of the tables as of now (see
        `sandbox.py`), the generation it holds, and every file it may read with its size."""
        with self._lock:
            cur = self.cursor(with_parts=True)
            try:
                query = "SELECT getvariable('runlake_parts'), getvariable('runlake_packs')"
                parts, packs = cur.execute(query).fetchall()[0]
                tables = {name: cur.sql(f"SELECT * FROM {name}").to_arrow_table() for name in SANDBOX_TABLES}
                files = [
                    (p, b)
                    for p, b in cur.execute("SELECT path, max(bytes) FROM parts GROUP BY path").fetchall()
                ]
            finally:
                cur.close()
            root = self.storage.engine_path(self.storage.root).rstrip("/") + "/"
            tmp = self._tmp.rstrip("/") + "/"
            allowed = list(dict.fromkeys([root, tmp, *sql.literal([root, tmp])]))  # file lists are escaped
            fs = None if self.storage.is_local else self.storage.fs
            empty = (sql.literal([self._empty[False]])[0], sql.literal([self._empty[True]])[0])
            box = Sandbox(tables, parts, packs, allowed, empty, fs=fs, memory=memory)
            return self.state.generation, box, files

    def cursor(self, with_parts: bool = True) -> duckdb.DuckDBPyConnection:
        """A cursor on the index; `raw_history`/`history` see the parts as of now."""
        cur = self.con.cursor()
        if with_parts:
            files = [
                r[0] for r in cur.execute("SELECT path FROM parts WHERE NOT pack ORDER BY path").fetchall()
            ]
            packs = [
                r[0]
                for r in cur.execute("SELECT DISTINCT path FROM parts WHERE pack ORDER BY path").fetchall()
            ]
            parts = sql.literal(files or [self._empty[False]])
            cur.execute("SET VARIABLE runlake_parts = ?", [parts]).fetchall()
            cur.execute(
                "SET VARIABLE runlake_packs = ?", [sql.literal(packs or [self._empty[True]])]
            ).fetchall()
        return cur
