"""Every path, file name and pattern of the on-storage contract (see ARCHITECTURE.md).

<root>/runs/<project>/<run_id>/meta/run.json          identity, write-once
<root>/runs/<project>/<run_id>/meta/segment-<k>.json  lineage row of segment k, write-once
<root>/runs/<project>/<run_id>/meta/state.json        state, heartbeat, config, summary (replaced)
<root>/runs/<project>/<run_id>/meta/writer-<n>.json   writer claims, write-once
<root>/runs/<project>/<run_id>/meta/packed-<k>.json   where segment k's rows went (a pointer)
<root>/history/project=<p>/run_id=<id>/segment=<k>/part-<first>-<last>-<uuid>.parquet
<root>/packs/project=<p>/pack-<id>.parquet            finished nodes' rows, compacted together
<root>/packs/project=<p>/pack-<id>.json               its members: writing it is the switch
<root>/media/<project>/<run_id>/<kind>s/<key>_<step>_<hash>.<ext>  logged images (PNG), tables (Parquet)
<root>/_catalog/catalog.duckdb                        a local root's catalog cache (derived)
<root>/artifacts/_blobs/<sha[:2]>/<sha256>            artifact file contents, stored once by content
<root>/artifacts/<project>/<name>/v<N>.json           artifact version N (its files), write-once: the switch
<root>/artifacts/<project>/<name>/aliases/<alias>.json  which version an alias names (replaced)
<root>/runs/<project>/<run_id>/meta/artifact-<ns>-<id>.json  a run logged or used an artifact version
<root>/sweeps/<project>/<sweep_id>/sweep.json         a sweep's configuration, write-once
<root>/sweeps/<project>/<sweep_id>/trials/<n>.json    trial n: claimed exclusively by one agent
<root>/streams/project=<p>/run_id=<id>/segment=<k>/<stream>-<t0_ns>-<label>-<id>.parquet  system metrics, console lines
<root>/_log/<yyyy>/<mm>/<dd>/<hh>/<time_ns>-<writer>-<seq>.json  commit log: what one write changed
<root>/_log/origin.json                               when the log began, and whether it holds everything
<root>/_log/_checkpoints/<time_ns>-<id>/checkpoint.json  a checkpoint (its tables beside it), written last
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass

MAX_STEP = 2**63 - 1  # the largest step a BIGINT holds; also "no upper bound" in a closure
# `cpart-` files were written by the compaction before packs (release 0.1.0 roots may hold them).
# `@<label>`: written by a process of a shared-mode run (its x_label)
PART_RE = re.compile(r"(c?)part-(\d+)-(\d+)-[0-9a-f]+(?:@[A-Za-z0-9_.-]{1,128})?\.parquet")
SEGMENT_RE = re.compile(r"segment-(\d+)\.json")
PACKED_RE = re.compile(r"packed-(\d+)\.json")
# parts of segment k were swapped (old compaction, doctor's quarantine): list the segment again
RELIST_RE = re.compile(r"(?:compacted|repaired)-(\d+)\.json")
# meta/shared-<k>-<label>.json: a shared-mode process's state in segment k (its parts: list again)
SHARED_RE = re.compile(r"shared-(\d+)-([A-Za-z0-9_.-]{1,128})\.json")
ALERT_RE = re.compile(r"alert-\d+-[0-9a-f]+\.json")  # meta/alert-<time_ns>-<id>.json: one per alert
ARTIFACT_EDGE_RE = re.compile(
    r"artifact-\d+-[0-9a-f]+\.json"
)  # meta/: a run logged or used an artifact version
VERSION_RE = re.compile(r"v(\d+)\.json")
PACK_MANIFEST_RE = re.compile(r"pack-([0-9a-z-]+)\.json")
LOG_ENTRY_RE = re.compile(r"(\d{19})-([0-9a-f]{12})-(\d{8})\.json")  # <time_ns>-<writer>-<seq>.json
CHECKPOINT_RE = re.compile(r"(\d{19})-([0-9a-f]{12})")
STREAMS = ("console", "system")
# <stream>-<t0_ns>-<label>-<id>.parquet: a run's console lines or system metrics ("_": no label)
STREAM_RE = re.compile(r"(console|system)-(\d{19})-([A-Za-z0-9_.-]{1,128})-([0-9a-f]{12})\.parquet")


@dataclass(frozen=True)
class PartFile:
    """A history part as a listing shows it: its step range is in its name."""

    path: str
    step_lo: int
    step_hi: int
    size: int
    compacted: bool = False


def parse_part(path: str, size: int) -> PartFile | None:
    """A PartFile if `path` names a history part, else None."""
    m = PART_RE.fullmatch(path.rstrip("/").rsplit("/", 1)[-1])
    if m is None:
        return None
    return PartFile(path, int(m[2]), int(m[3]), size, m[1] == "c")


def visible_parts(parts: list[PartFile]) -> list[PartFile]:
    """Drop the parts a compacted part (`cpart-...`, release 0.1.0) already holds: writing the
    compacted file was the index switch, so a listing at any moment reads each row once."""
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


class Layout:
    """The paths of one root (`root` is the path inside its filesystem, no trailing slash)."""

    def __init__(self, root: str) -> None:
        self.root = root

    @property
    def runs_dir(self) -> str:
        return f"{self.root}/runs"

    @property
    def packs_dir(self) -> str:
        return f"{self.root}/packs"

    def run_dir(self, project: str, run_id: str) -> str:
        return f"{self.root}/runs/{project}/{run_id}"

    def meta(self, project: str, run_id: str, name: str) -> str:
        return f"{self.root}/runs/{project}/{run_id}/meta/{name}"

    def media(self, project: str, run_id: str, kind: str, name: str) -> str:
        return f"{self.root}/media/{project}/{run_id}/{kind}s/{name}"

    def run_history_dir(self, project: str, run_id: str) -> str:
        """Every segment directory of a run's history is under it."""
        return f"{self.root}/history/project={project}/run_id={run_id}"

    def segment_dir(self, project: str, run_id: str, segment: int) -> str:
        return f"{self.run_history_dir(project, run_id)}/segment={segment}"

    def part(
        self, project: str, run_id: str, segment: int, lo: int, hi: int, label: str | None = None
    ) -> str:
        if not 0 <= lo <= hi:
            raise ValueError(f"a part holds steps 0 and up, lo <= hi: got {lo}..{hi}")
        name = f"part-{lo:012d}-{hi:012d}-{uuid.uuid4().hex[:12]}{f'@{label}' if label else ''}.parquet"
        return f"{self.segment_dir(project, run_id, segment)}/{name}"

    def run_streams_dir(self, project: str, run_id: str) -> str:
        return f"{self.root}/streams/project={project}/run_id={run_id}"

    def stream_part(
        self, project: str, run_id: str, segment: int, stream: str, label: str, t0_ns: int
    ) -> str:
        """A file of a run's console lines or system metrics, by the process labelled `label`."""
        name = f"{stream}-{max(t0_ns, 0):019d}-{label or '_'}-{uuid.uuid4().hex[:12]}.parquet"
        return f"{self.run_streams_dir(project, run_id)}/segment={segment}/{name}"

    def pack_dir(self, project: str) -> str:
        return f"{self.root}/packs/project={project}"

    def pack_base(self, project: str, pack_id: str) -> str:
        """A pack without its suffix: `.parquet` is the data, `.json` its manifest."""
        return f"{self.pack_dir(project)}/pack-{pack_id}"

    def id_claim(self, run_id: str) -> str:
        """Created exclusively before a run: run ids are unique in a root, across projects."""
        return f"{self.root}/_ids/{run_id}.json"

    def blob(self, sha256: str) -> str:
        return f"{self.root}/artifacts/_blobs/{sha256[:2]}/{sha256}"

    def artifact_dir(self, project: str, name: str) -> str:
        return f"{self.root}/artifacts/{project}/{name}"

    def artifact_version(self, project: str, name: str, version: int) -> str:
        return f"{self.artifact_dir(project, name)}/v{version}.json"

    def artifact_alias(self, project: str, name: str, alias: str) -> str:
        return f"{self.artifact_dir(project, name)}/aliases/{alias}.json"

    def sweep_dir(self, project: str, sweep_id: str) -> str:
        return f"{self.root}/sweeps/{project}/{sweep_id}"

    def sweep_doc(self, project: str, sweep_id: str) -> str:
        return f"{self.sweep_dir(project, sweep_id)}/sweep.json"

    def trial(self, project: str, sweep_id: str, number: int) -> str:
        return f"{self.sweep_dir(project, sweep_id)}/trials/{number:06d}.json"

    @property
    def log_dir(self) -> str:
        return f"{self.root}/_log"

    def log_bucket(self, time_ns: int) -> str:
        """The hour bucket a log entry named at `time_ns` (UTC) goes in."""
        t = time.gmtime(time_ns // 1_000_000_000)
        return f"{self.log_dir}/{t.tm_year:04d}/{t.tm_mon:02d}/{t.tm_mday:02d}/{t.tm_hour:02d}"

    def log_entry(self, time_ns: int, writer: str, seq: int) -> str:
        return f"{self.log_bucket(time_ns)}/{time_ns:019d}-{writer}-{seq:08d}.json"

    @property
    def log_origin(self) -> str:
        return f"{self.log_dir}/origin.json"

    @property
    def checkpoints_dir(self) -> str:
        return f"{self.log_dir}/_checkpoints"

    def checkpoint(self, time_ns: int, ident: str) -> str:
        """A checkpoint's directory: its tables, and `checkpoint.json` written last."""
        return f"{self.checkpoints_dir}/{time_ns:019d}-{ident}"

    def compact_lock(self) -> str:
        return f"{self.root}/packs/compact.lock"

    def quarantine(self, path: str) -> str:
        return f"{self.root}/_quarantine/{self.relative(path)}"

    def relative(self, path: str) -> str:
        prefix = self.root.rstrip("/") + "/"
        if not path.startswith(prefix):
            raise ValueError(f"{path} is not under the root {self.root}")
        return path[len(prefix) :]


def pack_relative(path: str) -> str:
    """`packs/project=<p>/pack-<id>.parquet` from a pack's full path (the root may hold "/packs/")."""
    return path if path.startswith("packs/") else path[path.rindex("/packs/") + 1 :]


def is_pack_manifest(path: str) -> bool:
    parts = path.rsplit("/", 3)  # .../packs/project=<p>/pack-<id>.json
    return len(parts) == 4 and parts[1] == "packs" and PACK_MANIFEST_RE.fullmatch(parts[3]) is not None


def split_meta_path(path: str) -> tuple[str, str, str]:
    """.../runs/<project>/<run_id>/meta/<name> -> (project, run_id, name)."""
    parts = path.rstrip("/").split("/")
    return parts[-4], parts[-3], parts[-1]


_HIVE_NODE_RE = re.compile(r"/run_id=([^/]+)/segment=(\d+)/[^/]+$")


def hive_node(path: str) -> tuple[str, int] | None:
    """(run_id, segment) from a part's hive path, None for a path that is not one."""
    m = _HIVE_NODE_RE.search(path)
    return (m[1], int(m[2])) if m else None
