"""The root on storage: the one place that knows paths, fsspec and atomic writes.

Layout (see DESIGN.md):
    <root>/runs/<project>/<run_id>/meta/run.json          identity, write-once
    <root>/runs/<project>/<run_id>/meta/segment-<k>.json  lineage row of segment k, write-once
    <root>/runs/<project>/<run_id>/meta/state.json        state, heartbeat, config, summary (replaced)
    <root>/history/project=<p>/run_id=<id>/segment=<k>/part-<first>-<last>-<uuid>.parquet
    <root>/packs/project=<p>/pack-<id>.parquet            finished nodes' rows, compacted together
    <root>/packs/project=<p>/pack-<id>.json               its members: writing it is the switch
    <root>/runs/<project>/<run_id>/meta/packed-<k>.json   where segment k's rows went (a pointer)
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .errors import RunlakeError

PART_RE = re.compile(r"(c?)part-(\d+)-(\d+)-[0-9a-f]+\.parquet")
SEGMENT_RE = re.compile(r"segment-(\d+)\.json")
PACK_MANIFEST_RE = re.compile(r"pack-([0-9a-z-]+)\.json")
_RACY_SECONDS = 2.0  # directory mtimes this fresh may hide a later change: list them again


def resolve_root(root: str | os.PathLike[str] | None) -> str:
    """The root URL: the argument, else $RUNLAKE_ROOT, else ./runlake."""
    if root is None:
        root = os.environ.get("RUNLAKE_ROOT") or "./runlake"
    return os.fspath(root)


def resolve_options(storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """fsspec options: the argument, else $RUNLAKE_STORAGE_OPTIONS (a JSON object), else none."""
    if storage_options is not None:
        if not isinstance(storage_options, dict):
            raise TypeError(f"storage_options must be a dict, got {type(storage_options).__name__}")
        return storage_options
    raw = os.environ.get("RUNLAKE_STORAGE_OPTIONS")
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise RunlakeError(f"$RUNLAKE_STORAGE_OPTIONS is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RunlakeError("$RUNLAKE_STORAGE_OPTIONS must be a JSON object")
    return value


_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
    "adl": "azure",
}


@dataclass(frozen=True)
class PartFile:
    path: str
    step_lo: int
    step_hi: int
    size: int
    compacted: bool = False


def visible_parts(parts: list[PartFile]) -> list[PartFile]:
    """Drop the parts a compacted part (`cpart-...`) already holds: writing the compacted file
    is the index switch, so a listing taken at any moment of a compaction reads each row once."""
    covers = [p for p in parts if p.compacted]
    if not covers:
        return parts
    out = []
    for part in parts:
        covered = any(
            c is not part
            and c.step_lo <= part.step_lo
            and part.step_hi <= c.step_hi
            and (
                not part.compacted
                or (c.step_lo, -c.step_hi, c.path) < (part.step_lo, -part.step_hi, part.path)
            )
            for c in covers
        )
        if not covered:
            out.append(part)
    return out


class Storage:
    """A root: an fsspec filesystem plus the root path inside it."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        try:
            fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        except ImportError:
            proto = url.split("://", 1)[0].lower()
            extra = _EXTRAS.get(proto)
            hint = f"pip install 'runlake[{extra}]'" if extra else f"install the fsspec driver for {proto}://"
            raise RunlakeError(f"root {url!r} needs a storage driver that is not installed: {hint}") from None
        except ValueError as exc:
            raise RunlakeError(f"root {url!r} is not a usable path or URL: {exc}") from None
        self.fs = fs
        self.is_local = isinstance(fs, LocalFileSystem)
        self.root = path.rstrip("/") or "/"
        self.key = (type(fs).__name__, self.root)

    # ---- paths -------------------------------------------------------------------------
    def run_dir(self, project: str, run_id: str) -> str:
        return f"{self.root}/runs/{project}/{run_id}"

    def meta_path(self, project: str, run_id: str, name: str) -> str:
        return f"{self.root}/runs/{project}/{run_id}/meta/{name}"

    def segment_dir(self, project: str, run_id: str, segment: int) -> str:
        return f"{self.root}/history/project={project}/run_id={run_id}/segment={segment}"

    def part_path(
        self, project: str, run_id: str, segment: int, lo: int, hi: int, compacted: bool = False
    ) -> str:
        name = f"{'c' if compacted else ''}part-{lo:012d}-{hi:012d}-{uuid.uuid4().hex[:12]}.parquet"
        return f"{self.segment_dir(project, run_id, segment)}/{name}"

    def pack_dir(self, project: str) -> str:
        return f"{self.root}/packs/project={project}"

    def engine_path(self, path: str) -> str:
        """The path as DuckDB / pyarrow readers are given it."""
        return path if self.is_local else self.fs.unstrip_protocol(path)

    # ---- reading -----------------------------------------------------------------------
    def read_bytes(self, path: str) -> bytes | None:
        try:
            if self.is_local:
                with open(path, "rb") as fh:
                    return fh.read()
            return self.fs.cat_file(path)
        except FileNotFoundError:
            return None

    def read_json(self, path: str) -> dict[str, Any] | None:
        data = self.read_bytes(path)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise RunlakeError(f"manifest {self.engine_path(path)} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise RunlakeError(f"manifest {self.engine_path(path)} is not a JSON object")
        return value

    def listdir(self, path: str) -> list[str]:
        """Names (not paths) in a directory; [] if it does not exist."""
        try:
            if self.is_local:
                return os.listdir(path)
            self.fs.invalidate_cache(path)
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(path, detail=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_parts(self, segment_dir: str, include_covered: bool = False) -> list[PartFile]:
        """The part files of one segment, by step range (a listing, never a read)."""
        parts = []
        if self.is_local:
            try:
                entries = list(os.scandir(segment_dir))
            except FileNotFoundError:
                return []
            for entry in entries:
                m = PART_RE.fullmatch(entry.name)
                if m:
                    parts.append(
                        PartFile(entry.path, int(m[2]), int(m[3]), entry.stat().st_size, m[1] == "c")
                    )
        else:
            try:
                self.fs.invalidate_cache(segment_dir)
                infos = self.fs.ls(segment_dir, detail=True)
            except FileNotFoundError:
                return []
            for info in infos:
                name = info["name"].rstrip("/").rsplit("/", 1)[-1]
                m = PART_RE.fullmatch(name)
                if m:
                    parts.append(PartFile(info["name"], int(m[2]), int(m[3]), int(info["size"]), m[1] == "c"))
        parts.sort(key=lambda p: (p.step_lo, p.step_hi, p.path))
        return parts if include_covered else visible_parts(parts)

    def list_manifests(
        self, dir_cache: dict[str, tuple[int, dict[str, str]]]
    ) -> tuple[dict[str, str], dict[str, tuple[int, dict[str, str]]]]:
        """Every manifest under runs/ with a token that changes whenever the file does.

        Locally, a run's meta directory whose mtime is unchanged (and older than the racy
        window) is not listed again: `dir_cache` carries what was seen last time.
        """
        runs_dir = f"{self.root}/runs"
        out: dict[str, str] = {}
        if not self.is_local:
            return self._remote_tokens(runs_dir, lambda p: "/meta/" in p and p.endswith(".json")), {}
        now = time.time()
        cache: dict[str, tuple[int, dict[str, str]]] = {}
        for project in _scandir(runs_dir):
            if not project.is_dir():
                continue
            for run in _scandir(project.path):
                meta = f"{run.path}/meta"
                try:
                    st = os.stat(meta)
                except OSError:
                    continue
                previous = dir_cache.get(meta)
                # Unchanged and older than the racy window: no file in it changed since we looked
                # (directory mtimes are coarse, so a fresh one may hide a second change).
                if previous and previous[0] == st.st_mtime_ns and st.st_mtime < now - _RACY_SECONDS:
                    files = previous[1]
                else:
                    files = {}
                    for entry in _scandir(meta):
                        if entry.name.endswith(".json"):
                            try:
                                fst = entry.stat()
                            except OSError:
                                continue
                            files[entry.path] = f"{fst.st_ino}:{fst.st_mtime_ns}:{fst.st_size}"
                cache[meta] = (st.st_mtime_ns, files)
                out.update(files)
        return out, cache

    def list_pack_manifests(self) -> dict[str, str]:
        """Every pack manifest (`packs/project=<p>/pack-<id>.json`) with a change token."""
        packs_dir = f"{self.root}/packs"
        out: dict[str, str] = {}
        if not self.is_local:
            return self._remote_tokens(packs_dir, lambda p: PACK_MANIFEST_RE.fullmatch(p.rsplit("/", 1)[-1]))
        for project in _scandir(packs_dir):
            if not project.is_dir():
                continue
            for entry in _scandir(project.path):
                if PACK_MANIFEST_RE.fullmatch(entry.name):
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    out[entry.path] = f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
        return out

    def _remote_tokens(self, prefix: str, keep: Callable[[str], object]) -> dict[str, str]:
        """Change tokens of the objects under `prefix` that `keep` selects: one recursive listing."""
        try:
            self.fs.invalidate_cache(prefix)
            found = self.fs.find(prefix, detail=True)
        except FileNotFoundError:
            return {}
        return {path: _change_token(info) for path, info in found.items() if keep(path)}

    def exists(self, path: str) -> bool:
        if self.is_local:
            return os.path.exists(path)
        self.fs.invalidate_cache(path)
        return bool(self.fs.exists(path))

    # ---- writing -----------------------------------------------------------------------
    def write_atomic(self, path: str, data: bytes) -> None:
        """Replace `path` with `data`; a reader sees the old or the new file, never half."""
        if self.is_local:
            directory = os.path.dirname(path)
            os.makedirs(directory, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                _silent_remove(tmp)
                raise
        else:
            self.fs.pipe_file(path, data)

    def write_with_retry(self, path: str, data: bytes, attempts: int = 4, backoff: float = 0.05) -> None:
        """`write_atomic` with exponential backoff. Retries rewrite the same path, so a write
        that failed after storing (an ambiguous error) never leaves a duplicate."""
        for attempt in range(attempts):
            try:
                self.write_atomic(path, data)
                return
            except OSError:
                if attempt + 1 == attempts:
                    raise
                time.sleep(backoff * (2**attempt))

    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create `path` with `data` unless it exists; False if it already did."""
        if self.is_local:
            directory = os.path.dirname(path)
            os.makedirs(directory, exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.link(tmp, path)  # atomic and fails if `path` exists: the file appears whole
                return True
            except FileExistsError:
                return False
            finally:
                _silent_remove(tmp)
        try:
            # a conditional PUT (If-None-Match: *) on S3: atomic, so of two racers one wins
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except TypeError:  # a driver without exclusive create: best effort
            if self.exists(path):
                return False
            self.fs.pipe_file(path, data)
        return True

    def write_json_atomic(self, path: str, value: dict[str, Any]) -> None:
        self.write_atomic(path, json.dumps(value, allow_nan=True).encode())

    def remove_tree(self, path: str) -> None:
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass

    def remove_empty_dirs(self, path: str, stop: str) -> None:
        """Remove `path` and its parents up to (not including) `stop` while they are empty."""
        if not self.is_local:
            return  # object stores have no empty directories
        while path.startswith(stop + "/") and path != stop:
            try:
                os.rmdir(path)
            except OSError:
                return
            path = os.path.dirname(path)


_TOKEN_FIELDS = (
    "ETag",
    "etag",
    "md5Hash",
    "generation",
    "mtime",
    "LastModified",
    "last_modified",
    "updated",
    "created",
)


def _change_token(info: dict[str, Any]) -> str:
    """What changes whenever an object is rewritten, from a driver's listing: an ETag or
    generation where there is one, else a modification (or, memory://, creation) time, plus
    the size. The size alone would miss a rewrite of the same length."""
    stamp = next((str(info[f]) for f in _TOKEN_FIELDS if info.get(f) is not None), "")
    return f"{stamp}:{info.get('size')}"


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _silent_remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
