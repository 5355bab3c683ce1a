"""A filesystem that fails on demand: memory:// underneath, `flaky://` on top."""

from __future__ import annotations

import threading

import fsspec
from fsspec.implementations.memory import MemoryFileSystem


class FlakyFileSystem(MemoryFileSystem):
    """Writes fail while `down` is set (reads too while `reads_down` is), or for the next
    `fail_next` writes; with `ambiguous`,
    a failing write stores the object first (the network dropped the reply, not the request).
    While `hang` is set, a write blocks (it sets `entered`) until `gate` opens."""

    protocol = "flaky"
    down = False
    reads_down = False
    fail_next = 0
    ambiguous = False
    writes = 0
    failures = 0
    hang = False
    entered = threading.Event()
    gate = threading.Event()

    def pipe_file(self, path, value, mode="overwrite", **kwargs):  # noqa: D102
        cls = type(self)
        cls.writes += 1
        if cls.hang:
            cls.entered.set()
            cls.gate.wait(timeout=300)  # a generous bound: the test opens it
        if cls.down or cls.fail_next > 0:
            cls.fail_next = max(0, cls.fail_next - 1)
            cls.failures += 1
            if cls.ambiguous:
                super().pipe_file(path, value, mode=mode, **kwargs)
            raise OSError(f"injected storage failure writing {path}")
        return super().pipe_file(path, value, mode=mode, **kwargs)

    def cat_file(self, path, start=None, end=None, **kwargs):  # noqa: D102
        if type(self).reads_down:
            raise OSError(f"injected storage failure reading {path}")
        return super().cat_file(path, start=start, end=end, **kwargs)

    @classmethod
    def reset(cls) -> None:
        cls.reads_down = False
        cls.down, cls.fail_next, cls.ambiguous, cls.writes, cls.failures = False, 0, False, 0, 0
        cls.hang = False
        cls.gate.set()  # release any write still waiting, then arm both events again
        cls.entered, cls.gate = threading.Event(), threading.Event()


fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
