"""A run's flush protocol: how its rows and state become durable, apart from W&B's logging
semantics (`run.py`). One flush at a time: take what the buffer holds, check fencing, encode,
store each part (or spill it), then the state manifest; nothing taken is dropped on any error.
On the training thread, backpressure: batches the flusher has not taken yet go to the spill
directory, so memory stays bounded (and `log()` never raises for storage trouble)."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..errors import RunlakeError
from ..store.manifests import BeatDoc, StateDoc
from . import flusher
from .config import jsonable
from .writer import notify

MAX_QUEUED = 4  # packed batches waiting for the flusher before the oldest are spilled


class Syncer:
    """Makes one run's rows and state durable (see the module doc)."""

    def __init__(self, run: Any) -> None:  # a Run (or a DisabledRun): run.py imports this module
        self.run = run
        self.lock = threading.Lock()  # one flush at a time
        self._spill_warned = False  # said once: the spill directory refused rows (they wait in memory)
        self.streams: Any = None  # the run's console and system metrics (streams.py), when on

    @property
    def due(self) -> bool:
        """A stream's buffer is full: the flusher stores it now."""
        return self.streams is not None and self.streams.due

    def wait(self) -> None:
        """Return once no flush is in flight (its rows have landed, or gone back to the buffer)."""
        with self.lock:
            pass

    def pack(self) -> None:
        """Hand a full buffer to the flusher as an Arrow table (runs on the training thread).

        Backpressure: if more than a few batches wait (the flusher is stuck on slow or hanging
        storage), the oldest go to the spill directory from here, so memory stays bounded.
        """
        run = self.run
        if not run._buffer.pack():
            return
        flusher.wake()
        extra = run._buffer.take_overflow(MAX_QUEUED)
        if not extra:
            return
        try:
            for first, last_step, data, last in run._writer.encode(extra):
                run._writer.spill_part(first, last_step, data)
                run._stored(last_step, last)
        except OSError as exc:
            # the spill disk is full or gone too: log() never raises for storage trouble (an
            # unguarded training loop would die); the rows wait in memory and flush()/finish()
            # say whether they could be stored
            run._buffer.spilled(extra, stored=False)
            if not self._spill_warned:
                self._spill_warned = True
                notify(
                    f"run {run.id!r}: storage is too slow or down and the spill directory cannot take rows "
                    f"either ({exc}); logging goes on with the rows in memory until either recovers"
                )
            return
        except BaseException:
            run._buffer.spilled(extra, stored=False)  # nothing is dropped: they wait in memory
            raise
        run._buffer.spilled(extra, stored=True)

    def flush(self, final: bool = False, rows: bool = True) -> None:
        """One flush: the rows taken from the buffer as parts, then the state manifest."""
        run = self.run
        buffer = run._buffer
        with self.lock:
            if run._fenced is not None:
                raise RunlakeError(run._fenced)
            packed, batch, text = buffer.take(rows)
            # fencing after the take: a row logged after another process claimed the run is
            # taken after the claim, so this check sees it (checked before the take, a flusher
            # thread paused between the two would write rows logged after the takeover)
            try:
                why = run._writer.taken_over()
            except BaseException:
                buffer.give_back(packed, batch, text)  # storage unreadable: nothing taken is lost
                raise
            if why is not None:
                buffer.give_back(packed, batch, text)
                if self.streams is not None:  # no more console lines or samples for a run it lost
                    self.streams.close()
                run._fence(why)
                raise RunlakeError(why)
            wrote = bool(packed or batch[2])
            if wrote:
                try:
                    pieces = list(packed)
                    if batch[2]:
                        pieces.append(buffer.to_table(batch, text))
                    encoded = run._writer.encode(pieces)
                except BaseException:
                    buffer.give_back(packed, batch, text)  # nothing logged is dropped
                    raise
                for index, (first, last_step, data, last) in enumerate(encoded):
                    try:
                        run._writer.store_part(first, last_step, data)
                    except BaseException:
                        buffer.give_back_packed(pieces[index:])  # not durable anywhere: keep them
                        raise
                    run._stored(last_step, last)
                buffer.landed()
            if self.streams is not None:  # console and system rows, before the state (its entry names them)
                if final:
                    self.streams.close()
                wrote = self.streams.store(run._writer) or wrote
            if wrote or run._meta_dirty or final:
                run._writer.store_state(run._state_doc())
                run._meta_dirty = False
            else:  # only the heartbeat moved: a few bytes, not the whole state and summary
                run._writer.store_beat(self.beat_doc())
            if final:
                run._writer.report_unsynced()

    def state_doc(self) -> StateDoc:
        """The run's state manifest as of now (the watermark, summary, attributes, metrics)."""
        run = self.run
        with run._buffer.lock:
            auto = {k: v for k, v in run._summary_auto.items() if k not in run._summary_deleted}
            summary = run._summary_of(dict(run._summary_auto))
            metric_state = {k: dict(v) for k, v in run._metrics.aggregates.items()}
            metrics = run._metrics.to_json()
            json_keys = sorted(run._json_keys)
            parts = run._parts_written
        meta = run._meta
        return StateDoc(
            run_id=run.id,
            segment=run._writer.segment,
            state=run._state,
            heartbeat=time.time(),
            **run._identity,
            writer_seq=run._writer.seq,
            watermark=run._watermark,
            parts=parts,
            runtime=run._runtime_last,
            finished_at=run._finished_at,
            exit_code=run._exit_code,
            config=jsonable(dict(run.config)),
            summary=jsonable(summary),
            summary_auto=jsonable(auto),
            summary_user=jsonable(run._summary_user),
            inherited_pending=run._inherit is not None,
            name=meta.name,
            tags=list(meta.tags),
            notes=meta.notes,
            group=meta.group,
            job_type=meta.job_type,
            metrics=metrics,
            metric_state=metric_state,
            json_keys=json_keys,
            preempting=run._preempting,
        )

    def stored(self, last_step: int, last: dict[str, float | str]) -> None:
        """A batch is durable (stored, or spilled): its last values join the summary."""
        run = self.run
        last = dict(last)
        runtime = float(last.pop("_runtime", 0.0))
        last.pop("_timestamp", None)
        with run._buffer.lock:
            run._parts_written += 1
            run._summary_auto.update(last)
            if run._watermark is None or last_step > run._watermark:
                run._watermark = last_step
                run._runtime_last = runtime

    def beat_doc(self) -> BeatDoc:
        run = self.run
        return BeatDoc(
            run_id=run.id,
            heartbeat=time.time(),
            segment=run._writer.segment,
            writer_seq=run._writer.seq,
            **run._identity,
        )
