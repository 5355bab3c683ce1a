"""A tiny pure-Python reference model of runlake's semantics (W&B logging, fork, rewind, resume).

Rows are {step: {key: value}}; a node is (run_id, segment). Property tests run the same
operations against runlake and this model and compare every effective history.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class StepOrder(Exception):
    """The model's StepOrderWarning: the call is dropped."""


class ForkPoint(Exception):
    pass


@dataclass
class Node:
    parent: tuple[str, int] | None
    cutoff: int | None
    rows: dict[int, dict[str, object]] = field(default_factory=dict)


@dataclass
class ModelRun:
    run_id: str
    nodes: list[Node]
    step: int
    open: bool = True
    pending: dict[str, object] | None = None

    @property
    def segment(self) -> int:
        return len(self.nodes) - 1

    def log(self, data: dict[str, object], step: int | None = None, commit: bool | None = None) -> None:
        if step is not None:
            if step < self.step:
                raise StepOrder(f"{step} < {self.step}")
            if commit is None:
                commit = False
            if step > self.step:
                if self.pending is not None:
                    self._commit()
                self.step = step
        elif commit is None:
            commit = True
        self.pending = {**(self.pending or {}), **{k: v for k, v in data.items() if v is not None}}
        if commit:
            self._commit()

    def _commit(self) -> None:
        self.nodes[-1].rows[self.step] = dict(self.pending or {})
        self.pending = None
        self.step += 1

    def finish(self) -> None:
        if self.pending is not None:
            self._commit()
        self.open = False


class ModelLake:
    def __init__(self) -> None:
        self.runs: dict[str, ModelRun] = {}

    def create(self, run_id: str) -> ModelRun:
        run = ModelRun(run_id, [Node(None, None)], 0)
        self.runs[run_id] = run
        return run

    def effective(self, run_id: str, segment: int | None = None, upto: int | None = None) -> dict[int, dict]:
        run = self.runs[run_id]
        node = run.nodes[run.segment if segment is None else segment]
        out: dict[int, dict] = {}
        if node.parent is not None:
            assert node.cutoff is not None
            limit = node.cutoff if upto is None else min(upto, node.cutoff)
            out.update(self.effective(node.parent[0], node.parent[1], limit))
        for step, row in node.rows.items():
            if (node.cutoff is None or step > node.cutoff) and (upto is None or step <= upto):
                out[step] = row
        return dict(sorted(out.items()))

    def last_step(self, run_id: str) -> int | None:
        run = self.runs[run_id]
        node = run.nodes[-1]
        own = max((s for s in node.rows if node.cutoff is None or s > node.cutoff), default=None)
        if node.cutoff is None:
            return own
        return node.cutoff if own is None else max(own, node.cutoff)

    def fork(self, source: str, step: int, new_id: str) -> ModelRun:
        self._check_point(source, step)
        src = self.runs[source]
        run = ModelRun(new_id, [Node((source, src.segment), step)], step + 1)
        self.runs[new_id] = run
        return run

    def rewind(self, run_id: str, step: int) -> ModelRun:
        self._check_point(run_id, step)
        run = self.runs[run_id]
        run.nodes.append(Node((run_id, run.segment), step))
        run.step = step + 1
        run.open = True
        return run

    def resume(self, run_id: str) -> ModelRun:
        run = self.runs[run_id]
        last = self.last_step(run_id)
        run.step = 0 if last is None else last + 1
        run.open = True
        return run

    def _check_point(self, run_id: str, step: int) -> None:
        last = self.last_step(run_id)
        if last is None or step > last:
            raise ForkPoint(f"{step} > {last}")
