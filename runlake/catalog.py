"""The catalog: an in-memory DuckDB index of a root, folded incrementally from its manifests.

It is derived: every row comes from `runs/*/*/meta/*.json` and from listing segment
directories, so it can be deleted at any time. A reader keeps it in memory (no file lock is
ever held while a user's query runs) and persists a copy by write-and-rename so the next
process only reads what changed. Training processes never open it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from . import _sql
from ._parquet import write_empty
from ._state import derive_state
from ._storage import PACK_MANIFEST_RE, SEGMENT_RE, Storage
from .errors import RunlakeError, RunNotFoundError

SCHEMA_VERSION = 2
_RELIST_RE = re.compile(r"(?:compacted|repaired)-(\d+)\.json")  # parts of segment k were swapped
_TABLES = ("run_meta", "segments", "parts")
_PERSIST_EVERY = 2.0


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Catalog:
    """The index of one root, for this process."""

    def __init__(self, storage: Storage, persist_path: str | None) -> None:
        self.storage = storage
        self.persist_path = persist_path
        self.con = duckdb.connect(":memory:")
        if not storage.is_local:
            self.con.register_filesystem(storage.fs)
        # views over read_parquet(getvariable(...)) bind the variable when they are created
        self.con.execute("SET VARIABLE runlake_parts = ?", [[empty_part()]])
        self.con.execute("SET VARIABLE runlake_packs = ?", [[empty_part(pack=True)]])
        _sql.install(self.con)
        self._lock = threading.RLock()
        self._seen: dict[str, str] = {}  # manifest path -> change token
        self._dir_cache: dict[str, tuple[int, dict[str, str]]] = {}
        self._crash_listed: set[tuple[str, int]] = set()
        self._last_persist = 0.0
        self._dirty_since_persist = False
        # Every change to the tables bumps the generation; Python mirrors of the small tables
        # (for the read path: no SQL round trip to walk a lineage or pick its files) and the
        # list of running runs are rebuilt when it moved.
        self._generation = 0
        self._mirror: Mirror | None = None
        self._running: tuple[int, list[tuple[Any, ...]]] | None = None
        if persist_path:
            self._load(persist_path)

    # ---- persistence ---------------------------------------------------------------------
    def _load(self, path: str) -> None:
        if not os.path.exists(path):
            return
        try:
            self.con.execute(f"ATTACH {_quote_literal(path)} AS saved (READ_ONLY)")
        except duckdb.Error:
            self._discard(path)
            return
        try:
            version = self.con.execute("SELECT version FROM saved.catalog_info").fetchall()
            if not version or version[0][0] != SCHEMA_VERSION:  # written by another version: rebuild
                self.con.execute("DETACH saved")
                with contextlib.suppress(OSError):
                    os.remove(path)
                return
            for table in _TABLES:
                self.con.execute(f"INSERT INTO {table} SELECT * FROM saved.{table}")
            rows = self.con.execute("SELECT path, token FROM saved.seen").fetchall()
            self._seen = dict(rows)
        except (duckdb.Error, RunlakeError):
            for table in _TABLES:
                self.con.execute(f"DELETE FROM {table}")
            self._seen = {}
            self.con.execute("DETACH saved")
            self._discard(path)
            return
        self.con.execute("DETACH saved")

    @staticmethod
    def _discard(path: str) -> None:
        warnings.warn(
            f"runlake catalog {path} could not be read; rebuilding it from the root",
            RuntimeWarning,
            stacklevel=4,
        )
        with contextlib.suppress(OSError):
            os.remove(path)

    def persist(self, force: bool = False) -> None:
        """Write the catalog copy (write to a temp name, then rename: readers never wait)."""
        if not self.persist_path or not (self._dirty_since_persist or force):
            return
        if self.storage.is_local and not os.path.isdir(self.storage.root):
            return  # a read never creates a root
        with self._lock:
            os.makedirs(os.path.dirname(self.persist_path), exist_ok=True)
            tmp = f"{self.persist_path}.tmp-{uuid.uuid4().hex[:8]}"
            cur = self.con.cursor()
            try:
                cur.execute(f"ATTACH {_quote_literal(tmp)} AS out")
                for table in _TABLES:
                    cur.execute(f"CREATE TABLE out.{table} AS SELECT * FROM {table}")
                seen = pa.table(
                    {"path": list(self._seen), "token": list(self._seen.values())},
                    schema=pa.schema([("path", pa.string()), ("token", pa.string())]),
                )
                cur.register("seen_rows", seen)
                cur.execute("CREATE TABLE out.seen AS SELECT * FROM seen_rows")
                cur.unregister("seen_rows")
                cur.execute(f"CREATE TABLE out.catalog_info AS SELECT {SCHEMA_VERSION} AS version")
                cur.execute("DETACH out")
                os.replace(tmp, self.persist_path)
            except (duckdb.Error, OSError):
                # a cache: failing to save it loses nothing
                with contextlib.suppress(duckdb.Error):
                    cur.execute("DETACH out")
                with contextlib.suppress(OSError):
                    os.remove(tmp)
                with contextlib.suppress(OSError):
                    os.remove(tmp + ".wal")
            finally:
                cur.close()
            self._last_persist = time.monotonic()
            self._dirty_since_persist = False

    # ---- refresh ------------------------------------------------------------------------
    def refresh(self) -> None:
        """Fold manifests that changed since the last refresh into the index."""
        with self._lock:
            listing, self._dir_cache = self.storage.list_manifests(self._dir_cache)
            changed = [p for p, token in listing.items() if self._seen.get(p) != token]
            removed = [p for p in self._seen if p not in listing and not _is_pack_manifest(p)]
            dirty_nodes: set[tuple[str, str, int]] = set()
            generation = self._generation
            if changed or removed:
                self._apply(changed, removed, listing, dirty_nodes)
                self._generation += 1  # before _update_states: its list of running runs is cached
            if self._fold_packs(dirty_nodes):
                self._generation += 1
            self._update_states(dirty_nodes)
            if dirty_nodes:
                self._relist(dirty_nodes)
                self._generation += 1
            if self._generation != generation:
                self._dirty_since_persist = True
        if self._dirty_since_persist and time.monotonic() - self._last_persist > _PERSIST_EVERY:
            self.persist()

    def _apply(
        self,
        changed: list[str],
        removed: list[str],
        listing: dict[str, str],
        dirty_nodes: set[tuple[str, str, int]],
    ) -> None:
        cur = self.con.cursor()
        for path in removed:
            project, run_id, name = _split_meta_path(path)
            if name == "run.json":
                for table in _TABLES:
                    cur.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
            elif (m := SEGMENT_RE.fullmatch(name)) is not None:
                cur.execute("DELETE FROM segments WHERE run_id = ? AND segment = ?", [run_id, int(m[1])])
                cur.execute("DELETE FROM parts WHERE run_id = ? AND segment = ?", [run_id, int(m[1])])
            self._seen.pop(path, None)

        identities: list[dict[str, Any]] = []
        segments: list[dict[str, Any]] = []
        states: list[tuple[str, dict[str, Any], str]] = []
        for path in sorted(changed):
            project, run_id, name = _split_meta_path(path)
            if (m := _RELIST_RE.fullmatch(name)) is not None:  # parts were swapped: list again
                dirty_nodes.add((project, run_id, int(m[1])))
                self._seen[path] = listing[path]
                continue
            if name not in ("run.json", "state.json") and not SEGMENT_RE.fullmatch(name):
                self._seen[path] = listing[path]
                continue
            try:
                doc = self.storage.read_json(path)
            except RunlakeError as exc:
                warnings.warn(f"skipping unreadable manifest: {exc}", RuntimeWarning, stacklevel=3)
                continue
            if doc is None:  # vanished between listing and reading
                continue
            if name == "run.json":
                identities.append(doc)
            elif name == "state.json":
                states.append((run_id, doc, path))
            else:
                segments.append(doc)
                dirty_nodes.add((project, run_id, int(doc["segment"])))
            self._seen[path] = listing[path]

        if identities:
            rows = {
                "run_id": [d["run_id"] for d in identities],
                "project": [d["project"] for d in identities],
                "name": [d.get("name") for d in identities],
                "notes": [d.get("notes") for d in identities],
                "tags": [list(d.get("tags") or []) for d in identities],
                "created_at": [float(d.get("created_at") or 0.0) for d in identities],
            }
            cur.register("new_runs", pa.table(rows, schema=_IDENTITY_SCHEMA))
            cur.execute(
                """
                INSERT INTO run_meta (run_id, project, name, notes, tags, created_at, segment, raw_state, state)
                SELECT run_id, project, name, notes, tags, created_at, 0, 'running', 'running' FROM new_runs
                ON CONFLICT (run_id) DO UPDATE SET
                    project = excluded.project, name = excluded.name, notes = excluded.notes,
                    tags = excluded.tags, created_at = excluded.created_at
                """
            )
            cur.unregister("new_runs")
        if segments:
            self._insert_segments(cur, segments)
        for run_id, doc, path in states:
            known = cur.execute("SELECT project, segment FROM run_meta WHERE run_id = ?", [run_id]).fetchall()
            if not known:  # a state without identity: a run still being created; read it again
                self._seen.pop(path, None)
                continue
            segment = int(doc.get("segment", 0))
            cur.execute(
                """
                UPDATE run_meta SET segment = ?, raw_state = ?, state = ?, heartbeat = ?, host = ?,
                    pid = ?, pid_start = ?, finished_at = ?, exit_code = ?, config = ?, summary = ?
                WHERE run_id = ?
                """,
                [
                    segment,
                    doc.get("state"),
                    derive_state(doc),
                    doc.get("heartbeat"),
                    doc.get("host"),
                    doc.get("pid"),
                    doc.get("pid_start"),
                    doc.get("finished_at"),
                    doc.get("exit_code"),
                    json.dumps(doc.get("config") or {}),
                    json.dumps(doc.get("summary") or {}),
                    run_id,
                ],
            )
            dirty_nodes.add((known[0][0], run_id, segment))
            if int(known[0][1]) != segment:
                # a rewind moved the run on: the parts its last writer of the old segment
                # wrote after the state we saw (its final flush) must be listed too
                for old in range(min(int(known[0][1]), segment), max(int(known[0][1]), segment)):
                    dirty_nodes.add((known[0][0], run_id, old))
            self._crash_listed.discard((run_id, segment))
        cur.close()

    @staticmethod
    def _insert_segments(cur: duckdb.DuckDBPyConnection, segments: list[dict[str, Any]]) -> None:
        rows = {
            "run_id": [d["run_id"] for d in segments],
            "segment": [int(d["segment"]) for d in segments],
            "project": [d["project"] for d in segments],
            "kind": [d["kind"] for d in segments],
            "parent_run_id": [d.get("parent_run_id") for d in segments],
            "parent_segment": [d.get("parent_segment") for d in segments],
            "cutoff": [d.get("cutoff") for d in segments],
            "created_at": [float(d.get("created_at") or 0.0) for d in segments],
        }
        cur.register("new_segments", pa.table(rows, schema=_SEGMENT_SCHEMA))
        cur.execute("INSERT OR REPLACE INTO segments SELECT * FROM new_segments")
        cur.unregister("new_segments")

    def _fold_packs(self, dirty_nodes: set[tuple[str, str, int]]) -> bool:
        """Index new pack manifests (their members' own parts drop out) and forget removed ones."""
        listing = self.storage.list_pack_manifests()
        changed = sorted(p for p, token in listing.items() if self._seen.get(p) != token)
        removed = [p for p in self._seen if "/packs/" in p and p not in listing and _is_pack_manifest(p)]
        if not changed and not removed:
            return False
        cur = self.con.cursor()
        for path in removed:  # a pack taken away (doctor's quarantine): its nodes are listed again
            pack = self.storage.engine_path(path[: -len(".json")] + ".parquet")
            members = cur.execute(
                "SELECT s.project, p.run_id, p.segment FROM parts AS p JOIN segments AS s USING (run_id, segment) "
                "WHERE p.path = ? AND p.pack",
                [pack],
            ).fetchall()
            cur.execute("DELETE FROM parts WHERE path = ? AND pack", [pack])
            dirty_nodes.update((p, r, int(s)) for p, r, s in members)
            self._seen.pop(path, None)
        for path in changed:
            try:
                doc = self.storage.read_json(path)
            except RunlakeError as exc:
                warnings.warn(f"skipping unreadable pack manifest: {exc}", RuntimeWarning, stacklevel=3)
                continue
            if doc is None:
                continue
            pack = self.storage.engine_path(path[: -len(".json")] + ".parquet")
            self._index_pack(cur, pack, doc.get("members") or [])
            self._seen[path] = listing[path]
        cur.close()
        return True

    @staticmethod
    def _index_pack(cur: duckdb.DuckDBPyConnection, pack: str, members: list[dict[str, Any]]) -> None:
        """Index a pack's members; the nodes' own parts within the packed range drop out."""
        if not members:
            return
        rows = pa.table(
            {
                "path": [pack] * len(members),
                "run_id": [m["run_id"] for m in members],
                "segment": [int(m["segment"]) for m in members],
                "step_lo": [int(m["step_lo"]) for m in members],
                "step_hi": [int(m["step_hi"]) for m in members],
                "bytes": [int(m.get("bytes") or 0) for m in members],
                "pack": [True] * len(members),
            },
            schema=_PARTS_SCHEMA,
        )
        cur.register("new_pack", rows)
        cur.execute(
            """
            DELETE FROM parts AS p USING new_pack AS n
            WHERE p.run_id = n.run_id AND p.segment = n.segment AND NOT p.pack
              AND p.step_lo >= n.step_lo AND p.step_hi <= n.step_hi
            """
        )
        cur.execute("INSERT OR REPLACE INTO parts SELECT * FROM new_pack")
        cur.unregister("new_pack")

    def _update_states(self, dirty_nodes: set[tuple[str, str, int]]) -> None:
        """Re-derive `crashed` for running runs; a run seen crashing is listed once more."""
        cur = self.con.cursor()
        if self._running is None or self._running[0] != self._generation:
            self._running = (
                self._generation,
                cur.execute(
                    "SELECT run_id, project, segment, state, heartbeat, host, pid, pid_start "
                    "FROM run_meta WHERE raw_state = 'running'"
                ).fetchall(),
            )
        rows = self._running[1]
        now = time.time()
        for run_id, project, segment, state, heartbeat, host, pid, pid_start in rows:
            derived = derive_state(
                {
                    "state": "running",
                    "heartbeat": heartbeat,
                    "host": host,
                    "pid": pid,
                    "pid_start": pid_start,
                },
                now,
            )
            if derived != state:
                cur.execute("UPDATE run_meta SET state = ? WHERE run_id = ?", [derived, run_id])
                self._generation += 1
            if derived == "crashed" and (run_id, segment) not in self._crash_listed:
                # parts written after the last state update of a killed writer
                self._crash_listed.add((run_id, segment))
                dirty_nodes.add((project, run_id, segment))
        cur.close()

    def _relist(self, nodes: Iterable[tuple[str, str, int]]) -> None:
        paths, run_ids, segs, los, his, sizes = [], [], [], [], [], []
        cur = self.con.cursor()
        for project, run_id, segment in nodes:
            cur.execute("DELETE FROM parts WHERE run_id = ? AND segment = ? AND NOT pack", [run_id, segment])
            packed = cur.execute(
                "SELECT step_lo, step_hi FROM parts WHERE run_id = ? AND segment = ? AND pack",
                [run_id, segment],
            ).fetchall()
            for part in self.storage.list_parts(self.storage.segment_dir(project, run_id, segment)):
                if any(lo <= part.step_lo and part.step_hi <= hi for lo, hi in packed):
                    continue  # a pack holds these rows (the part awaits removal)
                paths.append(self.storage.engine_path(part.path))
                run_ids.append(run_id)
                segs.append(segment)
                los.append(part.step_lo)
                his.append(part.step_hi)
                sizes.append(part.size)
        if paths:
            table = pa.table(
                {
                    "path": paths,
                    "run_id": run_ids,
                    "segment": segs,
                    "step_lo": los,
                    "step_hi": his,
                    "bytes": sizes,
                    "pack": [False] * len(paths),
                },
                schema=_PARTS_SCHEMA,
            )
            cur.register("new_parts", table)
            cur.execute("INSERT OR REPLACE INTO parts SELECT * FROM new_parts")
            cur.unregister("new_parts")
        cur.close()

    def load_chain(self, project: str, run_id: str, segment: int) -> None:
        """Index just one node and its ancestors, from their manifests (no full listing)."""
        nodes = []
        docs = []
        while True:
            doc = self.storage.read_json(self.storage.meta_path(project, run_id, f"segment-{segment}.json"))
            if doc is None:
                raise RunNotFoundError(f"run {run_id!r} has no segment {segment} in {self.storage.url!r}")
            docs.append(doc)
            nodes.append((project, run_id, segment))
            if doc.get("parent_run_id") is None:
                break
            project, run_id, segment = doc["parent_project"], doc["parent_run_id"], int(doc["parent_segment"])
        pointers = []
        for project, run_id, segment in nodes:
            pointer = self.storage.read_json(
                self.storage.meta_path(project, run_id, f"packed-{segment}.json")
            )
            for pack in (pointer or {}).get("packs", []):
                member = {**pack, "run_id": run_id, "segment": segment}
                pointers.append((self.storage.engine_path(f"{self.storage.root}/{pack['pack']}"), member))
        with self._lock:
            cur = self.con.cursor()
            self._insert_segments(cur, docs)
            for pack, pointer in pointers:
                self._index_pack(cur, pack, [pointer])
            self._relist(nodes)
            self._generation += 1

    def relist_all(self) -> None:
        """List every segment again (after a read found a part that a compaction removed)."""
        with self._lock:
            dirty: set[tuple[str, str, int]] = set()
            self._fold_packs(dirty)
            nodes = self.con.cursor().execute("SELECT project, run_id, segment FROM segments").fetchall()
            self._relist([(p, r, s) for p, r, s in nodes])
            self._generation += 1

    # ---- querying -----------------------------------------------------------------------
    def mirror(self) -> Mirror:
        """The lineage and file index as Python dicts, as of the last refresh."""
        with self._lock:
            if self._mirror is None or self._mirror.generation != self._generation:
                cur = self.con.cursor()
                try:
                    self._mirror = Mirror(
                        self._generation,
                        cur.execute("SELECT run_id, segment FROM run_meta").fetchall(),
                        cur.execute(
                            "SELECT run_id, segment, parent_run_id, parent_segment, cutoff FROM segments"
                        ).fetchall(),
                        cur.execute(
                            "SELECT run_id, segment, path, step_lo, step_hi, pack FROM parts"
                        ).fetchall(),
                    )
                finally:
                    cur.close()
            return self._mirror

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
            cur.execute("SET VARIABLE runlake_parts = ?", [files or [empty_part()]]).fetchall()
            cur.execute("SET VARIABLE runlake_packs = ?", [packs or [empty_part(pack=True)]]).fetchall()
        return cur


_MAX_STEP = 9223372036854775807


class Mirror:
    """run_meta, segments and parts as dicts: what a node read needs, without SQL round trips."""

    def __init__(
        self,
        generation: int,
        runs: list[tuple[Any, ...]],
        segments: list[tuple[Any, ...]],
        parts: list[tuple[Any, ...]],
    ) -> None:
        self.generation = generation
        self.current: dict[str, int] = {r: int(s) for r, s in runs}
        self.links: dict[tuple[str, int], tuple[str | None, int | None, int | None]] = {
            (r, int(s)): (pr, ps, c) for r, s, pr, ps, c in segments
        }
        self.files: dict[tuple[str, int], list[tuple[str, int, int, bool]]] = {}
        for r, s, path, lo, hi, pack in sorted(parts, key=lambda p: (p[3], p[2])):
            self.files.setdefault((r, int(s)), []).append((path, int(lo), int(hi), bool(pack)))

    def closure(self, run_id: str, segment: int) -> list[tuple[int, str, int, int, int]]:
        """closure_of(run_id, segment) in Python: (depth, run_id, segment, step_lo, step_hi)."""
        out = []
        node: tuple[str, int] | None = (run_id, segment)
        step_hi = _MAX_STEP
        depth = 0
        while node is not None:
            link = self.links.get(node)
            if link is None:
                break
            parent_run, parent_segment, cutoff = link
            out.append((depth, node[0], node[1], -1 if cutoff is None else int(cutoff), step_hi))
            if parent_run is None or parent_segment is None:
                break
            if cutoff is not None:
                step_hi = min(step_hi, int(cutoff))
            node = (parent_run, int(parent_segment))
            depth += 1
        return out


_IDENTITY_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("project", pa.string()),
        ("name", pa.string()),
        ("notes", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("created_at", pa.float64()),
    ]
)
_SEGMENT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("segment", pa.int64()),
        ("project", pa.string()),
        ("kind", pa.string()),
        ("parent_run_id", pa.string()),
        ("parent_segment", pa.int64()),
        ("cutoff", pa.int64()),
        ("created_at", pa.float64()),
    ]
)
_PARTS_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("run_id", pa.string()),
        ("segment", pa.int64()),
        ("step_lo", pa.int64()),
        ("step_hi", pa.int64()),
        ("bytes", pa.int64()),
        ("pack", pa.bool_()),
    ]
)


def _is_pack_manifest(path: str) -> bool:
    parts = path.rsplit("/", 3)  # .../packs/project=<p>/pack-<id>.json
    return len(parts) == 4 and parts[1] == "packs" and PACK_MANIFEST_RE.fullmatch(parts[3]) is not None


def _split_meta_path(path: str) -> tuple[str, str, str]:
    """.../runs/<project>/<run_id>/meta/<name> -> (project, run_id, name)."""
    parts = path.rstrip("/").split("/")
    return parts[-4], parts[-3], parts[-1]


_empty_paths: dict[bool, str] = {}
_empty_lock = threading.Lock()


def empty_part(pack: bool = False) -> str:
    """A zero-row part (or pack) file, so `raw_history` works on a root without any."""
    with _empty_lock:
        path = _empty_paths.get(pack)
        if path is None or not os.path.exists(path):
            hive = ("project=_",) if pack else ("project=_", "run_id=_", "segment=0")
            directory = os.path.join(tempfile.mkdtemp(prefix="runlake-empty-"), *hive)
            os.makedirs(directory)
            path = os.path.join(directory, "pack-empty.parquet" if pack else "part-empty.parquet")
            write_empty(path, pack=pack)
            _empty_paths[pack] = path
        return path


def cache_path(storage: Storage) -> str | None:
    """Where the persisted catalog of a root lives: inside a local root, else a cache dir."""
    if storage.is_local:
        return os.path.join(storage.root, "_catalog", "catalog.duckdb")
    if storage.fs.protocol in ("memory",) or "memory" in (storage.fs.protocol or ()):
        return None  # nothing outlives the process there
    base = os.environ.get("RUNLAKE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "runlake")
    digest = hashlib.sha256(storage.fs.unstrip_protocol(storage.root).encode()).hexdigest()[:16]
    return os.path.join(base, digest, "catalog.duckdb")
