"""The `runlake` command group and what its commands share: the one Lake of an invocation,
`--root` and the output options, table and file output, and errors as one line on stderr."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import click
import polars as pl

import runlake

FORMATS = ("table", "csv", "json", "parquet")
# -o FILE without --format: the format its extension names (anything else: tab-separated text)
_BY_EXTENSION = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet", ".tsv": "table"}


class _Group(click.Group):
    """Turns every expected error into `runlake: error: ...` and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (runlake.RunlakeError, ValueError, TypeError, LookupError, OSError) as exc:
            # one line: DuckDB's LINE marker and hints stay in the library's exception
            click.echo(
                f"runlake: error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True
            )
            ctx.exit(1)
        except Exception as exc:  # duckdb errors in user SQL, and the like
            if type(exc).__module__.split(".")[0] in ("duckdb", "_duckdb", "polars"):
                click.echo(f"runlake: error: {str(exc).splitlines()[0]}", err=True)
                ctx.exit(1)
            raise


def tty() -> bool:
    return sys.stdout.isatty()


@contextlib.contextmanager
def busy(message: str) -> Iterator[None]:
    """A spinner on a terminal for work that can take seconds; silent when piped."""
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        yield


def print_frame(df: pl.DataFrame, fmt: str | None, output: str | None) -> None:
    """Print or write a frame: `--format` if given, else the output file's extension, else a table.
    Written and piped output is exact (every float as Python's shortest round-trip repr)."""
    if fmt is None:
        fmt = _BY_EXTENSION.get(os.path.splitext(output)[1].lower(), "table") if output else "table"
    if fmt == "parquet":
        if not output:
            raise ValueError("--format parquet needs -o FILE (Parquet is binary)")
        df.write_parquet(output)
        return
    if fmt == "csv":
        text = df.write_csv()
    elif fmt == "json":
        text = json.dumps(df.to_dicts(), default=str, indent=None) + "\n"
    elif output or not tty():
        text = plain_table(df)
    else:
        rich_table(df)
        return
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


def cell(value: Any, exact: bool = True) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if exact else f"{value:.6g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def plain_table(df: pl.DataFrame) -> str:
    """Tab-separated with a header line: what `cut`, `awk` and `sort` want."""
    out = io.StringIO()
    out.write("\t".join(df.columns) + "\n")
    for row in df.iter_rows():
        out.write("\t".join(cell(v) for v in row) + "\n")
    return out.getvalue()


def rich_table(df: pl.DataFrame, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for name in df.columns:
        table.add_column(name, justify="right" if df.schema[name].is_numeric() else "left")
    for row in df.iter_rows():
        table.add_row(*(cell(v, exact=False) for v in row))  # on a terminal, for reading
    Console().print(table)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    envvar="RUNLAKE_ROOT",
    default=None,
    show_envvar=True,
    help="The root: a local path or fsspec URL (default ./runlake-data).",
)
@click.version_option(runlake.__version__, prog_name="runlake")
@click.pass_context
def main(ctx: click.Context, root: str | None) -> None:
    """runlake: run histories with zero-copy fork and rewind, queried with SQL."""
    ctx.obj = {"root": root}


def root_of(ctx: click.Context) -> str | None:
    return ctx.obj["root"]


def lake_of(ctx: click.Context) -> runlake.Lake:
    """The one Lake of this invocation (made on first use, closed when the command ends)."""
    root_ctx = ctx.find_root()
    lake = root_ctx.obj.get("lake")
    if lake is None:
        lake = root_ctx.obj["lake"] = runlake.Lake(root_of(ctx))
        root_ctx.call_on_close(lake.close)
    return lake


def nothing_in(ctx: click.Context, what: str) -> None:
    """Say on stderr which root a command looked in when it found nothing there."""
    lake = lake_of(ctx)
    where = os.path.abspath(lake.url) if "://" not in lake.url else lake.url
    state = "" if lake.exists() else " (it does not exist)"
    click.echo(f"runlake: {what} in root {where}{state}", err=True)


def set_root(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["root"] = value


def output_options(fn: Any) -> Any:
    """`--format` and `-o FILE`, for the commands that print a table."""
    fn = click.option("-o", "--output", default=None, help="Write to FILE instead of standard output.")(fn)
    return click.option(
        "--format",
        "-f",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format (default: from -o's extension .csv/.json/.parquet/.tsv, else a table; "
        "tab-separated when piped).",
    )(fn)


def root_option(fn: Any) -> Any:
    """`--root` after the command name too (`runlake runs --root PATH`), overriding the group's."""
    return click.option(
        "--root",
        default=None,
        expose_value=False,
        callback=set_root,
        is_eager=True,
        help="The root (overrides RUNLAKE_ROOT and the --root before the command).",
    )(fn)
