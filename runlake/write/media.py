"""What `log()` takes besides numbers and strings, as W&B defines them: Histogram, Image, Table.

A histogram is JSON in the history's text column. Images (PNG) and tables (Parquet) are files
in the root, `media/<project>/<run_id>/{images,tables}/<key>_<step>_<hash>.<ext>`, and the
history holds a JSON reference to the file (`_type`, `path` relative to the root, `sha256`, ...).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from ..store.parquet import encode_any

MAX_BINS = 512  # W&B's limit


class Histogram:
    """`runlake.Histogram(sequence=…, np_histogram=…, num_bins=64)`, as `wandb.Histogram`."""

    def __init__(
        self, sequence: Sequence[Any] | np.ndarray | None = None, np_histogram: Any = None, num_bins: int = 64
    ) -> None:
        if np_histogram is not None:
            if len(np_histogram) != 2:
                raise ValueError("np_histogram must be a tuple (values, bin_edges), as np.histogram returns")
            values, bins = np_histogram
            self.histogram = list(np.asarray(values).tolist())
            self.bins = [float(b) for b in np.asarray(bins).tolist()]
        elif sequence is not None:
            if not isinstance(num_bins, int) or isinstance(num_bins, bool) or num_bins < 1:
                raise ValueError(f"num_bins must be a positive int, got {num_bins!r}")
            data = np.asarray(sequence, dtype=float).reshape(-1)
            counts, edges = np.histogram(data, bins=num_bins)
            self.histogram = counts.tolist()
            self.bins = edges.tolist()
        else:
            raise ValueError("Histogram needs a sequence or np_histogram=(values, bin_edges)")
        if len(self.histogram) > MAX_BINS:
            raise ValueError(f"a histogram has at most {MAX_BINS} bins, got {len(self.histogram)}")
        if len(self.histogram) + 1 != len(self.bins):
            raise ValueError("len(bins) must be len(values) + 1")

    def to_json(self) -> dict[str, Any]:
        return {"_type": "histogram", "values": self.histogram, "bins": self.bins}

    def __repr__(self) -> str:
        return f"<runlake.Histogram {len(self.histogram)} bins>"


class Media:
    """A logged object stored as a file in the root; the row keeps `reference()`."""

    kind = ""
    suffix = ""

    def encode(self) -> bytes:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def reference(self, data: bytes, path: str) -> dict[str, Any]:
        return {
            "_type": f"{self.kind}-file",
            "path": path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            **self.describe(),
        }


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def file_name(key: str, step: int, data: bytes, suffix: str) -> str:
    """`<key>_<step>_<hash>.<suffix>`: the key made safe for any filesystem, the hash of the bytes."""
    safe = _SAFE.sub("_", key)[:100].strip("._") or "media"
    return f"{safe}_{step}_{hashlib.sha256(data).hexdigest()[:20]}{suffix}"


class Image(Media):
    """`runlake.Image(data_or_path, mode=None, caption=None)`: a numpy array (H×W, H×W×3 or
    H×W×4; floats in [0, 1] are scaled to 0-255, as W&B does), a PIL image, or an image file."""

    kind = "image"
    suffix = ".png"

    def __init__(
        self, data_or_path: Any, mode: str | None = None, caption: str | None = None, **_: Any
    ) -> None:
        try:
            from PIL import Image as PILImage
        except ImportError:  # pragma: no cover - pillow is a dependency
            raise ImportError("runlake.Image needs pillow: pip install pillow") from None
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"caption must be a str, got {type(caption).__name__}")
        self.caption = caption
        image: Any
        if isinstance(data_or_path, str | os.PathLike):
            path = os.fspath(data_or_path)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"runlake.Image: no image file at {path!r}")
            try:
                image = PILImage.open(path)
                image.load()
            except Exception as exc:  # noqa: BLE001 - any decoder error
                raise ValueError(f"runlake.Image: {path!r} is not an image pillow can read ({exc})") from None
        elif isinstance(data_or_path, PILImage.Image):
            image = data_or_path
        else:
            array = np.asarray(data_or_path)
            if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
                array = np.moveaxis(array, 0, -1)  # channels first (a torch tensor) -> last
            if array.ndim == 3 and array.shape[-1] == 1:
                array = array[..., 0]
            if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
                raise ValueError(
                    f"runlake.Image: an array must be H×W, H×W×3 or H×W×4, got shape {array.shape}"
                )
            if array.dtype.kind == "f":
                if array.size and np.nanmax(array) <= 1.0:
                    array = array * 255
                array = np.clip(np.nan_to_num(array), 0, 255)
            image = PILImage.fromarray(array.astype(np.uint8), mode=mode)
        self._image = image.convert(mode) if mode and image.mode != mode else image

    def encode(self) -> bytes:
        out = io.BytesIO()
        self._image.save(out, format="PNG")
        return out.getvalue()

    def describe(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": "png", "width": self._image.width, "height": self._image.height}
        if self.caption is not None:
            doc["caption"] = self.caption
        return doc


class Table(Media):
    """`runlake.Table(columns=…, data=…, rows=…, dataframe=…)`: rows of values, a pandas or
    polars DataFrame, or a 2-d numpy array; stored as Parquet."""

    kind = "table"
    suffix = ".parquet"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Any = None,
        rows: Any = None,
        dataframe: Any = None,
        **_: Any,
    ) -> None:
        if dataframe is not None:
            table = _from_frame(dataframe)
        else:
            body = rows if data is None else data
            body = [] if body is None else body
            if isinstance(body, np.ndarray):
                body = body.tolist()
            if not isinstance(body, Sequence) and not hasattr(body, "__iter__"):
                raise TypeError(f"Table data must be a list of rows, got {type(body).__name__}")
            body = [list(r) for r in body]
            width = len(body[0]) if body else len(columns or [])
            names = list(columns) if columns is not None else [f"Column {i + 1}" for i in range(width)]
            if any(len(r) != len(names) for r in body):
                raise ValueError(f"every Table row must have {len(names)} values (one per column: {names})")
            arrays = {}
            for i, name in enumerate(names):
                values = [r[i] for r in body]
                try:
                    arrays[str(name)] = pa.array(values)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise TypeError(
                        f"Table column {name!r} mixes types that cannot share a column ({exc})"
                    ) from None
            table = pa.table(arrays) if arrays else pa.table({})
        self.table = table

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    def encode(self) -> bytes:
        return encode_any(self.table)

    def describe(self) -> dict[str, Any]:
        return {"ncols": self.table.num_columns, "nrows": self.table.num_rows, "columns": self.columns}


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
