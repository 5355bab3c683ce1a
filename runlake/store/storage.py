"""A root on storage: one fsspec filesystem, atomic and exclusive writes, listings.

A root URL plus its options go through `fsspec.url_to_fs` here, once; everything above gets
the `Storage` and never names a storage SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import RunlakeError
from .journal import Journal
from .layout import PACK_MANIFEST_RE, STREAM_RE, Layout, PartFile, parse_part, visible_parts

# the manifest a writer or an edit (name, tags, notes, config, summary, state) may rewrite in
# place; the others are write-once or replaced whole (which moves the directory's mtime)
_MUTABLE = "/state.json"
_RACY_SECONDS = 2.0  # directory mtimes this fresh may hide a later change: list them again
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


def write_local_atomic(path: str, data: bytes, *, fsync: bool = False, exclusive: bool = False) -> bool:
    """Write a local file under a temporary name, then rename (or, `exclusive`, hard-link) it
    into place: a reader sees the old file or the new one, never half. With `exclusive`,
    returns False (and writes nothing) when `path` already exists."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)  # atomic, and fails if `path` exists
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
            return True
    finally:
        remove_quietly(tmp)
    return True


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class Storage:
    """A root: an fsspec filesystem plus the root path inside it, and its layout."""

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
        self.paths = Layout(self.root)
        self.journal = Journal(self)  # the commit log: every logged write appends its entry
        # s3fs asks for a file's size (a HEAD) before reading it whole, to split big files into
        # concurrent ranges: manifests and log entries are small, one GET is enough
        self._whole: dict[str, Any] = {"max_concurrency": 1} if type(fs).__name__ == "S3FileSystem" else {}

    @property
    def is_memory(self) -> bool:
        protocol = self.fs.protocol
        return "memory" in ((protocol,) if isinstance(protocol, str) else tuple(protocol or ()))

    def engine_path(self, path: str) -> str:
        """The path as DuckDB / pyarrow readers are given it."""
        return path if self.is_local else self.fs.unstrip_protocol(path)

    def local_path(self, engine_path: str) -> str:
        """An engine path back to the filesystem's own path."""
        return engine_path if self.is_local else self.fs._strip_protocol(engine_path)

    # ---- reading -----------------------------------------------------------------------
    def read_bytes(self, path: str) -> bytes | None:
        try:
            if self.is_local:
                with open(path, "rb") as fh:
                    return fh.read()
            return self.fs.cat_file(path, **self._whole)
        except FileNotFoundError:
            return None

    def read_many(self, paths: list[str]) -> dict[str, bytes]:
        """Whole files at once (concurrently on object stores, one GET each, no HEAD); a file
        that does not exist is left out."""
        if not paths:
            return {}
        if self.is_local:
            return {p: data for p in paths if (data := self.read_bytes(p)) is not None}
        found = self.fs.cat_ranges(paths, None, None, on_error="return", **self._whole)
        out = {}
        for path, data in zip(paths, found, strict=True):
            if isinstance(data, bytes):
                out[path] = data
            elif not isinstance(data, FileNotFoundError):
                raise data if isinstance(data, OSError) else OSError(f"reading {path}: {data}")
        return out

    def read_json(self, path: str) -> dict[str, Any] | None:
        """A JSON object, None if the file does not exist; RunlakeError naming it if it is not one."""
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
            return [p.rstrip("/").rsplit("/", 1)[-1] for p in listed(self.fs.ls, path, detail=False)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_parts(self, segment_dir: str, include_covered: bool = False) -> list[PartFile]:
        """The part files of one segment, by step range (a listing, never a read)."""
        found: list[PartFile | None] = []
        if self.is_local:
            found = [parse_part(e.path, _size(e)) for e in _scandir(segment_dir) if _is_file(e, ".parquet")]
        else:
            try:
                self.fs.invalidate_cache(segment_dir)
                infos = listed(self.fs.ls, segment_dir, detail=True)
            except FileNotFoundError:
                return []
            found = [
                parse_part(i["name"], int(i["size"] or 0)) for i in infos if i.get("type") != "directory"
            ]
        parts = sorted((p for p in found if p is not None), key=lambda p: (p.step_lo, p.step_hi, p.path))
        return parts if include_covered else visible_parts(parts)

    def list_manifests(
        self, dir_cache: dict[str, tuple[int, dict[str, str]]]
    ) -> tuple[dict[str, str], dict[str, tuple[int, dict[str, str]]]]:
        """Every manifest under runs/ with a token that changes whenever the file does.

        Locally, a run's meta directory whose mtime is unchanged (and older than the racy
        window) is not listed again: `dir_cache` carries what was seen last time, and only
        its state manifest is looked at again (one rewritten in place, not replaced, leaves
        the directory's mtime as it was).
        """
        out: dict[str, str] = {}
        if not self.is_local:
            tokens = self._remote_tokens(self.paths.runs_dir, lambda p: "/meta/" in p and p.endswith(".json"))
            return tokens, {}
        now = time.time()
        cache: dict[str, tuple[int, dict[str, str]]] = {}
        for project in _scandir(self.paths.runs_dir):
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
                    # the manifest that may be rewritten in place (a run's state) is looked at
                    # again; the write-once ones cannot have changed
                    files = {
                        p: (_path_token(p) if p.endswith(_MUTABLE) else t) or t
                        for p, t in previous[1].items()
                    }
                else:
                    files = {
                        e.path: t for e in _scandir(meta) if e.name.endswith(".json") and (t := _token(e))
                    }
                cache[meta] = (st.st_mtime_ns, files)
                out.update(files)
        return out, cache

    def list_streams(self) -> dict[str, int]:
        """Every file of runs' console lines and system metrics, with its size (a full listing)."""
        top = f"{self.root}/streams"
        out: dict[str, int] = {}
        if self.is_local:
            for directory, _, names in os.walk(top):
                for name in names:
                    if STREAM_RE.fullmatch(name):
                        with contextlib.suppress(OSError):
                            out[f"{directory}/{name}"] = os.stat(f"{directory}/{name}").st_size
            return out
        try:
            self.fs.invalidate_cache(top)
            found = listed(self.fs.find, top, detail=True)
        except FileNotFoundError:
            return {}
        return {
            p: int(i.get("size") or 0) for p, i in found.items() if STREAM_RE.fullmatch(p.rsplit("/", 1)[-1])
        }

    def list_pack_manifests(self) -> dict[str, str]:
        """Every pack manifest (`packs/project=<p>/pack-<id>.json`) with a change token."""
        if not self.is_local:
            return self._remote_tokens(
                self.paths.packs_dir, lambda p: PACK_MANIFEST_RE.fullmatch(p.rsplit("/", 1)[-1])
            )
        out: dict[str, str] = {}
        for project in _scandir(self.paths.packs_dir):
            if project.is_dir():
                for entry in _scandir(project.path):
                    if (
                        PACK_MANIFEST_RE.fullmatch(entry.name)
                        and _is_file(entry)
                        and (token := _token(entry))
                    ):
                        out[entry.path] = token
        return out

    def _remote_tokens(self, prefix: str, keep: Callable[[str], object]) -> dict[str, str]:
        """Change tokens of the objects under `prefix` that `keep` selects: one recursive listing."""
        try:
            self.fs.invalidate_cache(prefix)
            found = listed(self.fs.find, prefix, detail=True)
        except FileNotFoundError:
            return {}
        return {path: _change_token(info) for path, info in found.items() if keep(path)}

    def modified(self, path: str) -> float | None:
        """When `path` was last written, by the storage's clock (seconds since the epoch)."""
        try:
            if self.is_local:
                return os.stat(path).st_mtime
            info = self.fs.info(path)
        except (FileNotFoundError, OSError):
            return None
        for field in _TIME_FIELDS:
            value = info.get(field)
            if value is None:
                continue
            if hasattr(value, "timestamp"):
                return float(value.timestamp())
            try:
                return float(value)
            except (TypeError, ValueError):
                continue
        return None

    def exists(self, path: str) -> bool:
        if self.is_local:
            return os.path.exists(path)
        self.fs.invalidate_cache(path)
        return bool(self.fs.exists(path))

    # ---- writing -----------------------------------------------------------------------
    def write_atomic(self, path: str, data: bytes) -> None:
        """Replace `path` with `data`; a reader sees the old or the new file, never half. A
        change the catalog folds is then described in the commit log (`journal.py`)."""
        self.journal.before_write(path)
        self.write_unlogged(path, data)
        self.journal.wrote(path, data)

    def write_unlogged(self, path: str, data: bytes) -> None:
        """`write_atomic` without a commit-log entry (the log's own files)."""
        if self.is_local:
            write_local_atomic(path, data)
        else:
            self.fs.pipe_file(path, data)  # an object store's PUT is atomic

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
        self.journal.before_write(path)
        created = self.create_unlogged(path, data)
        if created:
            self.journal.wrote(path, data)
        return created

    def create_unlogged(self, path: str, data: bytes) -> bool:
        """`create_exclusive` without a commit-log entry."""
        if self.is_local:
            return write_local_atomic(path, data, exclusive=True)
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

    def put_file(self, local_path: str, path: str) -> bool:
        """Copy a local file to `path` (streamed, never whole in memory) unless `path` exists;
        a reader never sees half of it. False if it already existed."""
        if self.is_local:
            if os.path.exists(path):
                return False
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
            try:
                shutil.copyfile(local_path, tmp)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
            finally:
                remove_quietly(tmp)
            return True
        if self.exists(path):
            return False
        self.fs.put_file(local_path, path)  # an object store's PUT is whole or nothing
        return True

    def write_json_atomic(self, path: str, value: dict[str, Any]) -> None:
        self.write_atomic(path, json.dumps(value, allow_nan=True).encode())

    def remove(self, path: str) -> None:
        """Remove a file; one that is already gone is fine."""
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            return
        self.journal.removed(path)

    def remove_tree(self, path: str) -> None:
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            return
        self.journal.removed_tree(path)

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


def listed(listing: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A driver's listing, once more if another thread changed the directory under it: fsspec's
    memory:// iterates its one dict, and a file closed meanwhile (by a flusher, or by the
    garbage collector) makes that raise "dictionary changed size during iteration"."""
    for attempt in range(5):
        try:
            return listing(*args, **kwargs)
        except RuntimeError as exc:
            if "changed size during iteration" not in str(exc) or attempt == 4:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _change_token(info: dict[str, Any]) -> str:
    """What changes whenever an object is rewritten, from a driver's listing: an ETag or
    generation where there is one, else a modification (or, memory://, creation) time, plus
    the size (the size alone would miss a rewrite of the same length); then, after "|", when
    it was written by the storage's clock, where the listing says (see `written_at`)."""
    stamp = next((str(info[f]) for f in _TOKEN_FIELDS if info.get(f) is not None), "")
    when = ""
    for field in _TIME_FIELDS:
        value = info.get(field)
        if value is not None:
            try:
                when = repr(float(value.timestamp() if hasattr(value, "timestamp") else value))
                break
            except (TypeError, ValueError, OverflowError, OSError):
                continue
    return f"{stamp}:{info.get('size')}|{when}"


_TIME_FIELDS = ("mtime", "LastModified", "last_modified", "updated", "created")


def _token(entry: os.DirEntry[str]) -> str | None:
    try:
        st = entry.stat()
    except OSError:
        return None
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}|{st.st_mtime!r}"


def _path_token(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}|{st.st_mtime!r}"


def written_at(token: str) -> float | None:
    """When the file a listing token describes was written, by the storage's clock (None: the
    listing did not say): what caps a heartbeat from a writer whose clock runs ahead."""
    _, sep, when = token.rpartition("|")
    try:
        return float(when) if sep and when else None
    except ValueError:
        return None


def _is_file(entry: os.DirEntry[str], suffix: str = "") -> bool:
    try:
        return entry.name.endswith(suffix) and entry.is_file()
    except OSError:
        return False


def _size(entry: os.DirEntry[str]) -> int:
    try:
        return entry.stat().st_size
    except OSError:
        return 0


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []
