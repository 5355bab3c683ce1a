"""`runlake.Lake`: one root, its catalog and caches, and every operation on it.

    lake = runlake.Lake("s3://bucket/runs", storage_options={...})
    run = lake.init(project="p"); run.log({...}); run.finish()
    lake.history(run.id); lake.sql("SELECT ..."); lake.close()

The module-level functions (`runlake.history(...)`, ...) are thin calls on a default Lake for
the resolved root (`root=`, $RUNLAKE_ROOT, ./runlake-data), made once per process.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import threading
from collections.abc import Sequence
from typing import Any

import duckdb
import polars as pl

from .errors import RunlakeError
from .ops import compact as compact_op
from .ops import doctor as doctor_op
from .ops import export as export_op
from .ops import sync as sync_op
from .read import checkpoint
from .read import streams as stream_reads
from .read.catalog import Catalog
from .read.charts import Charts, Plot, build
from .read.persist import cache_path
from .read.reader import Reader
from .read.record import RunRecord
from .read.sandbox import Limits, Params, Result
from .store import settings
from .store.layout import MAX_STEP
from .store.storage import Storage
from .write import artifact_store, registry, start
from .write import edit as edit_op
from .write import sweeps as sweep_store
from .write.artifact import Artifact
from .write.artifact import find as artifact_find
from .write.edit import RunEdit
from .write.run import Run

PathLike = str | os.PathLike[str]
_MEDIA_PATH = re.compile(r"media/[^/\x00]+/[^/\x00]+/[a-z]+s/[A-Za-z0-9_.=-]+")


class Lake:
    """A root of run histories: write runs into it, read and query them, maintain it."""

    def __init__(
        self,
        root: PathLike | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
        refresh_every: float = 0.0,
        sql_memory: str | None = None,
    ) -> None:
        """`refresh_every`: a read may use a catalog up to this many seconds old (0: every read
        sees the root as it is; a server answering many requests a second sets 1).
        `sql_memory`: the engine memory one SQL query may use (a DuckDB size such as "2GB")."""
        self.storage = Storage(settings.root(root), settings.storage_options(storage_options))
        self._refresh_every = float(refresh_every)
        self._sql_memory = sql_memory
        self._reader: Reader | None = None
        self._charts: Charts | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.storage.url

    def __repr__(self) -> str:
        return f"runlake.Lake({self.storage.url!r})"

    def exists(self) -> bool:
        """Does the root exist yet (a local directory, or any object under the prefix)?"""
        return self.storage.exists(self.storage.root)

    @property
    def reader(self) -> Reader:
        """The read side, with its catalog (made on first use)."""
        with self._lock:
            if self._reader is None:
                catalog = Catalog(self.storage, cache_path(self.storage))
                key = self.storage.key
                self._reader = Reader(self.storage, catalog, prepare=lambda: registry.flush_open(key))
                self._reader.refresh_every = self._refresh_every
                self._reader.sql_memory = self._sql_memory
            return self._reader

    @property
    def refresh_every(self) -> float:
        return self._refresh_every

    def refresh(self, *, force: bool = False) -> None:
        """Bring the catalog up to the root now (`force`), or as `refresh_every` allows."""
        self.reader.refresh(force=force)

    @property
    def listed_at(self) -> float:
        """When the listing behind the catalog was taken (time.time(); 0: never): a change
        stamped before it is in what reads see."""
        return self.reader.catalog.listed_at

    def files(self) -> list[tuple[str, int | None]]:
        """Every history file (part or pack) the catalog indexes, with its size in bytes."""
        return self.reader.files()

    def close(self) -> None:
        """Release the catalog (saving its copy) and its temporary files. Runs are not affected."""
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def __enter__(self) -> Lake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing -------------------------------------------------------------------------
    def init(self, project: str | None = None, **kwargs: Any) -> Run:
        """Start a run in this root (the arguments of `runlake.init`, without root)."""
        return start.init(self.storage, project, **kwargs)

    init.__signature__ = start.signature(  # type: ignore[attr-defined]
        leading=inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )

    # ---- reading -------------------------------------------------------------------------
    def history(
        self,
        run_id: str,
        keys: Sequence[str] | str | None = None,
        *,
        segment: int | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> pl.DataFrame:
        """A run's effective history, wide and complete: one row per step where a selected key was logged.

        Args:
            keys: metric names to return (None: all). Rows are the steps where any of them was logged.
            segment: read an archived segment (left by a rewind) instead of the current one.
            min_step, max_step: only steps min_step <= step < max_step (W&B's scan_history bounds);
                only the files holding those steps are read.
        """
        steps = None
        if min_step is not None or max_step is not None:
            for name, value in (("min_step", min_step), ("max_step", max_step)):
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            steps = (min_step if min_step is not None else 0, max_step if max_step is not None else MAX_STEP)
        return self.reader.history(run_id, keys, segment=segment, steps=steps)

    def runs(self, project: str | None = None) -> pl.DataFrame:
        """One row per run: id, project, name, state, created_at, parent_run_id, fork_step, last_step, config, summary, ..."""
        return self.reader.runs(project)

    def alerts(
        self, run_id: str | None = None, *, project: str | None = None, level: str | None = None
    ) -> pl.DataFrame:
        """The alerts runs raised (`run.alert()`), oldest first: path, run_id, project, segment,
        step, alerted_at, level, title, text (also the SQL table `alerts`)."""
        where, params = ["TRUE"], []
        for column, value in (("run_id", run_id), ("project", project), ("level", level)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        return self.sql(f"SELECT * FROM alerts WHERE {' AND '.join(where)} ORDER BY alerted_at, path", params)

    def sweeps(self, project: str | None = None) -> pl.DataFrame:
        """The sweeps of the root (or of a project): sweep_id, project, entity, method, metric,
        created_at, config (JSON), trials, and their states."""
        return sweep_store.sweeps_frame(self.storage, project)

    def trials(self, sweep_id: str, project: str | None = None) -> pl.DataFrame:
        """A sweep's trials in order: number, run_id, state (a dead agent's running trial reads
        crashed), params (JSON), started and ended."""
        return sweep_store.trials_frame(self.storage, sweep_id, project)

    # ---- console lines and system metrics (read/streams.py) ------------------------------
    def console(
        self, run_id: str, *, raw: bool = False, label: str | None = None, grep: str | None = None
    ) -> pl.DataFrame:
        """A run's console output in order: line (its number in the run's log), time, step (the
        run's step when printed), stream (stdout/stderr), level, label, content, segment. Its own
        segments' lines up to each rewind point (`raw=True`: every line any of its segments
        printed); `label`: one process's; `grep`: lines matching a regular expression."""
        return stream_reads.console(self.reader, run_id, raw=raw, label=label, grep=grep)

    def system_metrics(self, run_id: str, *, raw: bool = False, label: str | None = None) -> pl.DataFrame:
        """A run's system metrics, long: time, runtime, step, key (W&B's `system.*`), value,
        label, segment; on their own timeline (never in `history()`). `raw` as `console()`."""
        return stream_reads.system_metrics(self.reader, run_id, raw=raw, label=label)

    # ---- artifacts (write/artifact.py, write/artifact_store.py) ---------------------------
    def artifact(self, name: str, project: str | None = None) -> Artifact:
        """A logged artifact version: "name[:alias|:vN]", "project/name:alias" or
        "entity/project/name:alias" (a registry path "wandb-registry-model/name:alias" too)."""
        parts = name.strip("/").split("/")
        default_project = project or (parts[-2] if len(parts) >= 2 else None)
        if default_project is None:
            raise ValueError(f'artifact {name!r}: give its project ("project/name:alias" or project=)')
        return artifact_find(self.storage, default_project, name)

    def checkpoint(self, run_id: str, step: int, name: str | None = None) -> pl.DataFrame:
        """The artifact versions a fork of `run_id` at `step` would start from: logged on the
        run's effective lineage (its ancestors' parts included, a rewind's abandoned steps not)
        at or below `step`, latest first: project, name, version, type, run_id, step."""
        query = (
            "SELECT a.project, a.name, a.version, a.type, a.run_id, a.step FROM artifacts AS a "
            "JOIN lineage AS l ON a.run_id = l.ancestor_run_id AND a.segment = l.ancestor_segment "
            "AND a.step > l.step_lo AND a.step <= l.step_hi WHERE l.run_id = ? AND a.step <= ?"
        )
        params: list[Any] = [run_id, step]
        if name is not None:
            query += " AND a.name = ?"
            params.append(name)
        return self.sql(query + " ORDER BY a.step DESC, a.created_at DESC", params)

    def delete_artifact(
        self, name: str, project: str, *, delete_aliases: bool = False, force: bool = False
    ) -> None:
        """Delete one version ("name:vN" or "name:alias"): its manifest (and, with
        `delete_aliases`, the aliases naming it) at once; its files, once no other version
        uses them, by the next compaction after the grace period. A version that is the
        checkpoint a fork of its run starts from (the latest of its name logged at or below a
        fork or rewind point) is kept unless `force`."""
        art = self.artifact(name, project)
        doc = art._doc
        assert doc is not None
        named = art.aliases
        if named and not delete_aliases:
            raise RunlakeError(
                f"artifact {art.qualified_name} has aliases {named}: pass delete_aliases=True to delete them too"
            )
        if not force and doc.run_id is not None and doc.step is not None:
            forks = self.sql(
                "SELECT run_id, cutoff FROM segments WHERE parent_run_id = ? AND cutoff IS NOT NULL",
                [doc.run_id],
            )
            logged = self.sql(
                "SELECT version, step FROM artifacts WHERE project = ? AND name = ? AND run_id = ? AND step IS NOT NULL",
                [doc.project, doc.name, doc.run_id],
            )
            for fork, cutoff in forks.rows():
                below = [(s, v) for v, s in logged.rows() if s <= cutoff]
                if below and max(below)[1] == doc.version:
                    raise RunlakeError(
                        f"artifact {art.qualified_name} is the checkpoint run {fork!r} was forked from (at step "
                        f"{cutoff} of run {doc.run_id!r}): pass force=True to delete it anyway"
                    )
        artifact_store.delete_version(self.storage, doc, named)

    def media(self, path: str) -> bytes:
        """The bytes of a logged media file, by the root-relative `path` its reference holds
        (`media/<project>/<run_id>/<kind>s/<name>`); any other path is a ValueError."""
        if not isinstance(path, str) or not _MEDIA_PATH.fullmatch(path) or ".." in path.split("/"):
            raise ValueError(f"not a media path of this root: {path!r:.120}")
        data = self.storage.read_bytes(f"{self.storage.root}/{path}")
        if data is None:
            raise FileNotFoundError(f"no media file {path!r} in root {self.url}")
        return data

    def lineage(self, run_id: str) -> pl.DataFrame:
        """The chain of (run_id, segment) nodes from the run up to its root, nearest first.

        Each row: the link's kind (root, fork, rewind), its parent node and cutoff step, and the
        step range (step_lo, step_hi] that node contributes to the run's effective history.
        """
        return self.reader.lineage(run_id)

    def run(self, run_id: str) -> RunRecord:
        """One run as a read-only record: its `runs()` row, config, summary, metadata,
        define_metric rules, lineage, segments and descendants (what `runlake show` prints)."""
        return self.reader.record(run_id)

    def sql(
        self,
        query: str,
        params: Params = None,
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
    ) -> pl.DataFrame:
        """Run read-only SQL over the views runs, lineage, history and raw_history; values go in
        `params`. Only reads are admitted, on a connection that cannot write or read outside the
        root. `timeout` (seconds) stops a query that runs longer (QueryError); `max_rows` returns
        at most that many rows (the start of the result)."""
        return self.query(query, params, timeout=timeout, max_rows=max_rows).frame

    def query(
        self,
        query: str,
        params: Params = None,
        *,
        timeout: float | None = None,
        max_rows: int | None = None,
        max_bytes: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Result:
        """`sql()` with every limit, and whether the result was cut to them (`Result.truncated`);
        setting `cancel` stops the query (what a server does when its client goes away)."""
        for name, value in (("timeout", timeout), ("max_rows", max_rows), ("max_bytes", max_bytes)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value < 0
            ):
                raise ValueError(f"{name} must be a number of at least 0, got {value!r}")
        limits = Limits(timeout=timeout, max_rows=max_rows, max_bytes=max_bytes)
        return self.reader.query(query, params, limits, cancel)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with every runlake view, as of now (call again to see newer data)."""
        return self.reader.connect()

    def compare(self, run_ids: Sequence[str] | str, keys: Sequence[str] | str) -> pl.DataFrame:
        """Several runs' effective histories in one frame aligned on `_step`.

        Columns: `_step`, then `<run_id>:<key>` for every run and key, in the order given.
        """
        return self.reader.compare(run_ids, keys)

    def descendants(self, run_id: str) -> pl.DataFrame:
        """Every run forked from this one, directly or through other forks (generation 1 = children)."""
        return self.reader.descendants(run_id)

    def tree(self, project: str | None = None) -> pl.DataFrame:
        """The fork forest of a project (or the whole root): one row per run with its root and depth."""
        return self.reader.tree(project)

    @property
    def charts(self) -> Charts:
        """Chart reads with their bounded caches (what the web app draws from)."""
        reader = self.reader  # (takes the lock itself)
        with self._lock:
            if self._charts is None or self._charts.reader is not reader:
                self._charts = Charts(reader)
            return self._charts

    def fork_tree(self, run_ids: Sequence[str] | str, key: str, *, x: str | None = None) -> Plot:
        """A metric of several runs as a fork tree: each lineage node's own points once, joined
        to its parent's point, with fork and rewind markers (what `plot` draws, as data)."""
        return build(self.reader, [run_ids] if isinstance(run_ids, str) else list(run_ids), key, x=x)

    def plot(self, run_ids: Sequence[str] | str, key: str, **kwargs: Any) -> Any:
        """Chart one metric of several runs as a fork tree (see `runlake.plot`)."""
        from . import plotting

        return plotting.plot_with(self.reader, run_ids, key, **kwargs)

    # ---- maintenance ---------------------------------------------------------------------
    def compact(self, *, progress: bool | None = None, grace: float | None = None) -> pl.DataFrame:
        """Pack the parts of every finished (or archived) segment into shared key-sorted files.

        Returns one row per segment packed now: run_id, segment, parts_before, parts_after,
        bytes_before, bytes_after (its share of the pack) and pack (the file's name).
        `progress=None` shows a progress bar on a terminal. The parts packed stay in place
        for `grace` seconds (None: $RUNLAKE_COMPACT_GRACE, default 600) so readers that listed
        them (a `connect()` snapshot) keep reading; the first compaction after that removes
        them (`grace=0`: at once). Runs deleted (`delete_run`) more than `grace` seconds ago
        that no other run's lineage reads are removed first. Then the catalog is exported into the root
        (`export_catalog`), so other engines see the packs.
        """
        result = compact_op.compact(self.storage, self.reader.refresh(), progress=progress, grace=grace)
        export_op.export(self.reader)  # (compaction wrote the commit log's checkpoint itself)
        return result

    def export_catalog(self) -> dict[str, Any]:
        """Write the root's catalog into it as Parquet (`_catalog/*.parquet`, then the stamp
        `_catalog/export.json`): runs, segments, the lineage closure and the file list that
        Spark (`runlake.spark`) and polars (`runlake.scan`) read. Returns the stamp."""
        stamp = export_op.export(self.reader)
        checkpoint.write(self.reader.catalog)  # and the commit log's checkpoint (new readers start there)
        return stamp

    def upgrade_catalog(self) -> dict[str, Any]:
        """Give a root written by releases before the commit log its log (`runlake catalog
        upgrade`): the log origin, then a checkpoint of a full listing, so new readers follow
        the log from there instead of listing every run. Returns {runs, checkpoint, had_log}."""
        had_log = self.storage.exists(self.storage.paths.log_origin)
        self.storage.journal.start_log()
        catalog = self.reader.catalog
        catalog.relist_root()
        directory = checkpoint.write(catalog)
        with self.reader.reading() as cur:
            (count,) = cur.execute("SELECT count(*) FROM run_meta").fetchone() or (0,)
        return {"runs": int(count), "checkpoint": self.storage.engine_path(directory), "had_log": had_log}

    def catalog_status(self) -> dict[str, Any]:
        """Is the exported catalog current? {exists, stale, exported_at, manifests_then, manifests_now}."""
        return export_op.status(self.storage, self.reader.catalog)

    def doctor(self, *, fix: bool = False) -> pl.DataFrame:
        """Read every part of the root; one row per unreadable part (empty frame: all healthy).

        With `fix=True` each bad part is moved to `<root>/_quarantine/` (kept, never deleted) and
        the index is switched, so queries work again without the lost steps.
        """
        return doctor_op.doctor(self.storage, self.reader.refresh(), fix=fix)

    def import_runs(
        self,
        source: str,
        path: str,
        *,
        project: str | None = None,
        progress: bool | None = None,
        **options: Any,
    ) -> Any:
        """Import the runs of another tracker (`runlake import`): source is "wandb" (an offline
        `wandb/` directory or `.wandb` file), "mlflow" (a tracking URI), "tensorboard" (a log
        directory) or "neptune" (a neptune-exporter directory). Returns an ImportReport."""
        from .importers import import_runs

        def existing(run_id: str, segment: int) -> tuple[Any, Any]:
            points = self.reader.sql(
                "SELECT key, step FROM raw_history WHERE run_id = ? AND segment = ?", [run_id, segment]
            )
            return points["key"].to_numpy(), points["step"].to_numpy()

        return import_runs(
            self.storage, source, path, existing=existing, project=project, progress=progress, **options
        )

    # ---- editing a run that is not running (W&B's public API allows these) ---------------
    def update_run(self, run_id: str, **changes: Any) -> None:
        """Change a finished (or crashed, failed) run's name, tags, notes, group, job_type,
        config (the whole new dict) or summary (the whole new dict: keys it lacks are removed).
        One new state manifest, written atomically; history is untouched. A running run is
        refused: change it from its own process."""
        unknown = sorted(set(changes) - set(RunEdit.__dataclass_fields__))
        if unknown:
            raise TypeError(f"update_run() got unknown field(s) {', '.join(unknown)}")
        edit_op.update_run(self.storage, run_id, RunEdit(**changes))

    def delete_run(self, run_id: str) -> None:
        """Delete a run that is not running: it leaves `runs()` and every listing at once. Its
        rows stay as long as a fork reads them (a fork's history still holds its parent's
        part), and compaction reclaims them once nothing does."""
        edit_op.delete_run(self.storage, run_id)

    def sync(self, dir: str | None = None) -> pl.DataFrame:  # noqa: A002 - init's name
        """Upload everything spilled for this root while its storage was down (`runlake sync`);
        `dir`: the `init(dir=...)` the runs were started with, if any."""
        return sync_op.sync(self.storage, dir)


class _Defaults:
    """The default Lake of each resolved root and options, made once per process."""

    def __init__(self) -> None:
        self.lakes: dict[tuple[str, str], Lake] = {}
        self.lock = threading.Lock()

    def get(self, root: PathLike | None, storage_options: dict[str, Any] | None) -> Lake:
        url = settings.root(root)
        options = settings.storage_options(storage_options)
        key = (
            url if "://" in url else os.path.abspath(url),
            json.dumps(options, sort_keys=True, default=str),
        )
        with self.lock:
            lake = self.lakes.get(key)
            if lake is None:
                lake = self.lakes[key] = Lake(url, storage_options=options)
            return lake


default_lakes = _Defaults()


def default(root: PathLike | None = None, storage_options: dict[str, Any] | None = None) -> Lake:
    """The default Lake of a root (`root=`, $RUNLAKE_ROOT, ./runlake-data) and its options."""
    return default_lakes.get(root, storage_options)
