"""Typed manifest documents: the only code that reads or writes manifest JSON.

Each document is a dataclass with `to_json()` and `from_json()`; readers are lenient about
fields an older release did not write (they get their defaults), so old roots keep reading.
"""

from __future__ import annotations

import functools
import json
import time
import types
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from ..errors import RunlakeError, RunNotFoundError
from . import settings
from .layout import SEGMENT_RE
from .liveness import derive_state, holder_alive, writer_identity
from .storage import Storage

D = TypeVar("D", bound="_Doc")


class _Doc:
    """to_json / from_json for a dataclass; unknown keys are ignored, missing ones defaulted."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload,no-any-return]

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), allow_nan=True).encode()

    @classmethod
    def from_json(cls: type[D], doc: dict[str, Any], where: str = "") -> D:
        """The document, or a RunlakeError naming the file and the field that is wrong."""
        checks = _checks(cls)  # type: ignore[arg-type]
        values = {k: v for k, v in doc.items() if k in checks}
        for name, value in values.items():
            types_, none_ok = checks[name]
            if (value is None and none_ok) or (isinstance(value, types_) and not isinstance(value, bool)):
                continue
            if value is not None and bool in types_ and isinstance(value, bool):
                continue
            hint = _hints(cls)[name]  # type: ignore[arg-type]
            raise RunlakeError(
                f"manifest {where or cls.__name__}: field {name!r} must be {_describe(hint)}, "
                f"got {type(value).__name__} {value!r:.80}"
            )
        missing = [name for name in getattr(cls, "REQUIRED", ()) if name not in doc]
        if missing:
            raise RunlakeError(
                f"manifest {where or cls.__name__} is missing the field(s) {', '.join(map(repr, missing))}, "
                "which every release writes: it was damaged or edited"
            )
        try:
            made = cls(**values)
        except TypeError as exc:
            raise RunlakeError(f"manifest {where or cls.__name__} is missing a field: {exc}") from None
        problem = made.inconsistency()
        if problem is not None:
            raise RunlakeError(f"manifest {where or cls.__name__}: {problem}")
        return made

    def inconsistency(self) -> str | None:
        """What is wrong with a document whose fields each have the right type (None: nothing)."""
        return None


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


@functools.cache
def _checks(cls: type) -> dict[str, tuple[tuple[type, ...], bool]]:
    """Per field: the JSON types it accepts and whether null is one (compiled once per class)."""
    out = {}
    for name, hint in _hints(cls).items():
        options = (
            get_args(hint) if isinstance(hint, types.UnionType) or get_origin(hint) is Union else (hint,)
        )
        accepted: list[type] = []
        for option in options:
            if option is type(None) or option is Any:
                continue
            base = get_origin(option) or option
            accepted += [int, float] if base is float else [base]
        none_ok = type(None) in options or Any in options
        out[name] = (tuple(accepted) if Any not in options else (object,), none_ok)
    return out


def _describe(hint: Any) -> str:
    if isinstance(hint, types.UnionType) or get_origin(hint) is Union:
        return " or ".join(_describe(h) for h in get_args(hint))
    if hint is type(None):
        return "null"
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        dict: "an object",
        list: "a list",
    }.get(get_origin(hint) or hint, str(hint))


@dataclass
class RunIdentity(_Doc):
    """meta/run.json: who the run is (write-once)."""

    run_id: str
    project: str
    name: str | None = None
    notes: str | None = None
    tags: list[str] = field(default_factory=list)
    created_at: float = 0.0
    group: str | None = None
    job_type: str | None = None
    entity: str | None = None
    source: str | None = None  # where an imported run came from (wandb, mlflow, ...)
    source_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # init's other arguments worth keeping


@dataclass
class SegmentDoc(_Doc):
    """meta/segment-<k>.json: one lineage row (write-once). A node inherits its parent node's
    effective rows with step <= cutoff; its own rows are > cutoff."""

    run_id: str
    segment: int
    project: str
    kind: str = "root"  # root | fork | rewind
    created_at: float = 0.0
    parent_project: str | None = None
    parent_run_id: str | None = None
    parent_segment: int | None = None
    cutoff: int | None = None
    # a rewind or re-fork: the run's segment this one took over from, and the part files its
    # writers had stored (what a reader of that archived segment must find; null: unknown)
    previous_segment: int | None = None
    previous_parts: int | None = None

    # the lineage fields every release wrote: a document without them was damaged, and taking
    # their defaults would silently turn a rewind or a fork into a root
    REQUIRED = ("run_id", "segment", "project", "kind", "parent_run_id", "parent_segment", "cutoff")

    def inconsistency(self) -> str | None:
        if self.kind not in ("root", "fork", "rewind"):
            return f"kind must be root, fork or rewind, got {self.kind!r}"
        if self.segment < 0:
            return f"segment must be 0 or more, got {self.segment}"
        linked = (self.parent_run_id, self.parent_segment, self.cutoff)
        if self.kind != "root" and None in linked:
            return f"a {self.kind} needs parent_run_id, parent_segment and cutoff, got {linked}"
        if self.kind == "root" and self.parent_run_id is not None:
            return f"a root has no parent, got parent_run_id {self.parent_run_id!r}"
        return None

    @property
    def parent(self) -> tuple[str, int] | None:
        if self.parent_run_id is None or self.parent_segment is None:
            return None
        return self.parent_run_id, int(self.parent_segment)


@dataclass
class StateDoc(_Doc):
    """meta/state.json: the writer's latest word (replaced on every flush)."""

    run_id: str
    segment: int = 0
    state: str = "running"
    heartbeat: float | None = None
    host: str | None = None
    pid: int | None = None
    pid_start: str | None = None
    writer_seq: int = 0
    watermark: int | None = None  # the last step whose rows are in a part
    # the part files this segment's writers have stored (or spilled, uploaded in order before
    # this state): a reader that finds fewer knows one was lost (null: an older writer)
    parts: int | None = None
    runtime: float = 0.0
    finished_at: float | None = None
    exit_code: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    summary_auto: dict[str, Any] = field(default_factory=dict)
    summary_user: dict[str, Any] = field(default_factory=dict)
    inherited_pending: bool = False
    # The run's attributes as the writer last set them (older writers: null, see run.json).
    name: str | None = None
    tags: list[str] | None = None
    notes: str | None = None
    group: str | None = None
    job_type: str | None = None
    metrics: list[Any] = field(default_factory=list)  # define_metric definitions
    metric_state: dict[str, Any] = field(default_factory=dict)  # their summary aggregates
    json_keys: list[str] = field(default_factory=list)  # keys whose text values are JSON
    preempting: bool = False  # mark_preempting(): a death reads `preempted`, not `crashed`
    # Api's run.delete(): gone from listings; its rows stay while a fork reads them (older
    # releases ignore the field: the run stays listed there)
    deleted_at: float | None = None


@dataclass
class ArtifactVersionDoc(_Doc):
    """artifacts/<project>/<name>/v<N>.json: one version, created exclusively after its files
    are stored (the switch: a version is whole or absent). `files`: {path, sha256, size} (the
    content is artifacts/_blobs/<sha256>); `references`: {path, uri, checksum, size}."""

    REQUIRED = ("project", "name", "version", "type", "digest", "files")
    project: str
    name: str
    version: int
    type: str
    digest: str
    files: list[Any] = field(default_factory=list)
    references: list[Any] = field(default_factory=list)
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None  # the run that logged it
    step: int | None = None  # that run's step when it was logged
    created_at: float = 0.0
    size: int = 0


@dataclass
class ArtifactEdgeDoc(_Doc):
    """runs/<project>/<run_id>/meta/artifact-<ns>-<id>.json: this run logged ("output") or used
    ("input") an artifact version (written once; the catalog's `artifact_usage`)."""

    REQUIRED = ("run_id", "direction", "project", "name", "version")
    run_id: str
    direction: str
    project: str
    name: str
    version: int
    type: str = ""
    digest: str = ""
    step: int | None = None
    segment: int = 0  # the run's segment then (a rewind's abandoned steps are not its lineage)
    at: float = 0.0
    size: int = 0
    files: list[Any] = field(default_factory=list)  # an output's files (the `artifact_files` view)


@dataclass
class SweepDoc(_Doc):
    """sweeps/<project>/<sweep_id>/sweep.json: a sweep as `wandb.sweep()` made it (write-once)."""

    REQUIRED = ("sweep_id", "project", "config")
    sweep_id: str
    project: str
    config: dict[str, Any] = field(default_factory=dict)  # W&B's sweep configuration, as given
    entity: str | None = None
    created_at: float = 0.0


@dataclass
class TrialDoc(_Doc):
    """sweeps/<project>/<sweep_id>/trials/<n>.json: trial n, created exclusively by the agent that
    runs it (so each trial runs once), rewritten by it when the trial ends."""

    REQUIRED = ("sweep_id", "number", "params", "run_id")
    sweep_id: str
    number: int
    params: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    state: str = "running"  # running | finished | failed | early_terminated (crashed: derived)
    at: float = 0.0
    ended_at: float | None = None
    host: str | None = None
    pid: int | None = None
    pid_start: str | None = None


@dataclass
class AlertDoc(_Doc):
    """meta/alert-<time_ns>-<id>.json: one alert a run raised (written once, never changed)."""

    REQUIRED = ("run_id", "title", "level", "at")
    run_id: str
    title: str
    text: str = ""
    level: str = "INFO"
    at: float = 0.0
    step: int | None = None
    segment: int = 0


@dataclass
class BeatDoc(_Doc):
    """meta/beat.json: a heartbeat alone, written instead of the state when nothing else changed
    (so a big summary is not rewritten every few seconds). Readers take the later of the two."""

    run_id: str
    heartbeat: float
    segment: int = 0
    writer_seq: int = 0
    host: str | None = None
    pid: int | None = None
    pid_start: str | None = None


@dataclass
class WriterClaim(_Doc):
    """meta/writer-<n>.json: writer slot n was taken (write-once, exclusive)."""

    seq: int
    what: str
    at: float
    host: str | None = None
    pid: int | None = None
    pid_start: str | None = None


@dataclass
class PackMember(_Doc):
    run_id: str
    segment: int
    step_lo: int
    step_hi: int
    rows: int = 0
    bytes: int = 0
    parts: int | None = None  # the part files it replaced (null: an older compaction)


@dataclass
class PackManifest(_Doc):
    """packs/project=<p>/pack-<id>.json: the members of a pack; writing it is the index switch."""

    pack: str
    project: str
    created_at: float = 0.0
    rows: int = 0
    bytes: int = 0
    members: list[PackMember] = field(default_factory=list)

    @classmethod
    def from_json(cls, doc: dict[str, Any], where: str = "") -> PackManifest:
        manifest = super().from_json(doc, where)
        manifest.members = [PackMember.from_json(m, where) for m in doc.get("members") or []]
        return manifest


@dataclass
class PackedPointer(_Doc):
    """meta/packed-<k>.json: which packs hold segment k's rows (for readers without a listing)."""

    segment: int
    packs: list[dict[str, Any]] = field(default_factory=list)  # {pack (root-relative), step_lo, step_hi}
    step_hi: int | None = None


@dataclass
class RepairDoc(_Doc):
    """meta/repaired-<k>.json: `doctor --fix` changed segment k: it quarantined a part (readers
    list the segment again), and/or accepted that the segment has `parts` part files now (a
    part was lost: its reads work again without those steps)."""

    segment: int
    quarantined: str | None = None
    steps: list[int] | None = None
    at: float = 0.0
    parts: int | None = None


# ---- one run's manifests (what training processes use; no catalog) -----------------------
def read(storage: Storage, path: str, kind: type[D]) -> D | None:
    doc = storage.read_json(path)
    return None if doc is None else kind.from_json(doc, storage.engine_path(path))


def write(storage: Storage, path: str, doc: _Doc) -> None:
    storage.write_json_atomic(path, doc.to_json())


def find_project(storage: Storage, run_id: str) -> str | None:
    """The project holding `run_id` (run ids are unique in a root), or None."""
    for project in sorted(storage.listdir(storage.paths.runs_dir)):
        if storage.exists(storage.paths.meta(project, run_id, "run.json")):
            return project
    return None


def require_project(storage: Storage, run_id: str) -> str:
    project = find_project(storage, run_id)
    if project is None:
        raise RunNotFoundError(f"run {run_id!r} does not exist in root {storage.url!r}")
    return project


def read_identity(storage: Storage, project: str, run_id: str) -> RunIdentity:
    doc = read(storage, storage.paths.meta(project, run_id, "run.json"), RunIdentity)
    return doc if doc is not None else RunIdentity(run_id=run_id, project=project)


def read_state(storage: Storage, project: str, run_id: str) -> StateDoc:
    doc = read(storage, storage.paths.meta(project, run_id, "state.json"), StateDoc)
    if doc is None:
        raise RunlakeError(
            f"run {run_id!r} has no state manifest (it is still being created, or its creation "
            "failed); try again in a moment"
        )
    return doc


def read_segment(storage: Storage, project: str, run_id: str, segment: int) -> SegmentDoc:
    doc = read(storage, storage.paths.meta(project, run_id, f"segment-{segment}.json"), SegmentDoc)
    if doc is None:
        raise RunNotFoundError(f"run {run_id!r} has no segment {segment}")
    return doc


def read_packed(storage: Storage, project: str, run_id: str, segment: int) -> PackedPointer | None:
    return read(storage, storage.paths.meta(project, run_id, f"packed-{segment}.json"), PackedPointer)


def segment_numbers(storage: Storage, project: str, run_id: str) -> list[int]:
    names = storage.listdir(f"{storage.paths.run_dir(project, run_id)}/meta")
    return sorted(int(m[1]) for n in names if (m := SEGMENT_RE.fullmatch(n)))


def node_last_step(
    storage: Storage, project: str, run_id: str, segment: int, cutoff: int | None
) -> int | None:
    """The last durable step of a node's effective history, from a listing and its pack pointer
    (a fork or rewind that has logged nothing yet has reached its cutoff)."""
    parts = storage.list_parts(storage.paths.segment_dir(project, run_id, segment))
    own = max((p.step_hi for p in parts), default=None)
    packed = read_packed(storage, project, run_id, segment)
    if packed is not None and packed.step_hi is not None:  # compaction moved rows into a pack
        own = packed.step_hi if own is None else max(own, packed.step_hi)
    return last_step(own, cutoff)


def last_step(own: int | None, cutoff: int | None) -> int | None:
    """A node's last step: its own last row, and at least its cutoff (the `runs` view agrees)."""
    if cutoff is None:
        return own
    return cutoff if own is None else max(own, cutoff)


def is_running(storage: Storage, project: str, state: StateDoc) -> bool:
    """Is the run's writer still there? Its latest heartbeat (state or beat file) counts no
    later than that file's time on storage (a writer's clock that runs ahead cannot hold it)."""
    doc = state.to_json()
    path = storage.paths.meta(project, state.run_id, "state.json")
    beat_path = storage.paths.meta(project, state.run_id, "beat.json")
    beat = read(storage, beat_path, BeatDoc)
    if beat is not None and beat.writer_seq == state.writer_seq and beat.heartbeat > (state.heartbeat or 0.0):
        doc["heartbeat"] = beat.heartbeat
        path = beat_path
    return derive_state(doc, written_at=storage.modified(path)) == "running"


def claim_writer(storage: Storage, project: str, run_id: str, state: StateDoc, what: str) -> int:
    """Take the writer slot after the one in `state`, atomically: of two racing resumes or
    rewinds that read the same state, exactly one wins. A slot taken by a claimant that died
    before taking over is skipped."""
    seq = int(state.writer_seq or 0) + 1
    while True:
        claim = WriterClaim(seq=seq, what=what, at=time.time(), **writer_identity())
        path = storage.paths.meta(project, run_id, f"writer-{seq}.json")
        if storage.create_exclusive(path, claim.encode()):
            return seq
        other = read(storage, path, WriterClaim)
        if other is not None and holder_alive(other.to_json(), other.at, settings.heartbeat_timeout()):
            raise RunlakeError(
                f"run {run_id!r} was resumed or rewound by another process at the same time "
                f"(pid {other.pid} on {other.host}); exactly one may continue it"
            )
        seq += 1
