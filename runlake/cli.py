"""The `runlake` command: a thin shell over the library. Each command parses, calls one library
function, and formats its result; library errors become one line on stderr and exit status 1."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import click
import polars as pl

import runlake
from runlake.store import settings

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


def _tty() -> bool:
    return sys.stdout.isatty()


@contextlib.contextmanager
def _busy(message: str) -> Iterator[None]:
    """A spinner on a terminal for work that can take seconds; silent when piped."""
    if sys.stderr.isatty():
        from rich.console import Console

        with Console(stderr=True).status(message):
            yield
    else:
        yield


def _print_frame(df: pl.DataFrame, fmt: str | None, output: str | None) -> None:
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
    elif output or not _tty():
        text = _plain_table(df)
    else:
        _rich_table(df)
        return
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        click.echo(text, nl=False)


def _cell(value: Any, exact: bool = True) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if exact else f"{value:.6g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def _plain_table(df: pl.DataFrame) -> str:
    """Tab-separated with a header line: what `cut`, `awk` and `sort` want."""
    out = io.StringIO()
    out.write("\t".join(df.columns) + "\n")
    for row in df.iter_rows():
        out.write("\t".join(_cell(v) for v in row) + "\n")
    return out.getvalue()


def _rich_table(df: pl.DataFrame, title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold")
    for name in df.columns:
        table.add_column(name, justify="right" if df.schema[name].is_numeric() else "left")
    for row in df.iter_rows():
        table.add_row(*(_cell(v, exact=False) for v in row))  # on a terminal, for reading
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


def _root(ctx: click.Context) -> str | None:
    return ctx.obj["root"]


def _lake(ctx: click.Context) -> runlake.Lake:
    """The one Lake of this invocation (made on first use, closed when the command ends)."""
    root_ctx = ctx.find_root()
    lake = root_ctx.obj.get("lake")
    if lake is None:
        lake = root_ctx.obj["lake"] = runlake.Lake(_root(ctx))
        root_ctx.call_on_close(lake.close)
    return lake


def _nothing_in(ctx: click.Context, what: str) -> None:
    """Say on stderr which root a command looked in when it found nothing there."""
    lake = _lake(ctx)
    where = os.path.abspath(lake.url) if "://" not in lake.url else lake.url
    state = "" if lake.exists() else " (it does not exist)"
    click.echo(f"runlake: {what} in root {where}{state}", err=True)


def _set_root(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["root"] = value


def _output_options(fn: Any) -> Any:
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


def _root_option(fn: Any) -> Any:
    """`--root` after the command name too (`runlake runs --root PATH`), overriding the group's."""
    return click.option(
        "--root",
        default=None,
        expose_value=False,
        callback=_set_root,
        is_eager=True,
        help="The root (overrides RUNLAKE_ROOT and the --root before the command).",
    )(fn)


@main.command()
@_root_option
@click.option("--project", "-p", default=None, help="Only the runs of this project.")
@click.option("--group", "-g", default=None, help="Only the runs of this group.")
@click.option("--tag", "-t", "tags", multiple=True, help="Only runs with this tag (repeat: all of them).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run, for scripts.")
@click.pass_context
def runs(
    ctx: click.Context, project: str | None, group: str | None, tags: tuple[str, ...], as_json: bool
) -> None:
    """List runs: id, name, state, group, tags, parent@step, last step, created."""
    table = _lake(ctx).runs(project)
    if group is not None:
        table = table.filter(pl.col("group") == group)
    for tag in tags:
        table = table.filter(pl.col("tags").list.contains(tag))
    if table.height == 0:
        what = [f"of project {project!r}"] if project else []
        what += [f"in group {group!r}"] if group is not None else []
        what += [f"tagged {', '.join(map(repr, tags))}"] if tags else []
        _nothing_in(ctx, " ".join(["no runs", *what]))
    if as_json:
        click.echo(json.dumps(table.to_dicts(), default=str))
        return
    view = table.select(
        pl.col("run_id").alias("id"),
        "name",
        "project",
        "state",
        pl.col("group").fill_null(""),
        pl.col("tags").list.join(",").fill_null("").alias("tags"),
        pl.when(pl.col("parent_run_id").is_not_null())
        .then(pl.col("parent_run_id") + "@" + pl.col("fork_step").cast(pl.String))
        .otherwise(pl.lit(""))
        .alias("parent@step"),
        pl.col("last_step").alias("last step"),
        pl.col("created_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("created"),
    )
    _print_frame(view, "table", None)


@main.command()
@_root_option
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show one run: state, config, summary, lineage and segments."""
    record = _lake(ctx).run(run_id)
    row = record.row
    chain, segments = record.lineage, record.segments.select(
        "segment", "kind", "parent_run_id", "parent_segment", "cutoff"
    )
    info = {
        "run_id": run_id,
        "name": row["name"],
        "project": row["project"],
        "state": row["state"],
        "created_at": str(row["created_at"]),
        "segment": row["segment"],
        "last_step": row["last_step"],
        "parent_run_id": row["parent_run_id"],
        "fork_step": row["fork_step"],
        "tags": row["tags"],
        "notes": row["notes"],
        "config": record.config,
        "summary": record.summary,
        "lineage": chain.to_dicts(),
        "segments": segments.to_dicts(),
    }
    if as_json:
        click.echo(json.dumps(info, default=str))
        return
    for name in (
        "run_id",
        "name",
        "project",
        "state",
        "created_at",
        "segment",
        "last_step",
        "parent_run_id",
        "fork_step",
        "tags",
        "notes",
    ):
        click.echo(f"{name:<14} {_cell(info[name])}")
    for name in ("config", "summary"):
        click.echo(f"{name}:")
        for key, value in sorted(info[name].items()):
            click.echo(f"  {key} = {value!r}")
        if not info[name]:
            click.echo("  (empty)")
    click.echo("lineage:")
    _print_frame(
        chain.select("depth", "run_id", "segment", "kind", "cutoff", "step_lo", "step_hi"), "table", None
    )
    click.echo("segments:")
    _print_frame(segments, "table", None)


@main.command()
@_root_option
@click.argument("run_id")
@click.option("--keys", "-k", default=None, help="Comma-separated metric names (default: all).")
@click.option("--segment", type=int, default=None, help="An archived segment instead of the current one.")
@_output_options
@click.pass_context
def history(
    ctx: click.Context,
    run_id: str,
    keys: str | None,
    segment: int | None,
    fmt: str | None,
    output: str | None,
) -> None:
    """Print or export a run's effective history (one row per step)."""
    key_list = [k for k in keys.split(",") if k] if keys else None
    with _busy(f"reading {run_id}"):
        df = _lake(ctx).history(run_id, key_list, segment=segment)
    _print_frame(df, fmt, output)


@main.command()
@_root_option
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Ancestors and descendants as JSON.")
@click.pass_context
def lineage(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Draw the tree of a run's ancestors and descendants with fork and rewind steps."""
    lake = _lake(ctx)
    chain = lake.lineage(run_id)
    below = lake.descendants(run_id)
    if as_json:
        click.echo(json.dumps({"ancestors": chain.to_dicts(), "descendants": below.to_dicts()}, default=str))
        return
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    nodes = list(reversed(chain.to_dicts()))  # root first
    tree = Tree(Text(_node_label(nodes[0], run_id)))
    branches = {(nodes[0]["run_id"], nodes[0]["segment"]): tree}
    branch = tree
    for node in nodes[1:]:
        arrow = "↺ rewind" if node["kind"] == "rewind" else "fork"
        branch = branch.add(Text(f"{arrow} @{node['cutoff']} → {_node_label(node, run_id)}"))
        branches[(node["run_id"], node["segment"])] = branch
    children: dict[str, list[dict[str, Any]]] = {}
    for child in below.to_dicts():
        children.setdefault(child["parent_run_id"], []).append(child)

    def add_children(parent_id: str, fallback: Tree) -> None:
        for child in children.get(parent_id, []):
            # attach a fork to the segment it was forked from when that node is drawn
            parent = branches.get((parent_id, child["parent_segment"]), fallback)
            sub = parent.add(Text(f"fork @{child['fork_step']} → {child['run_id']} [{child['state']}]"))
            add_children(child["run_id"], sub)

    add_children(run_id, branch)
    Console(force_terminal=False if not _tty() else None, no_color=not _tty()).print(tree)


def _node_label(node: dict[str, Any], selected: str) -> str:
    text = node["run_id"] if node["segment"] == 0 else f"{node['run_id']} (segment {node['segment']})"
    return f"{text}  ◀" if node["run_id"] == selected and node["depth"] == 0 else text


@main.command()
@_root_option
@click.argument("query")
@_output_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Stop the query after this many seconds (default: no limit).",
)
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: str | None, output: str | None, timeout: float | None) -> None:
    """Run read-only SQL over the views runs, lineage, history and raw_history."""
    with _busy("querying"):
        df = _lake(ctx).sql(query, timeout=timeout)
    _print_frame(df, fmt, output)


@main.command()
@_root_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per segment packed.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds the packed parts stay for readers that listed them (default 600, "
    "$RUNLAKE_COMPACT_GRACE); a later compaction removes them. 0: remove them now.",
)
@click.pass_context
def compact(ctx: click.Context, as_json: bool, grace: float | None) -> None:
    """Pack the parts of finished segments into large shared (key, run, step)-sorted files."""
    lake = _lake(ctx)
    if not lake.exists():
        _nothing_in(ctx, "nothing to compact")
        result = pl.DataFrame()
    else:
        result = lake.compact(grace=grace)
    if as_json:
        click.echo(json.dumps(result.to_dicts()))
        return
    if result.height == 0:
        click.echo("compacted 0 segments: every finished segment is already packed")
        return
    click.echo(
        f"compacted {result.height} segments: {int(result['parts_before'].sum() or 0)} parts -> "
        f"{result['pack'].n_unique()} pack file(s), "
        f"{int(result['bytes_before'].sum() or 0):,} B -> {int(result['bytes_after'].sum() or 0):,} B"
    )
    wait = settings.compact_grace() if grace is None else grace
    if wait > 0:
        click.echo(
            f"the packed parts stay {wait:g} s for readers that listed them; "
            "the first `runlake compact` after that removes them (--grace 0: now)"
        )


@main.command()
@_root_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to bind (another than loopback needs a token).",
)
@click.option("--port", default=8742, show_default=True, type=int)
@click.option(
    "--token",
    default=None,
    help="Required on every request (generated and printed when --host is not loopback).",
)
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    help="Another Host name the server answers (a reverse proxy's name); loopback names and --host always are.",
)
@click.option(
    "--sql-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds one SQL console query may run before it is stopped.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.pass_context
def ui(
    ctx: click.Context,
    host: str,
    port: int,
    token: str | None,
    allowed_hosts: tuple[str, ...],
    sql_timeout: float,
    open_browser: bool,
) -> None:
    """Start the web app over the root: runs, a run's lineage and charts, compare, population, SQL; live."""
    from .ui.server import serve

    serve(
        _root(ctx),
        host=host,
        port=port,
        token=token,
        open_browser=open_browser,
        allowed_hosts=allowed_hosts,
        sql_timeout=sql_timeout,
        echo=click.echo,
    )


@main.group()
def catalog() -> None:
    """The root's catalog exported as Parquet (_catalog/*.parquet) for Spark, polars and other engines."""


@catalog.command("export")
@_root_option
@click.option("--json", "as_json", is_flag=True, help="The stamp as JSON.")
@click.pass_context
def catalog_export(ctx: click.Context, as_json: bool) -> None:
    """Write runs, segments, the lineage closure and the file list into <root>/_catalog/."""
    lake = _lake(ctx)
    if not lake.exists():
        _nothing_in(ctx, "nothing to export")
        ctx.exit(1)
    with _busy("exporting the catalog"):
        stamp = lake.export_catalog()
    if as_json:
        click.echo(json.dumps(stamp))
        return
    counts = stamp["counts"]
    click.echo(
        f"exported {counts['runs']} runs, {counts['segments']} segments, {counts['closure']} closure rows, "
        f"{counts['files']} files to {lake.url.rstrip('/')}/_catalog/ in {stamp['seconds']:.2f} s"
    )


@catalog.command("status")
@_root_option
@click.pass_context
def catalog_status(ctx: click.Context) -> None:
    """Say whether the exported catalog is current (exit 1 when it is stale or missing)."""
    lake = _lake(ctx)
    info = lake.catalog_status()
    if not info["exists"]:
        click.echo("no exported catalog: run `runlake catalog export`")
        ctx.exit(1)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["exported_at"]))
    if info["stale"]:
        click.echo(
            f"stale: exported {when} from {info['manifests_then']} manifests; the root has changed since"
        )
        ctx.exit(1)
    click.echo(f"current: exported {when} from {info['manifests_now']} manifests")


@main.command("import")
@_root_option
@click.argument("source", type=click.Choice(["wandb", "mlflow", "tensorboard", "neptune"]))
@click.argument("path")
@click.option("--project", "-p", default=None, help="Import into this project (default: the source's own).")
@click.option("--experiment", default=None, help="mlflow: only this experiment.")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per source run, then the skipped items."
)
@click.pass_context
def import_(
    ctx: click.Context, source: str, path: str, project: str | None, experiment: str | None, as_json: bool
) -> None:
    """Import runs from W&B (offline dir or .wandb), MLflow (tracking URI), TensorBoard (logdir) or Neptune (exporter dir).

    Exit status: 0 when everything was imported, 1 when no run could be, 3 when runs were
    imported but something (a run, a record, points) was skipped: each is listed with its file
    and the reason."""
    options: dict[str, Any] = {"experiment": experiment} if experiment is not None else {}
    if experiment is not None and source != "mlflow":
        raise click.UsageError("--experiment is an MLflow option")
    lake = _lake(ctx)
    report = lake.import_runs(source, path, project=project, **options)
    if as_json:
        for row in report.runs.iter_rows(named=True):
            click.echo(json.dumps(row))
        for item in report.skipped:
            click.echo(json.dumps({"skipped": item.where, "reason": item.reason}))
    else:
        counts = dict(report.runs["status"].value_counts().rows()) if report.runs.height else {}
        said = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no runs"
        click.echo(
            f"{source}: {report.runs.height} run(s) from {path}: {said}; {report.points:,} points in "
            f"{report.seconds:.2f} s"
        )
        for row in report.runs.filter(pl.col("note") != "").iter_rows(named=True):
            click.echo(f"  {row['run_id']}: {row['note']}")
        for item in report.skipped:
            click.echo(f"  skipped {item.where}: {item.reason}", err=True)
        if report.skipped:
            click.echo(f"{len(report.skipped)} item(s) skipped (listed above): exit status 3", err=True)
    if report.runs.height and (report.runs["status"] == "failed").all():
        ctx.exit(1)
    if report.skipped:
        ctx.exit(3)


@main.command()
@_root_option
@click.option(
    "--fix", is_flag=True, help="Quarantine unreadable parts (moved to <root>/_quarantine/, never deleted)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per bad part.")
@click.pass_context
def doctor(ctx: click.Context, fix: bool, as_json: bool) -> None:
    """Check every history part; report unreadable ones and, with --fix, quarantine them."""
    with _busy("checking parts"):
        result = _lake(ctx).doctor(fix=fix)
    if as_json:
        click.echo(json.dumps(result.to_dicts()))
    elif result.height == 0:
        click.echo("all parts are readable")
    else:
        for row in result.iter_rows(named=True):
            click.echo(
                f"{row['path']}: {row['problem']}\n  steps {row['step_lo']}..{row['step_hi']} of run {row['run_id']} "
                f"segment {row['segment']} (in the history of: {', '.join(row['affected_runs'])})\n  {row['action']}"
            )
    if result.height and not fix:
        ctx.exit(1)


@main.command()
@_root_option
@click.option("--dir", "local_dir", default=None, help="The init(dir=...) the runs were started with.")
@click.pass_context
def sync(ctx: click.Context, local_dir: str | None) -> None:
    """Upload the parts and state that runs spilled to local disk while storage was down."""
    result = _lake(ctx).sync(dir=local_dir).row(0, named=True)
    click.echo(
        f"uploaded {result['uploaded']} of {result['spilled']} spilled files; {result['waiting']} still waiting"
    )
    if result["waiting"]:
        ctx.exit(1)


@main.command()
@_root_option
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--key", "-k", required=True, help="The metric to draw.")
@click.option(
    "-o", "--output", default="plot.png", show_default=True, help="A .png or a self-contained .html file."
)
@click.option("--log-scale", is_flag=True, help="Logarithmic y axis.")
@click.option(
    "--smooth",
    "smoothing",
    type=float,
    default=0.0,
    show_default=True,
    help="Exponential moving average weight in [0, 1), as W&B's smoothing slider.",
)
@click.option("--title", default=None, help="Chart title.")
@click.pass_context
def plot(
    ctx: click.Context,
    run_ids: tuple[str, ...],
    key: str,
    output: str,
    log_scale: bool,
    smoothing: float,
    title: str | None,
) -> None:
    """Chart runs as a fork tree: shared prefix once, fork points marked, one colour per branch."""
    with _busy("drawing"):
        result = _lake(ctx).plot(
            list(run_ids),
            key,
            output=output,
            log_scale=log_scale,
            smoothing=smoothing,
            title=title,
        )
    click.echo(f"wrote {result.path}: {len(result.lines)} branches, {len(result.markers)} fork/rewind points")


if __name__ == "__main__":
    main()
