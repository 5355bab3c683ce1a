"""`runlake import wandb PATH`: W&B offline runs (a `wandb/` directory, an `offline-run-*`
directory, or a `.wandb` file), read with wandb's own protobuf records.

Each `.wandb` file is one attempt of a run: the first is the run, a later file of the same id
with a branch point at step N is a rewind (`resume_from`), a file whose branch point names
another run is a fork (`fork_from`), a later file without one is a resume (its steps continue
the run; steps it logged again are skipped and reported: an offline resume restarts at 0).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterator
from typing import Any

from ..errors import RunlakeError
from ..store.layout import MAX_STEP
from ..write.console import last_state
from .model import Skipped, SourceRun, SourceSegment
from .wandb_log import WandbFormatError, chunks

SYSTEM = ("_wandb", "_runtime", "_step", "_timestamp")


def _pb() -> Any:
    try:
        import wandb
        from wandb.proto import wandb_internal_pb2
    except ImportError:
        raise RunlakeError(
            "runlake import wandb reads W&B's records with the wandb package: pip install 'runlake[import]'"
        ) from None
    return wandb_internal_pb2, wandb.__version__


def find_files(path: str) -> list[str]:
    """Every `.wandb` file under `path` once (`latest-run` and other symlinks are not followed)."""
    if os.path.isfile(path):
        if not path.endswith(".wandb"):
            raise RunlakeError(f"{path} is not a W&B run file: expected a .wandb file or a wandb/ directory")
        return [path]
    if not os.path.isdir(path):
        raise RunlakeError(
            f"{path} does not exist: expected a wandb/ directory, an offline-run-* directory or a .wandb file"
        )
    found = []
    for dirpath, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not os.path.islink(os.path.join(dirpath, d)))
        found += [os.path.join(dirpath, f) for f in sorted(files) if f.endswith(".wandb")]
    if not found:
        raise RunlakeError(
            f"{path} holds no W&B run files (.wandb): expected a wandb/ directory with offline-run-* "
            "directories, one offline-run-* directory, or a .wandb file"
        )
    return found


def _path(item: Any) -> list[str]:
    return list(item.nested_key) if item.nested_key else [item.key]


def _put(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        node = tree.get(part)
        if not isinstance(node, dict):
            node = tree[part] = {}
        tree = node
    tree[path[-1]] = value


def flat(tree: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A nested record as runlake keys: dicts flatten with "." except W&B objects (a `_type`:
    histograms, media), which stay one JSON value, as runlake logs them."""
    for key, value in tree.items():
        if isinstance(value, dict) and "_type" not in value and value:
            yield from flat(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


class _File:
    def __init__(self, path: str) -> None:
        self.path = path
        self.run: Any = None
        self.rows: list[tuple[int, dict[str, Any]]] = []
        self.summary: dict[str, Any] = {}
        self.config: dict[str, Any] = {}
        self.exit_code: int | None = None
        self.preempting = False
        self.version = "unknown"
        self.step_now = 0  # the run's step as the records go by (what stats and output get)
        self.system: list[tuple[float, int, str, float]] = []
        self.console: list[tuple[float, int, str, str]] = []
        self.partial: dict[str, str] = {}  # output not ended by a newline yet, per stream


def read_file(path: str, skipped: list[Skipped], header: bool = False) -> _File | None:
    """A `.wandb` file's run; `header`: only up to its run record (who it is, where it branched
    from), which is what listing runs needs: their points are read when each one lands."""
    pb, installed = _pb()
    out = _File(path)
    number = 0
    try:
        for raw in chunks(path):
            if header and out.run is not None:
                break
            record = pb.Record()
            try:
                record.ParseFromString(raw)
            except Exception as exc:  # noqa: BLE001 - a record this wandb cannot decode
                raise WandbFormatError(
                    f"{path}: a record written by wandb {out.version} cannot be decoded by the installed "
                    f"wandb {installed} ({exc}); install the wandb version that wrote it"
                ) from None
            kind = record.WhichOneof("record_type")
            number += 1
            try:
                _apply(out, record, kind)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                # one bad record (a step of Infinity, a value that is not JSON) skips that record
                skipped.append(Skipped(path, f"record {number} ({kind}) skipped: {exc}"))
    except WandbFormatError as exc:
        if out.run is None:
            skipped.append(Skipped(path, str(exc)))
            return None
        skipped.append(Skipped(path, f"read up to a damaged record: {exc}"))
    if out.run is None:
        skipped.append(Skipped(path, "no run record: not a W&B run file, or cut before its first record"))
        return None
    return out


def _apply(out: _File, record: Any, kind: str | None) -> None:
    """Fold one record into the file's run (raises ValueError and the like for a bad one)."""
    if kind == "run":
        out.run = record.run
        if record.run.telemetry.cli_version:
            out.version = record.run.telemetry.cli_version
        for item in record.run.config.update:
            _put(out.config, _path(item), json.loads(item.value_json))
    elif kind == "history":
        tree: dict[str, Any] = {}
        for item in record.history.item:
            _put(tree, _path(item), json.loads(item.value_json))
        step = tree.pop("_step", None)
        step = int(step) if isinstance(step, int | float) else int(record.history.step.num)
        if not -MAX_STEP <= step < MAX_STEP:
            raise ValueError(f"its _step {step} is not a step a history can hold")
        out.rows.append((step, tree))
        out.step_now = step + 1
    elif kind == "stats":  # system metrics (wandb's events stream: system.<key>)
        at = record.stats.timestamp.seconds + record.stats.timestamp.nanos / 1e9
        for item in record.stats.item:
            value = json.loads(item.value_json)
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                key = item.key if item.key.startswith("system.") else f"system.{item.key}"
                out.system.append((at, out.step_now, key, float(value)))
    elif kind in ("output_raw", "output"):  # console output, as the process wrote it
        body = record.output_raw if kind == "output_raw" else record.output
        at = body.timestamp.seconds + body.timestamp.nanos / 1e9
        stream = "stderr" if body.output_type == 0 else "stdout"  # wandb: STDERR = 0, STDOUT = 1
        text = out.partial.pop(stream, "") + body.line
        *done, rest = text.split("\n")
        out.console.extend((at, out.step_now, stream, last_state(line)) for line in done)
        if rest:
            out.partial[stream] = rest
    elif kind == "summary":
        for item in record.summary.update:
            _put(out.summary, _path(item), json.loads(item.value_json))
        for item in record.summary.remove:
            path_ = _path(item)
            node = out.summary
            for part in path_[:-1]:
                node = node.get(part, {})
            if isinstance(node, dict):
                node.pop(path_[-1], None)
    elif kind == "config":
        for item in record.config.update:
            _put(out.config, _path(item), json.loads(item.value_json))
        for item in record.config.remove:
            out.config.pop(_path(item)[0], None)
    elif kind == "exit":
        out.exit_code = int(record.exit.exit_code)
    elif kind == "preempting":
        out.preempting = True


def read(path: str, project: str | None, skipped: list[Skipped]) -> list[SourceRun]:
    """Every run under `path`, its attempts (files) ordered by start time. Listed from the files'
    run records alone; each run's points are read when it lands (`SourceRun.loader`), so an
    import holds one run in memory, not the whole directory."""
    files = [f for f in (read_file(p, skipped, header=True) for p in find_files(path)) if f is not None]
    by_run: dict[str, list[_File]] = {}
    for f in files:
        by_run.setdefault(f.run.run_id, []).append(f)
    runs = []
    for run_id, attempts in by_run.items():
        attempts.sort(key=lambda f: (_started(f.run), f.path))
        listed = _run(run_id, attempts, project, [])
        paths = [a.path for a in attempts]
        listed.loader = functools.partial(_load, run_id, paths, project, skipped)
        runs.append(listed)
    return runs


def _load(run_id: str, paths: list[str], project: str | None, skipped: list[Skipped]) -> SourceRun:
    attempts = [f for f in (read_file(p, skipped) for p in paths) if f is not None]
    if not attempts:
        raise RunlakeError(f"W&B run {run_id!r}: none of its files could be read again")
    attempts.sort(key=lambda f: (_started(f.run), f.path))
    return _run(run_id, attempts, project, skipped)


def _started(record: Any) -> float:
    return float(record.start_time.seconds) + record.start_time.nanos / 1e9


def _run(run_id: str, attempts: list[_File], project: str | None, skipped: list[Skipped]) -> SourceRun:
    first = attempts[0]

    def latest(field: str) -> Any:
        """An attribute as the latest attempt that set it has it (a rewind's file may not)."""
        values = [getattr(a.run, field) for a in attempts if getattr(a.run, field)]
        return values[-1] if values else None

    out = SourceRun(
        source="wandb",
        source_id=run_id,
        project=project or first.run.project or "wandb",
        name=latest("display_name"),
        notes=latest("notes"),
        tags=list(latest("tags") or []),
        group=latest("run_group"),
        job_type=latest("job_type"),
        entity=latest("entity"),
        created_at=_started(first.run),
        where=first.path,
    )
    config: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    last_step = -1
    for attempt in attempts:
        config.update(attempt.config)
        summary = attempt.summary or summary
        branch = attempt.run.branch_point if attempt.run.HasField("branch_point") else None
        started = _started(attempt.run)
        if branch is not None and branch.run and branch.run != run_id:
            segment = SourceSegment("fork", int(branch.value), branch.run, started)
            out.metadata["forked_from"] = f"{branch.run}?_step={int(branch.value)}"
        elif branch is not None and branch.run == run_id and out.segments:
            segment = SourceSegment("rewind", int(branch.value), None, started)
            last_step = int(branch.value)
        elif not out.segments:
            segment = SourceSegment("root", None, None, started)
        else:
            segment = out.segments[-1]  # a resume: the steps continue this segment
        if segment is not (out.segments[-1] if out.segments else None):
            out.segments.append(segment)
        rows = [(s, r) for s, r in attempt.rows if s > last_step]
        if len(rows) < len(attempt.rows):
            repeated = [s for s, _ in attempt.rows if s <= last_step]
            skipped.append(
                Skipped(
                    attempt.path,
                    f"steps {min(repeated)}..{max(repeated)} were logged again by a resume (W&B offline "
                    "restarts its step count); the run keeps the first ones",
                )
            )
        for step, row in rows:
            _add_row(segment, step, row)
        segment.system.extend(attempt.system)
        segment.console.extend(attempt.console)
        segment.console.extend(
            (started, attempt.step_now, st, last_state(t)) for st, t in attempt.partial.items()
        )
        if not attempt.console and not attempt.partial:  # no output records: the run's files/output.log
            segment.console.extend(
                (started, attempt.step_now, "stdout", line) for line in _output_log(attempt.path)
            )
        if rows:
            last_step = max(last_step, max(s for s, _ in rows))
        out.exit_code = attempt.exit_code
        if attempt.preempting:
            out.metadata["preempting"] = True
    for segment in out.segments:
        segment.rows.into(segment.points)
    out.config = {k: v for k, v in config.items() if k != "_wandb"}
    out.summary = dict(flat({k: v for k, v in summary.items() if k not in SYSTEM}))
    finished_at = None
    for segment in out.segments:
        _, stamps = segment.points.stamps()
        if len(stamps):
            finished_at = max(finished_at or 0.0, float(stamps.max()))
    out.finished_at = finished_at
    if out.exit_code is None:
        out.state = "running"  # no exit record: it died (or is still running); it reads crashed
    else:
        out.state = "finished" if out.exit_code == 0 else "failed"
    out.metadata["wandb_version"] = first.version
    return out


def _output_log(wandb_file: str) -> list[str]:
    """The lines of files/output.log beside a run's .wandb file (W&B writes it there), or []."""
    path = os.path.join(os.path.dirname(wandb_file), "files", "output.log")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return [last_state(line.rstrip("\n")) for line in fh]
    except OSError:
        return []


def _add_row(segment: SourceSegment, step: int, row: dict[str, Any]) -> None:
    stamp = row.pop("_timestamp", None)
    row.pop("_runtime", None)
    rows = segment.rows
    if isinstance(stamp, int | float) and math.isfinite(stamp):
        rows.stamp(step, float(stamp))
    for key, value in flat(row):
        if value is None or key.startswith("_wandb"):
            continue
        if isinstance(value, int | float):  # bool too: stored as 0/1, as runlake logs it
            rows.number(step, key, float(value))
        elif isinstance(value, str):
            rows.text(step, key, value)
        else:
            rows.text(step, key, json.dumps(value, separators=(",", ":")))
            segment.json_keys.add(key)
