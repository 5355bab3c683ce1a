"""Source runs land in a root as ordinary runs: history parts, segment and state manifests, and
run.json last (the switch: a run appears whole or not at all). Importing the same source again
adds only what is new: same run ids, a grown run gets its new steps as one more part.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import RunlakeError
from ..read.inherit import inherited_summary
from ..store.liveness import writer_identity
from ..store.manifests import (
    RunIdentity,
    SegmentDoc,
    StateDoc,
    WriterClaim,
    claim_writer,
    read_identity,
    read_segment,
    read_state,
    segment_numbers,
    write,
)
from ..store.names import check_name
from ..store.parquet import CONSOLE_SCHEMA, SYSTEM_SCHEMA, encode, encode_any
from ..store.storage import Storage
from ..write.config import jsonable
from ..write.nodes import new_run
from ..write.packing import last_by_key, points_to_table
from .model import Points, SourceRun, SourceSegment

PART_POINTS = 2_000_000  # points per part file at most (a segment's steps are split in ranges)


@dataclass
class Landed:
    run_id: str
    status: str  # imported | grown | unchanged
    points: int
    note: str = ""


def _existing(storage: Storage, run_id: str) -> tuple[str, RunIdentity] | None:
    claim = storage.read_json(storage.paths.id_claim(run_id)) or {}
    project = claim.get("project")
    if not isinstance(project, str) or not storage.exists(storage.paths.meta(project, run_id, "run.json")):
        return None
    return project, read_identity(storage, project, run_id)


Existing = Callable[[str, int], tuple[np.ndarray, np.ndarray]]  # (run, segment) -> its (keys, steps)


def land(
    storage: Storage,
    run: SourceRun,
    parents: dict[str, tuple[str, str, list[tuple[int, float]]]],
    existing: Existing,
) -> Landed:
    """Write `run` (or what it has beyond what the root holds). `parents` maps a source id to
    (project, run id, [(segment, created_at)]) of runs in the root, for forks; `existing`
    reads the (key, step) points a segment of the root already has."""
    run_id = run.run_id
    check_name(run.project, "project name")  # never a path: `../..` would name a directory outside the root
    check_name(run_id, "run id")
    found = _existing(storage, run_id)
    if found is not None:
        project, identity = found
        if (identity.source, identity.source_id) != (run.source, run.source_id):
            raise RunlakeError(
                f"run id {run_id!r} is taken in root {storage.url} by a run that was not imported from "
                f"{run.source} run {run.source_id!r}: import into another root"
            )
        return _grow(storage, project, run, existing)
    return _create(storage, run, parents)


def _create(
    storage: Storage, run: SourceRun, parents: dict[str, tuple[str, str, list[tuple[int, float]]]]
) -> Landed:
    run_id, project = run.run_id, run.project
    now = time.time()
    note = ""
    with new_run(storage, project, run_id, WriterClaim(seq=0, what="import", at=now, **writer_identity())):
        docs: list[SegmentDoc] = []
        for index, seg in enumerate(run.segments):
            doc = SegmentDoc(
                run_id=run_id, segment=index, project=project, created_at=seg.started_at or run.created_at
            )
            if seg.kind == "rewind" and index > 0:
                doc.kind, doc.parent_project, doc.parent_run_id = "rewind", project, run_id
                doc.parent_segment, doc.cutoff = index - 1, seg.cutoff
            elif seg.kind == "fork" and seg.parent_source_id is not None:
                parent = parents.get(seg.parent_source_id)
                if parent is None:
                    note = f"its parent {seg.parent_source_id!r} is in neither this import nor the root: imported without the parent's history"
                else:
                    p_project, p_run, p_segments = parent
                    doc.kind, doc.parent_project, doc.parent_run_id = "fork", p_project, p_run
                    doc.parent_segment = _segment_at(p_segments, doc.created_at)
                    doc.cutoff = seg.cutoff
            docs.append(doc)
        for doc, seg in zip(docs, run.segments, strict=True):
            _write_points(storage, project, run_id, doc.segment, seg.points, doc.created_at)
            _write_streams(storage, project, run_id, doc.segment, seg, run.created_at)
        for doc in docs:
            write(storage, storage.paths.meta(project, run_id, f"segment-{doc.segment}.json"), doc)
        write(storage, storage.paths.meta(project, run_id, "state.json"), _state(storage, run, docs, 0))
        identity = RunIdentity(
            run_id=run_id,
            project=project,
            name=run.name or run_id,
            notes=run.notes,
            tags=list(run.tags),
            created_at=run.created_at or now,
            group=run.group,
            job_type=run.job_type,
            entity=run.entity,
            source=run.source,
            source_id=run.source_id,
            metadata={**run.metadata, **({"import_note": note} if note else {})},
        )
        write(storage, storage.paths.meta(project, run_id, "run.json"), identity)  # the switch
    return Landed(run_id, "imported", run.points, note)


def _segment_at(segments: list[tuple[int, float]], when: float) -> int:
    """The parent's segment that was current when a fork started (its latest before then)."""
    chosen = segments[0][0] if segments else 0
    for number, created in sorted(segments):
        if created <= when + 1e-6:
            chosen = number
    return chosen


def _grow(storage: Storage, project: str, run: SourceRun, existing: Existing) -> Landed:
    """A run imported before: add the segments and the points it did not have yet (a source
    may add points at earlier steps too: MLflow merges metrics logged at different steps)."""
    run_id = run.run_id
    state = read_state(storage, project, run_id)
    have = segment_numbers(storage, project, run_id)
    current = int(state.segment)
    last = state.watermark
    new_points = 0
    wrote = False
    seq = None
    docs = [read_segment(storage, project, run_id, k) for k in sorted(have)]
    for index, seg in enumerate(run.segments):
        if index < current or (index == current and last is not None and seg.points.count == 0):
            continue
        if index == current:
            fresh = _new(seg.points, *existing(run_id, index))
            if not fresh.count:
                continue
            seq = seq if seq is not None else claim_writer(storage, project, run_id, state, "import")
            _write_points(storage, project, run_id, index, fresh, docs[index].created_at)
            new_points += fresh.count
            wrote = True
        elif index >= len(docs):
            seq = seq if seq is not None else claim_writer(storage, project, run_id, state, "import")
            doc = SegmentDoc(
                run_id=run_id,
                segment=index,
                project=project,
                created_at=seg.started_at or time.time(),
                kind="rewind",
                parent_project=project,
                parent_run_id=run_id,
                parent_segment=index - 1,
                cutoff=seg.cutoff,
            )
            _write_points(storage, project, run_id, index, seg.points, doc.created_at)
            _write_streams(storage, project, run_id, index, seg, run.created_at)
            write(storage, storage.paths.meta(project, run_id, f"segment-{index}.json"), doc)
            docs.append(doc)
            new_points += seg.points.count
            wrote = True
    if not wrote and state.state == run.state:
        return Landed(run_id, "unchanged", 0)
    write(
        storage,
        storage.paths.meta(project, run_id, "state.json"),
        _state(storage, run, docs, seq or state.writer_seq),
    )
    return Landed(run_id, "grown" if wrote else "updated", new_points)


def _new(points: Points, have_keys: np.ndarray, have_steps: np.ndarray) -> Points:
    """The points (and step times) of `points` the root does not hold yet."""
    have = set(zip(have_keys.tolist(), have_steps.tolist(), strict=True))
    steps, keys, values, texts = points.columns()
    keep = np.fromiter(
        ((k, s) not in have for k, s in zip(keys.tolist(), steps.tolist(), strict=True)), bool, len(steps)
    )
    out = Points()
    out.add(
        steps[keep],
        list(keys[keep]),
        values[keep],
        None if texts is None else [t for t, k in zip(texts, keep, strict=True) if k],
    )
    stamped = {s for k, s in have if k == "_timestamp"}
    stamp_steps, stamp_values = points.stamps()
    later = np.fromiter((s not in stamped for s in stamp_steps.tolist()), bool, len(stamp_steps))
    out.stamp(stamp_steps[later], stamp_values[later])
    return out


def _write_points(
    storage: Storage, project: str, run_id: str, segment: int, points: Points, origin: float
) -> None:
    """A segment's points (with `_timestamp` and `_runtime` per step that has a time) as parts
    of at most PART_POINTS points, split by step range."""
    steps, keys, values, texts = points.columns()
    stamp_steps, stamp_values = points.stamps()
    if len(stamp_steps):
        order = np.lexsort((stamp_values, stamp_steps))  # a step's earliest wall time
        stamp_steps, stamp_values = stamp_steps[order], stamp_values[order]
        first = np.unique(stamp_steps, return_index=True)[1]
        stamp_steps, stamp_values = stamp_steps[first], stamp_values[first]
        n = len(stamp_steps)
        steps = np.concatenate([steps, stamp_steps, stamp_steps])
        keys = np.concatenate(
            [keys, np.full(n, "_timestamp", dtype=object), np.full(n, "_runtime", dtype=object)]
        )
        values = np.concatenate([values, stamp_values, stamp_values - (origin or stamp_values.min())])
        if texts is not None:
            texts = texts + [None] * (2 * n)
    if not len(steps):
        return
    unique_steps = np.unique(steps)
    per_step = max(1, len(steps) // len(unique_steps))
    chunk = max(1, PART_POINTS // per_step)
    for start in range(0, len(unique_steps), chunk):
        lo, hi = int(unique_steps[start]), int(unique_steps[min(start + chunk, len(unique_steps)) - 1])
        keep = (steps >= lo) & (steps <= hi)
        part_texts = None if texts is None else [t for t, k in zip(texts, keep, strict=True) if k]
        table = points_to_table(steps[keep], keys[keep], values[keep], part_texts)
        storage.write_with_retry(storage.paths.part(project, run_id, segment, lo, hi), encode(table))


def _write_streams(
    storage: Storage, project: str, run_id: str, segment: int, seg: SourceSegment, origin: float
) -> None:
    """The source's system metrics and console lines of a new segment, as one file each."""
    system = sorted(seg.system)
    start = origin or (system[0][0] if system else 0.0)
    columns: dict[str, tuple[list[Any], pa.Schema, Callable[[Any], dict[str, Any]]]] = {
        "system": (
            system,
            SYSTEM_SCHEMA,
            lambda r: {
                "time": r[0],
                "runtime": r[0] - start,
                "step": r[1],
                "key": r[2],
                "value": r[3],
                "label": "",
            },
        ),
        "console": (  # in the order the source wrote them
            list(enumerate(seg.console)),
            CONSOLE_SCHEMA,
            lambda r: {
                "line": r[0],
                "time": r[1][0],
                "step": r[1][1],
                "stream": r[1][2],
                "content": r[1][3],
                "label": "",
            },
        ),
    }
    for stream, (rows, schema, row) in columns.items():
        if not rows:
            continue
        table = pa.Table.from_pylist([row(r) for r in rows], schema=schema)
        first = table.column("time")[0].as_py()
        path = storage.paths.stream_part(project, run_id, segment, stream, "", int(first * 1e9))
        storage.write_with_retry(path, encode_any(table))


def _state(storage: Storage, run: SourceRun, docs: list[SegmentDoc], seq: int) -> StateDoc:
    """The final state: finished (or failed), its watermark, config, and the summary (the
    source's own, else the last value of every key of the effective history)."""
    segment = len(docs) - 1
    own = run.segments[segment].points if segment < len(run.segments) else Points()
    auto: dict[str, Any] = {}
    json_keys = set().union(*(s.json_keys for s in run.segments)) if run.segments else set()
    doc = docs[segment]
    if doc.parent_run_id is not None and doc.cutoff is not None and doc.parent_segment is not None:
        auto.update(
            inherited_summary(
                storage,
                doc.parent_project or run.project,
                doc.parent_run_id,
                int(doc.parent_segment),
                int(doc.cutoff),
            )
        )
    steps = own.columns()[0]
    watermark: int | None = (
        int(steps.max()) if len(steps) else (int(doc.cutoff) if doc.cutoff is not None else None)
    )
    auto.update(last_by_key(*own.columns()))
    stamp_steps, _ = own.stamps()
    if len(stamp_steps):
        watermark = max(watermark if watermark is not None else -1, int(stamp_steps.max()))
    summary = dict(run.summary) if run.summary is not None else _decoded(auto, json_keys)
    finished = run.state != "running"
    return StateDoc(
        run_id=run.run_id,
        segment=segment,
        state=run.state,
        heartbeat=run.finished_at or run.created_at or time.time(),
        writer_seq=seq,
        watermark=watermark,
        runtime=max(0.0, (run.finished_at or run.created_at) - run.created_at) if run.created_at else 0.0,
        finished_at=run.finished_at if finished else None,
        exit_code=run.exit_code if finished else None,
        config=jsonable(run.config),
        summary=jsonable(summary),
        summary_auto=jsonable({k: v for k, v in auto.items() if not k.startswith("_")}),
        json_keys=sorted(json_keys),
        name=run.name,
        tags=list(run.tags),
        notes=run.notes,
        group=run.group,
        job_type=run.job_type,
    )


def _decoded(auto: dict[str, Any], json_keys: set[str]) -> dict[str, Any]:
    out = {}
    for key, value in auto.items():
        if key.startswith("_") and key in ("_timestamp", "_runtime"):
            continue
        if key in json_keys and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        out[key] = value
    return out


def segments_of(storage: Storage, project: str, run_id: str) -> list[tuple[int, float]]:
    """(segment, created_at) of a run in the root (a fork's parent)."""
    return [
        (k, read_segment(storage, project, run_id, k).created_at)
        for k in sorted(segment_numbers(storage, project, run_id))
    ]
