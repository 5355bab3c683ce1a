"""`runlake.Api()`: W&B's public API (wandb.Api, wandb 0.31) over a root, so analysis scripts
written for `wandb.Api()` run unchanged after `import runlake as wandb`.

Paths are W&B's: "project", "entity/project", "entity/project/run_id" (also
"entity/project/runs/run_id", "project/run_id", "project:run_id" and a bare run id). The
entity is matched when a run stored one (init(entity=...)); a run that stored none is found
under any entity, so scripts that name their W&B entity keep working.
"""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from ..errors import RunNotFoundError
from ..lake import Lake, default
from ..store.names import check_name
from .runs import Run, Runs
from .sweeps import Sweep


class Project:
    """A project of the root (W&B's public Project)."""

    def __init__(self, api: Api, name: str, entity: str | None, runs: int, created_at: Any) -> None:
        self._api = api
        self.name, self.entity, self.run_count = name, entity, runs
        self._created_at = created_at

    @property
    def path(self) -> list[str]:
        return [self.entity or "", self.name]

    @property
    def url(self) -> None:
        return None

    @property
    def id(self) -> str:
        return self.name

    @property
    def created_at(self) -> str | None:
        from .runs import _iso

        return _iso(self._created_at)

    def runs(
        self, filters: dict[str, Any] | None = None, order: str = "+created_at", per_page: int = 50
    ) -> Runs:
        return self._api.runs(
            f"{self.entity}/{self.name}" if self.entity else self.name, filters, order, per_page
        )

    def sweeps(self, per_page: int = 50) -> list[Sweep]:
        frame = self._api.lake.sweeps(self.name)
        return [Sweep(self._api.lake, row, self.entity) for row in frame.iter_rows(named=True)]

    def __repr__(self) -> str:
        return f"<Project {'/'.join(self.path)}>"


class Api:
    """Read (and edit) the runs of a root the way `wandb.Api()` reads W&B's server.

    `overrides` may hold "entity" and "project" (the defaults for paths that leave them out)
    and "root" (same as `root=`); `timeout` and `api_key` are accepted for W&B's signature and
    unused (there is no server to call). The root: `root=`, $RUNLAKE_ROOT, ./runlake-data.
    """

    def __init__(
        self,
        overrides: dict[str, Any] | None = None,
        timeout: int | None = None,
        api_key: str | None = None,
        root: str | os.PathLike[str] | None = None,
    ) -> None:
        overrides = dict(overrides or {})
        if root is None:
            root = overrides.get("root")
        self.settings: dict[str, Any] = {
            "entity": overrides.get("entity") or os.environ.get("WANDB_ENTITY"),
            "project": overrides.get("project") or os.environ.get("WANDB_PROJECT"),
            "base_url": None,
        }
        self.api_key = api_key
        self.timeout = timeout
        self._lake: Lake = default(root)
        self._runs: dict[str, Runs] = {}

    @property
    def lake(self) -> Lake:
        """The root this Api reads (a `runlake.Lake`)."""
        return self._lake

    @property
    def default_entity(self) -> str | None:
        return self.settings["entity"]

    def flush(self) -> None:
        """Forget cached `runs()` results: the next call reads the root again."""
        self._runs = {}

    # ---- paths ---------------------------------------------------------------------------
    def _project_path(self, path: str | None) -> tuple[str | None, str | None]:
        if path is None:
            return self.settings["entity"], self.settings["project"]
        if not isinstance(path, str):
            raise ValueError(f"a project path is a string, got {type(path).__name__}")
        parts = path.strip("/ ").split("/")
        if len(parts) == 1 and parts[0]:
            entity, project = self.settings["entity"], parts[0]
        elif len(parts) == 2 and all(parts):
            entity, project = parts
        else:
            raise ValueError(f"invalid project path {path!r}: expected 'project' or 'entity/project'")
        check_name(project, "project name")
        return entity, project

    def _run_path(self, path: str) -> tuple[str | None, str | None, str]:
        if not isinstance(path, str) or not path.strip("/ "):
            raise ValueError(f"invalid run path {path!r}: expected 'entity/project/run_id'")
        text = path.replace("/runs/", "/").strip("/ ")
        parts = text.split("/")
        entity, project, run_id = self.settings["entity"], self.settings["project"], None
        if len(parts) == 3:
            entity, project, run_id = parts
        elif len(parts) == 2:
            if ":" in parts[1]:
                entity = parts[0]
                project, run_id = parts[1].split(":", 1)
            else:
                project, run_id = parts
        elif len(parts) == 1:
            if ":" in parts[0]:
                project, run_id = parts[0].split(":", 1)
            else:
                run_id = parts[0]
        else:
            raise ValueError(f"invalid run path {path!r}: expected 'entity/project/run_id'")
        if not run_id:
            raise ValueError(f"invalid run path {path!r}: no run id")
        check_name(run_id, "run id")
        if project:
            check_name(project, "project name")
        return entity or None, project or None, run_id

    # ---- reads ---------------------------------------------------------------------------
    def runs(
        self,
        path: str | None = None,
        filters: dict[str, Any] | None = None,
        order: str = "+created_at",
        per_page: int = 50,
        include_sweeps: bool = False,
        lazy: bool = True,
    ) -> Runs:
        """The runs of a project ("project" or "entity/project"; None: the default project,
        else every project) matching W&B's MongoDB-style `filters`, in `order`
        ("[+|-]field", + ascending)."""
        entity, project = self._project_path(path)
        key = f"{entity}/{project}|{filters!r}|{order}|{per_page}"
        cached = self._runs.get(key)
        if cached is not None:
            return cached
        runs = Runs(self._lake, entity, project, filters, order, per_page, include_sweeps, lazy)
        self._runs[key] = runs
        return runs

    def run(self, path: str = "") -> Run:
        """One run by path ("entity/project/run_id", "project/run_id" or "run_id")."""
        entity, project, run_id = self._run_path(path)
        found = self._lake.sql("SELECT * FROM runs WHERE run_id = ?", [run_id])
        if found.height == 0:
            raise RunNotFoundError(f"Could not find run {path!r} in root {self._lake.url}")
        row = found.row(0, named=True)
        if project is not None and row["project"] != project:
            raise RunNotFoundError(
                f"Could not find run {path!r}: run {run_id!r} is in project {row['project']!r}, not {project!r}"
            )
        if entity and row.get("entity") and row["entity"] != entity:
            raise RunNotFoundError(
                f"Could not find run {path!r}: run {run_id!r} belongs to entity {row['entity']!r}"
            )
        return Run(self._lake, row, entity or self.settings["entity"])

    def projects(self, entity: str | None = None, per_page: int = 200) -> list[Project]:
        """The projects of the root (those with a run of `entity`, or without an entity)."""
        query = "SELECT project, min(created_at) AS created_at, count(*) AS n FROM runs"
        params: list[Any] = []
        if entity:
            query += " WHERE entity IS NULL OR entity = ?"
            params.append(entity)
        frame = self._lake.sql(query + " GROUP BY project ORDER BY project", params)
        who = entity or self.settings["entity"]
        return [
            Project(self, r["project"], who, int(r["n"]), r["created_at"])
            for r in frame.iter_rows(named=True)
        ]

    def project(self, name: str, entity: str | None = None) -> Project:
        check_name(name, "project name")
        for project in self.projects(entity):
            if project.name == name:
                return project
        raise ValueError(f"project {name!r} has no runs in root {self._lake.url}")

    def from_path(self, path: str) -> Project | Run:
        parts = path.strip("/ ").split("/")
        if len(parts) == 1:
            return self.project(parts[0])
        if len(parts) == 2:
            return self.project(parts[1], parts[0])
        return self.run(path)

    def sweep(self, path: str = "") -> Sweep:
        """A sweep by path ("entity/project/sweep_id", "project/sweep_id" or its id)."""
        parts = [p for p in path.replace("/sweeps/", "/").strip("/ ").split("/") if p]
        if not parts:
            raise ValueError(f"invalid sweep path {path!r}: expected 'entity/project/sweep_id'")
        project = parts[-2] if len(parts) >= 2 else self.settings["project"]
        sweep_id = parts[-1]
        check_name(sweep_id, "sweep id")
        found = (
            self._lake.sweeps(project).filter(pl.col("sweep_id") == sweep_id)
            if project
            else self._lake.sweeps().filter(pl.col("sweep_id") == sweep_id)
        )
        if found.height == 0:
            raise ValueError(f"Could not find sweep {path!r} in root {self._lake.url}")
        return Sweep(self._lake, found.row(0, named=True), self.settings["entity"])

    def artifact(self, name: str, type: str | None = None) -> Any:  # noqa: A002 - W&B's name
        """A logged artifact version: "entity/project/name:alias", "project/name:vN", or
        "name:alias" in the default project (overrides={"project": ...})."""
        art = self._lake.artifact(name, self.settings["project"])
        if type is not None and art.type != type:
            raise ValueError(f"artifact {art.qualified_name} has type {art.type!r}, not {type!r}")
        return art

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        try:
            self.artifact(name, type)
        except (LookupError, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return f"<Api root={self._lake.url}>"
