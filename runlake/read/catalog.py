"""The catalog: an in-memory DuckDB index of a root, folded incrementally from its manifests.

It is derived: every row comes from `runs/*/*/meta/*.json`, pack manifests and listings of
segment directories, so it can be deleted at any time. A reader keeps it in memory (no file
lock is ever held while a user's query runs) and persists a copy (`persist.py`) so the next
process only reads what changed. Training processes never open it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ..store.layout import is_pack_manifest
from ..store.parquet import write_empty
from ..store.storage import Storage
from . import persist, sql
from .folding import Folding, NodeKey
from .following import Following
from .lineage import Index, Link, Node
from .sandbox import TABLES as SANDBOX_TABLES
from .sandbox import Sandbox
from .tail import Tail

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


class Catalog(Following):
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
        # a zero-row file of each kind, so a view works on a root without any
        self._empty = {var: self._empty_file(kind) for var, (kind, _) in sql.FILE_LISTS.items()}
        # views over read_parquet(getvariable(...)) bind the variable when they are created
        for var, path in self._empty.items():
            self.con.execute(f"SET VARIABLE {var} = ?", [sql.literal([path])])
        sql.install(self.con)
        self._lock = threading.RLock()
        # everything derived from the manifests besides the tables: copied and restored whole
        # when a refresh fails (see _atomically)
        self.state = CatalogState()
        self.fold = Folding(self)  # how manifests become rows (folding.py)
        self._dir_cache: dict[str, tuple[int, dict[str, str]]] = {}
        self._last_persist = 0.0
        self._dirty_since_persist = False
        # when the listing behind the tables was taken (time.time()): a change stamped before it
        # is in them (what a "what changed since" poll may promise, whatever the refresh cadence)
        self.listed_at = 0.0
        self._index: Index | None = None
        self._warned: set[str] = set()
        self._may_checkpoint = True
        self._relist_now = False
        self._repaired: list[str] = []
        self.unlogged: set[str] = set()  # files a full listing found that no log entry describes yet
        # a local root is listed whole at a process's first refresh (stats, no requests): what
        # was changed by hand, or by a writer killed before its entry, since the last process
        self._start_relist = storage.is_local
        self.tail = Tail(storage)  # the commit log: what changed since the last refresh
        if persist_path:
            self.state.seen, files, tail_state = persist.load(self.con, persist_path)
            if tail_state is not None:
                self.tail.state, self.tail.listing = tail_state, files
        self._derive()

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def _derive(self) -> None:
        """What the catalog keeps besides its tables, from the tables (after loading a copy)."""
        self.state.links = {}
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
        self.fold.sync_closure(self.con)  # nodes a saved copy left unwalked (an ancestor was unknown)
        self.state.pack_manifests = {p for p in self.state.seen if is_pack_manifest(p)}
        self.state.generation += 1
        self._index = None

    def _empty_file(self, kind: str) -> str:
        hive = ("project=_",) if kind == "pack" else ("project=_", "run_id=_", "segment=0")
        directory = os.path.join(self._tmp, *hive)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, f"{kind}-empty.parquet")
        write_empty(path, kind)
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
                # the log position is saved only with nothing of the log waiting to be folded:
                # otherwise the next process starts from a full listing
                settled = not self.tail.touched and not self.tail.added and self.tail.state.mode == "log"
                tail = (self.tail.state, self.tail.listing) if settled else None
                persist.save(cur, self.persist_path, self.state.seen, tail)
            finally:
                cur.close()
            self._last_persist = time.monotonic()
            self._dirty_since_persist = False

    # ---- refresh ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Fold manifests that changed since the last refresh into the index: all of it or,
        if anything fails (a read error, a broken manifest), none of it. What changed comes
        from the commit log's newest entries (`tail.py`), or from a full listing of the root
        (a root without a log, a new reader without a checkpoint, the periodic relist)."""
        with self._lock:
            try:
                self._fold_changes()
            except BaseException:
                self.tail.listing.lose()  # the next refresh compares every manifest again
                raise
        if self._dirty_since_persist and time.monotonic() - self._last_persist > _PERSIST_EVERY:
            self.persist()

    def _fold_changes(self) -> None:
        """`refresh` under its lock."""
        listed_at = time.time()
        self.fold.problems = []
        self.fold.relisted = set()
        self.fold.listing_all = False
        self.fold.stream_listing = None
        listing, packs, dir_cache = self._listing()
        seen = self.state.seen
        if self._delta is None:  # compare everything listed
            changed = [p for p, t in listing.items() if not is_pack_manifest(p) and seen.get(p) != t]
            removed = [p for p in seen if p not in listing and not is_pack_manifest(p)]
        else:  # following the log: only what its entries changed
            candidates = [p for p in self._delta if not is_pack_manifest(p)]
            changed = [p for p in candidates if p in listing and seen.get(p) != listing[p]]
            removed = [p for p in candidates if p not in listing and p in seen]
        dirty: set[NodeKey] = set(self.tail.touched)
        pointed: set[NodeKey] = set()  # nodes whose pack pointer changed
        generation = self.state.generation

        def fold(cur: duckdb.DuckDBPyConnection) -> None:
            if changed or removed:
                self.fold.apply(cur, changed, removed, listing, dirty, pointed)
                self.state.generation += 1  # before _update_states: its list of running runs is cached
            if self.fold.packs(cur, dirty, pointed):
                self.state.generation += 1
            if pointed and self.fold.pointers(cur, pointed):
                self.state.generation += 1
            self.fold.update_states(cur, dirty)
            if dirty:
                self.fold.relist(cur, dirty)
                self.state.generation += 1
            if self.fold.streams(cur):
                self.state.generation += 1

        self.fold.pack_listing = packs
        quiet = (
            not changed
            and not removed
            and not dirty
            and not self.fold.streams_pending(self.con)
            and all(self.state.seen.get(p) == t for p, t in packs.items())
            and not any(p not in packs for p in self.state.pack_manifests)
        )
        if quiet and not self._has_running():
            self._dir_cache = dir_cache
            self.listed_at = listed_at if self.tail.state.mode != "log" else self._log_listed_at()
            self._after_refresh(generation)
            return  # nothing to fold and no live run whose state could turn: no transaction
        self._atomically(fold)
        self.tail.settled(self.fold.relisted)
        self.tail.streams_settled()
        self.fold.forced.clear()
        self._dir_cache = dir_cache
        self.listed_at = listed_at if self.tail.state.mode != "log" else self._log_listed_at()
        self._after_refresh(generation)

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

    def _has_running(self) -> bool:
        return bool(self.fold.running_rows(self.con))

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
            self.fold.pack_listing = self.storage.list_pack_manifests()

            def fold(cur: duckdb.DuckDBPyConnection) -> None:
                self.fold.packs(cur, set(), set())
                nodes = cur.execute("SELECT project, run_id, segment FROM segments").fetchall()
                self.fold.forced.update((p, r, s) for p, r, s in nodes)  # listed for real
                self.fold.relist(cur, [(p, r, s) for p, r, s in nodes])
                self.state.generation += 1

            self.fold.relisted = set()
            try:
                self._atomically(fold)
            except BaseException:
                self.tail.listing.lose()  # the next refresh compares every manifest again
                raise
            self.tail.settled(self.fold.relisted)
            self.fold.forced.clear()

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
                    for r, s, path, lo, hi, pack in cur.execute(  # (BIGINT and BOOLEAN come as int, bool)
                        "SELECT run_id, segment, path, step_lo, step_hi, pack FROM parts ORDER BY step_lo, path"
                    ).fetchall():
                        files.setdefault((r, s), []).append((path, lo, hi, pack))
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
            for var in sql.FILE_LISTS:
                value = cur.execute(f"SELECT getvariable('{var}')").fetchall()[0][0]
                con.execute(f"SET VARIABLE {var} = ?", [value])
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
                lists = {
                    v: cur.execute(f"SELECT getvariable('{v}')").fetchall()[0][0] for v in sql.FILE_LISTS
                }
                tables = {name: cur.sql(f"SELECT * FROM {name}").to_arrow_table() for name in SANDBOX_TABLES}
                files = [
                    (p, b)
                    for p, b in cur.execute(
                        "SELECT path, max(bytes) FROM parts GROUP BY path UNION ALL SELECT path, bytes FROM stream_files"
                    ).fetchall()
                ]
            finally:
                cur.close()
            root = self.storage.engine_path(self.storage.root).rstrip("/") + "/"
            tmp = self._tmp.rstrip("/") + "/"
            allowed = list(dict.fromkeys([root, tmp, *sql.literal([root, tmp])]))  # file lists are escaped
            fs = None if self.storage.is_local else self.storage.fs
            empty = {v: sql.literal([path])[0] for v, path in self._empty.items()}
            box = Sandbox(tables, lists, allowed, empty, fs=fs, memory=memory)
            return self.state.generation, box, files

    def cursor(self, with_parts: bool = True) -> duckdb.DuckDBPyConnection:
        """A cursor on the index; `raw_history`/`history` see the parts as of now."""
        cur = self.con.cursor()
        if with_parts:
            for var, (_, query) in sql.FILE_LISTS.items():
                files = [r[0] for r in cur.execute(query).fetchall()]
                cur.execute(f"SET VARIABLE {var} = ?", [sql.literal(files or [self._empty[var]])]).fetchall()
        return cur
