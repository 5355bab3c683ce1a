"""mode="disabled": a run with the whole API that writes nothing (as wandb's disabled mode).

Rows are validated and counted (so `run.step` and `run.summary` behave), then dropped;
memory stays bounded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..store.layout import Layout
from . import registry
from .buffer import Buffer
from .media import Media
from .run import Run, RunMeta


class _NoWriter:
    """The attributes a Run reads from its writer; nothing is ever stored."""

    segment = 0
    seq = 0

    def __init__(self, project: str, run_id: str) -> None:
        self.project = project
        self.run_id = run_id
        self.storage = None
        self.paths = Layout("disabled")


class DisabledRun(Run):
    def __init__(
        self,
        project: str,
        run_id: str,
        meta: RunMeta,
        config: Mapping[str, Any],
        allow_val_change: bool,
        local_dir: str | None,
        entity: str | None,
    ) -> None:
        super().__init__(
            writer=_NoWriter(project, run_id),  # type: ignore[arg-type]
            name=meta.name or run_id,
            start_step=0,
            config=config,
            summary_auto={},
            summary_user={},
            runtime_offset=0.0,
            inherit=None,
            meta=meta,
            allow_val_change=allow_val_change,
            local_dir=local_dir,
            entity=entity,
        )

    @property
    def storage_key(self) -> Any:
        return ("disabled", id(self))

    @property
    def disabled(self) -> bool:
        return True

    def alert(self, title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
        """Nothing is stored in disabled mode (as W&B's)."""

    def _store_media(self, key: str, step: int, media: Media) -> dict[str, Any]:
        def put(kind: str, data: bytes, suffix: str, name: str) -> dict[str, Any]:
            return {"path": "", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}

        return media.store(put, key)

    def _pack(self) -> None:
        self.flush()

    def flush(self, final: bool = False, rows: bool = True) -> None:
        """Drop what was logged, keeping its last values for the summary."""
        buffer: Buffer = self._buffer
        with self._syncer.lock:
            packed, batch, _ = buffer.take(rows)
            for _, last_step, _, last in packed:
                self._stored(last_step, last)
            if batch[2]:
                latest: dict[str, Any] = {}
                for row in batch[2]:
                    latest.update(row)
                self._stored(batch[0][-1], latest)
            buffer.landed()
            self._meta_dirty = False

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        if self._finished:
            return
        if self._pending is not None:
            self._commit()
        self.flush(final=True)
        self._exit_code = 0 if exit_code is None else int(exit_code)
        self._state = "finished" if self._exit_code == 0 else "failed"
        self._finished = True
        registry.forget(self)
