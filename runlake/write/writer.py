"""A run's storage side: parts and state manifests go to the root, or wait in the spill
directory while storage is down, and are uploaded in order once it is back."""

from __future__ import annotations

import sys
import time
import warnings

from ..store import spill
from ..store.layout import hive_node, parse_part
from ..store.manifests import BeatDoc, StateDoc, WriterClaim, read
from ..store.parquet import encode
from ..store.storage import Storage
from .buffer import Packed


def notify(message: str, stacklevel: int = 3) -> None:
    """A RuntimeWarning; never raises, even where warnings are errors (the flusher thread)."""
    try:
        warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
    except Exception:
        print(f"runlake: warning: {message}", file=sys.stderr)


class Writer:
    """Writes one node's parts and its run's state; owns the spill state of that run."""

    def __init__(
        self,
        storage: Storage,
        project: str,
        run_id: str,
        segment: int,
        seq: int = 0,
        local_dir: str | None = None,
        label: str | None = None,
    ) -> None:
        self.storage = storage
        self.label = label  # a shared-mode process that is not the primary: writes beside it
        self.local_dir = local_dir  # init(dir=): the spill directory goes under it
        self.project = project
        self.run_id = run_id
        self.segment = segment
        self.seq = seq  # this writer's slot: writer-<seq>.json
        self._history_prefix = storage.paths.relative(storage.paths.run_history_dir(project, run_id))
        self._runs_prefix = f"runs/{project}/{run_id}"
        self._media_prefix = f"media/{project}/{run_id}"
        self._streams_prefix = storage.paths.relative(storage.paths.run_streams_dir(project, run_id))
        self.spilled = bool(spill.pending(storage, self._history_prefix, local_dir))
        # media files neither storage nor the spill disk could take (both full or down): kept
        # here and stored again by the next flush; log() never raises for storage trouble
        self._media_waiting: dict[str, bytes] = {}
        # parts the training thread spilled (backpressure) while the flusher uploads the
        # backlog: the flusher clears `spilled` only if none came in meanwhile
        self._spills = 0

    def taken_over(self) -> str | None:
        """Why this writer no longer owns its run (another process claimed the next writer
        slot: a resume or rewind that took it for dead), or None. Fencing: checked before
        every flush, so two writers never write the same segment. Storage that cannot be read
        (an outage) is no claim: the flush's writes then spill, and a later flush checks again."""
        try:
            claim = read(
                self.storage,
                self.storage.paths.meta(self.project, self.run_id, f"writer-{self.seq + 1}.json"),
                WriterClaim,
            )
        except OSError:
            return None
        if claim is None:
            return None
        return (
            f"run {self.run_id!r} was taken over by pid {claim.pid} on {claim.host} (a {claim.what} at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(claim.at))}); this process stopped "
            "writing it, and what it logged since its last flush is not written"
        )

    def catch_up(self) -> int | None:
        """Upload this run's spill backlog (a dead writer's, at a resume); returns the last step
        of this segment's parts that still wait there (they count as written: a resumed run
        must start after them, or those steps would be written twice)."""
        if not any(
            spill.pending(self.storage, prefix, self.local_dir)
            for prefix in (self._history_prefix, self._runs_prefix, self._media_prefix, self._streams_prefix)
        ):
            return None
        spill.upload(self.storage, self._media_prefix, attempts=4, local_dir=self.local_dir)
        spill.upload(self.storage, self._streams_prefix, attempts=4, local_dir=self.local_dir)
        _, waiting = spill.upload(self.storage, self._history_prefix, attempts=4, local_dir=self.local_dir)
        if not waiting:
            _, waiting = spill.upload(self.storage, self._runs_prefix, attempts=4, local_dir=self.local_dir)
        self.spilled = bool(waiting)
        his = [
            part.step_hi
            for target in waiting
            if (part := parse_part(target, 0)) is not None
            and hive_node(target) == (self.run_id, self.segment)
        ]
        return max(his, default=None)

    def encode(self, pieces: list[Packed]) -> list[tuple[int, int, bytes, dict[str, float | str]]]:
        """One part per batch (each sorted by (key, step)), oldest first."""
        return [(first, last_step, encode(table), last) for first, last_step, table, last in pieces]

    def store_part(self, first: int, last: int, data: bytes) -> None:
        # one name per part: a retried upload rewrites it, never duplicates it
        path = self.storage.paths.part(self.project, self.run_id, self.segment, first, last, self.label)
        self.store(path, data)

    def spill_part(self, first: int, last: int, data: bytes) -> None:
        """Straight to the spill directory (backpressure: storage is too slow to keep up);
        uploaded before anything newer, like any spilled part."""
        target = self.storage.paths.part(self.project, self.run_id, self.segment, first, last)
        spill.put(self.storage, target, data, self.local_dir)
        self._spills += 1  # after the put, before the flag: see store()
        first_spill = not self.spilled
        self.spilled = True
        if first_spill:
            notify(
                f"run {self.run_id!r}: storage {self.storage.url} is not keeping up; parts wait in "
                f"{spill.spill_root(self.storage, self.local_dir)} and are uploaded when it does (memory stays bounded)",
                stacklevel=5,
            )

    def store_media(self, path: str, data: bytes) -> None:
        """An image or table file (named by its content, so a retry rewrites the same file),
        written now; with storage down it waits in the spill directory (or, that full too, in
        memory) and the next flush stores it: a storage fault is never the log call's error."""
        try:
            if not self.storage.exists(path):
                self.storage.write_with_retry(path, data)
            return
        except OSError as exc:
            failure = exc
        try:
            spill.put(self.storage, path, data, self.local_dir)
            self.spilled = True
        except OSError:
            self._media_waiting[path] = data
        notify(
            f"run {self.run_id!r}: media file {path} could not be stored ({failure}); it waits "
            "to be stored by a later flush"
        )

    def _store_waiting_media(self) -> None:
        for path, data in list(self._media_waiting.items()):
            try:
                self.storage.write_with_retry(path, data)
            except OSError:
                try:
                    spill.put(self.storage, path, data, self.local_dir)
                    self.spilled = True
                except OSError:
                    continue
            del self._media_waiting[path]

    def store_beat(self, beat: BeatDoc) -> None:
        """A heartbeat is only worth anything now: never spilled, never retried. While this
        run's data waits in the spill directory the next data flush carries the state anyway."""
        if self.spilled or self.label is not None:  # (a shared process's state is its heartbeat)
            return
        try:
            self.storage.write_atomic(
                self.storage.paths.meta(self.project, self.run_id, "beat.json"), beat.encode()
            )
        except OSError:
            pass  # storage is down: the next flush spills what matters

    def store_state(self, state: StateDoc) -> None:
        # a shared-mode process that is not the primary keeps its own state beside the run's
        name = "state.json" if self.label is None else f"shared-{self.segment}-{self.label}.json"
        self.store(self.storage.paths.meta(self.project, self.run_id, name), state.encode())

    def _moved_on(self) -> str | None:
        """A shared-mode process is fenced when the run moved to another segment (a rewind)."""
        try:
            state = read(
                self.storage, self.storage.paths.meta(self.project, self.run_id, "state.json"), StateDoc
            )
        except OSError:
            return None
        if state is None or int(state.segment) == self.segment:
            return None
        return (
            f"run {self.run_id!r} moved on to segment {state.segment} (a rewind); this process "
            f"({self.label!r}, shared mode) stopped writing it"
        )

    def store(self, target: str, data: bytes) -> None:
        """Upload one file (after any backlog of this run), or keep it in the spill directory."""
        if self._media_waiting:
            self._store_waiting_media()
        while self.spilled:
            spills = self._spills
            _, waiting = spill.upload(self.storage, self._media_prefix, local_dir=self.local_dir)
            if not waiting:
                _, waiting = spill.upload(self.storage, self._streams_prefix, local_dir=self.local_dir)
            if not waiting:
                _, waiting = spill.upload(self.storage, self._history_prefix, local_dir=self.local_dir)
            if not waiting:
                _, waiting = spill.upload(self.storage, self._runs_prefix, local_dir=self.local_dir)
            if waiting:
                spill.put(self.storage, target, data, self.local_dir)
                return
            if self._spills != spills:
                continue  # the training thread spilled a part during the upload: upload it first
            self.spilled = False
            if self._spills != spills:  # ... or just now: it sets the flag again, upload it
                self.spilled = True
                continue
            notify(f"run {self.run_id!r}: storage is back; spilled parts were uploaded")
        try:
            self.storage.write_with_retry(target, data)
        except Exception as exc:  # storage down: spill, keep logging
            try:
                spill.put(self.storage, target, data, self.local_dir)
            except OSError as spill_exc:
                raise OSError(
                    f"run {self.run_id!r}: storage {self.storage.url} failed ({exc}) and the spill directory "
                    f"{spill.spill_root(self.storage, self.local_dir)} cannot take the data either ({spill_exc}); the rows "
                    "stay in memory: free the disk or bring storage back, then flush() or finish() again"
                ) from spill_exc
            self.spilled = True
            notify(
                f"run {self.run_id!r}: storage {self.storage.url} failed after retries ({exc}); "
                f"logging goes on and parts wait in {spill.spill_root(self.storage, self.local_dir)} until it is back"
            )

    def report_unsynced(self) -> None:
        """At finish: say what still waits in the spill directory, and how to upload it."""
        if not self.spilled:
            return
        waiting = [
            item
            for prefix in (self._media_prefix, self._history_prefix, self._runs_prefix)
            for item in spill.pending(self.storage, prefix, self.local_dir)
        ]
        if not waiting:
            return
        parts = [p for _, t in waiting if "/history/" in t and (p := parse_part(t, 0)) is not None]
        span = (
            f" holding steps {min(p.step_lo for p in parts)}..{max(p.step_hi for p in parts)}"
            if parts
            else ""
        )
        notify(
            f"run {self.run_id!r} finished, but {len(parts)} part(s){span} and its state are not uploaded yet: "
            f"they are kept in {spill.spill_root(self.storage, self.local_dir)}; run `runlake sync"
            + (f" --dir {self.local_dir}" if self.local_dir else "")
            + "` when storage is back",
            stacklevel=5,
        )
