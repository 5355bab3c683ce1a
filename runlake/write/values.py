"""Turn one `run.log()` payload into a flat {key: float | str} row, or raise before anything is kept."""

from __future__ import annotations

import numbers
import reprlib
import warnings
from collections.abc import Mapping
from typing import Any

from ..errors import KeyCollisionWarning

Row = dict[str, "float | str"]

_MAX_CACHED_KEYS = 100_000  # a run's set of keys already checked stops growing here
_FLOAT_ONLY = frozenset([float])


def _check_key(key: object, path: str) -> str:
    if type(key) is not str:
        if isinstance(key, str):
            key = str(key)
        else:
            raise TypeError(
                f"metric names must be str, got {type(key).__name__} {reprlib.repr(key)}"
                + (f" under {path!r}" if path else "")
            )
    if not key:
        raise ValueError("metric names must be non-empty" + (f" (under {path!r})" if path else ""))
    return key


def _scalar(value: Any, key: str) -> float | str | None:
    """Convert one leaf value; None means 'skip'."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool | int | float):
        try:
            return float(value)
        except OverflowError:
            raise ValueError(f"value of {key!r} is too large for a float64: {reprlib.repr(value)}") from None
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            inner = item()
        except Exception as exc:  # e.g. a multi-element array or tensor
            raise TypeError(
                f"value of {key!r} is a {type(value).__name__} that is not a scalar ({exc}); "
                "log a number, a str, or a 0-d array/tensor"
            ) from None
        if isinstance(inner, bool | int | float) and not isinstance(inner, str):
            return float(inner)
    raise TypeError(
        f"value of {key!r} has unsupported type {type(value).__name__}: log a number "
        "(int, float, bool, numpy/torch scalar), a str, a nested dict, or None to skip"
    )


def _flatten_into(out: Row, data: Mapping[Any, Any], prefix: str) -> None:
    for raw_key, value in data.items():
        key = _check_key(raw_key, prefix)
        name = prefix + key
        if isinstance(value, Mapping):
            _flatten_into(out, value, name + "/")
            continue
        if value is None:
            continue
        scalar = _scalar(value, name)
        if name in out:
            warnings.warn(
                KeyCollisionWarning(
                    f"metric {name!r} was given twice in one log call (a nested dict and a flat name "
                    f"flatten to the same key): {out[name]!r} is dropped, {scalar!r} is kept"
                ),
                stacklevel=4,
            )
        out[name] = scalar  # type: ignore[assignment]


def flatten(data: object, known: set[str]) -> tuple[Row, bool]:
    """Validate and flatten a log payload into (row, may_hold_text).

    Raises TypeError/ValueError naming the bad key before anything is kept. `may_hold_text`
    is False only when every value is a float, which lets encoding take its fast path.
    `known` holds the names already checked (the caller's; the check is pure, so it only
    saves time on the hot path) and gains the new ones.
    """
    # Fastest path: a flat dict of floats whose keys were all checked before (C-level checks).
    if type(data) is dict and _FLOAT_ONLY.issuperset(map(type, data.values())) and known.issuperset(data):
        return data.copy(), False
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
                out[key] = _scalar(value, key)  # type: ignore[assignment]
                continue
        break
    else:
        return out, False
    out.clear()
    _flatten_into(out, data, "")
    for name in out:
        if name not in known:
            if name.startswith("_"):
                raise ValueError(
                    f"metric name {name!r} starts with '_': names starting with '_' are reserved "
                    "(runlake adds _step, _timestamp and _runtime to every row)"
                )
            if len(known) < _MAX_CACHED_KEYS:
                known.add(name)
    return out, not _FLOAT_ONLY.issuperset(map(type, out.values()))
