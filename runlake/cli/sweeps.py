"""`runlake sweep CONFIG.yaml` and `runlake agent SWEEP_ID`: W&B's `wandb sweep` / `wandb agent`
on a root, with no server."""

from __future__ import annotations

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
