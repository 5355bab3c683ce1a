"""`Runs` and `Run` of W&B's public API (wandb/apis/public/runs.py) over a root: read-only
views of `runs` rows, whose history reads go through the lineage, plus the edits W&B allows on
a run that is not running (attributes, config, summary, delete)."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, overload

import polars as pl

from ..errors import RunNotFoundError
from . import filters as filtering
from .console import OUTPUT_LOG, ConsoleLogs, File, output_log, system_history
from .history import HistoryScan, check_keys, pandas_module, read_history, rows

if TYPE_CHECKING:
    from ..lake import Lake

Format = Literal["default", "pandas", "polars"]
SWEEP: list[Any] = []  # the Sweep class (public/sweeps.py registers it: that module imports this one)


def _iso(value: Any) -> str | None:
    """W&B's ISO 8601 timestamp text (UTC, seconds) of a `runs` timestamp."""
    if value is None:
        return None
    if isinstance(value, datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    else:
        stamp = datetime.fromtimestamp(float(value), tz=timezone.utc)
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Summary(MutableMapping[str, Any]):
    """A run's summary as W&B's HTTPSummary: a dict you may change, then `update()` (or
    `run.update()`) writes it. `_json_dict` is the stored summary as plain JSON values."""

    def __init__(self, run: Run, values: dict[str, Any]) -> None:
        self._run = run
        self._json_dict = values

    def __getitem__(self, key: str) -> Any:
        return self._json_dict[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._json_dict[key] = value

    def __delitem__(self, key: str) -> None:
        del self._json_dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json_dict)

    def __len__(self) -> int:
        return len(self._json_dict)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._json_dict[key]
        except KeyError:
            raise AttributeError(key) from None

    def update(self, other: Any = None, /, **more: Any) -> None:  # type: ignore[override]
        """Set the given keys (if any) and write the summary."""
        if other is not None:
            self._json_dict.update(dict(other))
        self._json_dict.update(more)
        self._run._write(summary=dict(self._json_dict))

    def __repr__(self) -> str:
        return repr(self._json_dict)


class Run:
    """One run, read-only except for the edits W&B's API allows (set `name`, `tags`, `notes`,
    `group`, `job_type`, `config[...]`, `summary[...]`, then `update()`)."""

    def __init__(self, lake: Lake, row: dict[str, Any], entity: str | None = None) -> None:
        self._lake = lake
        self._load(row)
        self._default_entity = entity

    def _load(self, row: dict[str, Any]) -> None:
        self._row = row
        self.id: str = row["run_id"]
        self.project: str = row["project"]
        self.name: str | None = row["name"]
        self.tags: list[str] = list(row.get("tags") or [])
        self.notes: str | None = row.get("notes")
        self.group: str | None = row.get("group")
        self.job_type: str | None = row.get("job_type")
        self._config: dict[str, Any] | None = None
        self._summary: Summary | None = None
        self._record: Any = None

    # ---- identity ----------------------------------------------------------------------
    @property
    def display_name(self) -> str | None:
        return self.name

    @display_name.setter
    def display_name(self, value: str | None) -> None:
        self.name = value

    @property
    def storage_id(self) -> str:
        return self.id

    @property
    def entity(self) -> str | None:
        """The entity stored with the run (init(entity=...)), else the Api's default."""
        return self._row.get("entity") or self._default_entity

    @property
    def username(self) -> str | None:
        return self.entity

    @property
    def path(self) -> list[str]:
        """[entity, project, run id] ("" for an entity nobody gave): "/".join(run.path) is a
        path `Api.run()` accepts."""
        return [self.entity or "", self.project, self.id]

    @property
    def url(self) -> None:
        """None: a root has no web address (`runlake ui` serves one locally)."""
        return None

    @property
    def state(self) -> str:
        return str(self._row["state"])

    @property
    def created_at(self) -> str | None:
        return _iso(self._row.get("created_at"))

    @property
    def heartbeat_at(self) -> str | None:
        return _iso(self._row.get("heartbeat_at"))

    @property
    def finished_at(self) -> str | None:
        return _iso(self._row.get("finished_at"))

    @property
    def description(self) -> str | None:
        return self.notes

    @property
    def lastHistoryStep(self) -> int:  # noqa: N802 - W&B's name
        """The last step of the run's effective history (its parent's part included), -1 if none."""
        last = self._row.get("last_step")
        return -1 if last is None else int(last)

    @property
    def sweep_name(self) -> str | None:
        return self.metadata.get("sweep_id")

    @property
    def sweep(self) -> Any:
        """The sweep this run is a trial of (an Api `Sweep`), or None."""
        sweep_id = self._row.get("sweep_id") or self.sweep_name
        if not sweep_id:
            return None
        found = self._lake.sweeps(self.project)
        rows = [r for r in found.iter_rows(named=True) if r["sweep_id"] == sweep_id]
        return SWEEP[0](self._lake, rows[0], self._default_entity) if rows and SWEEP else None

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(json.loads(self._row.get("metadata") or "null") or {})

    # ---- lineage (what W&B's API cannot say) ---------------------------------------------
    @property
    def parent_run_id(self) -> str | None:
        """The run this one was forked from (None for a root run)."""
        return self._row.get("parent_run_id")

    @property
    def fork_step(self) -> int | None:
        """The parent's last step this run inherits."""
        step = self._row.get("fork_step")
        return None if step is None else int(step)

    @property
    def parent(self) -> Run | None:
        parent = self.parent_run_id
        if parent is None:
            return None
        found = self._lake.sql("SELECT * FROM runs WHERE run_id = ?", [parent])
        return Run(self._lake, found.row(0, named=True), self._default_entity) if found.height else None

    @property
    def segments(self) -> pl.DataFrame:
        """Its segments (0, and one more per rewind): kind, parent node, cutoff step."""
        return self._lake.run(self.id).segments

    @property
    def lineage(self) -> pl.DataFrame:
        """The chain of nodes its effective history reads, nearest first (`Lake.lineage`)."""
        return self._lake.lineage(self.id)

    # ---- config and summary ---------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """Plain values (W&B's {"value": ...} wrappers and its `_wandb` key left out)."""
        if self._config is None:
            raw = json.loads(self._row.get("config") or "null") or {}
            self._config = {
                k: (v["value"] if isinstance(v, dict) and set(v) <= {"value", "desc"} and "value" in v else v)
                for k, v in raw.items()
                if k != "_wandb"
            }
        return self._config

    @property
    def rawconfig(self) -> dict[str, Any]:
        return dict(json.loads(self._row.get("config") or "null") or {})

    @property
    def json_config(self) -> str:
        return json.dumps({k: {"value": v, "desc": None} for k, v in self.config.items()})

    @property
    def summary(self) -> Summary:
        if self._summary is None:
            self._summary = Summary(self, json.loads(self._row.get("summary") or "null") or {})
        return self._summary

    @property
    def summary_metrics(self) -> dict[str, Any]:
        return dict(self.summary._json_dict)

    @property
    def system_metrics(self) -> dict[str, Any]:
        """The last sample of each system metric (W&B's `system.*` keys), as W&B's public API."""
        last = self._lake.system_metrics(self.id).sort("time").group_by("key", maintain_order=True).last()
        return dict(zip(last["key"].to_list(), last["value"].to_list(), strict=True))

    # ---- edits ---------------------------------------------------------------------------
    def _write(self, **changes: Any) -> None:
        self._lake.update_run(self.id, **changes)
        self.load(force=True)

    def update(self) -> None:
        """Write this object's name, tags, notes, group, job_type, config and summary (a run
        that is not running; history is never touched)."""
        self._write(
            name=self.name,
            tags=self.tags if isinstance(self.tags, str) else list(self.tags),
            notes=self.notes,
            group=self.group,
            job_type=self.job_type,
            config=dict(self.config),
            summary=dict(self.summary._json_dict),
        )

    save = update

    def delete(self, delete_artifacts: bool = False) -> None:
        """Take the run out of every listing. Forks of it keep reading the steps they inherit
        from it; compaction reclaims its rows only once nothing reads them."""
        self._lake.delete_run(self.id)

    def load(self, force: bool = False) -> dict[str, Any]:
        """Read the run's row again (force=True; otherwise what was read is kept)."""
        if force:
            found = self._lake.sql("SELECT * FROM runs WHERE run_id = ?", [self.id])
            if found.height == 0:
                raise RunNotFoundError(f"run {self.id!r} does not exist (any more) in root {self._lake.url}")
            self._load(found.row(0, named=True))
        return dict(self._row)

    # ---- history -------------------------------------------------------------------------
    def history(
        self,
        samples: int = 500,
        keys: list[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: Literal["default", "system"] = "default",
        format: Format | None = None,  # noqa: A002 - W&B's Runs.histories name
    ) -> Any:
        """Sampled history: at most `samples` rows (the same ones every call: see
        runlake/public/history.py), with `keys` only rows that have all of them. pandas=True:
        a pandas DataFrame; pandas=False: a list of dicts; format="polars": a polars DataFrame."""
        keys = check_keys(keys)
        if stream not in ("default", "system"):
            raise ValueError(f"stream must be 'default' or 'system', got {stream!r}")
        if stream == "system":  # system metrics, on their own timeline (public/console.py)
            frame = system_history(self._lake, self.id, samples)
            return _as(
                frame.select(c for c in frame.columns if not keys or c in (*keys, "_timestamp", "_runtime")),
                format or ("pandas" if pandas else "default"),
            )
        frame = read_history(self._lake, self.id, samples=samples, keys=keys, x_axis=x_axis)
        return _as(frame, format or ("pandas" if pandas else "default"))

    def scan_history(
        self,
        keys: list[str] | None = None,
        page_size: int = 1_000,
        min_step: int = 0,
        max_step: int | None = None,
        use_cache: bool = True,
    ) -> HistoryScan:
        """Every row from min_step (inclusive) to max_step (exclusive), streamed in windows of
        steps (memory bounded by a window); with `keys`, the rows that have all of them."""
        keys = check_keys(keys)
        for name, value in (("page_size", page_size), ("min_step", min_step)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (1 if name == "page_size" else 0)
            ):
                raise ValueError(
                    f"{name} must be an int of at least {1 if name == 'page_size' else 0}, got {value!r}"
                )
        last = self.lastHistoryStep
        end = last + 1 if max_step is None else min(int(max_step), last + 1)
        return HistoryScan(self._lake, self.id, keys, page_size, min_step, end)

    def file(self, name: str) -> File:
        """A file of the run: "output.log" (its console output) is the one runlake keeps."""
        if name != OUTPUT_LOG or not len(self.console_logs()):
            raise FileNotFoundError(f"run {self.id!r} has no file {name!r} (runlake keeps output.log)")
        return File(OUTPUT_LOG, output_log(self._lake, self.id))

    def files(self, names: list[str] | None = None, per_page: int = 50) -> list[File]:
        wanted = [OUTPUT_LOG] if names is None else [n for n in names if n == OUTPUT_LOG]
        return [self.file(OUTPUT_LOG)] if wanted and len(self.console_logs()) else []

    def console_logs(self, *, per_page: int = 1000, last: int | None = None) -> ConsoleLogs:
        """The run's console output, oldest line first (`last=N`: the last N lines)."""
        return ConsoleLogs(self._lake, self.id, per_page=per_page, last=last)

    def _artifacts(self, direction: str) -> list[Any]:
        found = self._lake.sql(
            "SELECT DISTINCT u.artifact_project, u.name, u.version FROM artifact_usage AS u JOIN artifacts AS a "
            "ON a.project = u.artifact_project AND a.name = u.name AND a.version = u.version "
            "WHERE u.run_id = ? AND u.direction = ? ORDER BY 1, 2, 3",
            [self.id, direction],
        )
        return [self._lake.artifact(f"{p}/{n}:v{v}") for p, n, v in found.rows()]

    def logged_artifacts(self, per_page: int = 100) -> list[Any]:
        """The artifact versions this run logged (deleted ones left out)."""
        return self._artifacts("output")

    def used_artifacts(self, per_page: int = 100) -> list[Any]:
        """The artifact versions this run used."""
        return self._artifacts("input")

    def __repr__(self) -> str:
        return f"<Run {'/'.join(self.path)} ({self.state})>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)


def _as(frame: pl.DataFrame, fmt: str) -> Any:
    if fmt == "polars":
        return frame
    if fmt == "pandas":
        pandas_module()
        return frame.to_pandas()
    if fmt == "default":
        return rows(frame)
    raise ValueError(f"format must be 'default', 'pandas' or 'polars', got {fmt!r}")


class Runs:
    """The runs of a project that match W&B filters, in W&B's order: a lazy sequence (len,
    iteration, index, slice). The matching ids are read once, on first use; each run's row is
    read a page (`per_page` runs) at a time."""

    def __init__(
        self,
        lake: Lake,
        entity: str | None,
        project: str | None,
        filters: dict[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        include_sweeps: bool = False,
        lazy: bool = True,
    ) -> None:
        if isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 1:
            raise ValueError(f"per_page must be a positive int, got {per_page!r}")
        self._lake = lake
        self.entity, self.project = entity, project
        self.filters = filters or {}
        self.order = order or "+created_at"
        self.per_page = per_page
        # built now, so a bad filter or order fails at api.runs(), naming what is wrong
        condition, params = filtering.where(self.filters)
        ordering, order_params = filtering.order_by(self.order)
        scope, scope_params = "", []
        if project is not None:
            scope += " AND project = ?"
            scope_params.append(project)
        if entity:  # a run that stored no entity belongs to every entity's view of the project
            scope += " AND (entity IS NULL OR entity = ?)"
            scope_params.append(entity)
        self._query = f"SELECT run_id FROM runs WHERE ({condition}){scope} ORDER BY {ordering}"
        self._params = [*params, *scope_params, *order_params]
        self._ids: list[str] | None = None
        self._loaded: dict[str, Run] = {}

    def _all_ids(self) -> list[str]:
        if self._ids is None:
            self._ids = self._lake.sql(self._query, self._params)["run_id"].to_list()
        return self._ids

    def _page(self, start: int) -> None:
        ids = self._all_ids()
        wanted = [i for i in ids[start : start + self.per_page] if i not in self._loaded]
        if not wanted:
            return
        found = self._lake.sql("SELECT * FROM runs WHERE run_id IN (SELECT unnest(?))", [wanted])
        for row in found.iter_rows(named=True):
            self._loaded[row["run_id"]] = Run(self._lake, row, self.entity)

    def _run(self, position: int) -> Run:
        run_id = self._all_ids()[position]
        if run_id not in self._loaded:
            self._page(position - position % self.per_page)
        found = self._loaded.get(run_id)
        if found is None:  # deleted since the ids were read
            raise RunNotFoundError(f"run {run_id!r} no longer exists in root {self._lake.url}")
        return found

    def __len__(self) -> int:
        return len(self._all_ids())

    @property
    def length(self) -> int:
        return len(self)

    @overload
    def __getitem__(self, index: int) -> Run: ...
    @overload
    def __getitem__(self, index: slice) -> list[Run]: ...
    def __getitem__(self, index: int | slice) -> Run | list[Run]:
        n = len(self)
        if isinstance(index, slice):
            return [self._run(i) for i in range(*index.indices(n))]
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"Runs indices are ints or slices, got {type(index).__name__}")
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"run index {index} out of range ({n} runs)")
        return self._run(index)

    def __iter__(self) -> Iterator[Run]:
        for i in range(len(self)):
            yield self._run(i)

    def __bool__(self) -> bool:
        return len(self) > 0

    def histories(
        self,
        samples: int = 500,
        keys: list[str] | None = None,
        x_axis: str = "_step",
        format: Format = "default",  # noqa: A002 - W&B's name
        stream: Literal["default", "system"] = "default",
    ) -> Any:
        """Every run's sampled history with a `run_id` column: a list of dicts ("default"), a
        pandas DataFrame ("pandas") or a polars one ("polars"), columns sorted as W&B does."""
        if format not in ("default", "pandas", "polars"):
            raise ValueError(f"Invalid format: {format}. Must be one of 'default', 'pandas', 'polars'")
        if format == "pandas":
            pandas_module()
        frames = []
        for run in self:
            frame = run.history(samples=samples, keys=keys, x_axis=x_axis, stream=stream, format="polars")
            if frame.height:
                frames.append(frame.with_columns(pl.lit(run.id).alias("run_id")))
        if format == "default":
            return [row for f in frames for row in rows(f)]
        combined = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
        combined = combined.select(sorted(combined.columns))
        return combined.to_pandas() if format == "pandas" else combined

    def __repr__(self) -> str:
        return f"<Runs {self.entity or ''}/{self.project or ''}>"
