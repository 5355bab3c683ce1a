"""runlake: a local-first, columnar run-history store with zero-copy fork and rewind.

`runlake.Lake(root)` is the object to hold; the functions below are thin calls on the default
Lake of the resolved root (`root=`, $RUNLAKE_ROOT, ./runlake-data).
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from .errors import (
    ConfigError,
    CorruptPartError,
    ForkPointError,
    KeyCollisionWarning,
    QueryError,
    RunlakeError,
    RunNotFoundError,
    StepOrderWarning,
)
from .lake import Lake, default
from .plotting import Plot
from .public import Api
from .read.sandbox import Params
from .write import registry, start
from .write.alerts import AlertLevel
from .write.artifact import Artifact
from .write.chart import CustomChart
from .write.media import Histogram, Image, Molecule, Object3D
from .write.metrics import Metric
from .write.rich_media import Audio, Html, Plotly, Video
from .write.run import Run
from .write.table import Table

__version__ = "0.1.0"

PathLike = str | os.PathLike[str]
Options = dict[str, Any] | None

run: Run | None = None  # the most recently started run that is still open (as wandb.run)


class _PreInit:
    """What `runlake.config` / `runlake.summary` are before init(): any use says to call it."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _fail(self, *_: Any, **__: Any) -> Any:
        raise RunlakeError(f"runlake.{object.__getattribute__(self, '_name')}: call runlake.init() first")

    __getattr__ = __setattr__ = __getitem__ = __setitem__ = __call__ = __iter__ = _fail  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<runlake.{object.__getattribute__(self, '_name')} before init()>"


def __getattr__(name: str) -> Any:
    """`runlake.config` and `runlake.summary` follow the current run, as in wandb."""
    if name in ("config", "summary"):
        current = registry.current()
        return getattr(current, name) if current is not None else _PreInit(name)
    raise AttributeError(f"module 'runlake' has no attribute {name!r}")


def init(
    project: str | None = None,
    *,
    root: PathLike | None = None,
    storage_options: Options = None,
    **kwargs: Any,
) -> Run:
    """Start a run (W&B-compatible) in the root (`root=`, $RUNLAKE_ROOT, ./runlake-data).

    Takes every `wandb.init` argument (those of `runlake.write.start.init`); see the README,
    "Coming from W&B", for what each does here, and for fork_from / resume_from / resume.
    """
    return default(root, storage_options).init(project, **kwargs)


init.__signature__ = start.signature(  # type: ignore[attr-defined]
    inspect.Parameter("root", inspect.Parameter.KEYWORD_ONLY, default=None),
    inspect.Parameter("storage_options", inspect.Parameter.KEYWORD_ONLY, default=None),
)


def _current() -> Run:
    current = registry.current()
    if current is None:
        raise RunlakeError("no run is active: call runlake.init() first")
    assert isinstance(current, Run)
    return current


def log(data: Any, step: int | None = None, commit: bool | None = None) -> None:
    """`run.log()` on the current run."""
    _current().log(data, step=step, commit=commit)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """`run.finish()` on the current run (no-op if none is active)."""
    current = registry.current()
    if current is not None:
        current.finish(exit_code=exit_code)


def alert(title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
    """`run.alert()` on the current run: stored, printed to stderr, sent to
    $RUNLAKE_ALERT_WEBHOOK when set; a title alerted again within `wait_duration` is dropped."""
    _current().alert(title, text, level=level, wait_duration=wait_duration)


def log_artifact(
    artifact_or_path: Any,
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | None = None,
    tags: list[str] | None = None,
) -> Artifact:  # noqa: A002
    """`run.log_artifact()` on the current run."""
    return _current().log_artifact(artifact_or_path, name=name, type=type, aliases=aliases, tags=tags)


def use_artifact(
    artifact_or_name: Any,
    type: str | None = None,
    aliases: list[str] | None = None,
    use_as: str | None = None,
) -> Artifact:  # noqa: A002
    """`run.use_artifact()` on the current run."""
    return _current().use_artifact(artifact_or_name, type=type, aliases=aliases, use_as=use_as)


def log_model(path: str, name: str | None = None, aliases: list[str] | None = None) -> Artifact:
    return _current().log_model(path, name=name, aliases=aliases)


def use_model(name: str) -> str:
    return _current().use_model(name)


def link_model(
    path: str, registered_model_name: str, name: str | None = None, aliases: list[str] | None = None
) -> Artifact:
    return _current().link_model(path, registered_model_name, name=name, aliases=aliases)


def define_metric(name: str, *args: Any, **kwargs: Any) -> Metric:
    """`run.define_metric()` on the current run."""
    return _current().define_metric(name, *args, **kwargs)


def mark_preempting() -> None:
    """`run.mark_preempting()` on the current run."""
    _current().mark_preempting()


class Settings(dict):  # type: ignore[type-arg]
    """`runlake.Settings(**kw)` for `init(settings=...)`, as `wandb.Settings`: runlake honours
    `mode`, `reinit` and `root_dir`; the rest is kept in the run's metadata."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(kwargs)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None


def login(*args: Any, **kwargs: Any) -> bool:
    """W&B's login: nothing to log in to for a local store (accepted, returns True)."""
    return True


_said: set[str] = set()


def _once(what: str, message: str) -> None:
    """A call with no local meaning whose data is not kept: said once per process, never silent."""
    if what not in _said:
        _said.add(what)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def watch(*args: Any, **kwargs: Any) -> None:
    """W&B's gradient watcher: not done by runlake (accepted; says so once; see README)."""
    _once("watch", "runlake.watch() logs no gradients or parameters: log runlake.Histogram(p.grad) yourself")


def unwatch(*args: Any, **kwargs: Any) -> None:
    return None


def save(*args: Any, **kwargs: Any) -> list[str]:
    """W&B's file upload: runlake keeps no run files beyond history (accepted; says so once)."""
    _once(
        "save",
        "runlake.save() stores no files: they stay where they are (run.dir is a local directory for them)",
    )
    return []


def history(
    run_id: str,
    keys: Sequence[str] | str | None = None,
    *,
    root: PathLike | None = None,
    segment: int | None = None,
    storage_options: Options = None,
) -> pl.DataFrame:
    """A run's effective history, wide and complete: one row per step where a selected key was logged.

    Args:
        keys: metric names to return (None: all). Rows are the steps where any of them was logged.
        segment: read an archived segment (left by a rewind) instead of the current one.
    """
    return default(root, storage_options).history(run_id, keys, segment=segment)


def runs(
    project: str | None = None, *, root: PathLike | None = None, storage_options: Options = None
) -> pl.DataFrame:
    """One row per run: id, project, name, state, created_at, parent_run_id, fork_step, last_step, config, summary, ..."""
    return default(root, storage_options).runs(project)


def lineage(run_id: str, *, root: PathLike | None = None, storage_options: Options = None) -> pl.DataFrame:
    """The chain of (run_id, segment) nodes from the run up to its root, nearest first."""
    return default(root, storage_options).lineage(run_id)


def sql(
    query: str,
    *,
    root: PathLike | None = None,
    params: Params = None,
    storage_options: Options = None,
    timeout: float | None = None,
    max_rows: int | None = None,
) -> pl.DataFrame:
    """Run read-only SQL over the views runs, lineage, history and raw_history; values go in
    `params` (see `Lake.sql`: only reads, no file outside the root, optional limits)."""
    return default(root, storage_options).sql(query, params, timeout=timeout, max_rows=max_rows)


def connect(root: PathLike | None = None, *, storage_options: Options = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every runlake view, as of now (call again to see newer data)."""
    return default(root, storage_options).connect()


def compare(
    run_ids: Sequence[str] | str,
    keys: Sequence[str] | str,
    *,
    root: PathLike | None = None,
    storage_options: Options = None,
) -> pl.DataFrame:
    """Several runs' effective histories in one frame aligned on `_step` (`<run_id>:<key>` columns)."""
    return default(root, storage_options).compare(run_ids, keys)


def descendants(
    run_id: str, *, root: PathLike | None = None, storage_options: Options = None
) -> pl.DataFrame:
    """Every run forked from this one, directly or through other forks (generation 1 = children)."""
    return default(root, storage_options).descendants(run_id)


def tree(
    project: str | None = None, *, root: PathLike | None = None, storage_options: Options = None
) -> pl.DataFrame:
    """The fork forest of a project (or the whole root): one row per run with its root and depth."""
    return default(root, storage_options).tree(project)


def compact(
    root: PathLike | None = None,
    *,
    progress: bool | None = None,
    grace: float | None = None,
    storage_options: Options = None,
) -> pl.DataFrame:
    """Pack the parts of every finished (or archived) segment into shared key-sorted files;
    the parts packed are removed once their pack is `grace` seconds old (None: 600, or
    $RUNLAKE_COMPACT_GRACE), by this compaction or the next."""
    return default(root, storage_options).compact(progress=progress, grace=grace)


def doctor(
    root: PathLike | None = None, *, fix: bool = False, storage_options: Options = None
) -> pl.DataFrame:
    """Read every part of the root; one row per unreadable part (with fix=True, quarantine them)."""
    return default(root, storage_options).doctor(fix=fix)


def scan(root: PathLike | None = None, *, storage_options: Options = None) -> pl.LazyFrame:
    """Every run's effective history as a polars LazyFrame, from the root's exported catalog
    (`runlake catalog export`); filters on run_id and key are pushed down."""
    from .lazy import scan as _scan

    return _scan(root, storage_options=storage_options)


def sync(
    root: PathLike | None = None,
    *,
    dir: str | None = None,
    storage_options: Options = None,  # noqa: A002
) -> pl.DataFrame:
    """Upload everything spilled for a root while its storage was down (`runlake sync`);
    `dir`: the `init(dir=...)` the runs were started with, if any."""
    return default(root, storage_options).sync(dir)


__all__ = [
    "AlertLevel",
    "Artifact",
    "Api",
    "Audio",
    "CustomChart",
    "Html",
    "Molecule",
    "Object3D",
    "Plotly",
    "Video",
    "agent",
    "alert",
    "link_model",
    "log_artifact",
    "log_model",
    "use_artifact",
    "use_model",
    "sweep",
    "sklearn",
    "tensorboard",
    "ConfigError",
    "CorruptPartError",
    "Histogram",
    "Image",
    "Metric",
    "Settings",
    "Table",
    "define_metric",
    "login",
    "mark_preempting",
    "save",
    "scan",
    "unwatch",
    "watch",
    "ForkPointError",
    "KeyCollisionWarning",
    "Lake",
    "Plot",
    "QueryError",
    "Run",
    "RunNotFoundError",
    "RunlakeError",
    "StepOrderWarning",
    "compact",
    "compare",
    "connect",
    "descendants",
    "doctor",
    "finish",
    "history",
    "init",
    "lineage",
    "log",
    "plot",
    "run",
    "runs",
    "sql",
    "sync",
    "tree",
]

from . import plot, sklearn, tensorboard  # noqa: E402
from .plot import plot_table  # noqa: E402 - wandb.plot_table, as wandb exports it at the top
from .sweeps import agent, sweep  # noqa: E402 - wandb.sweep / wandb.agent, offline - namespaces (wandb.plot.*, wandb.sklearn.*, wandb.tensorboard.patch)

__all__ += ["plot_table"]
