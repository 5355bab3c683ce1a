"""Artifacts on storage. File contents are stored once by their sha256 (`artifacts/_blobs/`),
whatever version or run logs them; a version is a manifest created exclusively once every
file it names is stored (a writer killed before that leaves blobs, never half a version);
aliases are small documents replaced atomically; each run's logging and use of a version is a
document in its meta directory, which the catalog folds into SQL (`artifacts`,
`artifact_files`, `artifact_usage`)."""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import time
import uuid
from typing import Any

from ..errors import RunlakeError
from ..store.layout import VERSION_RE
from ..store.manifests import ArtifactEdgeDoc, ArtifactVersionDoc, read, write
from ..store.names import check_name
from ..store.storage import Storage

CHUNK = 8 << 20


class ArtifactNotFound(RunlakeError, LookupError):
    """No artifact (or version, or alias) of that name."""


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def check_entry_path(name: str) -> str:
    """A file's path inside an artifact: relative, POSIX, no `..` (it becomes a path on download)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"an artifact entry needs a non-empty name, got {name!r:.80}")
    clean = posixpath.normpath(name.replace(os.sep, "/"))
    if clean.startswith(("/", "../")) or clean in ("..", ".") or "/../" in f"/{clean}/":
        raise ValueError(f"artifact entry {name!r} must be a relative path inside the artifact")
    return clean


def store_blob(storage: Storage, local_path: str) -> tuple[str, int]:
    """Store a local file by its content (once: the same bytes are never stored twice)."""
    sha = sha256_file(local_path)
    path = storage.paths.blob(sha)
    if not storage.put_file(local_path, path) and storage.is_local:
        os.utime(path)  # in use again: the collector's grace period starts over
    return sha, os.path.getsize(local_path)


def versions(storage: Storage, project: str, name: str) -> list[int]:
    listed = storage.listdir(storage.paths.artifact_dir(project, name))
    return sorted(int(m[1]) for n in listed if (m := VERSION_RE.fullmatch(n)))


def read_version(storage: Storage, project: str, name: str, version: int) -> ArtifactVersionDoc:
    doc = read(storage, storage.paths.artifact_version(project, name, version), ArtifactVersionDoc)
    if doc is None:
        raise ArtifactNotFound(f"artifact {project}/{name} has no version v{version}")
    return doc


def digest_of(files: list[dict[str, Any]], references: list[dict[str, Any]]) -> str:
    entries = sorted(
        [(f["path"], f["sha256"]) for f in files]
        + [(r["path"], r.get("checksum") or r["uri"]) for r in references]
    )
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def commit_version(storage: Storage, doc: ArtifactVersionDoc) -> ArtifactVersionDoc:
    """Create the next version (v0, v1, ...) with `doc`'s files: the lowest free number, taken
    exclusively (two writers never make the same version). If the latest version has the same
    digest, that version is returned instead (as W&B does: nothing changed)."""
    check_name(doc.project, "project name")
    check_name(doc.name, "artifact name")
    existing = versions(storage, doc.project, doc.name)
    if existing:
        latest = read_version(storage, doc.project, doc.name, existing[-1])
        if latest.digest == doc.digest:
            return latest
    number = existing[-1] + 1 if existing else 0
    while True:
        doc.version = number
        path = storage.paths.artifact_version(doc.project, doc.name, number)
        if storage.create_exclusive(path, json.dumps(doc.to_json()).encode()):
            return doc
        number += 1


def set_alias(storage: Storage, project: str, name: str, alias: str, version: int) -> None:
    check_name(alias, "artifact alias")
    storage.write_json_atomic(
        storage.paths.artifact_alias(project, name, alias), {"version": version, "at": time.time()}
    )


def remove_alias(storage: Storage, project: str, name: str, alias: str) -> None:
    storage.remove(storage.paths.artifact_alias(project, name, alias))


def aliases(storage: Storage, project: str, name: str) -> dict[str, int]:
    directory = f"{storage.paths.artifact_dir(project, name)}/aliases"
    out = {}
    for entry in storage.listdir(directory):
        if entry.endswith(".json"):
            doc = storage.read_json(f"{directory}/{entry}")
            if doc is not None:
                out[entry[: -len(".json")]] = int(doc["version"])
    return out


def resolve(storage: Storage, project: str, spec: str) -> ArtifactVersionDoc:
    """ "name", "name:latest", "name:v3" or "name:<alias>" in `project` -> that version."""
    name, _, which = spec.partition(":")
    check_name(name, "artifact name")
    which = which or "latest"
    if VERSION_RE.fullmatch(f"{which}.json"):
        return read_version(storage, project, name, int(which[1:]))
    named = aliases(storage, project, name)
    if which in named:
        return read_version(storage, project, name, named[which])
    if which == "latest":
        existing = versions(storage, project, name)
        if existing:
            return read_version(storage, project, name, existing[-1])
    raise ArtifactNotFound(f"artifact {project}/{spec!r} not found in root {storage.url}")


def record_edge(storage: Storage, edge: ArtifactEdgeDoc, project: str) -> None:
    path = storage.paths.meta(project, edge.run_id, f"artifact-{time.time_ns()}-{uuid.uuid4().hex[:8]}.json")
    write(storage, path, edge)


def all_versions(storage: Storage) -> list[ArtifactVersionDoc]:
    out = []
    base = f"{storage.root}/artifacts"
    for project in storage.listdir(base):
        if project.startswith("_"):
            continue
        for name in storage.listdir(f"{base}/{project}"):
            for number in versions(storage, project, name):
                try:
                    out.append(read_version(storage, project, name, number))
                except ArtifactNotFound:
                    continue
    return out


def delete_version(storage: Storage, doc: ArtifactVersionDoc, named: list[str]) -> None:
    """The version's manifest goes first (from then on it is gone for readers), then its
    aliases; a record in the logging run's meta tells the catalog (`artifacts` leaves it out).
    Its files are the collector's (`collect`), after the grace period."""
    storage.remove(storage.paths.artifact_version(doc.project, doc.name, doc.version))
    for alias in named:
        remove_alias(storage, doc.project, doc.name, alias)
    if doc.run_id is not None:
        from ..store.manifests import find_project

        project = find_project(storage, doc.run_id)
        if project is not None:
            record_edge(
                storage,
                ArtifactEdgeDoc(
                    run_id=doc.run_id,
                    direction="deleted",
                    project=doc.project,
                    name=doc.name,
                    version=doc.version,
                    type=doc.type,
                    digest=doc.digest,
                    at=time.time(),
                ),
                project,
            )


def collect(storage: Storage, grace: float) -> list[str]:
    """Remove the blobs no version uses any more and older than `grace` seconds (a blob of a
    version being logged right now is younger: never taken). Returns what was removed."""
    used = {f["sha256"] for doc in all_versions(storage) for f in doc.files}
    base = f"{storage.root}/artifacts/_blobs"
    removed = []
    now = time.time()
    for prefix in storage.listdir(base):
        for sha in storage.listdir(f"{base}/{prefix}"):
            if sha in used or ".tmp-" in sha:
                continue
            path = f"{base}/{prefix}/{sha}"
            modified = storage.modified(path)
            if modified is not None and now - modified < grace:
                continue
            storage.remove(path)
            removed.append(sha)
    return removed
