"""Loading the SQL objects of `sql/` (shipped in the wheel as `runlake/sql`)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

import duckdb

from .errors import RunlakeError

# Tables first, then what reads them.
ORDER = ("run_meta", "segments", "parts", "closure_of", "lineage", "raw_history", "history", "runs")


@cache
def _texts() -> tuple[tuple[str, str], ...]:
    packaged = resources.files("runlake") / "sql"
    source = Path(__file__).resolve().parent.parent / "sql"  # a source checkout / editable install
    out = []
    for name in ORDER:
        entry = packaged / f"{name}.sql"
        if entry.is_file():
            text = entry.read_text(encoding="utf-8")
        else:
            text = (source / f"{name}.sql").read_text(encoding="utf-8")
        out.append((name, text))
    return tuple(out)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table, macro and view of `sql/` on `con` (idempotent)."""
    for name, text in _texts():
        try:
            con.execute(text)
        except duckdb.Error as exc:
            line = re.search(r"LINE (\d+)", str(exc))
            where = f"sql/{name}.sql" + (f", line {line.group(1)}" if line else "")
            raise RunlakeError(f"{where}: {exc}") from exc
