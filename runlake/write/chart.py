"""A custom chart (what `wandb.plot.*` and `wandb.plot_table` return): a Table of the data and a
small spec naming the chart type and which columns it draws. Logged under key `k`, it is stored
as W&B stores it, under `k_table`: the table as Parquet like any Table, and its reference
({"_type": "table-file", "path", ...}) carries the spec as "chart": {"type": <W&B's vega spec
name>, "fields": {...}, "string_fields": {...}, "title": ...}, so the data is queryable and the
web app can draw it."""

from __future__ import annotations

from typing import Any

from .media import Media, Put
from .table import Table


class CustomChart(Media):
    kind = "chart"

    def __init__(
        self,
        chart: str,
        table: Table,
        fields: dict[str, str],
        string_fields: dict[str, Any] | None = None,
        split_table: bool = False,
    ) -> None:
        if not isinstance(table, Table):
            raise TypeError(f"a chart's data must be a runlake.Table, got {type(table).__name__}")
        missing = [v for v in fields.values() if v not in table.columns]
        if missing:
            raise ValueError(
                f"{chart} chart: the table has no column(s) {missing}; its columns are {table.columns}"
            )
        self.chart, self.table, self.fields = chart, table, dict(fields)
        self.string_fields = dict(string_fields or {})
        self.split_table = split_table

    @property
    def title(self) -> str:
        return str(self.string_fields.get("title", ""))

    def store(self, put: Put, name: str) -> dict[str, Any]:
        spec = {
            "type": self.chart,
            "fields": self.fields,
            "string_fields": self.string_fields,
            "title": self.title,
        }
        return {**self.table.store(put, name), "chart": spec}

    def __repr__(self) -> str:
        return f"<runlake chart {self.chart} {self.fields}>"
