"""Running a public script unchanged: a process where `import wandb` is runlake
(tests/scripts/as_wandb on PYTHONPATH), on a root given as $RUNLAKE_ROOT."""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
AS_WANDB = os.path.join(HERE, "scripts", "as_wandb")


def env_as_wandb(root: str, **more: str) -> dict[str, str]:
    env = {**os.environ, "RUNLAKE_ROOT": root, "MPLBACKEND": "Agg", **more}
    env["PYTHONPATH"] = os.pathsep.join([AS_WANDB, os.environ.get("PYTHONPATH", "")])
    return env


def run_as_wandb(
    script: str, cwd: object, *args: object, root: str, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run `script` (a path) with `args`; fails the test with its stderr unless it exits 0."""
    proc = subprocess.run(
        [sys.executable, script, *map(str, args)],
        cwd=str(cwd),
        env=env_as_wandb(root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc
