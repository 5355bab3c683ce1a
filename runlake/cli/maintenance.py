"""`runlake compact|doctor|sync|catalog|import|ui`: the commands that maintain a root, bring
runs into it, or serve it."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click
import polars as pl

from runlake.store import settings

from .base import (
    busy,
    lake_of,
    main,
    nothing_in,
    root_of,
    root_option,
)


@main.command()
@root_option
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
    lake = lake_of(ctx)
    if not lake.exists():
        nothing_in(ctx, "nothing to compact")
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
@root_option
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
    from ..ui.server import serve

    serve(
        root_of(ctx),
        host=host,
        port=port,
        token=token,
        open_browser=open_browser,
        allowed_hosts=allowed_hosts,
        sql_timeout=sql_timeout,
        echo=click.echo,
    )


@main.command()
@root_option
@click.option(
    "--population", is_flag=True, help="Also a 16-member population-based training project (pbt-demo)."
)
@click.pass_context
def demo(ctx: click.Context, population: bool) -> None:
    """Log the README's demo runs (a run, a fork, a rewind) into the root; --population adds a PBT project."""
    from .. import demo as demo_module

    lake = lake_of(ctx)
    os.environ["RUNLAKE_ROOT"] = lake.url  # the demo logs through the module-level functions
    demo_module.main()
    if population:
        with busy("training a 16-member population"):
            demo_module.population(lake.url)
        click.echo("added project pbt-demo: 16 members, 4 generations of exploits, a fine-tuning fork")


@main.group()
def catalog() -> None:
    """The root's catalog: exported as Parquet (_catalog/*.parquet) for Spark, polars and other engines; its commit log."""


@catalog.command("export")
@root_option
@click.option("--json", "as_json", is_flag=True, help="The stamp as JSON.")
@click.pass_context
def catalog_export(ctx: click.Context, as_json: bool) -> None:
    """Write runs, segments, the lineage closure and the file list into <root>/_catalog/."""
    lake = lake_of(ctx)
    if not lake.exists():
        nothing_in(ctx, "nothing to export")
        ctx.exit(1)
    with busy("exporting the catalog"):
        stamp = lake.export_catalog()
    if as_json:
        click.echo(json.dumps(stamp))
        return
    counts = stamp["counts"]
    click.echo(
        f"exported {counts['runs']} runs, {counts['segments']} segments, {counts['closure']} closure rows, "
        f"{counts['files']} files to {lake.url.rstrip('/')}/_catalog/ in {stamp['seconds']:.2f} s"
    )


@catalog.command("upgrade")
@root_option
@click.pass_context
def catalog_upgrade(ctx: click.Context) -> None:
    """Give a root from before the commit log its log and a first checkpoint, so readers stop listing every run."""
    lake = lake_of(ctx)
    if not lake.exists():
        nothing_in(ctx, "nothing to upgrade")
        ctx.exit(1)
    with busy("listing the root and writing a checkpoint"):
        info = lake.upgrade_catalog()
    already = "it already had a commit log; " if info["had_log"] else ""
    click.echo(f"{already}checkpoint of {info['runs']} runs written to {info['checkpoint']}")


@catalog.command("status")
@root_option
@click.pass_context
def catalog_status(ctx: click.Context) -> None:
    """Say whether the exported catalog is current (exit 1 when it is stale or missing)."""
    lake = lake_of(ctx)
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
@root_option
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
    lake = lake_of(ctx)
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
@root_option
@click.option(
    "--fix", is_flag=True, help="Quarantine unreadable parts (moved to <root>/_quarantine/, never deleted)."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per bad part.")
@click.pass_context
def doctor(ctx: click.Context, fix: bool, as_json: bool) -> None:
    """Check every history part; report unreadable ones and, with --fix, quarantine them."""
    with busy("checking parts"):
        result = lake_of(ctx).doctor(fix=fix)
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
@root_option
@click.option("--dir", "local_dir", default=None, help="The init(dir=...) the runs were started with.")
@click.pass_context
def sync(ctx: click.Context, local_dir: str | None) -> None:
    """Upload the parts and state that runs spilled to local disk while storage was down."""
    result = lake_of(ctx).sync(dir=local_dir).row(0, named=True)
    click.echo(
        f"uploaded {result['uploaded']} of {result['spilled']} spilled files; {result['waiting']} still waiting"
    )
    if result["waiting"]:
        ctx.exit(1)
