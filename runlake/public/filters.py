"""W&B's MongoDB-style run filters and orders, translated to SQL over the `runs` view.

Every value the user gives is a query parameter; only names from the tables below and
placeholders are ever written into the SQL text. A field or operator this does not know is a
ValueError naming it (W&B's server would answer with an error too).
"""

from __future__ import annotations

import json
import re
from typing import Any

OPERATORS = (
    "$and",
    "$or",
    "$nor",
    "$not",
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$regex",
    "$exists",
)

# W&B's run fields -> the `runs` view's columns (W&B's `name` is the run id, `display_name` the name)
COLUMNS = {
    "name": "run_id",
    "id": "run_id",
    "display_name": "name",
    "displayName": "name",
    "state": "state",
    "group": '"group"',
    "jobType": "job_type",
    "job_type": "job_type",
    "entity": "entity",
    "username": "entity",
    "notes": "notes",
    "description": "notes",
}
TIMES = {
    "createdAt": "created_at",
    "created_at": "created_at",
    "heartbeatAt": "heartbeat_at",
    "heartbeat_at": "heartbeat_at",
}
JSON_PREFIXES = {
    "config": "config",
    "summary_metrics": "summary",
    "summaryMetrics": "summary",
    "summary": "summary",
}
# `sweep`: the sweep a run belongs to (init() inside a sweep agent records it in its metadata)
SWEEP = "sweep_id"


class Where:
    """SQL text with positional parameters, built up from a filter."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def param(self, value: Any) -> str:
        self.params.append(value)
        return "?"


def _json_paths(parts: list[str]) -> list[str]:
    """The JSON paths a dotted name may mean, most specific first: nested keys, one key with
    dots in it (a flattened config), and for W&B's `config.<key>.value` form the key itself."""

    def path(keys: list[str]) -> str:
        return "$" + "".join("." + json.dumps(k) for k in keys)

    candidates = [path(parts)]
    if len(parts) > 1:
        candidates.append(path([".".join(parts)]))
    if len(parts) > 1 and parts[-1] == "value":
        candidates.extend(_json_paths(parts[:-1]))
    return list(dict.fromkeys(candidates))


class _Field:
    """One filterable field: how to compare it with a value, with SQL for each operator."""

    def __init__(self, name: str, w: Where) -> None:
        self.name, self.w = name, w
        head, _, rest = name.partition(".")
        self.kind = "column"
        self.column = ""
        self.paths: list[str] = []
        if name == "tags":
            self.kind, self.column = "tags", "tags"
        elif name in COLUMNS:
            self.column = COLUMNS[name]
        elif name in TIMES:
            self.kind, self.column = "time", TIMES[name]
        elif name in ("sweep", "sweepName", "sweep_id"):
            self.column = SWEEP
        elif head in JSON_PREFIXES and rest:
            self.kind, self.column = "json", JSON_PREFIXES[head]
            self.paths = _json_paths(rest.split("."))
        else:
            known = sorted({*COLUMNS, *TIMES, "tags", "sweep"}) + ["config.<key>", "summary_metrics.<key>"]
            raise ValueError(f"unknown run field {name!r} in filters: use one of {', '.join(known)}")

    # -- the value's SQL expressions --------------------------------------------------------
    def _json(self) -> str:
        ps = [f"json_extract({self.column}, {self.w.param(p)})" for p in self.paths]
        return ps[0] if len(ps) == 1 else f"coalesce({', '.join(ps)})"

    def _text(self) -> str:
        if self.kind == "json":
            ps = [f"json_extract_string({self.column}, {self.w.param(p)})" for p in self.paths]
            return ps[0] if len(ps) == 1 else f"coalesce({', '.join(ps)})"
        return self.column

    def _number(self) -> str:
        return f"TRY_CAST({self._text()} AS DOUBLE)"

    def _operand(self, value: Any, op: str) -> tuple[str, str]:
        """(the field's expression, the value's placeholder) for comparing with `value`."""
        if isinstance(value, (dict, list)) and op != "$in":
            raise ValueError(
                f"filter {self.name!r}: {op} compares with a number, string or bool, got {value!r:.80}"
            )
        if self.kind == "time":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ValueError(
                    f"filter {self.name!r}: a time is an ISO 8601 string or epoch seconds, got {value!r:.80}"
                )
            if isinstance(value, str):
                return self.column, f"CAST({self.w.param(value)} AS TIMESTAMPTZ)"
            return self.column, f"to_timestamp({self.w.param(float(value))})"
        if isinstance(value, bool):
            return self._text(), self.w.param("true" if value else "false")
        if isinstance(value, (int, float)):
            if self.kind == "json":
                return self._number(), self.w.param(float(value))
            return f"TRY_CAST({self.column} AS DOUBLE)", self.w.param(float(value))
        return self._text(), self.w.param(str(value))

    # -- operators ---------------------------------------------------------------------------
    def compare(self, op: str, value: Any) -> str:
        if self.kind == "tags":
            return self._tags(op, value)
        if op == "$exists":
            expr = self._json() if self.kind == "json" else self.column
            present = f"({expr} IS NOT NULL)"
            return present if _truthy(value, self.name) else f"(NOT {present})"
        if op == "$regex":
            if not isinstance(value, str):
                raise ValueError(f"filter {self.name!r}: $regex needs a string, got {value!r:.80}")
            return f"coalesce(regexp_matches({self._text()}, {self.w.param(value)}), FALSE)"
        if op in ("$in", "$nin"):
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"filter {self.name!r}: {op} needs a list, got {value!r:.80}")
            anyof = " OR ".join(self.compare("$eq", v) for v in value) or "FALSE"
            return f"({anyof})" if op == "$in" else f"(NOT coalesce(({anyof}), FALSE))"
        if op in ("$eq", "$ne") and value is None:
            expr = self._text()
            return f"({expr} IS NULL)" if op == "$eq" else f"({expr} IS NOT NULL)"
        sql_op = {"$eq": "=", "$ne": "<>", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
        left, right = self._operand(value, op)
        if op == "$ne":  # MongoDB: a run without the field is "not equal" too
            return f"coalesce({left} <> {right}, TRUE)"
        return f"coalesce({left} {sql_op} {right}, FALSE)"

    def _tags(self, op: str, value: Any) -> str:
        if op == "$exists":
            present = "(len(coalesce(tags, [])) > 0)"
            return present if _truthy(value, self.name) else f"(NOT {present})"
        if op == "$regex":
            if not isinstance(value, str):
                raise ValueError(f"filter 'tags': $regex needs a string, got {value!r:.80}")
            return f"coalesce(list_bool_or(list_transform(tags, lambda t: regexp_matches(t, {self.w.param(value)}))), FALSE)"
        if op in ("$in", "$nin"):
            if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) for t in value):
                raise ValueError(f"filter 'tags': {op} needs a list of strings, got {value!r:.80}")
            has = f"coalesce(list_has_any(tags, {self.w.param(list(value))}::VARCHAR[]), FALSE)"
            return has if op == "$in" else f"(NOT {has})"
        if op in ("$eq", "$ne"):
            if not isinstance(value, str):
                raise ValueError(f"filter 'tags': {op} needs a tag (a string), got {value!r:.80}")
            has = f"coalesce(list_contains(tags, {self.w.param(value)}), FALSE)"
            return has if op == "$eq" else f"(NOT {has})"
        raise ValueError(
            f"filter 'tags': {op} does not apply to tags (use $in, $nin, $eq, $ne, $regex, $exists)"
        )


def _truthy(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"filter {name!r}: $exists needs true or false, got {value!r:.80}")
    return value


def _conditions(name: str, cond: Any, w: Where) -> str:
    """A field's condition: a value (equality), or a dict of operators."""
    field = _Field(name, w)
    if isinstance(cond, dict) and cond and all(isinstance(k, str) and k.startswith("$") for k in cond):
        parts = []
        for op, value in cond.items():
            if op == "$not":
                if not isinstance(value, dict):
                    raise ValueError(f"filter {name!r}: $not needs a dict of operators, got {value!r:.80}")
                parts.append(f"(NOT coalesce({_conditions(name, value, w)}, FALSE))")
            elif op not in OPERATORS or op in ("$and", "$or", "$nor"):
                raise ValueError(
                    f"unknown filter operator {op!r} on {name!r}: use one of {', '.join(OPERATORS)}"
                )
            else:
                parts.append(field.compare(op, value))
        return "(" + " AND ".join(parts) + ")"
    if isinstance(cond, dict):
        bad = [k for k in cond if isinstance(k, str) and k.startswith("$")]
        if bad:
            raise ValueError(f"filter {name!r} mixes operators ({', '.join(bad)}) with plain keys")
        raise ValueError(f"filter {name!r}: compare with a value or a dict of operators, got {cond!r:.80}")
    if isinstance(cond, list) and field.kind != "tags":
        raise ValueError(f"filter {name!r}: to match one of several values use {{'$in': [...]}}")
    if isinstance(cond, list):
        return field.compare("$in", cond)
    return field.compare("$eq", cond)


def where(filters: dict[str, Any] | None) -> tuple[str, list[Any]]:
    """(SQL condition, parameters) for a W&B filter dict (None or {}: every run)."""
    w = Where()
    sql = _node(filters or {}, w)
    return sql, w.params


def _node(node: Any, w: Where) -> str:
    if not isinstance(node, dict):
        raise ValueError(f"filters must be a dict, got {type(node).__name__}: {node!r:.80}")
    parts: list[str] = []
    for key, value in node.items():
        if not isinstance(key, str):
            raise ValueError(f"filter keys are strings, got {key!r:.80}")
        if key in ("$and", "$or", "$nor"):
            if not isinstance(value, list) or not value:
                raise ValueError(f"{key} needs a non-empty list of filters, got {value!r:.80}")
            inner = [_node(v, w) for v in value]
            joined = (" AND " if key == "$and" else " OR ").join(f"({x})" for x in inner)
            parts.append(f"(NOT coalesce(({joined}), FALSE))" if key == "$nor" else f"({joined})")
        elif key == "$not":
            parts.append(f"(NOT coalesce(({_node(value, w)}), FALSE))")
        elif key.startswith("$"):
            raise ValueError(f"unknown filter operator {key!r}: use one of {', '.join(OPERATORS)}")
        else:
            parts.append(_conditions(key, value, w))
    return " AND ".join(parts) if parts else "TRUE"


_ORDER = re.compile(r"^([+-]?)(.+)$")


def order_by(order: str | None) -> tuple[str, list[Any]]:
    """(ORDER BY list, parameters) for W&B's order: `[+|-]field` (+, the default, ascending),
    on the fields filters take; runs whose value is missing come last; ties by creation."""
    text = (order or "+created_at").strip()
    m = _ORDER.match(text)
    if m is None:
        raise ValueError(f"order {order!r}: expected [+|-]<field>")
    sign, name = m.groups()
    direction = "DESC" if sign == "-" else "ASC"
    w = Where()
    field = _Field(name, w)
    exprs: list[str]
    if field.kind == "json":
        exprs = [field._number(), field._text()]  # numbers by value; text after, alphabetically
    elif field.kind == "tags":
        raise ValueError("order: runs cannot be ordered by tags")
    else:
        exprs = [field.column]
    keys = [f"{e} {direction} NULLS LAST" for e in exprs]
    return ", ".join([*keys, "created_at ASC", "run_id ASC"]), w.params
