"""A run's console output and system metrics as wandb 0.31's public API shows them:
`run.console_logs()` (`ConsoleLogs` of `ConsoleLogLine`), `run.file("output.log")` (a `File`
whose `download()` writes the log), and `run.history(stream="system")` (one row per sample,
`system.*` columns beside `_timestamp` and `_runtime`)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import polars as pl

OUTPUT_LOG = "output.log"


@dataclass(frozen=True)
class ConsoleLogLine:
    """One line of a run's console output (W&B's fields)."""

    number: int  # its position in the run's log, from 0
    timestamp: dt.datetime | None  # when it was printed, UTC
    level: str  # "error" for stderr, "" for stdout
    label: str  # the writing process's x_label ("" for a single writer)
    content: str


class ConsoleLogs:
    """The lines of a run's console log, oldest first (`last=N`: the last N). Read once, then
    replayed: make a new one (`run.console_logs()`) to see a log that has grown."""

    def __init__(self, lake: Any, run_id: str, per_page: int = 1000, last: int | None = None) -> None:
        for name, value in (("per_page", per_page), ("last", last)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._lake = lake
        self._run_id = run_id
        self.per_page = per_page
        self.last = last
        self._lines: list[ConsoleLogLine] | None = None

    def _load(self) -> list[ConsoleLogLine]:
        if self._lines is None:
            frame = self._lake.console(self._run_id)
            if self.last is not None:
                frame = frame.tail(self.last)
            self._lines = [
                ConsoleLogLine(
                    int(row["line"]),
                    row["time"].replace(tzinfo=dt.timezone.utc) if row["time"] is not None else None,
                    row["level"],
                    row["label"],
                    row["content"],
                )
                for row in frame.iter_rows(named=True)
            ]
        return self._lines

    def __iter__(self) -> Iterator[ConsoleLogLine]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __getitem__(self, index: int) -> ConsoleLogLine:
        return self._load()[index]

    def __repr__(self) -> str:
        return f"<ConsoleLogs {self._run_id}>"


def output_log(lake: Any, run_id: str) -> bytes:
    """The console log as W&B's files/output.log holds it: stderr lines prefixed "ERROR ", a
    process's lines with its label in brackets (shared mode)."""
    lines = []
    for row in lake.console(run_id).iter_rows(named=True):
        prefix = f"[{row['label']}] " if row["label"] else ""
        lines.append(f"{prefix}{'ERROR ' if row['level'] == 'error' else ''}{row['content']}\n")
    return "".join(lines).encode()


class File:
    """A run's file, as W&B's public `File`: `name`, `size`, `download()`."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self._data = data
        self.size = len(data)
        self.mimetype = "text/plain"
        self.url = None
        self.direct_url = None

    def download(
        self, root: str = ".", replace: bool = False, exist_ok: bool = False, api: Any = None
    ) -> IO[str]:
        """Write the file under `root` and return it open for reading (as W&B does)."""
        path = os.path.join(root, self.name)
        if os.path.exists(path) and not replace:
            if not exist_ok:
                raise ValueError(
                    "File already exists, pass replace=True to overwrite or exist_ok=True to leave it as is and don't error."
                )
            return open(path, encoding="utf-8")  # noqa: SIM115 - the caller closes it, as W&B's
        os.makedirs(root or ".", exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(self._data)
        return open(path, encoding="utf-8")  # noqa: SIM115

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.size} bytes)>"


def system_history(lake: Any, run_id: str, samples: int = 500) -> pl.DataFrame:
    """One row per sample (and process label): `_timestamp`, `_runtime`, the `system.*` keys;
    at most `samples` rows, evenly spaced and the same every call."""
    long = lake.system_metrics(run_id)
    if long.is_empty():
        return pl.DataFrame()
    wide = (
        long.with_columns(pl.col("time").dt.epoch("us").cast(pl.Float64).truediv(1e6).alias("_timestamp"))
        .pivot(on="key", index=["_timestamp", "runtime", "label"], values="value", aggregate_function="last")
        .rename({"runtime": "_runtime"})
        .sort("_timestamp", "label")
    )
    if wide["label"].n_unique() == 1 and wide["label"][0] == "":
        wide = wide.drop("label")
    if wide.height > samples:
        step = wide.height / samples
        wide = wide[[int(i * step) for i in range(samples)]]
    return wide
