"""The commit log's write side: every change to what the catalog folds (a run's manifests, a
history part stored, a pack manifest, a removal) is described by a small immutable entry
appended after the change itself, so a reader learns what changed from the log's newest
entries instead of listing every run.

    <root>/_log/<yyyy>/<mm>/<dd>/<hh>/<time_ns>-<writer>-<seq>.json
        {"v": 1, "changes": [
            {"op": "put", "path": "runs/p/r/meta/state.json", "doc": {...}},  # a manifest and its content
            {"op": "put", "path": "runs/...", "bytes": 812345},            # too big to carry: read it
            {"op": "part", "path": "history/project=p/.../part-...parquet", "size": 1234},
            {"op": "del", "path": "..."},                                   # a file removed
            {"op": "del_tree", "path": "runs/p/r"}]}                        # a directory removed
    <root>/_log/origin.json  {"v": 1, "at_ns": ..., "complete": true}   the log holds everything
                             since the root began (false: a root from before the log: readers
                             list it until a checkpoint exists)

Names sort by time (the writer's clock, monotonic per writer), spread over hour buckets, and
are unique (a writer id and a sequence number): two writers never write the same name and never
read-modify-write anything. An entry is written after the files it describes, so a reader that
applies it finds them. Heartbeats (`beat.json`) and writer claims stay out: liveness is read
from the few running runs' beat files. Parts wait for the next manifest change's entry (a flush
stores parts, then the state); a batch (`with journal.batch():`) puts the changes of one
operation (creating a run, a flush, a compaction) in one entry.

A failed entry write never fails the write it describes (that one succeeded): its changes go
with the next entry, and a reader's periodic full listing (`doctor` too) finds what a writer
killed in between left out of the log.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

from . import settings
from .layout import PACK_MANIFEST_RE, PART_RE, STREAM_RE

FORMAT = 1
INLINE_LIMIT = 256 * 1024  # a manifest larger than this is named in its entry, not carried
_UNLOGGED_META = ("beat.json",)


def classify(rel: str) -> str | None:
    """What a root-relative path is to the log: "manifest", "part", "pack", or None (not logged)."""
    parts = rel.split("/")
    if len(parts) == 5 and parts[0] == "runs" and parts[3] == "meta" and parts[4].endswith(".json"):
        name = parts[4]
        if name in _UNLOGGED_META or name.startswith("writer-") or ".tmp-" in name:
            return None
        return "manifest"
    if len(parts) == 5 and parts[0] == "history" and PART_RE.fullmatch(parts[4]):
        return "part"
    if len(parts) == 3 and parts[0] == "packs" and PACK_MANIFEST_RE.fullmatch(parts[2]):
        return "pack"
    if len(parts) == 5 and parts[0] == "streams" and STREAM_RE.fullmatch(parts[4]):
        return "stream"
    return None


def logged_tree(rel: str) -> bool:
    """A directory whose removal is logged: a run's manifests or a run's history."""
    parts = rel.rstrip("/").split("/")
    return (len(parts) == 3 and parts[0] == "runs") or (
        len(parts) == 3 and parts[0] in ("history", "streams") and parts[2].startswith("run_id=")
    )


class Journal:
    """One process's writer of a root's commit log (one per `Storage`)."""

    def __init__(self, storage: Any) -> None:  # a Storage: storage.py imports this module
        self.storage = storage
        self.writer = uuid.uuid4().hex[:12]
        self._pid = os.getpid()
        self._seq = 0
        self._last_ns = 0
        self._lock = threading.Lock()
        self._waiting: list[dict[str, Any]] = []  # parts, and changes whose entry failed
        self._local = threading.local()  # this thread's open batch
        self._origin_checked = False
        self._warned = False

    # ---- what the storage reports ------------------------------------------------------------
    def before_write(self, path: str) -> None:
        """Called before any write: the first one under runs/, history/ or packs/ in this process
        makes sure the root has a log origin (before it, so an empty root is seen empty)."""
        if self._origin_checked:
            return
        rel = self._relative(path)
        if rel is not None and rel.split("/", 1)[0] in ("runs", "history", "packs", "_ids"):
            self._ensure_origin()

    def wrote(self, path: str, data: bytes) -> None:
        rel = self._relative(path)
        kind = classify(rel) if rel is not None else None
        if kind is None or rel is None:
            return
        if kind in ("part", "stream"):
            with self._lock:
                self._waiting.append({"op": "part", "path": rel, "size": len(data)})
            return
        change: dict[str, Any] = {"op": "put", "path": rel}
        if len(data) <= INLINE_LIMIT:
            try:
                change["doc"] = json.loads(data)
            except ValueError:
                change["bytes"] = len(data)  # not JSON: a reader reads it and says what is wrong
        else:
            change["bytes"] = len(data)
        self._add(change)

    def removed(self, path: str) -> None:
        rel = self._relative(path)
        if rel is not None and classify(rel) is not None:
            self._add({"op": "del", "path": rel})

    def removed_tree(self, path: str) -> None:
        rel = self._relative(path)
        if rel is not None and logged_tree(rel):
            self._add({"op": "del_tree", "path": rel.rstrip("/")})

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """The changes made by this thread inside go in one entry, written when the outermost
        batch ends (whether it ends well or not: an entry describes what happened)."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.changes = []
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                changes, self._local.changes = self._local.changes, []
                self.flush(changes)

    def discard(self) -> None:
        """Drop this thread's batched changes (a create that failed in a root it made, and that
        it removes whole: nothing happened there)."""
        if getattr(self._local, "depth", 0):
            self._local.changes = []
        with self._lock:
            self._waiting = []

    def forget_origin(self) -> None:
        """The root this process made is being removed whole: its log origin goes too."""
        self.storage.remove(self.storage.paths.log_origin)
        self._origin_checked = False

    def repair(self, present: list[str], gone: list[str]) -> None:
        """Entries for files the log lacked (`doctor --fix`): their content as it is now, and
        the removals it never heard of."""
        changes: list[dict[str, Any]] = []
        for path in present:
            rel = self._relative(path)
            data = self.storage.read_bytes(path)
            if rel is None or data is None or classify(rel) not in ("manifest", "pack"):
                continue
            change: dict[str, Any] = {"op": "put", "path": rel}
            try:
                change["doc"] = json.loads(data) if len(data) <= INLINE_LIMIT else None
            except ValueError:
                change["doc"] = None
            if change["doc"] is None:
                del change["doc"]
                change["bytes"] = len(data)
            changes.append(change)
        changes += [{"op": "del", "path": rel} for p in gone if (rel := self._relative(p)) is not None]
        if changes:
            self._ensure_origin()
            self.flush(changes)

    def flush(self, changes: list[dict[str, Any]] | None = None) -> None:
        """Write one entry with `changes` and whatever waits (parts, failed entries)."""
        with self._lock:
            todo = self._waiting + list(changes or [])
            if not todo or (changes is None and all(c["op"] == "part" for c in todo)):
                # parts alone wait for the manifest change that follows them (a flush's state)
                return
            self._waiting = []
            try:
                self._write(todo)
            except OSError as exc:
                self._waiting = todo + self._waiting
                if not self._warned:
                    self._warned = True
                    warnings.warn(
                        f"runlake: the commit log entry for {len(todo)} change(s) could not be "
                        f"written to {self.storage.url} ({exc}); it goes with the next one",
                        RuntimeWarning,
                        stacklevel=4,
                    )

    # ---- internals ----------------------------------------------------------------------------
    def _add(self, change: dict[str, Any]) -> None:
        if getattr(self._local, "depth", 0):
            self._local.changes.append(change)
        else:
            self.flush([change])

    def _relative(self, path: str) -> str | None:
        prefix = self.storage.root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else None

    def _write(self, changes: list[dict[str, Any]]) -> None:
        data = json.dumps({"v": FORMAT, "changes": changes}, allow_nan=True).encode()
        window_ns = int(settings.log_window() * 1e9)
        if os.getpid() != self._pid:  # a fork()ed child: names of its own, never its parent's
            self._pid, self.writer, self._seq = os.getpid(), uuid.uuid4().hex[:12], 0
        for _ in range(3):
            now = max(time.time_ns(), self._last_ns + 1)
            self._last_ns = now
            self._seq += 1
            self.storage.write_unlogged(self.storage.paths.log_entry(now, self.writer, self._seq), data)
            # an entry that took long to land may sort before what a reader has already listed
            # past: written again under a newer name (applying an entry twice changes nothing)
            if time.time_ns() - now <= window_ns // 2:
                return

    def start_log(self) -> None:
        """The root has a log origin from now on (`runlake catalog upgrade`)."""
        self._origin_checked = False
        self._ensure_origin()

    def _ensure_origin(self) -> None:
        """Before this process's first logged change: the root's log origin exists. A root
        without runs gets one that says the log holds everything; an older root's says it
        does not (readers list it until a checkpoint exists)."""
        if self._origin_checked:
            return
        self._origin_checked = True
        path = self.storage.paths.log_origin
        try:
            if self.storage.exists(path):
                return
            # a root with files already (from a release before the log): readers list it whole
            # once before they follow the log (and a checkpoint spares new readers even that)
            complete = not self.storage.listdir(self.storage.paths.runs_dir) and not self.storage.listdir(
                self.storage.paths.packs_dir
            )
            doc = {"v": FORMAT, "at_ns": time.time_ns(), "complete": complete}
            self.storage.create_unlogged(path, json.dumps(doc).encode())
        except OSError:
            self._origin_checked = False  # storage is down: the next change tries again
