"""`runlake runs|show|history|lineage|sql|plot|alerts|logs`: the commands that read a root."""

from __future__ import annotations

import json
from typing import Any

import click
import polars as pl

from .base import (
    busy,
    cell,
    lake_of,
    main,
    nothing_in,
    output_options,
    print_frame,
    root_option,
    tty,
)


@main.command()
@root_option
@click.option("--project", "-p", default=None, help="Only the runs of this project.")
@click.option("--group", "-g", default=None, help="Only the runs of this group.")
@click.option("--tag", "-t", "tags", multiple=True, help="Only runs with this tag (repeat: all of them).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run, for scripts.")
@click.pass_context
def runs(
    ctx: click.Context, project: str | None, group: str | None, tags: tuple[str, ...], as_json: bool
) -> None:
    """List runs: id, name, state, group, tags, parent@step, last step, created."""
    table = lake_of(ctx).runs(project)
    if group is not None:
        table = table.filter(pl.col("group") == group)
    for tag in tags:
        table = table.filter(pl.col("tags").list.contains(tag))
    if table.height == 0:
        what = [f"of project {project!r}"] if project else []
        what += [f"in group {group!r}"] if group is not None else []
        what += [f"tagged {', '.join(map(repr, tags))}"] if tags else []
        nothing_in(ctx, " ".join(["no runs", *what]))
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
    print_frame(view, "table", None)


@main.command()
@root_option
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show one run: state, config, summary, lineage and segments."""
    record = lake_of(ctx).run(run_id)
    row = record.row
    chain, segments = (
        record.lineage,
        record.segments.select("segment", "kind", "parent_run_id", "parent_segment", "cutoff"),
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
        click.echo(f"{name:<14} {cell(info[name])}")
    for name in ("config", "summary"):
        click.echo(f"{name}:")
        for key, value in sorted(info[name].items()):
            click.echo(f"  {key} = {value!r}")
        if not info[name]:
            click.echo("  (empty)")
    click.echo("lineage:")
    print_frame(
        chain.select("depth", "run_id", "segment", "kind", "cutoff", "step_lo", "step_hi"), "table", None
    )
    click.echo("segments:")
    print_frame(segments, "table", None)


@main.command()
@root_option
@click.argument("run_id")
@click.option("--keys", "-k", default=None, help="Comma-separated metric names (default: all).")
@click.option("--segment", type=int, default=None, help="An archived segment instead of the current one.")
@output_options
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
    with busy(f"reading {run_id}"):
        df = lake_of(ctx).history(run_id, key_list, segment=segment)
    print_frame(df, fmt, output)


@main.command()
@root_option
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Ancestors and descendants as JSON.")
@click.pass_context
def lineage(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Draw the tree of a run's ancestors and descendants with fork and rewind steps."""
    lake = lake_of(ctx)
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
    Console(force_terminal=False if not tty() else None, no_color=not tty()).print(tree)


def _node_label(node: dict[str, Any], selected: str) -> str:
    text = node["run_id"] if node["segment"] == 0 else f"{node['run_id']} (segment {node['segment']})"
    return f"{text}  ◀" if node["run_id"] == selected and node["depth"] == 0 else text


@main.command()
@root_option
@click.argument("query")
@output_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=None,
    help="Stop the query after this many seconds (default: no limit).",
)
@click.pass_context
def sql(ctx: click.Context, query: str, fmt: str | None, output: str | None, timeout: float | None) -> None:
    """Run read-only SQL over the views runs, lineage, history and raw_history."""
    with busy("querying"):
        df = lake_of(ctx).sql(query, timeout=timeout)
    print_frame(df, fmt, output)


@main.command()
@root_option
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
    with busy("drawing"):
        result = lake_of(ctx).plot(
            list(run_ids),
            key,
            output=output,
            log_scale=log_scale,
            smoothing=smoothing,
            title=title,
        )
    click.echo(f"wrote {result.path}: {len(result.lines)} branches, {len(result.markers)} fork/rewind points")


@main.command()
@root_option
@click.argument("run_id", required=False)
@click.option("--project", "-p", default=None, help="Only the alerts of this project's runs.")
@click.option("--level", type=click.Choice(["INFO", "WARN", "ERROR"]), default=None, help="Only this level.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert, for scripts.")
@click.pass_context
def alerts(
    ctx: click.Context, run_id: str | None, project: str | None, level: str | None, as_json: bool
) -> None:
    """List the alerts runs raised (run.alert()): time, run, step, level, title, text."""
    table = lake_of(ctx).alerts(run_id, project=project, level=level)
    if table.height == 0:
        nothing_in(
            ctx,
            "no alerts"
            + (f" of run {run_id!r}" if run_id else "")
            + (f" in project {project!r}" if project else ""),
        )
    if as_json:
        click.echo(json.dumps(table.to_dicts(), default=str))
        return
    view = table.select(
        pl.col("alerted_at").dt.strftime("%Y-%m-%d %H:%M:%S").alias("time"),
        pl.col("run_id").alias("run"),
        "step",
        "level",
        "title",
        "text",
    )
    print_frame(view, "table", None)


@main.command()
@root_option
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines while the run is running.")
@click.option("--label", "-l", default=None, help="Only the lines of this process (shared mode's x_label).")
@click.option("--grep", "-g", "pattern", default=None, help="Only lines matching this regular expression.")
@click.option(
    "--raw", is_flag=True, help="Every line its segments printed, a rewound attempt's later ones too."
)
@click.pass_context
def logs(
    ctx: click.Context, run_id: str, follow: bool, label: str | None, pattern: str | None, raw: bool
) -> None:
    """Print a run's console output (stdout and stderr, as it printed them); -f follows a live run."""
    import re
    import time

    from ..store import settings

    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise click.BadParameter(f"not a regular expression: {exc}", param_hint="--grep") from None
    lake = lake_of(ctx)
    shown = 0
    while True:
        # the state before the lines: a run stores its last lines before it says it finished,
        # so the lines read after a finished state are all of them (read the other way round,
        # a run finishing in between lost its last lines)
        running = follow and lake.run(run_id).state == "running"
        lines = lake.console(run_id, raw=raw, label=label, grep=pattern)
        for row in lines.filter(pl.col("line") >= shown).iter_rows(named=True):
            prefix = f"[{row['label']}] " if row["label"] and label is None else ""
            click.echo(f"{prefix}{row['content']}", err=row["stream"] == "stderr")
        if lines.height:
            shown = max(shown, int(lines["line"].max()) + 1)  # type: ignore[arg-type]
        if not running:
            return
        time.sleep(settings.flush_interval())
        lake.refresh(force=True)
