"""The one ancestor walk and the one file selection, over plain Python dicts.

The catalog materialises `walk()` for every node into its `closure` table, which the SQL
objects (`closure_of`, `lineage`, `history`) read; `history()` and summary inheritance walk
the same links in Python and pick files with `select_files()`. Pure: no I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import CorruptPartError
from ..store.layout import MAX_STEP, PartFile

Node = tuple[str, int]  # (run_id, segment)
Link = tuple[str | None, int | None, int | None]  # parent run, parent segment, cutoff
# One closure row: an ancestor node and the steps (step_lo, step_hi] it contributes.
ClosureRow = tuple[int, str, int, int, int]  # depth, run_id, segment, step_lo, step_hi
FileRef = tuple[str, int, int, bool]  # path, step_lo, step_hi, is a pack


def walk(links: dict[Node, Link], node: Node) -> tuple[list[ClosureRow], bool]:
    """A node's ancestors, nearest first, with the step range each contributes to its
    effective history; and whether the walk reached a root (False: an ancestor is unknown).

    Ancestor A contributes its own rows with A.cutoff < step <= min(cutoffs below A), so the
    ranges are disjoint and no row ever needs de-duplicating.
    """
    out: list[ClosureRow] = []
    current: Node | None = node
    step_hi = MAX_STEP
    depth = 0
    while current is not None:
        link = links.get(current)
        if link is None:
            return out, False
        parent_run, parent_segment, cutoff = link
        out.append((depth, current[0], current[1], -1 if cutoff is None else int(cutoff), step_hi))
        if parent_run is None or parent_segment is None:
            return out, True
        if cutoff is not None:
            step_hi = min(step_hi, int(cutoff))
        current = (parent_run, int(parent_segment))
        depth += 1
    return out, True  # pragma: no cover - the loop returns


def clip(closure: list[ClosureRow], max_step: int, min_step: int = -1) -> list[ClosureRow]:
    """The closure of a history cut to the steps (min_step, max_step] (what a fork at max_step
    inherits; a window of it); the nodes left are numbered again from depth 0, as a scan
    ranks them by depth."""
    kept = [
        (r, s, max(lo, min_step), min(hi, max_step))
        for _, r, s, lo, hi in closure
        if max(lo, min_step) < min(hi, max_step)
    ]
    return [(depth, *row) for depth, row in enumerate(kept)]


def own_start(closure: list[ClosureRow], run_id: str) -> int | None:
    """The step after which a run's history is its own (its rows after it; None: all of it):
    its current node and, after rewinds, its own earlier nodes are its own; where the walk
    reaches another run (the one it was forked from), the rows are inherited."""
    first_other = next((i for i, row in enumerate(closure) if row[1] != run_id), len(closure))
    if 0 < first_other < len(closure) and closure[first_other - 1][3] >= 0:
        return int(closure[first_other - 1][3])
    return None


@dataclass
class Files:
    """The files a read needs: nodes' own parts (hive paths) and packs (run_id/segment inside)."""

    parts: list[str] = field(default_factory=list)
    packs: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.parts, *self.packs]

    def __bool__(self) -> bool:
        return bool(self.parts or self.packs)


def select_files(files: dict[Node, list[FileRef]], closure: Iterable[ClosureRow]) -> Files:
    """The exact files a closure needs: each node's files whose step range meets its own,
    ancestors first (each file once)."""
    parts: dict[str, None] = {}
    packs: dict[str, None] = {}
    for _, run_id, segment, lo, hi in sorted(closure, reverse=True):
        for path, part_lo, part_hi, pack in files.get((run_id, segment), ()):
            if part_hi > lo and part_lo <= hi:
                (packs if pack else parts)[path] = None
    return Files(list(parts), list(packs))


def own_parts(listed: list[PartFile], packed: list[tuple[int, int]]) -> list[PartFile]:
    """A node's listed parts less those a pack already holds (they await removal)."""
    return [p for p in listed if not any(lo <= p.step_lo and p.step_hi <= hi for lo, hi in packed)]


class Index:
    """What a node read needs, as dicts: current segments, lineage links, files by node."""

    def __init__(
        self,
        generation: int,
        current: dict[str, int],
        links: dict[Node, Link],
        files: dict[Node, list[FileRef]],
        holes: dict[Node, str] | None = None,
    ) -> None:
        self.generation = generation
        self.current = current
        self.links = links
        self.files = files
        self.holes = holes or {}  # nodes missing a part file: what a read of them says

    def closure(self, run_id: str, segment: int) -> list[ClosureRow]:
        return walk(self.links, (run_id, segment))[0]

    def select(self, closure: Iterable[ClosureRow]) -> Files:
        """The files a closure reads; a node among them that lost a part file is an error (a
        silent hole in the history otherwise)."""
        closure = list(closure)
        for _, run_id, segment, lo, hi in closure:
            if (run_id, segment) in self.holes and lo < hi:
                raise CorruptPartError(self.holes[(run_id, segment)])
        return select_files(self.files, closure)

    def span(self, closure: Iterable[ClosureRow]) -> tuple[int, int]:
        """The steps a closure's history spans, from its files' step ranges within each node's
        range: (lo, hi), (0, -1) when it has no file."""
        lo, hi = MAX_STEP, -1
        for _, run_id, segment, node_lo, node_hi in closure:
            for _, file_lo, file_hi, _ in self.files.get((run_id, segment), ()):
                if file_hi > node_lo and file_lo <= node_hi:
                    lo, hi = min(lo, max(file_lo, node_lo + 1)), max(hi, min(file_hi, node_hi))
        return (lo, hi) if lo <= hi else (0, -1)
