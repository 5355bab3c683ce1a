"""`runlake.Table`, as `wandb.Table`: rows of values built up with `add_data`/`add_column`, or a
DataFrame; stored as Parquet (`media/<project>/<run_id>/tables/...`). A cell may hold a media
object (an Image, Audio, ...): it is stored as its own file and the cell holds its reference
(JSON text), so a table of images is a table of references next to their files."""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..store.parquet import encode_any
from .media import Media, Put


def _from_frame(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    to_arrow = getattr(frame, "to_arrow", None)  # polars
    if callable(to_arrow):
        return pa.table(to_arrow())
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(
            f"Table dataframe must be a pandas or polars DataFrame, got {type(frame).__name__} ({exc})"
        ) from None


def _kind(value: Any) -> str | None:
    """What a cell holds, for W&B's rule that a column holds one type (None: no value)."""
    value = _plain(value)
    if value is None:
        return None
    if isinstance(value, Media):
        return "media"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple, dict)):
        return "json"
    return type(value).__name__


def _plain(value: Any) -> Any:
    """A cell as Arrow takes it: numpy scalars and small arrays as Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class Table(Media):
    """`runlake.Table(columns=None, data=None, rows=None, dataframe=None, dtype=None,
    optional=True, allow_mixed_types=False, log_mode=None)`.

    `data`/`rows`: a list of rows (or a 2-d numpy array); `dataframe`: a pandas or polars
    DataFrame (or an Arrow table). `add_data(*values)` appends a row, `add_column(name, data)` a
    column, `get_column(name, convert_to=None)` reads one ("numpy": an array), `data` is the
    rows, `columns` their names. A column mixing types Arrow cannot hold together is an error
    naming it unless `allow_mixed_types=True` (then its cells are stored as JSON text).
    `log_mode` is accepted: every log stores the whole table (W&B's "IMMUTABLE")."""

    kind = "table"
    suffix = ".parquet"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Any = None,
        rows: Any = None,
        dataframe: Any = None,
        dtype: Any = None,
        optional: Any = True,
        allow_mixed_types: bool = False,
        log_mode: str | None = None,
    ) -> None:
        self.allow_mixed_types = bool(allow_mixed_types)
        self.log_mode = log_mode
        self._frame: pa.Table | None = None
        self._rows: list[list[Any]] = []
        self._kinds: list[str | None] = []
        if dataframe is not None:
            self._frame = _from_frame(dataframe)
            self._columns = [str(c) for c in self._frame.column_names]
            self._kinds = [None] * len(self._columns)  # Arrow typed them already
            return
        body = rows if data is None else data
        body = [] if body is None else body
        if isinstance(body, np.ndarray):
            body = body.tolist()
        if isinstance(body, (str, bytes)) or not hasattr(body, "__iter__"):
            raise TypeError(f"Table data must be a list of rows, got {type(body).__name__}")
        body = [list(r) if isinstance(r, (list, tuple, np.ndarray)) else [r] for r in body]
        width = len(body[0]) if body else len(columns or [])
        self._columns = (
            [str(c) for c in columns] if columns is not None else [f"Column {i + 1}" for i in range(width)]
        )
        self._kinds = [None] * len(self._columns)
        for row in body:
            self._check_row(row)
        self._rows = body

    # ---- W&B's Table API ---------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        return self._columns

    @columns.setter
    def columns(self, names: Sequence[str]) -> None:
        names = [str(n) for n in names]
        if len(names) != len(self._columns):
            raise ValueError(
                f"a Table of {len(self._columns)} columns needs {len(self._columns)} names, got {len(names)}"
            )
        if self._frame is not None:
            self._frame = self._frame.rename_columns(names)
        self._columns = names

    @property
    def data(self) -> list[list[Any]]:
        """The rows (a DataFrame's are read out the first time)."""
        if self._frame is not None:
            self._rows = [list(r.values()) for r in self._frame.to_pylist()]
            self._kinds = [
                next((_kind(r[i]) for r in self._rows if r[i] is not None), None)
                for i in range(len(self._columns))
            ]
            self._frame = None
        return self._rows

    def _check_row(self, row: Sequence[Any]) -> None:
        if len(row) != len(self._columns):
            raise ValueError(
                f"every Table row must have {len(self._columns)} values (one per column: {self._columns}), got {len(row)}"
            )
        for i, value in enumerate(row):
            self._check_cell(i, value)

    def _check_cell(self, i: int, value: Any) -> None:
        kind = _kind(value)
        if kind is None or self.allow_mixed_types:
            return
        have = self._kinds[i]
        if have is None:
            self._kinds[i] = kind
        elif have != kind:
            raise TypeError(
                f"Table column {self._columns[i]!r} mixes types: it holds {have} values, got a {kind} "
                f"({value!r:.60}); pass allow_mixed_types=True to store its cells as JSON text"
            )

    def add_data(self, *values: Any) -> None:
        """Append one row: one value per column, in column order."""
        self._check_row(values)
        self.data.append(list(values))

    def add_row(self, *values: Any) -> None:
        self.add_data(*values)

    def add_column(self, name: str, data: Sequence[Any], optional: bool = False) -> None:
        """Append a column: one value per row."""
        name = str(name)
        if name in self._columns:
            raise ValueError(f"Table already has a column {name!r}")
        values = list(data.tolist() if isinstance(data, np.ndarray) else data)
        rows = self.data
        self._kinds.append(None)
        self._columns.append(name)
        try:
            for value in values:
                self._check_cell(len(self._columns) - 1, value)
        finally:
            self._columns.pop()
            self._kinds.pop()
        if rows and len(values) != len(rows):
            raise ValueError(f"column {name!r} has {len(values)} values for a Table of {len(rows)} rows")
        if not rows:
            rows.extend([] for _ in values)
        for row, value in zip(rows, values, strict=True):
            row.append(value)
        self._columns.append(name)
        self._kinds.append(None)
        for value in values:
            self._check_cell(len(self._columns) - 1, value)

    def get_column(self, name: str, convert_to: str | None = None) -> Any:
        """One column's values (convert_to="numpy": a numpy array)."""
        if name not in self._columns:
            raise KeyError(f"Table has no column {name!r}: its columns are {self._columns}")
        if self._frame is not None:
            values = self._frame.column(self._columns.index(name)).to_pylist()
        else:
            i = self._columns.index(name)
            values = [row[i] for row in self._rows]
        if convert_to == "numpy":
            return np.array(values)
        if convert_to is not None:
            raise ValueError(f"convert_to must be None or 'numpy', got {convert_to!r}")
        return values

    def get_index(self) -> list[int]:
        return list(range(len(self.data)))

    def __len__(self) -> int:
        return self._frame.num_rows if self._frame is not None else len(self._rows)

    # ---- storing ------------------------------------------------------------------------
    def to_arrow(self, put: Put | None = None, name: str = "table") -> pa.Table:
        """The table as Arrow; media cells stored through `put` (their reference as JSON
        text), or refused without one."""
        if self._frame is not None:
            return self._frame
        arrays = {}
        for i, column in enumerate(self._columns):
            values = [_plain(row[i]) for row in self._rows]
            if any(isinstance(v, Media) for v in values):
                if put is None:
                    raise TypeError(f"Table column {column!r} holds media: log the table to store them")
                if not all(v is None or isinstance(v, Media) for v in values) and not self.allow_mixed_types:
                    raise TypeError(f"Table column {column!r} mixes media with other values")
                values = [
                    json.dumps(v.store(put, f"{name}.{column}.{r}"), separators=(",", ":"))
                    if isinstance(v, Media)
                    else v
                    for r, v in enumerate(values)
                ]
            arrays[column] = self._column(column, values)
        return pa.table(arrays) if arrays else pa.table({})

    def _column(self, column: str, values: list[Any]) -> pa.Array:
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            if self.allow_mixed_types:
                return pa.array(
                    [None if v is None else json.dumps(v, default=str) for v in values], pa.string()
                )
            raise TypeError(
                f"Table column {column!r} mixes types that cannot share a column ({exc}); "
                "pass allow_mixed_types=True to store its cells as JSON text"
            ) from None

    @property
    def table(self) -> pa.Table:
        return self.to_arrow()

    def encode(self) -> bytes:
        return encode_any(self.to_arrow())

    def store(self, put: Put, name: str) -> dict[str, Any]:
        arrow = self.to_arrow(put, name)
        media_columns = [
            c
            for i, c in enumerate(self._columns)
            if self._frame is None and any(isinstance(r[i], Media) for r in self._rows)
        ]
        doc = {
            "_type": "table-file",
            **put(self.kind, encode_any(arrow), self.suffix, name),
            **self.describe(),
        }
        if media_columns:
            doc["media_columns"] = media_columns
        return doc

    def describe(self) -> dict[str, Any]:
        return {"ncols": len(self._columns), "nrows": len(self), "columns": list(self._columns)}
