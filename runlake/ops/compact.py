"""Compaction: move the small parts of finished segments into large shared files (packs).

A pack (`packs/project=<p>/pack-<id>.parquet`) holds the rows of many finished nodes, with
run_id and segment as columns, sorted by (key, run_id, segment, step) in row groups whose
statistics let a scan skip every other key (and most other runs). A reader that needs 1,000
ancestors then opens one file instead of 1,000.

Safe while writers and readers run: only nodes nobody writes are touched. The pack file is
written whole, then its manifest (`pack-<id>.json`, the members and their step ranges): writing
the manifest is the index switch, from which a reader ignores the members' own parts. Then
each member gets a pointer (`meta/packed-<k>.json`, for readers that look at one run without a
listing). Its old parts stay where they are for a grace period (`grace`, 10 min by default):
readers that listed them before the switch, a `connect()` snapshot among them, keep reading
them; the first compaction after the grace removes them. A crash at any point leaves a root
that reads the same, and the next `compact()` finishes the job (idempotent, resumable). One compaction runs
at a time per root (`packs/compact.lock`; a lock left by a dead process is taken over).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import RunlakeError
from ..read import checkpoint
from ..read.catalog import Catalog
from ..store import manifests, settings
from ..store.layout import PartFile, pack_relative, visible_parts
from ..store.liveness import HOST, holder_alive, writer_identity
from ..store.manifests import PackedPointer, PackManifest, PackMember
from ..store.parquet import encode_pack, read_node_rows, row_counts
from ..store.storage import Storage
from ..write.artifact_store import collect as collect_blobs
from .reclaim import reclaim_deleted

PACK_BYTES = 48 * 2**20  # source part bytes per pack (~10M points): big files, bounded memory
# ... and rows: bytes on disk say little about memory for compressible data (a 50M-point run of
# 11 MB once decoded whole, 6.6 GB); a pack is cut at whichever budget comes first
PACK_ROWS = 8_000_000
_LOCK_STALE_SECONDS = 600.0

_RESULT_SCHEMA = {
    "run_id": pl.String,
    "segment": pl.Int64,
    "parts_before": pl.Int64,
    "parts_after": pl.Int64,
    "bytes_before": pl.Int64,
    "bytes_after": pl.Int64,
    "pack": pl.String,
}


def compact(
    storage: Storage, catalog: Catalog, *, progress: bool | None = None, grace: float | None = None
) -> pl.DataFrame:
    """Pack the parts of every finished (or archived) segment into shared key-sorted files,
    after removing the files of runs deleted more than `grace` seconds ago that nothing reads
    any more (ops/reclaim.py).

    Returns one row per segment packed now: run_id, segment, parts_before, parts_after,
    bytes_before, bytes_after (its share of the pack) and pack (the file's name).
    `progress=None` shows a progress bar on a terminal. Parts packed are removed once their
    pack is `grace` seconds old (None: $RUNLAKE_COMPACT_GRACE, 600), by this compaction or a
    later one.
    """
    grace = settings.compact_grace() if grace is None else float(grace)
    if not grace >= 0:
        raise ValueError(f"grace must be a number of seconds >= 0, got {grace!r}")
    with _Lock(storage):
        reclaim_deleted(storage, catalog, grace)  # deleted runs nothing reads: not packed, gone
        collect_blobs(storage, grace)  # artifact files no version uses any more
    catalog.refresh()
    cur = catalog.cursor(with_parts=False)
    try:
        nodes = cur.execute(
            """
            SELECT s.project, s.run_id, s.segment
            FROM segments AS s JOIN run_meta AS r USING (run_id)
            WHERE s.segment < r.segment OR r.state IN ('finished', 'failed', 'crashed')
            ORDER BY s.project, r.created_at, s.run_id, s.segment
            """
        ).fetchall()
        packed: dict[tuple[str, int], list[tuple[str, int, int]]] = {}
        packed_files: set[str] = set()
        for run_id, segment, path, lo, hi in cur.execute(
            "SELECT run_id, segment, path, step_lo, step_hi FROM parts WHERE pack"
        ).fetchall():
            packed.setdefault((run_id, segment), []).append((path, lo, hi))
            packed_files.add(path)
    finally:
        cur.close()
    show = sys.stderr.isatty() if progress is None else progress
    rows: list[dict[str, Any]] = []
    from rich.progress import Progress

    with _Lock(storage) as lock, Progress(disable=not show, transient=True) as bar:
        task = bar.add_task("compacting", total=len(nodes))
        _remove_orphan_packs(storage, {storage.local_path(p) for p in packed_files})
        batch: list[tuple[str, str, int, list[PartFile]]] = []
        batch_bytes = batch_rows = 0
        pack_times: dict[str, float | None] = {}
        for project, run_id, segment in nodes:
            listed = storage.list_parts(
                storage.paths.segment_dir(project, run_id, segment), include_covered=True
            )
            ranges = packed.get((run_id, segment), [])
            leftover = [p for p in listed if any(lo <= p.step_lo and p.step_hi <= hi for _, lo, hi in ranges)]
            if leftover:  # packed before: point to the packs; remove the parts past their grace
                old = [p for p in leftover if _past_grace(storage, ranges, p, grace, pack_times)]
                _point_and_remove(storage, project, run_id, segment, ranges, old)
            todo = visible_parts([p for p in listed if p not in leftover])
            if todo and batch and batch[0][0] != project:  # a pack holds one project
                rows += _write_pack(storage, batch, grace)
                batch, batch_bytes, batch_rows = [], 0, 0
            # A node bigger than the budget is split into step ranges across packs, so memory
            # is bounded per pack, not per run (one 50M-point run once took 6.6 GB).
            chunk: list[PartFile] = []
            for part, count in zip(todo, row_counts(storage.fs, [p.path for p in todo]), strict=True):
                if chunk and (batch_bytes + part.size > PACK_BYTES or batch_rows + count > PACK_ROWS):
                    batch.append((project, run_id, segment, chunk))
                    rows += _write_pack(storage, batch, grace)
                    batch, batch_bytes, batch_rows, chunk = [], 0, 0, []
                    lock.touch()
                chunk.append(part)
                batch_bytes += part.size
                batch_rows += count
            if chunk:
                batch.append((project, run_id, segment, chunk))
            if batch_bytes >= PACK_BYTES or batch_rows >= PACK_ROWS:
                rows += _write_pack(storage, batch, grace)
                batch, batch_bytes, batch_rows = [], 0, 0
                lock.touch()
            bar.advance(task)
        if batch:
            rows += _write_pack(storage, batch, grace)
    catalog.refresh()
    # a checkpoint of the commit log at this position: new readers start from it; the log
    # entries it makes old go once they are past the grace
    checkpoint.write(catalog)
    checkpoint.prune(storage, settings.log_grace())
    return _per_segment(rows)


def _per_segment(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """One row per segment packed now (a big one may have gone into several packs)."""
    frame = pl.DataFrame(rows, schema=_RESULT_SCHEMA)
    if frame.is_empty():
        return frame
    return (
        frame.group_by("run_id", "segment", maintain_order=True)
        .agg(
            pl.col("parts_before").sum(),
            pl.col("parts_after").sum(),
            pl.col("bytes_before").sum(),
            pl.col("bytes_after").sum(),
            pl.col("pack").str.join(", "),
        )
        .cast(_RESULT_SCHEMA)  # type: ignore[arg-type]
    )


def _write_pack(
    storage: Storage, batch: list[tuple[str, str, int, list[PartFile]]], grace: float
) -> list[dict[str, Any]]:
    """One pack from a batch of nodes of one project: file, manifest (the switch), pointers,
    then the old parts removed (only with no grace: else a later compaction removes them); all
    of it one commit-log entry."""
    with storage.journal.batch():
        project = batch[0][0]
        ordered = sorted(batch, key=lambda b: (b[1], b[2]))  # (run_id, segment): the order inside a key
        table = read_node_rows(storage.fs, [(r, s, [p.path for p in parts]) for _, r, s, parts in ordered])
        table = _sort_by_key(table)
        data = encode_pack(table)
        pack_id = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
        base = storage.paths.pack_base(project, pack_id)
        storage.write_atomic(f"{base}.parquet", data)
        counts = _rows_per_node(table)
        members = [
            PackMember(
                run_id=run_id,
                segment=segment,
                step_lo=min(p.step_lo for p in parts),
                step_hi=max(p.step_hi for p in parts),
                rows=counts.get((run_id, segment), 0),
                bytes=sum(p.size for p in parts),
                parts=len(parts),
            )
            for _, run_id, segment, parts in ordered
        ]
        manifest = PackManifest(
            pack=f"pack-{pack_id}.parquet",
            project=project,
            created_at=time.time(),
            rows=table.num_rows,
            bytes=len(data),
            members=members,
        )
        manifests.write(storage, f"{base}.json", manifest)  # the switch
        relative = pack_relative(f"{base}.parquet")
        out = []
        for (_, run_id, segment, parts), member in zip(ordered, members, strict=True):
            _point_and_remove(
                storage,
                project,
                run_id,
                segment,
                [(relative, member.step_lo, member.step_hi)],
                [] if grace > 0 else parts,
            )
            out.append(
                {
                    "run_id": run_id,
                    "segment": segment,
                    "parts_before": len(parts),
                    "parts_after": 1,
                    "bytes_before": member.bytes,
                    "bytes_after": round(len(data) * member.rows / max(table.num_rows, 1)),
                    "pack": manifest.pack,
                }
            )
        return out


def _point_and_remove(
    storage: Storage,
    project: str,
    run_id: str,
    segment: int,
    packs: list[tuple[str, int, int]],
    parts: list[PartFile],
) -> None:
    """Record where a node's rows went (before they leave its directory), then remove `parts`:
    one commit-log entry for the pointer and the removals."""
    with storage.journal.batch():
        doc = manifests.read_packed(storage, project, run_id, segment) or PackedPointer(segment=segment)
        known = {p["pack"] for p in doc.packs}
        missing = [
            (pack_relative(pack), lo, hi) for pack, lo, hi in packs if pack_relative(pack) not in known
        ]
        for relative, lo, hi in missing:
            doc.packs.append({"pack": relative, "step_lo": lo, "step_hi": hi})
        if missing:
            doc.step_hi = max(int(p["step_hi"]) for p in doc.packs)
            manifests.write(storage, storage.paths.meta(project, run_id, f"packed-{segment}.json"), doc)
        for part in parts:
            storage.remove(part.path)


def _past_grace(
    storage: Storage,
    packs: list[tuple[str, int, int]],
    part: PartFile,
    grace: float,
    times: dict[str, float | None],
) -> bool:
    """Has the pack that holds `part` been in the index for `grace` seconds (storage's clock)?"""
    if grace <= 0:
        return True
    now = time.time()
    for pack, lo, hi in packs:
        if lo <= part.step_lo and part.step_hi <= hi:
            if pack not in times:
                manifest = pack[: -len(".parquet")] + ".json"
                times[pack] = storage.modified(storage.local_path(manifest))
            written = times[pack]
            if written is not None and now - written >= grace:
                return True
    return False


def _sort_by_key(table: pa.Table) -> pa.Table:
    """Rows already in (run_id, segment, step) order per key -> sorted by (key, run_id, segment, step)."""
    if table.num_rows == 0:
        return table
    encoded = pc.dictionary_encode(table.column("key")).combine_chunks()
    names = encoded.dictionary.to_pylist()
    rank = np.empty(len(names), dtype=np.int64)
    rank[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    order = np.argsort(rank[encoded.indices.to_numpy()], kind="stable")
    return table.take(pa.array(order))


def _rows_per_node(table: pa.Table) -> dict[tuple[str, int], int]:
    if table.num_rows == 0:
        return {}
    nodes = pl.from_arrow(table.select(["run_id", "segment"]))
    assert isinstance(nodes, pl.DataFrame)
    counts = nodes.group_by("run_id", "segment").len()
    return {(r, s): n for r, s, n in counts.iter_rows()}


def _remove_orphan_packs(storage: Storage, indexed: set[str]) -> None:
    """Pack files without a manifest: left by a compaction that died before its switch. A pack
    the index knows (through its members' pointers) is never one, manifest or not."""
    for project in storage.listdir(storage.paths.packs_dir):
        directory = f"{storage.paths.packs_dir}/{project}"
        names = set(storage.listdir(directory))
        for name in names:
            if name.startswith("pack-") and name.endswith(".parquet"):
                if f"{name[: -len('.parquet')]}.json" not in names and f"{directory}/{name}" not in indexed:
                    storage.remove(f"{directory}/{name}")


class _Lock:
    """One compaction at a time per root; a lock whose holder died (or went silent) is taken over."""

    held: set[str] = set()  # tokens this process holds now (a class attribute: per process)

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.path = storage.paths.compact_lock()
        self.token = uuid.uuid4().hex

    def _doc(self) -> bytes:
        return json.dumps({**writer_identity(), "at": time.time(), "token": self.token}).encode()

    def touch(self) -> None:
        """Still here: not stale."""
        self.storage.write_atomic(self.path, self._doc())

    def __enter__(self) -> _Lock:
        for _ in range(3):
            if self.storage.create_exclusive(self.path, self._doc()):
                break
            other = self.storage.read_json(self.path)
            if other is not None and self._alive(other):
                raise RunlakeError(
                    f"another compaction of {self.storage.url!r} is running (pid {other.get('pid')} on "
                    f"{other.get('host')}, since {time.ctime(other.get('at') or 0)}); try again when it is done"
                )
            self.storage.remove(self.path)
        else:
            raise RunlakeError(f"could not take the compaction lock {self.path}")
        self.held.add(self.token)
        return self

    def __exit__(self, *exc: object) -> None:
        self.held.discard(self.token)
        self.storage.remove(self.path)

    def _alive(self, doc: dict[str, Any]) -> bool:
        if not holder_alive(doc, doc.get("at"), _LOCK_STALE_SECONDS):
            return False
        if doc.get("host") == HOST and doc.get("pid") == os.getpid():
            return doc.get("token") in self.held  # this process: held unless its compaction was interrupted
        return True
