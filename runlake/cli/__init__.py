"""The `runlake` command: a thin shell over the library. Each command parses, calls one library
function (on the one Lake of the invocation) and formats its result; library errors become one
line on stderr and exit status 1. `base` has the group and what commands share; the commands
live by job in `reading` and `maintenance`."""

from __future__ import annotations

from . import maintenance, reading, sweeps  # noqa: F401 - they register their commands on `main`
from .base import main

__all__ = ["main"]
