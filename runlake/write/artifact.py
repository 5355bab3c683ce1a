"""`runlake.Artifact`, as `wandb.Artifact`, and the run methods that log and use artifacts
(`log_artifact`, `use_artifact`, `link_artifact`, `log_model`, `use_model`, `link_model`,
`log_code`). Storage is write/artifact_store.py: contents by sha256, versions as write-once
manifests, aliases, and a record of every logging and use in the run's meta directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlparse

from ..errors import RunlakeError
from ..store.manifests import ArtifactVersionDoc
from ..store.names import check_name
from ..store.storage import Storage
from . import artifact_store as store

REGISTRY_PROJECT = "_registry"  # link_artifact / link_model targets: a local registry of names


@dataclass
class Entry:
    """One file of an artifact (W&B's ArtifactManifestEntry): path, digest (sha256), size, ref."""

    path: str
    digest: str | None
    size: int | None
    ref: str | None = None
    _artifact: Artifact | None = None
    _source: str | None = None  # a local file not logged yet

    def download(self, root: str | None = None) -> str:
        assert self._artifact is not None
        return self._artifact._fetch(self, root)


class Artifact:
    """`runlake.Artifact(name, type, description=None, metadata=None)`: files (`add_file`,
    `add_dir`, `new_file`), references (`add_reference`) and tables (`add`), logged with
    `run.log_artifact(artifact, aliases=[...])` as version v0, v1, ... of `name`."""

    def __init__(
        self,
        name: str,
        type: str,  # noqa: A002 - W&B's name
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        use_as: str | None = None,
    ) -> None:
        self._name = check_name(name, "artifact name")
        check_name(type, "artifact type")
        self.type, self.description = type, description
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._entries: dict[str, Entry] = {}
        self._staging: str | None = None
        self._doc: ArtifactVersionDoc | None = None
        self._storage: Storage | None = None
        self._aliases: list[str] = []

    # ---- building ---------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._doc is not None:
            raise RunlakeError(
                f"artifact {self.name} is logged: its files cannot change (make a new Artifact)"
            )

    def add_file(
        self,
        local_path: str,
        name: str | None = None,
        is_tmp: bool | None = False,
        skip_cache: bool | None = False,
        policy: str = "mutable",
        overwrite: bool = False,
    ) -> Entry:
        self._check_open()
        local_path = os.fspath(local_path)
        if not os.path.isfile(local_path):
            raise FileNotFoundError(f"Artifact.add_file: no file at {local_path!r}")
        path = store.check_entry_path(name or os.path.basename(local_path))
        if path in self._entries and not overwrite:
            raise ValueError(
                f"artifact {self._name} already has a file {path!r} (overwrite=True replaces it)"
            )
        if policy == "immutable":  # W&B copies the file now: later changes to it are not logged
            local_path = self._stage_copy(local_path, path)
        entry = Entry(path, None, os.path.getsize(local_path), _artifact=self, _source=local_path)
        self._entries[path] = entry
        return entry

    def add_dir(
        self,
        local_path: str,
        name: str | None = None,
        skip_cache: bool | None = False,
        policy: str = "mutable",
        merge: bool = False,
    ) -> None:
        self._check_open()
        if not os.path.isdir(local_path):
            raise FileNotFoundError(f"Artifact.add_dir: no directory at {local_path!r}")
        for directory, dirs, files in os.walk(local_path):
            dirs.sort()
            for file in sorted(files):
                full = os.path.join(directory, file)
                if os.path.islink(full) and not os.path.isfile(full):
                    continue
                relative = os.path.relpath(full, local_path).replace(os.sep, "/")
                self.add_file(
                    full, f"{name}/{relative}" if name else relative, policy=policy, overwrite=merge
                )

    def add_reference(
        self, uri: str, name: str | None = None, checksum: bool = True, max_objects: int | None = None
    ) -> list[Entry]:
        """Keep `uri` as a reference (not copied); its sha256 is recorded when it can be read."""
        self._check_open()
        parsed = urlparse(uri)
        path = store.check_entry_path(
            name or (os.path.basename(parsed.path.rstrip("/")) or parsed.netloc or "reference")
        )
        digest, size = None, None
        if checksum:
            local = parsed.path if parsed.scheme in ("file", "") else None
            if local and os.path.isfile(local):
                digest, size = store.sha256_file(local), os.path.getsize(local)
        entry = Entry(path, digest, size, ref=uri, _artifact=self)
        self._entries[path] = entry
        return [entry]

    @contextlib.contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None) -> Iterator[IO[Any]]:
        """A new file in the artifact, written through the handle this gives."""
        self._check_open()
        path = store.check_entry_path(name)
        if path in self._entries:
            raise ValueError(f"artifact {self._name} already has a file {path!r}")
        target = os.path.join(self._staging_dir(), path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, mode if "x" not in mode else mode.replace("x", "w"), encoding=encoding) as fh:
            yield fh
        self._entries[path] = Entry(path, None, os.path.getsize(target), _artifact=self, _source=target)

    def add(self, obj: Any, name: str) -> Entry:
        """A runlake.Table (stored as `<name>.table.parquet`), or any media object's file."""
        self._check_open()
        from .table import Table

        if isinstance(obj, Table):
            target = os.path.join(self._staging_dir(), f"{name}.table.parquet")
            with open(target, "wb") as fh:
                fh.write(obj.encode())
            return self.add_file(target, f"{name}.table.parquet")
        encode = getattr(obj, "encode", None)
        if not callable(encode):
            raise TypeError(f"Artifact.add takes a runlake.Table or media object, got {type(obj).__name__}")
        target = os.path.join(self._staging_dir(), f"{name}{getattr(obj, 'suffix', '')}")
        with open(target, "wb") as fh:
            fh.write(encode())
        return self.add_file(target, os.path.basename(target))

    def _staging_dir(self) -> str:
        if self._staging is None:
            self._staging = tempfile.mkdtemp(prefix="runlake-artifact-")
        return self._staging

    def _stage_copy(self, local_path: str, path: str) -> str:
        target = os.path.join(self._staging_dir(), "immutable", path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(local_path, target)
        return target

    # ---- what W&B's Artifact shows ---------------------------------------------------------
    @property
    def name(self) -> str:
        return f"{self._name}:v{self._doc.version}" if self._doc is not None else self._name

    @property
    def source_name(self) -> str:
        return self.name

    @property
    def qualified_name(self) -> str:
        return f"{self.project}/{self.name}" if self.project else self.name

    @property
    def version(self) -> str | None:
        return f"v{self._doc.version}" if self._doc is not None else None

    @property
    def project(self) -> str | None:
        return self._doc.project if self._doc is not None else None

    @property
    def id(self) -> str | None:
        return self._doc.digest[:16] if self._doc is not None else None

    @property
    def digest(self) -> str:
        if self._doc is not None:
            return self._doc.digest
        return store.digest_of(*self._manifest(hash_files=True))

    @property
    def aliases(self) -> list[str]:
        if self._doc is None or self._storage is None:
            return list(self._aliases)
        return sorted(
            a
            for a, v in store.aliases(self._storage, self._doc.project, self._doc.name).items()
            if v == self._doc.version
        )

    @property
    def size(self) -> int:
        return sum(e.size or 0 for e in self._entries.values() if e.ref is None)

    @property
    def created_at(self) -> float | None:
        return self._doc.created_at if self._doc is not None else None

    def logged_by(self) -> str | None:
        """The id of the run that logged this version."""
        return self._doc.run_id if self._doc is not None else None

    def files(self, names: list[str] | None = None, per_page: int = 50) -> list[Entry]:
        return [e for p, e in sorted(self._entries.items()) if names is None or p in names]

    def get_entry(self, name: str) -> Entry:
        path = store.check_entry_path(name)
        if path not in self._entries:
            raise KeyError(f"artifact {self.name} has no file {name!r}; it has {sorted(self._entries)[:20]}")
        return self._entries[path]

    get_path = get_entry

    def wait(self, timeout: int | None = None) -> Artifact:
        return self

    # ---- downloading -----------------------------------------------------------------------
    def download(
        self,
        root: str | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
        multipart: bool | None = None,
    ) -> str:
        """Every file into `root` (default ./artifacts/<name>:<version>); returns `root`."""
        root = root or os.path.join(".", "artifacts", self.name)
        for entry in self._entries.values():
            if path_prefix and not entry.path.startswith(path_prefix):
                continue
            try:
                self._fetch(entry, root)
            except FileNotFoundError:
                if entry.ref is None or not allow_missing_references:
                    raise
        return root

    def file(self, root: str | None = None) -> str:
        if len(self._entries) != 1:
            raise ValueError(f"artifact {self.name} has {len(self._entries)} files: use download()")
        return self._fetch(next(iter(self._entries.values())), root)

    def _fetch(self, entry: Entry, root: str | None) -> str:
        root = root or os.path.join(".", "artifacts", self.name)
        target = os.path.realpath(os.path.join(root, entry.path))
        if not target.startswith(os.path.realpath(root) + os.sep):
            raise ValueError(f"artifact entry {entry.path!r} would land outside {root!r}")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if entry.ref is not None:
            parsed = urlparse(entry.ref)
            if parsed.scheme not in ("file", "") or not os.path.isfile(parsed.path):
                raise FileNotFoundError(
                    f"reference {entry.ref!r} of artifact {self.name} cannot be read from here"
                )
            shutil.copyfile(parsed.path, target)
        elif entry._source is not None and self._doc is None:
            shutil.copyfile(entry._source, target)
        else:
            assert self._storage is not None and entry.digest is not None
            blob = self._storage.paths.blob(entry.digest)
            if self._storage.is_local:
                shutil.copyfile(blob, target)
            else:
                self._storage.fs.get_file(blob, target)
        return target

    # ---- logging ------------------------------------------------------------------------------
    def _manifest(
        self, storage: Storage | None = None, hash_files: bool = False
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        files, refs = [], []
        pending = [e for e in self._entries.values() if e.ref is None and e._source is not None]
        if pending and (storage is not None or hash_files):
            # hashing (and storing) file by file on every core: hashlib lets go of the GIL
            def one(entry: Entry) -> None:
                assert entry._source is not None
                if storage is not None:
                    entry.digest, entry.size = store.store_blob(storage, entry._source)
                else:
                    entry.digest = store.sha256_file(entry._source)

            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
                list(pool.map(one, pending))
        for path, entry in sorted(self._entries.items()):
            if entry.ref is not None:
                refs.append({"path": path, "uri": entry.ref, "checksum": entry.digest, "size": entry.size})
                continue
            assert entry.digest is not None
            files.append({"path": path, "sha256": entry.digest, "size": entry.size})
        return files, refs

    def _commit(
        self, storage: Storage, project: str, run_id: str | None, step: int | None, aliases: list[str]
    ) -> None:
        files, refs = self._manifest(storage)  # every file stored before the version exists
        doc = ArtifactVersionDoc(
            project=project,
            name=self._name,
            version=0,
            type=self.type,
            digest=store.digest_of(files, refs),
            files=files,
            references=refs,
            description=self.description,
            metadata=self.metadata,
            run_id=run_id,
            step=step,
            created_at=time.time(),
            size=sum(f["size"] or 0 for f in files),
        )
        self._doc = store.commit_version(storage, doc)
        self._storage = storage
        for alias in dict.fromkeys(["latest", *aliases]):
            store.set_alias(storage, project, self._name, alias, self._doc.version)
        for entry in self._entries.values():
            entry._source = None
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None

    @classmethod
    def _logged(cls, storage: Storage, doc: ArtifactVersionDoc) -> Artifact:
        art = cls(doc.name, doc.type, doc.description, doc.metadata)
        art._doc, art._storage = doc, storage
        for f in doc.files:
            art._entries[f["path"]] = Entry(f["path"], f["sha256"], f["size"], _artifact=art)
        for r in doc.references:
            art._entries[r["path"]] = Entry(
                r["path"], r.get("checksum"), r.get("size"), ref=r["uri"], _artifact=art
            )
        return art

    def __repr__(self) -> str:
        return f"<Artifact {self.qualified_name} ({self.type})>"


def find(storage: Storage, default_project: str, spec: str) -> Artifact:
    """ "name:alias", "project/name:alias" or "entity/project/name:alias" (a registry target
    "wandb-registry-<x>/name:alias" or "model-registry/name:alias" reads the local registry)."""
    parts = spec.strip("/").split("/")
    project = parts[-2] if len(parts) >= 2 else default_project
    if project.startswith("wandb-registry-") or project == "model-registry":
        project = REGISTRY_PROJECT
    return Artifact._logged(storage, store.resolve(storage, project, parts[-1]))


def _base(path: str) -> str:
    base = os.path.basename(os.path.normpath(path)) or "files"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in base)[:100]


def _from_path(path: str, name: str | None, type: str | None) -> Artifact:  # noqa: A002
    art = Artifact(name or _base(path), type or "unspecified")
    if os.path.isdir(path):
        art.add_dir(path)
    elif os.path.isfile(path):
        art.add_file(path)
    else:
        raise FileNotFoundError(f"log_artifact: no file or directory at {path!r}")
    return art
