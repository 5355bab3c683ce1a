"""The artifact methods of a run (`log_artifact`, `use_artifact`, `link_artifact`,
`log_model`, `use_model`, `link_model`, `log_code`), as W&B's Run has them; mixed into
write/run.py's Run. Each logging and use is recorded in the run's meta directory."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ..errors import RunlakeError
from ..store.manifests import ArtifactEdgeDoc, ArtifactVersionDoc
from ..store.names import check_name
from . import artifact_store as store
from .artifact import REGISTRY_PROJECT, Artifact, _base, _from_path, find


class RunArtifacts:
    """The artifact methods of a run (mixed into write/run.py's Run)."""

    project: str
    id: str
    _pending: Any
    _writer: Any

    @property
    def step(self) -> int:  # Run's
        raise NotImplementedError

    def _step_now(self) -> int | None:
        step = self.step - (self._pending is None)
        return step if step >= 0 else None

    def _edge(self, direction: str, art: Artifact) -> None:
        doc = art._doc
        assert doc is not None
        edge = ArtifactEdgeDoc(
            run_id=self.id,
            direction=direction,
            project=doc.project,
            name=doc.name,
            version=doc.version,
            type=doc.type,
            digest=doc.digest,
            step=self._step_now(),
            segment=int(self._writer.segment),
            at=time.time(),
            size=doc.size,
            files=doc.files if direction == "output" else [],
        )
        store.record_edge(self._writer.storage, edge, self.project)

    def log_artifact(
        self,
        artifact_or_path: Artifact | str,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> Artifact:  # noqa: A002
        """Store the artifact's files (each content once) and make its next version; `latest`
        and `aliases` name it. The version records this run and its step."""
        art = (
            artifact_or_path
            if isinstance(artifact_or_path, Artifact)
            else _from_path(artifact_or_path, name, type)
        )
        if isinstance(aliases, str):
            aliases = [aliases]
        art._commit(self._writer.storage, self.project, self.id, self._step_now(), list(aliases or []))
        self._edge("output", art)
        return art

    def use_artifact(
        self,
        artifact_or_name: Artifact | str,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Artifact:  # noqa: A002
        """A logged version ("name", "name:v2", "name:alias", "project/name:alias"), recorded as used by this run."""
        if isinstance(artifact_or_name, Artifact):
            art = artifact_or_name
            if art._doc is None:
                art._commit(
                    self._writer.storage, self.project, self.id, self._step_now(), list(aliases or [])
                )
        else:
            art = find(self._writer.storage, self.project, artifact_or_name)
        if type is not None and art.type != type:
            raise RunlakeError(f"artifact {art.name} has type {art.type!r}, not {type!r}")
        self._edge("input", art)
        return art

    def link_artifact(
        self, artifact: Artifact, target_path: str, aliases: list[str] | None = None
    ) -> Artifact:
        """Link a logged version under a collection (W&B's portfolio or registry): the target's
        last part names it; "wandb-registry-<r>/<name>" and "model-registry/<name>" are the local
        registry (`_registry`), "project/name" or "entity/project/name" that project, a bare
        name the run's project."""
        if artifact._doc is None:
            self.log_artifact(artifact)
        assert artifact._doc is not None
        parts = target_path.strip("/").split("/")
        collection = check_name(parts[-1].split(":")[0].replace(" ", "-"), "collection name")
        where = parts[-2] if len(parts) >= 2 else self.project
        target = (
            REGISTRY_PROJECT if where.startswith("wandb-registry-") or where == "model-registry" else where
        )
        check_name(target, "project name")
        source = artifact._doc
        linked = ArtifactVersionDoc(
            project=target,
            name=collection,
            version=0,
            type=source.type,
            digest=source.digest,
            files=source.files,
            references=source.references,
            description=source.description,
            metadata={**source.metadata, "linked_from": f"{source.project}/{source.name}:v{source.version}"},
            run_id=self.id,
            step=self._step_now(),
            created_at=time.time(),
            size=source.size,
        )
        storage = self._writer.storage
        doc = store.commit_version(storage, linked)
        for alias in dict.fromkeys(["latest", *(aliases or [])]):
            store.set_alias(storage, target, collection, alias, doc.version)
        return Artifact._logged(storage, doc)

    def log_model(self, path: str, name: str | None = None, aliases: list[str] | None = None) -> Artifact:
        return self.log_artifact(
            _from_path(path, name or f"run-{self.id}-{_base(path)}", "model"), aliases=aliases
        )

    def use_model(self, name: str) -> str:
        """Download a model artifact; its local path."""
        art = self.use_artifact(name)
        if art.type != "model":
            raise RunlakeError(f"artifact {art.name} has type {art.type!r}, not 'model'")
        root = art.download()
        return root if len(art.files()) != 1 else os.path.join(root, art.files()[0].path)

    def link_model(
        self, path: str, registered_model_name: str, name: str | None = None, aliases: list[str] | None = None
    ) -> Artifact:
        art = self.log_model(path, name=name)
        return self.link_artifact(art, f"wandb-registry-model/{registered_model_name}", aliases=aliases)

    def log_code(
        self,
        root: str | None = ".",
        name: str | None = None,
        include_fn: Callable[..., bool] | None = None,
        exclude_fn: Callable[..., bool] | None = None,
    ) -> Artifact | None:
        """The source files under `root` (default: *.py, skipping virtualenvs, .git, caches) as a `code` artifact."""
        root = os.path.abspath(root or ".")
        include = include_fn or (lambda path, root=None: path.endswith(".py"))
        skip = {".git", ".venv", "venv", "__pycache__", "node_modules", "runlake-data", "wandb", "artifacts"}
        art = Artifact(name or f"source-{self.project}-{self.id}", "code")
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith("."))
            for file in sorted(files):
                full = os.path.join(directory, file)
                if include(full, root) and not (exclude_fn and exclude_fn(full, root)):
                    art.add_file(full, os.path.relpath(full, root).replace(os.sep, "/"))
        if not art._entries:
            return None
        return self.log_artifact(art)
