"""The commit log's read side: what a catalog knows of the root's files, brought up to date by
the log's newest entries (O(changes)) instead of a listing of every run (O(runs)).

A reader starts from a checkpoint (`checkpoint.py`) or, without one, from one full listing of
the root; then each refresh lists only the log's hour buckets from its position on (on S3 from
the position itself: `StartAfter`), fetches the entries it has not applied and applies them in
name order: a manifest's content goes to the fold without another GET, a part stored marks its
node, a removal takes the file away. The position trails the listing by the log window
($RUNLAKE_LOG_WINDOW), so an entry that lands late (a slow upload, a writer's clock behind) is
still found; names already applied are remembered and skipped.

A root without a log origin (written only by releases before the log) is listed whole on every
refresh, as before. Heartbeats are not in the log: the beat files of running runs are looked
at directly. A periodic full listing ($RUNLAKE_RELIST_EVERY) finds what the log lacks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..store import settings
from ..store.journal import classify, logged_tree
from ..store.layout import LOG_ENTRY_RE, is_pack_manifest
from ..store.storage import Storage, _change_token, _path_token, _scandir, listed

NodeKey = tuple[str, str, int]  # project, run_id, segment
_HOUR_NS = 3600 * 1_000_000_000
_BAD_COMPONENTS = ("", ".", "..")


def entry_time(name: str) -> int:
    return int(name[:19])


def log_token(name: str, index: int, stamp: float) -> str:
    """A file's change token when the log described it: the entry and the change in it, then
    when the entry was stored by the storage's clock (what `written_at` reads)."""
    return f"log:{name}:{index}|{stamp!r}"


def token_entry(token: str) -> str | None:
    return token.split(":", 2)[1] if token.startswith("log:") else None


def part_node(rel: str) -> NodeKey | None:
    """(project, run_id, segment) of `history/project=<p>/run_id=<r>/segment=<k>/part-...`."""
    parts = rel.split("/")
    if len(parts) != 5 or not parts[1].startswith("project=") or not parts[2].startswith("run_id="):
        return None
    if not parts[3].startswith("segment=") or not parts[3][8:].isdigit():
        return None
    return parts[1][8:], parts[2][7:], int(parts[3][8:])


@dataclass
class TailState:
    """What a reader of the log keeps between refreshes (saved with the catalog's copy and in
    checkpoints): where it is, the entries it applied past there, and the files it knows."""

    mode: str = ""  # "" not decided yet, "log" following the log, "list" listing the root whole
    position_ns: int = 0  # the next listing starts here
    recent: set[str] = field(default_factory=set)  # entries at or after the position, applied
    fulllisted_ns: int = 0  # the last full listing: its tokens describe files as they were then
    applied: int = 0  # entries applied since the newest checkpoint this reader knows

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "position_ns": self.position_ns,
            "recent": sorted(self.recent),
            "fulllisted_ns": self.fulllisted_ns,
            "applied": self.applied,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TailState:
        return cls(
            str(doc.get("mode") or ""),
            int(doc.get("position_ns") or 0),
            {str(n) for n in doc.get("recent") or []},
            int(doc.get("fulllisted_ns") or 0),
            int(doc.get("applied") or 0),
        )


class Listing(dict[str, str]):
    """What a reader knows of the root's manifests (path -> change token), noting the paths
    that changed since the catalog last folded them (`take`), so a refresh compares those and
    not every manifest of the root (100,000 runs: a second a refresh), and the pack manifests
    among them."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        self.packs: set[str] = set()
        for path, token in dict(items).items():
            self[path] = token
        self.changed: set[str] | None = None  # None: compare every path (new, or a fold failed)

    def __setitem__(self, path: str, token: str) -> None:
        changed = getattr(self, "changed", None)
        if changed is not None and self.get(path) != token:
            changed.add(path)
        if is_pack_manifest(path):
            self.packs.add(path)
        super().__setitem__(path, token)

    def pop(self, path: str, *default: Any) -> Any:  # type: ignore[override]
        if path in self:
            if self.changed is not None:
                self.changed.add(path)
            self.packs.discard(path)
        return super().pop(path, *default)

    def __delitem__(self, path: str) -> None:
        self.pop(path)

    def take(self) -> set[str] | None:
        """The paths changed since the last take (None: any may have), and start again."""
        out, self.changed = self.changed, set()
        return out

    def lose(self) -> None:
        """What changed is not known any more (a fold that failed): compare everything next."""
        self.changed = None


class Tail:
    """One catalog's view of the root's files through the commit log."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.state = TailState()
        self._listing = Listing()  # manifests and pack manifests (and beats) -> token
        self.docs: dict[str, dict[str, Any]] = {}  # contents the entries carried, not folded yet
        self.added: dict[NodeKey, dict[str, int]] = {}  # parts stored, by node: path -> bytes
        self.dropped: set[str] = set()  # parts removed
        self.dropped_trees: list[str] = []  # history directories removed
        self.touched: set[NodeKey] = set()  # nodes whose parts changed
        self.streams: dict[str, tuple[NodeKey, int] | None] = {}  # stream files stored (None: removed)
        self.streams_dropped_trees: list[str] = []  # runs' stream directories removed
        self.problems: list[str] = []
        self.last_full = time.monotonic()

    @property
    def listing(self) -> Listing:
        return self._listing

    @listing.setter
    def listing(self, items: dict[str, str]) -> None:  # a listing replaced whole: compare it all
        self._listing = items if isinstance(items, Listing) and items.changed is None else Listing(items)

    # ---- deciding how to read ----------------------------------------------------------------
    def has_origin(self) -> bool:
        return self.storage.exists(self.storage.paths.log_origin)

    def relist_due(self) -> bool:
        every = settings.relist_every()
        return bool(every) and time.monotonic() - self.last_full > every

    def took_full_listing(self, listing: dict[str, str], listed_ns: int, following: bool) -> None:
        """A full listing of the root at `listed_ns` is now what this reader knows; with
        `following`, later refreshes follow the log from there."""
        window = int(settings.log_window() * 1e9)
        self.listing = {p: t for p, t in listing.items() if kept(self.storage, p)}
        self.docs.clear()
        self.state.mode = "log" if following else "list"
        self.state.fulllisted_ns = listed_ns
        self.state.position_ns = listed_ns - window
        self.state.recent = set()
        self.last_full = time.monotonic()

    # ---- following -----------------------------------------------------------------------------
    def follow(self, beats: list[str]) -> int:
        """Apply the entries written since the position; look at the beat files of running runs.
        Returns how many entries were applied."""
        started = time.time_ns()
        window = int(settings.log_window() * 1e9)
        since = self.state.position_ns
        found = [e for e in self._list_entries(since, started + window) if e[0] not in self.state.recent]
        contents = self._fetch([path for _, path, _ in found])
        applied = 0
        for name, path, stamp in sorted(found):
            data = contents.get(path)
            if data is None:
                continue  # removed since it was listed (retention): a checkpoint holds it
            try:
                doc = json.loads(data)
            except ValueError:
                doc = None
            self._apply(name, stamp, doc)
            applied += 1
        position = started - window
        self.state.recent = {
            n for n in self.state.recent | {name for name, _, _ in found} if entry_time(n) >= position
        }
        self.state.position_ns = max(self.state.position_ns, position)
        self.state.applied += applied
        for path in beats:
            token = self._token_of(path)
            if token is None:
                self.listing.pop(path, None)
            else:
                self.listing[path] = token
        return applied

    def take_doc(self, path: str) -> dict[str, Any] | None:
        """The content an entry carried for `path` (once), or None: read the file."""
        return self.docs.pop(path, None)

    def log_parts(self, node: NodeKey, table_rows: list[tuple[str, int]]) -> list[tuple[str, int]] | None:
        """A node's part files from what the catalog indexed plus the log's changes, as
        (storage path, bytes); None when the node must be listed for real."""
        project, run_id, segment = node
        tree = self.storage.paths.run_history_dir(project, run_id)
        if any(tree == t or tree.startswith(t + "/") for t in self.dropped_trees):
            return None
        out = {self.storage.local_path(p): b for p, b in table_rows}
        out.update(self.added.get(node, {}))
        return [(p, b) for p, b in out.items() if p not in self.dropped]

    def streams_settled(self) -> None:
        """The stream files the log named are in the catalog now."""
        self.streams = {}
        self.streams_dropped_trees = []

    def settled(self, nodes: set[NodeKey]) -> None:
        """These nodes' parts are in the catalog now: their log changes are folded."""
        self.dropped_trees = []  # (what they took away is out of the tables and `added` now)
        for node in nodes:
            self.added.pop(node, None)
        if nodes:
            prefixes = {self.storage.paths.segment_dir(*n) + "/" for n in nodes}
            self.dropped = {p for p in self.dropped if not any(p.startswith(x) for x in prefixes)}
        self.touched -= nodes

    # ---- internals -----------------------------------------------------------------------------
    def _apply(self, name: str, stamp: float, doc: Any) -> None:
        changes = doc.get("changes") if isinstance(doc, dict) else None
        if not isinstance(changes, list):
            self.problems.append(f"log entry {name} is not a runlake log entry: skipped")
            return
        when = entry_time(name)
        if when < self.state.fulllisted_ns:
            return  # the full listing taken after it saw the files as they were then
        root = self.storage.root
        for index, change in enumerate(changes):
            op = change.get("op") if isinstance(change, dict) else None
            rel = change.get("path") if isinstance(change, dict) else None
            if not isinstance(rel, str) or any(c in _BAD_COMPONENTS or "\\" in c for c in rel.split("/")):
                self.problems.append(f"log entry {name} names an invalid path {rel!r}: skipped")
                continue
            path = f"{root}/{rel}"
            kind = classify(rel)
            if kind == "stream" and op in ("part", "del"):
                node = part_node(rel)
                if node is not None:
                    size = change.get("size")
                    self.streams[path] = (
                        (node, int(size) if isinstance(size, int) else 0) if op == "part" else None
                    )
            elif kind == "part" and op in ("part", "del"):
                node = part_node(rel)
                if node is None:
                    continue
                if op == "part":
                    size = change.get("size")
                    self.added.setdefault(node, {})[path] = int(size) if isinstance(size, int) else 0
                    self.dropped.discard(path)
                else:
                    self.added.get(node, {}).pop(path, None)
                    self.dropped.add(path)
                self.touched.add(node)
            elif kind in ("manifest", "pack") and op in ("put", "del"):
                if self._older(path, name, when):
                    continue
                if op == "put":
                    self.listing[path] = log_token(name, index, stamp)
                    content = change.get("doc")
                    if isinstance(content, dict):
                        self.docs[path] = content
                    else:
                        self.docs.pop(path, None)
                else:
                    self.listing.pop(path, None)
                    self.docs.pop(path, None)
            elif op == "del_tree" and logged_tree(rel):
                for known in [p for p in self.listing if p.startswith(path + "/")]:
                    self.listing.pop(known, None)
                    self.docs.pop(known, None)
                if rel.startswith("streams/"):
                    self.streams_dropped_trees.append(path)
                    self.streams = {p: v for p, v in self.streams.items() if not p.startswith(path + "/")}
                if rel.startswith("history/"):
                    self.dropped_trees.append(path)
                    for node in [
                        n for n in self.added if self.storage.paths.run_history_dir(n[0], n[1]) == path
                    ]:
                        self.added.pop(node)
            else:
                self.problems.append(
                    f"log entry {name} has a change runlake does not know ({op!r} {rel!r}): skipped"
                )

    def _older(self, path: str, name: str, when: int) -> bool:
        """Is this change older than what is known of `path` (an entry that landed late)?"""
        current = self.listing.get(path)
        if current is None:
            return False
        entry = token_entry(current)
        if entry is not None:
            return entry > name
        return when < self.state.fulllisted_ns  # the full listing saw this change or a later one

    def _list_entries(self, since_ns: int, until_ns: int) -> list[tuple[str, str, float]]:
        """(name, path, stored at) of the log entries named at or after `since_ns`."""
        out = []
        for bucket in self._buckets(since_ns, until_ns):
            first = bucket == self.storage.paths.log_bucket(since_ns)
            for name, path, stamp in self._list_bucket(bucket, f"{since_ns:019d}" if first else None):
                m = LOG_ENTRY_RE.fullmatch(name)
                if m is not None and entry_time(name) >= since_ns:
                    out.append((name, path, stamp))
        return out

    def _buckets(self, since_ns: int, until_ns: int) -> list[str]:
        hours = (until_ns - since_ns) // _HOUR_NS + 2
        if hours <= 48:
            start = since_ns - since_ns % _HOUR_NS
            return list(
                dict.fromkeys(self.storage.paths.log_bucket(t) for t in range(start, until_ns + 1, _HOUR_NS))
            )
        # away for days: walk the year/month/day/hour directories that exist, from the position on
        low = self.storage.paths.log_bucket(since_ns)
        found = [self.storage.paths.log_dir]
        for _ in range(4):
            found = [
                f"{d}/{name}"
                for d in found
                for name in sorted(self.storage.listdir(d))
                if name.isdigit() and f"{d}/{name}" >= low[: len(f"{d}/{name}")]
            ]
        return found

    def _list_bucket(self, bucket: str, start_after: str | None) -> list[tuple[str, str, float]]:
        storage = self.storage
        if storage.is_local:
            out = []
            for entry in _scandir(bucket):
                if start_after is not None and entry.name < start_after:
                    continue  # named before the position (names sort by time): no stat
                try:
                    out.append((entry.name, entry.path, entry.stat().st_mtime))
                except OSError:
                    continue
            return out
        fs = storage.fs
        if type(fs).__name__ == "S3FileSystem":  # one request a page, from the position on
            bucket_name, key, _ = fs.split_path(bucket)
            kwargs: dict[str, Any] = {"Bucket": bucket_name, "Prefix": key + "/"}
            if start_after is not None:
                kwargs["StartAfter"] = f"{key}/{start_after}"
            out = []
            while True:
                response = fs.call_s3("list_objects_v2", **kwargs)
                for obj in response.get("Contents", []):
                    name = obj["Key"].rsplit("/", 1)[-1]
                    out.append((name, f"{bucket_name}/{obj['Key']}", obj["LastModified"].timestamp()))
                if not response.get("IsTruncated"):
                    return out
                kwargs["ContinuationToken"] = response["NextContinuationToken"]
        try:
            fs.invalidate_cache(bucket)
            infos = listed(fs.ls, bucket, detail=True)
        except FileNotFoundError:
            return []
        out = []
        for info in infos:
            name = info["name"].rstrip("/").rsplit("/", 1)[-1]
            token = _change_token(info)
            stamp = token.rpartition("|")[2]
            out.append((name, info["name"], float(stamp) if stamp else time.time()))
        return out

    def _fetch(self, paths: list[str]) -> dict[str, bytes]:
        return self.storage.read_many(paths)

    def _token_of(self, path: str) -> str | None:
        if self.storage.is_local:
            return _path_token(path)
        try:
            self.storage.fs.invalidate_cache(path)
            return _change_token(self.storage.fs.info(path))
        except (FileNotFoundError, OSError):
            return None


def kept(storage: Storage, path: str) -> bool:
    """What a full listing keeps for a reader that follows the log: what entries describe, and
    beat files (read directly)."""
    if is_pack_manifest(path) or path.endswith("/beat.json"):
        return True
    prefix = storage.root.rstrip("/") + "/"
    return path.startswith(prefix) and classify(path[len(prefix) :]) == "manifest"
