"""`runlake import tensorboard LOGDIR`: every run directory with event files, read with
TensorBoard's own event loader, every scalar (no sampling: the raw events, not the
accumulator's reservoirs), wall time as `_timestamp`, the directory's path as the run name.

A restart written with `purge_step` (a `SessionLog.START` at step N, as PyTorch's and
tensorboardX's `SummaryWriter(purge_step=N)` write it) is read as TensorBoard reads it: the
events from step N on before it are superseded. In runlake that is a rewind at N - 1: the
superseded steps stay readable in the archived segment.
"""

from __future__ import annotations

import hashlib
import math
import os
from typing import Any

from ..errors import RunlakeError
from .model import Skipped, SourceRun, SourceSegment


def _tb() -> tuple[Any, Any, Any, Any, Any]:
    try:
        from tensorboard import data_compat
        from tensorboard.backend.event_processing import event_file_loader, io_wrapper
        from tensorboard.compat.proto import event_pb2
        from tensorboard.util import tensor_util
    except ImportError:
        raise RunlakeError(
            "runlake import tensorboard reads event files with the tensorboard package: pip install 'runlake[import]'"
        ) from None
    return event_file_loader, io_wrapper, data_compat, tensor_util, event_pb2


def read(logdir: str, project: str | None, skipped: list[Skipped]) -> list[SourceRun]:
    loader_mod, io_wrapper, _, _, _ = _tb()
    if not os.path.isdir(logdir):
        raise RunlakeError(f"{logdir} is not a directory: expected a TensorBoard log directory (event files)")
    top = os.path.abspath(logdir)
    run_dirs = _run_dirs(top, io_wrapper)
    if not run_dirs:
        raise RunlakeError(
            f"{logdir} holds no TensorBoard event files (events.out.tfevents.*): expected a TensorBoard log directory"
        )
    runs = []
    for run_dir in run_dirs:
        relative = os.path.relpath(run_dir, top)
        name = os.path.basename(top) if relative == "." else relative
        files = sorted(
            os.path.join(run_dir, f)
            for f in os.listdir(run_dir)
            if io_wrapper.IsSummaryEventsFile(f) and not os.path.islink(os.path.join(run_dir, f))
        )
        run = _run(files, name, project or _project(top), skipped, loader_mod)
        if run is not None:
            runs.append(run)
    return runs


def _run_dirs(top: str, io_wrapper: Any) -> list[str]:
    """Directories under `top` holding event files; links are not followed (a `latest -> run_2`
    link would import run_2 twice, a link to `..` the whole tree again)."""
    found = []
    for dirpath, dirs, files in os.walk(top, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(dirpath, d)))
        if any(
            io_wrapper.IsSummaryEventsFile(f) and not os.path.islink(os.path.join(dirpath, f)) for f in files
        ):
            found.append(dirpath)
    return sorted(found)


def _records(path: str) -> tuple[int, int | None]:
    """How many records a TFRecord file frames, and the byte where its framing breaks (None:
    whole). The loader stops at a damaged record without a word: this says what it left."""
    count, size = 0, os.path.getsize(path)
    with open(path, "rb") as fh:
        position = 0
        while position < size:
            header = fh.read(12)
            if len(header) < 12:
                return count, position
            length = int.from_bytes(header[:8], "little")
            if position + 12 + length + 4 > size:
                return count, position
            fh.seek(length + 4, os.SEEK_CUR)
            position += 12 + length + 4
            count += 1
    return count, None


def _project(top: str) -> str:
    import re

    return (
        re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.basename(top.rstrip("/"))).strip("-.")[:128] or "tensorboard"
    )


def _run(
    files: list[str], name: str, project: str, skipped: list[Skipped], loader_mod: Any
) -> SourceRun | None:
    _, _, data_compat, tensor_util, event_pb2 = _tb()
    source_id = f"tb-{hashlib.sha256(name.encode()).hexdigest()[:16]}"
    out = SourceRun(source="tensorboard", source_id=source_id, project=project, name=name, where=files[0])
    out.metadata = {"tensorboard_run": name}
    segment = SourceSegment("root")
    out.segments.append(segment)
    last_step = -1
    first_wall: float | None = None
    last_wall: float | None = None
    for path in files:
        try:
            events = list(loader_mod.EventFileLoader(path).Load())
        except Exception as exc:  # noqa: BLE001 - a damaged file: what came before is kept
            skipped.append(
                Skipped(path, f"could not be read to its end ({exc}); events before the damage are imported")
            )
            continue
        framed, broken = _records(path)
        if len(events) < framed or broken is not None:
            where = f"at byte {broken}" if broken is not None else f"after record {len(events)} of {framed}"
            skipped.append(
                Skipped(
                    path,
                    f"damaged {where}: the {len(events)} events before it are imported, "
                    f"{max(framed - len(events), 0) or 'the'} record(s) after it are not",
                )
            )
        for event in events:
            wall = float(event.wall_time)
            if wall and math.isfinite(wall):
                first_wall = wall if first_wall is None else min(first_wall, wall)
                last_wall = wall if last_wall is None else max(last_wall, wall)
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                if event.step <= last_step:  # a restart: steps >= event.step are superseded
                    segment.rows.into(segment.points)
                    segment = SourceSegment("rewind", int(event.step) - 1, None, wall)
                    out.segments.append(segment)
                    last_step = int(event.step) - 1
                continue
            if not event.HasField("summary"):
                continue
            step = int(event.step)
            found = False
            for value in event.summary.value:
                if value.WhichOneof("value") == "simple_value":  # what migrate_value would turn into a scalar
                    number = float(value.simple_value)
                else:
                    value = data_compat.migrate_value(value)
                    if value.metadata.plugin_data.plugin_name != "scalars":
                        continue
                    try:
                        number = float(tensor_util.make_ndarray(value.tensor).item())
                    except Exception:  # noqa: BLE001 - not a scalar after all
                        skipped.append(Skipped(path, f"tag {value.tag!r} at step {step} is not a scalar"))
                        continue
                segment.rows.number(step, value.tag, number)
                found = True
            if found:
                segment.rows.stamp(step, wall)
                last_step = max(last_step, step)
    segment.rows.into(segment.points)
    if not any(s.points.count for s in out.segments):
        skipped.append(Skipped(files[0] if files else name, "no scalars in these event files"))
        return None
    out.created_at = first_wall or 0.0
    out.finished_at = last_wall
    return out
