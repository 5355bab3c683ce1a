"""`runlake sweep CONFIG.yaml`, `runlake agent SWEEP_ID` (W&B's `wandb sweep` / `wandb agent`) and `runlake fork RUN --step N` (the checkpoint a fork there starts from)
on a root, with no server."""

from __future__ import annotations

import json

import click
import yaml

from ..sweeps import agent as run_agent
from ..sweeps import sweep as make_sweep
from .base import lake_of, main, root_option


@main.command()
@root_option
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--project", "-p", default=None, help="The sweep's project (default: the config's, else $WANDB_PROJECT)."
)
@click.option("--entity", "-e", default=None, help="Stored with the sweep.")
@click.pass_context
def sweep(ctx: click.Context, config_file: str, project: str | None, entity: str | None) -> None:
    """Create a sweep from a W&B sweep configuration (YAML); prints the agent command."""
    with open(config_file) as fh:
        try:
            config = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise click.ClickException(f"{config_file} is not valid YAML: {exc}") from None
    lake = lake_of(ctx)
    sweep_id = make_sweep(config, entity=entity, project=project, root=lake.url)
    where = project or (config or {}).get("project") or "the default project"
    click.echo(sweep_id)
    click.echo(f"runlake: run an agent with: runlake --root {lake.url} agent {sweep_id}  ({where})", err=True)


@main.command()
@root_option
@click.argument("sweep_id")
@click.option("--count", type=click.IntRange(min=1), default=None, help="Run at most this many trials.")
@click.option("--project", "-p", default=None, help="The sweep's project (default: found by its id).")
@click.pass_context
def agent(ctx: click.Context, sweep_id: str, count: int | None, project: str | None) -> None:
    """Run a sweep's trials: its `program` with its `command` (W&B's macros), one after another."""
    ran = run_agent(sweep_id, project=project, count=count, root=lake_of(ctx).url)
    click.echo(f"runlake: agent ran {ran} trial{'s' if ran != 1 else ''} of sweep {sweep_id}", err=True)


@main.command()
@root_option
@click.argument("run_id")
@click.option("--step", type=click.IntRange(min=0), required=True, help="The step a fork would start from.")
@click.option("--artifact", "name", default=None, help="Only this artifact: print its resolved version.")
@click.option("--json", "as_json", is_flag=True, help="Every candidate as JSON.")
@click.pass_context
def fork(ctx: click.Context, run_id: str, step: int, name: str | None, as_json: bool) -> None:
    """The checkpoint a fork of RUN at --step starts from: the artifact versions logged on the
    run's effective lineage at or below that step (latest first)."""
    found = lake_of(ctx).checkpoint(run_id, step, name)
    if as_json:
        click.echo(json.dumps(found.to_dicts(), default=str))
        return
    if found.height == 0:
        raise click.ClickException(
            f"no artifact{' ' + repr(name) if name else ''} was logged on run {run_id!r}'s lineage at or below step {step}"
        )
    if name is not None:
        top = found.row(0, named=True)
        click.echo(f"{top['project']}/{top['name']}:v{top['version']}")
        return
    for row in found.iter_rows(named=True):
        click.echo(
            f"{row['project']}/{row['name']}:v{row['version']}\t{row['type']}\tlogged by {row['run_id']} at step {row['step']}"
        )
