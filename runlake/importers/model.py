"""What every importer produces: source runs as columns of points, before they land in a root."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def run_id_for(source: str, source_id: str) -> str:
    """The runlake run id of a source run: its own id when it is a valid runlake id (W&B's,
    MLflow's, Neptune's are), else a readable prefix and a hash, so a second import finds it."""
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", source_id) and ".." not in source_id and source_id != ".":
        return source_id
    digest = hashlib.sha256(f"{source}:{source_id}".encode()).hexdigest()[:12]
    readable = _UNSAFE.sub("-", source_id).strip("-.")[-40:].strip("-.")
    return f"{readable}-{digest}" if readable else f"{source}-{digest}"


def project_for(name: str) -> str:
    """A project name as runlake can store it: the name itself when it is one runlake's logging
    would accept, else its safe characters and a hash of the whole (so `team/proj` and
    `team-proj` stay apart); never a path (`../..` becomes `project-<hash>`)."""
    if re.fullmatch(r"[A-Za-z0-9_.-]{1,128}", name) and ".." not in name and name != ".":
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    readable = _UNSAFE.sub("-", name).replace("..", "-").strip("-.")[:100].strip("-.")
    return f"{readable}-{digest}" if readable else f"project-{digest}"


@dataclass
class Points:
    """One segment's points, long: parallel arrays (step, key, value, text). A text point has
    value NaN and its text; `stamps` maps steps to wall times (seconds) where the source has them."""

    steps: list[np.ndarray] = field(default_factory=list)
    keys: list[np.ndarray] = field(default_factory=list)
    values: list[np.ndarray] = field(default_factory=list)
    texts: list[list[str | None] | None] = field(default_factory=list)
    stamp_steps: list[np.ndarray] = field(default_factory=list)
    stamp_values: list[np.ndarray] = field(default_factory=list)

    def add(self, steps: Any, key: Any, values: Any, texts: list[str | None] | None = None) -> None:
        steps = np.asarray(steps, dtype=np.int64)
        if not len(steps):
            return
        self.steps.append(steps)
        self.keys.append(
            np.full(len(steps), key, dtype=object) if isinstance(key, str) else np.asarray(key, dtype=object)
        )
        if len(self.keys[-1]) != len(steps):
            raise ValueError("one key per step")
        self.values.append(np.asarray(values, dtype=np.float64))
        self.texts.append(texts)

    def drop_below(self, lowest: int) -> tuple[int, list[str]]:
        """Remove the points at steps below `lowest`: how many there were, and their keys."""
        dropped, keys = 0, set[str]()
        for i, steps in enumerate(self.steps):
            low = steps < lowest
            if not low.any():
                continue
            dropped += int(low.sum())
            keys.update(str(k) for k in self.keys[i][low])
            keep = ~low
            self.steps[i], self.keys[i], self.values[i] = (
                steps[keep],
                self.keys[i][keep],
                self.values[i][keep],
            )
            texts = self.texts[i]
            if texts is not None:
                self.texts[i] = [t for t, k in zip(texts, keep, strict=True) if k]
        for i, steps in enumerate(self.stamp_steps):
            keep = steps >= lowest
            self.stamp_steps[i], self.stamp_values[i] = steps[keep], self.stamp_values[i][keep]
        return dropped, sorted(keys)

    def stamp(self, steps: Any, seconds: Any) -> None:
        self.stamp_steps.append(np.asarray(steps, dtype=np.int64))
        self.stamp_values.append(np.asarray(seconds, dtype=np.float64))

    @property
    def count(self) -> int:
        return int(sum(len(s) for s in self.steps))

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None] | None]:
        if not self.steps:
            return np.empty(0, np.int64), np.empty(0, object), np.empty(0, np.float64), None
        texts: list[str | None] | None = None
        if any(t is not None for t in self.texts):
            texts = []
            for s, t in zip(self.steps, self.texts, strict=True):
                texts.extend(t if t is not None else [None] * len(s))
        return np.concatenate(self.steps), np.concatenate(self.keys), np.concatenate(self.values), texts

    def stamps(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.stamp_steps:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        return np.concatenate(self.stamp_steps), np.concatenate(self.stamp_values)


class Builder:
    """Points collected one at a time (row-oriented sources), converted to arrays once."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.keys: list[str] = []
        self.values: list[float] = []
        self.texts: list[str | None] = []
        self.has_text = False
        self.stamp_steps: list[int] = []
        self.stamp_values: list[float] = []

    def number(self, step: int, key: str, value: float) -> None:
        self.steps.append(step)
        self.keys.append(key)
        self.values.append(value)
        self.texts.append(None)

    def text(self, step: int, key: str, value: str) -> None:
        self.steps.append(step)
        self.keys.append(key)
        self.values.append(float("nan"))
        self.texts.append(value)
        self.has_text = True

    def stamp(self, step: int, seconds: float) -> None:
        self.stamp_steps.append(step)
        self.stamp_values.append(seconds)

    def into(self, points: Points) -> None:
        points.add(self.steps, self.keys, self.values, self.texts if self.has_text else None)
        if self.stamp_steps:
            points.stamp(self.stamp_steps, self.stamp_values)
        self.__init__()  # type: ignore[misc]


@dataclass
class SourceSegment:
    """A run's history between two restarts: the first (kind "root" or "fork"), then rewinds."""

    kind: str = "root"  # root | fork | rewind
    cutoff: int | None = None  # fork / rewind step: the parent's rows up to it are inherited
    parent_source_id: str | None = None  # a fork's parent, in the source's ids
    started_at: float = 0.0
    points: Points = field(default_factory=Points)
    json_keys: set[str] = field(default_factory=set)
    rows: Builder = field(default_factory=Builder)  # row-oriented sources fill this, then into(points)
    # the source's system metrics and console lines, when it has them: (time, step, key, value)
    # and (time, step, stream, line); the step is the run's step at that time
    system: list[tuple[float, int, str, float]] = field(default_factory=list)
    console: list[tuple[float, int, str, str]] = field(default_factory=list)


@dataclass
class SourceRun:
    source: str  # wandb | mlflow | tensorboard | neptune
    source_id: str
    project: str
    name: str | None = None
    notes: str | None = None
    tags: list[str] = field(default_factory=list)
    group: str | None = None
    job_type: str | None = None
    entity: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None  # the source's own summary (W&B); else last values
    created_at: float = 0.0
    finished_at: float | None = None
    state: str = "finished"  # finished | failed | running (a source run not finished yet)
    exit_code: int | None = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    segments: list[SourceSegment] = field(default_factory=list)
    where: str = ""  # the file or URI it was read from (for messages)
    # a source that can read a run's points later: the run as listed here has its identity and
    # segments (what ordering parents before forks needs) and no points; the import reads each
    # run whole just before landing it, so memory holds one run at a time, not the source
    loader: Callable[[], SourceRun] | None = None

    @property
    def run_id(self) -> str:
        return run_id_for(self.source, self.source_id)

    @property
    def points(self) -> int:
        return sum(s.points.count for s in self.segments)


@dataclass
class Skipped:
    """Something a source held that was not imported, and why."""

    where: str
    reason: str
