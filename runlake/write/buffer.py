"""A run's in-memory columnar buffer: committed rows, batches packed to Arrow, rows in flight.

No I/O. The training thread appends and packs full batches; the flusher takes what is there,
and puts it back if it could not be written, so nothing logged is dropped.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa

from .packing import blocks_to_table, pack_rows, warm_up
from .values import Row

# A converted batch: first step, last step, its long table, the last value of every key.
Packed = tuple[int, int, pa.Table, dict[str, float | str]]
# Committed rows: their steps, timestamps and rows.
Batch = tuple[list[int], list[float], list[Row]]
NO_ROWS: Batch = ([], [], [])


class Buffer:
    """Committed rows as three parallel lists (step, timestamp, row): ints, floats and
    float-only dicts are not tracked by the garbage collector, where a tuple per row was, and
    its collections cost ~0.7 us per log call (measured)."""

    def __init__(self, runtime_origin: float) -> None:
        warm_up()
        self.lock = threading.Lock()  # training thread vs flusher
        self.runtime_origin = runtime_origin  # wall time of runtime 0
        self.steps: list[int] = []
        self.times: list[float] = []
        self.rows: list[Row] = []
        self.text = False  # may a row in `rows` hold text? (all-float batches take a fast path)
        # Full batches, converted to an Arrow table by the training thread when they fill up
        # (~6 ms per 10k rows): the flusher thread then only encodes (in Arrow's own buffers)
        # and writes, which runs almost without the GIL. Converting there starved it: every
        # time numpy or pyarrow let go of the GIL, taking it back from a busy training loop
        # cost up to the 5 ms switch interval (180 ms for one batch, measured).
        self.packed: list[Packed] = []
        self.packing = False
        self.in_flight: tuple[list[Packed], Batch] = ([], NO_ROWS)
        self.spilling: list[Packed] = []  # taken off the queue by backpressure, on their way to disk

    def append(self, step: int, at: float, row: Row, text: bool) -> int:
        """Add one committed row; returns how many rows wait unpacked."""
        with self.lock:
            self.steps.append(step)
            self.times.append(at)
            self.rows.append(row)
            if text:
                self.text = True
            return len(self.rows)

    @property
    def dirty(self) -> bool:
        return bool(self.rows or self.packed)

    def _take_rows(self) -> Batch:
        """The buffered rows, leaving the buffer empty (hold self.lock)."""
        batch = (self.steps, self.times, self.rows)
        self.steps, self.times, self.rows = [], [], []
        return batch

    def _put_back(self, batch: Batch, text: bool) -> None:
        """Rows taken that could not be written: back before any logged since (hold self.lock)."""
        self.steps[:0] = batch[0]
        self.times[:0] = batch[1]
        self.rows[:0] = batch[2]
        self.text = self.text or text

    def to_table(self, batch: Batch, text: bool) -> Packed:
        steps, times, rows = batch
        table, last = blocks_to_table(pack_rows(steps, times, rows, self.runtime_origin, text))
        return steps[0], steps[-1], table, last

    def pack(self) -> bool:
        """Convert the waiting rows into one Arrow batch (on the training thread); True if any."""
        with self.lock:
            batch = self._take_rows()
            text, self.text = self.text, False
            self.packing = bool(batch[2])  # a flush now must not write later rows before these
        if not batch[2]:  # a flush took them first
            return False
        try:
            piece = self.to_table(batch, text)
        except BaseException:
            with self.lock:
                self._put_back(batch, text)
                self.packing = False
            raise
        with self.lock:
            self.packed.append(piece)
            self.packing = False
        return True

    def take(self, rows: bool) -> tuple[list[Packed], Batch, bool]:
        """What a flush writes: the packed batches and (with `rows`) the rows waiting, now in flight.

        rows=False takes only what the training thread packed (no conversion on the caller's
        thread); while it packs older rows, newer rows wait for the next flush.
        """
        with self.lock:
            packed, self.packed = self.packed, []
            batch: Batch = NO_ROWS
            text = False
            if rows and not self.packing:
                batch = self._take_rows()
                text, self.text = self.text, False
            self.in_flight = (packed, batch)
        return packed, batch, text

    def give_back(self, packed: list[Packed], batch: Batch, text: bool) -> None:
        """A flush that failed: everything it took returns, in order."""
        with self.lock:
            self.packed[:0] = packed
            self._put_back(batch, text)
            self.in_flight = ([], NO_ROWS)

    def give_back_packed(self, pieces: list[Packed]) -> None:
        """Converted batches a flush could not store: back in front of the queue, in order."""
        with self.lock:
            self.packed[:0] = pieces
            self.in_flight = ([], NO_ROWS)

    def take_overflow(self, keep: int) -> list[Packed]:
        """All but the newest `keep` packed batches, when more wait (storage slow or hanging):
        the caller spills them, so memory stays bounded by a few batches."""
        with self.lock:
            if len(self.packed) <= keep:
                return []
            extra, self.packed = (
                self.packed[: len(self.packed) - keep],
                self.packed[len(self.packed) - keep :],
            )
            self.spilling.extend(extra)
            return extra

    def spilled(self, pieces: list[Packed], stored: bool) -> None:
        """Overflow batches are on disk (`stored`), or go back to the queue's front."""
        with self.lock:
            self.spilling = [p for p in self.spilling if not any(p is q for q in pieces)]
            if not stored:
                self.packed[:0] = pieces

    def landed(self) -> None:
        with self.lock:
            self.in_flight = ([], NO_ROWS)

    def last_values(self, written: dict[str, Any]) -> dict[str, Any]:
        """`written` (the last values of what is stored; updated under self.lock) overlaid with
        the last value of every key among rows not yet written (in flight included)."""
        with self.lock:
            return self.last_values_locked(written)

    def last_values_locked(self, written: dict[str, Any]) -> dict[str, Any]:
        """last_values() for a caller that holds self.lock."""
        merged = dict(written)
        flying_packed, flying_rows = self.in_flight
        packed = flying_packed + self.spilling + self.packed
        rows = flying_rows[2] + self.rows
        for _, _, _, last in packed:
            merged.update(last)
        for row in rows:
            merged.update(row)
        return merged
