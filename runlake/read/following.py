"""How a catalog learns what changed in its root (the part of `Catalog` that is about the
commit log): following the log (`tail.py`), starting from a checkpoint (`checkpoint.py`) or a
full listing, comparing a full listing with the log (doctor, the periodic relist), and writing
checkpoints as entries accumulate. A mixin of `Catalog`: it works on the catalog's state."""

from __future__ import annotations

import time
import warnings
from typing import Any

import pyarrow as pa

from ..store import settings
from ..store.layout import is_pack_manifest, split_meta_path
from ..store.storage import written_at
from . import checkpoint, persist
from .tail import TailState, kept


class Following:
    """The commit-log side of `Catalog` (catalog.py): see the module doc."""

    # what Catalog provides (catalog.py imports this module)
    storage: Any
    con: Any
    state: Any
    tail: Any
    fold: Any
    _lock: Any
    _dir_cache: Any
    _relist_now: bool
    _start_relist: bool
    _repaired: list[str]
    unlogged: set[str]
    _warned: set[str]
    _may_checkpoint: bool
    _dirty_since_persist: bool

    def refresh(self) -> None:  # Catalog's
        raise NotImplementedError

    def _derive(self) -> None:  # Catalog's
        raise NotImplementedError

    def restore(self, tables: dict[str, pa.Table], tail_state: TailState) -> None:
        """Replace the tables and what the reader knows with a checkpoint's (`checkpoint.py`)."""
        root = self.storage.engine_path(self.storage.root).rstrip("/") + "/"
        local_root = self.storage.root.rstrip("/") + "/"
        with self._lock:
            cur = self.con.cursor()
            try:
                cur.begin()
                for name in persist.TABLES:
                    cur.execute(f"DELETE FROM {name}")
                    cur.register("checkpoint_rows", tables[name])
                    if name in checkpoint.RELATIVE:
                        cur.execute(
                            f"INSERT INTO {name} SELECT * REPLACE (CASE WHEN contains(path, '://') OR "
                            "starts_with(path, '/') THEN path ELSE ? || path END AS path) FROM checkpoint_rows",
                            [root],
                        )
                    else:
                        cur.execute(f"INSERT INTO {name} SELECT * FROM checkpoint_rows")
                    cur.unregister("checkpoint_rows")
                cur.commit()
            except BaseException:
                cur.rollback()
                raise
            finally:
                cur.close()
            files = tables["files"].to_pydict()
            paths = [local_root + p for p in files["path"]]
            generation = self.state.generation  # keeps moving: caches keyed by it must not match
            self.state = type(self.state)()
            self.state.generation = generation + 1
            self.state.seen = {p: t for p, t in zip(paths, files["seen"], strict=True) if t is not None}
            self.tail.listing = {p: t for p, t in zip(paths, files["token"], strict=True) if t is not None}
            self.tail.state = tail_state
            self.tail.state.applied = 0
            self.tail.docs.clear()
            self.tail.added.clear()
            self.tail.dropped.clear()
            self.tail.touched.clear()
            self._derive()
            self._dirty_since_persist = True

    def relist_root(self) -> list[str]:
        """Refresh from a full listing of the root now, compared with the commit log; returns
        the files the log lacked or had wrong (now read from the root): what `doctor` reports."""
        with self._lock:
            self._relist_now = True
            self._repaired = []
            try:
                self.refresh()
            finally:
                self._relist_now = False
            return sorted(self.unlogged)

    def _log_listed_at(self) -> float:
        """A change stamped before this is in the tables: the log position (the window before
        the listing: an entry may land that late)."""
        return self.tail.state.position_ns / 1e9

    def _after_refresh(self, generation: int) -> None:
        problems = self.fold.problems + self.tail.problems
        self.tail.problems = []
        for problem in dict.fromkeys(problems):
            if problem not in self._warned:
                self._warned.add(problem)
                warnings.warn(problem, RuntimeWarning, stacklevel=5)
        if self.state.generation != generation:
            self._dirty_since_persist = True
        every = settings.checkpoint_every()
        if (
            every
            and self.tail.state.mode == "log"
            and self.tail.state.applied >= every
            and self._may_checkpoint
        ):
            try:
                checkpoint.write(self)
                self.tail.state.applied = 0
            except OSError as exc:  # a reader without write access: the log still works
                self._may_checkpoint = False
                warnings.warn(
                    f"runlake could not write a checkpoint of the commit log in {self.storage.url} "
                    f"({exc}); new readers of this root read more of the log until one is written",
                    RuntimeWarning,
                    stacklevel=5,
                )

    def _listing(self) -> tuple[dict[str, str], dict[str, str], dict[str, tuple[int, dict[str, str]]]]:
        """(manifests, pack manifests, directory cache) as of now, with their change tokens; sets
        `_delta`, the manifests that may have changed since the last fold (None: any)."""
        tail = self.tail
        self._delta: set[str] | None = None
        if tail.state.mode == "" and not self.state.seen:  # a new reader: the newest checkpoint
            if checkpoint.load(self):
                self.fold.forced.clear()
        elif (
            tail.state.mode == "log"
            and time.time_ns() - tail.state.position_ns > settings.log_grace() * 0.5e9
        ):
            # away for long (a copy of the catalog from last week): compaction may have removed
            # the entries after its position; a newer checkpoint replaces what it knows
            if checkpoint.load(self, newer_than=tail.state.position_ns):
                self.fold.forced.clear()
        if tail.state.mode == "log":  # what the log says first: a full listing then finds only its gaps
            running = self.fold.running_rows(self.con)
            tail.follow([self.storage.paths.meta(p, r, "beat.json") for r, p, *_ in running])
        if (
            tail.state.mode == "log"
            and not tail.relist_due()
            and not self._relist_now
            and not self._start_relist
        ):
            if self.unlogged:  # an entry describes them now (doctor --fix, their writer again)
                self.unlogged = {
                    p for p in self.unlogged if not tail.listing.get(p, "log:").startswith("log:")
                }
            # only what the log changed is compared (the listing itself is not copied)
            self._delta = tail.listing.take()
            return tail.listing, {p: tail.listing[p] for p in tail.listing.packs}, self._dir_cache
        # the whole root: no log yet, a new reader without a checkpoint, or the periodic relist
        self.fold.listing_all = True  # segments are listed for real in this refresh
        listed_ns = time.time_ns()
        following = tail.state.mode == "log" or tail.has_origin()
        listing, dir_cache = self.storage.list_manifests(self._dir_cache)
        packs = self.storage.list_pack_manifests()
        self.fold.stream_listing = self.storage.list_streams()
        if tail.state.mode == "log":
            self._repaired = self._reconcile(
                {**listing, **packs}, quiet=self._relist_now or self._start_relist
            )
            self.unlogged.update(self._repaired)  # until an entry describes them (doctor reports them)
            tail.last_full = time.monotonic()
        else:
            tail.took_full_listing({**listing, **packs}, listed_ns, following)
        self._start_relist = False
        tail.listing.take()  # this refresh compares every manifest: nothing is left pending
        if tail.state.mode == "log":
            return (
                {p: t for p, t in tail.listing.items() if not is_pack_manifest(p)},
                {p: t for p, t in tail.listing.items() if is_pack_manifest(p)},
                dir_cache,
            )
        return listing, packs, dir_cache

    def _reconcile(self, full: dict[str, str], quiet: bool) -> list[str]:
        """Compare a full listing with what the log said: a manifest the log lacks (a writer
        killed between the two) or one changed after its entry is taken from the listing, one
        removed without an entry is dropped; their runs' parts are listed again. Returns what
        was repaired (`doctor` reports it)."""
        tail = self.tail
        repaired = []
        for path, token in full.items():
            if not kept(self.storage, path):
                continue
            known = tail.listing.get(path)
            if known == token:
                continue
            if known is not None and not path.endswith("/beat.json"):
                stored, logged = written_at(token), written_at(known)
                # the entry is written after its file; object stores keep whole seconds
                slack = 0.0 if self.storage.is_local else 1.0
                if known.startswith("log:") and (
                    stored is None or logged is None or stored <= logged + slack
                ):
                    continue  # the log's entry came after this file: it describes it
            if not path.endswith("/beat.json"):
                repaired.append(path)
            tail.listing[path] = token
            tail.docs.pop(path, None)
        for path in [p for p in tail.listing if p not in full]:
            repaired.append(path)
            tail.listing.pop(path)
        for path in repaired:
            if "/runs/" in path and "/meta/" in path:
                project, run_id, _ = split_meta_path(path)
                for r, seg in [n for n in self.state.links if n[0] == run_id]:
                    self.fold.forced.add((project, r, seg))
                    tail.touched.add((project, r, seg))
        if repaired and not quiet:  # doctor reports them itself
            self.fold.problems.append(
                f"{len(repaired)} change(s) in {self.storage.url} were missing from its commit log "
                f"(a writer killed between a file and its entry?), e.g. {repaired[0]}: read from the "
                "root instead; `runlake doctor --fix` adds them to the log"
            )
        return repaired
