"""The README's demo: log a run, fork it, rewind it, query the lake. `python -m runlake.demo`."""

from __future__ import annotations

import math
import os
import random
import sys

import polars as pl

import runlake
from runlake.store import settings


def _train(run: runlake.Run, steps: range, lr: float, seed: int) -> None:
    rng = random.Random(seed)
    loss = 2.0 if run.step == 0 else float(run.summary["loss"])
    for _ in steps:
        loss = max(0.01, loss * (1 - lr) + rng.gauss(0, 0.01))
        run.log({"loss": loss, "train": {"acc": 1 - math.exp(-1 / loss)}})


def _free(name: str, taken: set[str]) -> str:
    """`name`, or name-2, name-3, ... when the demo already ran in this root."""
    if name not in taken:
        return name
    return next(f"{name}-{n}" for n in range(2, 10_000) if f"{name}-{n}" not in taken)


def main() -> None:
    root = os.path.abspath(settings.root(None))
    print(f"runlake demo: root {root}\n")
    taken = set(runlake.runs()["run_id"].to_list()) if os.path.isdir(root) else set()
    base = runlake.init(project="demo", id=_free("baseline", taken), config={"lr": 0.01})
    _train(base, range(300), lr=0.01, seed=1)
    base.finish()
    print(f"logged run {base.id}: steps 0..{base.step - 1}")

    fork = runlake.init(
        project="demo", id=_free("hot-lr", taken), fork_from=f"{base.id}?_step=200", config={"lr": 0.03}
    )
    _train(fork, range(100), lr=0.03, seed=2)
    fork.finish()
    print(f"forked run {fork.id} from {base.id} at step 200, then logged steps 201..{fork.step - 1}")

    rewound = runlake.init(project="demo", resume_from=f"{base.id}?_step=250")
    _train(rewound, range(50), lr=0.005, seed=3)
    rewound.finish()
    print(f"rewound run {base.id} to step 250 and logged steps 251..{rewound.step - 1}\n")

    history = runlake.history(fork.id, keys=["loss"])
    first, last = history["_step"].min(), history["_step"].max()
    print(f"effective history of the fork: {history.height} steps, {first!s}..{last!s}")
    print(history.select("_step", "loss").gather_every(50), "\n")

    print("lineage of the fork:")
    print(
        runlake.lineage(fork.id).select("depth", "run_id", "segment", "kind", "cutoff", "step_lo", "step_hi"),
        "\n",
    )

    print("final loss of every run in the project (SQL over the `history` view):")
    final = runlake.sql(
        """
        SELECT r.run_id, r.parent_run_id, r.fork_step, h.step AS last_step, round(h.value, 4) AS final_loss
        FROM runs AS r
        JOIN history AS h ON h.run_id = r.run_id AND h.key = 'loss'
        WHERE r.project = ?
        QUALIFY row_number() OVER (PARTITION BY r.run_id ORDER BY h.step DESC) = 1
        ORDER BY r.created_at
        """,
        params=["demo"],
    )
    with pl.Config(tbl_rows=50):
        print(final)
    cli = os.path.abspath(os.path.join(os.path.dirname(sys.executable), "runlake"))
    print(
        f"\nThe runs are in {root}. Look at them with the command line ({cli}), from this folder:\n"
        f"  {cli} runs\n  {cli} lineage {base.id}\n  {cli} history {fork.id} -k loss -o fork.csv"
    )


if __name__ == "__main__":
    main()
