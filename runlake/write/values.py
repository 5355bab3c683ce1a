"""Turn one `run.log()` payload into a flat {key: float | str} row, or raise before anything is kept.

Values are stored as W&B stores them (README, "Coming from W&B"): numbers as float64, strings
as text, and lists, tuples, small arrays, histograms, Decimals, Fractions and datetimes as W&B's
JSON / string forms in the text column. Nested dicts flatten with "." (W&B's backend does the
same); a "/" is part of one flat name. Media (images, tables) are collected for the caller to
write, and their JSON reference goes in the row.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import fractions
import json
import math
import numbers
import reprlib
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import KeyCollisionWarning
from .chart import CustomChart
from .media import Histogram, Image, Media, MediaList, matplotlib_figure
from .rich_media import Plotly

Row = dict[str, "float | str"]

_MAX_CACHED_KEYS = 100_000  # a run's set of keys already checked stops growing here
_FLOAT_ONLY = frozenset([float])
# W&B's own row keys: a logged `_step` is ignored (the step argument decides), `_runtime` is
# runlake's to compute, `_timestamp` replaces the row's time.
IGNORED_KEYS = frozenset(["_step", "_runtime"])
HISTOGRAM_ABOVE = 32  # arrays of more numbers become a 32-bin histogram, as in W&B


class Extra:
    """What a log call has besides its row (None on the fast paths): a `_timestamp` the user
    gave, the keys whose values are JSON, and media objects to write (key -> object)."""

    __slots__ = ("json_keys", "media", "stamp")

    def __init__(self) -> None:
        self.stamp: float | None = None
        self.json_keys: list[str] = []
        self.media: dict[str, Media] = {}


def _check_key(key: object, path: str) -> str:
    if type(key) is not str:
        if isinstance(key, str):
            key = str(key)
        elif isinstance(key, int | float) and not isinstance(key, bool):
            key = str(key)  # W&B turns {1: x} into "1"
        else:
            raise TypeError(
                f"metric names must be str, got {type(key).__name__} {reprlib.repr(key)}"
                + (f" under {path!r}" if path else "")
            )
    if not key:
        raise ValueError("metric names must be non-empty" + (f" (under {path!r})" if path else ""))
    return key


def _text(value: str, key: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"value of {key!r} is a str that cannot be stored as UTF-8 ({exc.reason} at {exc.start})"
        ) from None
    return value


def to_json(value: Any, key: str) -> Any:
    """A value inside a list or dict, as W&B's JSON encoder writes it (or TypeError)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {str(_check_key(k, key)): to_json(v, key) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v, key) for v in value]
    if isinstance(value, Histogram):
        return value.to_json()
    special = _special(value)
    if special is not None:
        return special
    array = _array(value)
    if array is not None:
        return to_json(array.tolist(), key)
    item = getattr(value, "item", None)
    if callable(item):
        return to_json(item(), key)
    raise TypeError(
        f"value of {key!r} holds a {type(value).__name__}, which runlake cannot store: it is not "
        "JSON-serializable and not one of runlake's media types"
    )


def _special(value: Any) -> str | None:
    """The string W&B stores for a Decimal, Fraction, datetime, bytes or enum (None: not one)."""
    if isinstance(value, decimal.Decimal | fractions.Fraction):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, enum.Enum):
        return str(value.name)
    return None


def _array(value: Any) -> np.ndarray | None:
    """A numpy array for an ndarray or a torch tensor, else None."""
    if isinstance(value, np.ndarray):
        return value
    for attr in ("detach", "numpy"):  # torch: detach().cpu().numpy()
        if not callable(getattr(value, attr, None)):
            return None
    try:
        tensor = value.detach()
        tensor = tensor.cpu() if callable(getattr(tensor, "cpu", None)) else tensor
        return np.asarray(tensor.numpy())
    except Exception:  # noqa: BLE001 - not a tensor after all
        return None


def _scalar(value: Any, key: str, logged: Extra) -> float | str | None:
    """Convert one leaf value; None means 'skip'."""
    if isinstance(value, str):
        return _text(value, key)
    if isinstance(value, bool | int | float):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"value of {key!r} is too large for a float64: {reprlib.repr(value)}") from None
    special = _special(value)
    if special is not None:
        return _text(special, key)
    if isinstance(value, numbers.Real):  # numpy scalars
        return float(value)
    media = _as_media(value)
    if media is not None:
        logged.media[key] = media
        logged.json_keys.append(key)
        return ""  # the reference is filled in once the file is written
    if isinstance(value, Histogram):
        return _json(value.to_json(), key, logged)
    if isinstance(value, list | tuple | set | frozenset):
        return _json(to_json(value, key), key, logged)
    array = _array(value)
    if array is not None:
        if array.size == 1:
            return _scalar(array.reshape(-1)[0], key, logged)
        if array.size > HISTOGRAM_ABOVE:
            return _json(Histogram(array.reshape(-1), num_bins=32).to_json(), key, logged)
        return _json(to_json(array.tolist(), key), key, logged)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            inner = item()
        except Exception as exc:  # noqa: BLE001 - e.g. an unknown tensor type
            raise TypeError(
                f"value of {key!r} is a {type(value).__name__} that is not a scalar ({exc})"
            ) from None
        if isinstance(inner, bool | int | float):
            return float(inner)
    raise TypeError(
        f"value of {key!r} has unsupported type {type(value).__name__}: log a number, a str, a list, "
        "an array, a runlake.Histogram / Image / Table / Audio / Video / Html / Plotly (or a list of "
        "them), a matplotlib or plotly figure, a nested dict, or None to skip"
    )


def _as_media(value: Any) -> Media | None:
    """A value stored as file(s): a media object, a list of them (one value, as W&B logs
    `[wandb.Image(...), ...]`), a matplotlib figure or `plt` (an Image), a plotly figure."""
    if isinstance(value, Media):
        return value
    if isinstance(value, list | tuple) and value and all(isinstance(v, Media) for v in value):
        return MediaList(value)
    if matplotlib_figure(value) is not None:
        return Image(value)
    if type(value).__module__.startswith("plotly.") and callable(getattr(value, "to_json", None)):
        return Plotly(value)
    return None


def _json(doc: Any, key: str, logged: Extra) -> str:
    logged.json_keys.append(key)
    return json.dumps(doc, allow_nan=True, separators=(",", ":"))


def _flatten_into(out: Row, data: Mapping[Any, Any], prefix: str, logged: Extra) -> None:
    for raw_key, value in data.items():
        key = _check_key(raw_key, prefix)
        name = prefix + key
        if isinstance(value, Mapping):
            _flatten_into(out, value, name + ".", logged)
            continue
        if value is None:
            continue
        if isinstance(value, CustomChart):
            name += "_table"  # W&B's key for a chart's data (the chart spec rides in its reference)
        scalar = _scalar(value, name, logged)
        if name in out:
            warnings.warn(
                KeyCollisionWarning(
                    f"metric {name!r} was given twice in one log call (a nested dict and a flat name "
                    f"flatten to the same key): {out[name]!r} is dropped, {scalar!r} is kept"
                ),
                stacklevel=4,
            )
        out[name] = scalar  # type: ignore[assignment]


def flatten(data: object, known: set[str]) -> tuple[Row, bool, Extra | None]:
    """Validate and flatten a log payload into (row, may_hold_text, extra). Raises TypeError/ValueError naming the bad key
    before anything is kept. `text` is False only when every value is a float, which lets
    encoding take its fast path. `known` holds the names already checked (the caller's; the
    check is pure, so it only saves time on the hot path) and gains the new ones.
    """
    # Fastest path: a flat dict of floats whose keys were all checked before (C-level checks).
    if type(data) is dict and _FLOAT_ONLY.issuperset(map(type, data.values())) and known.issuperset(data):
        return data.copy(), False, None
    if not isinstance(data, Mapping):
        raise TypeError(f"run.log() takes a dict of metric names to values, got {type(data).__name__}")
    out: Row = {}
    # Fast path: flat dicts of floats and ints with keys seen before.
    for key, value in data.items():
        if key in known:
            t = type(value)
            if t is float:
                out[key] = value
                continue
            if t is int:
                try:
                    out[key] = float(value)
                    continue
                except OverflowError:
                    pass
        break
    else:
        return out, False, None
    out.clear()
    logged = Extra()
    _flatten_into(out, data, "", logged)
    for name in [n for n in out if n[0] == "_" and n not in known]:
        if name in IGNORED_KEYS:
            del out[name]
        elif name == "_timestamp":
            stamp = out.pop(name)
            if not isinstance(stamp, float) or not math.isfinite(stamp):
                raise TypeError(
                    f"_timestamp must be a finite number of seconds since the epoch, got {stamp!r}"
                )
            logged.stamp = stamp
    for name in out:
        if name not in known:
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"metric name {name!r} cannot be stored as UTF-8") from None
            if len(known) < _MAX_CACHED_KEYS:
                known.add(name)
    text = not _FLOAT_ONLY.issuperset(map(type, out.values()))
    if logged.stamp is None and not logged.json_keys:
        return out, text, None
    return out, text, logged
