"""The README's demo: log a run, fork it, rewind it, query the lake. `python -m runlake.demo`;
`python -m runlake.demo --population` (or `runlake demo --population`) adds a 16-member
population-based-training project with exploits, a fine-tuning fork, images and histograms:
what the web app's screenshots show."""

from __future__ import annotations

import math
import os
import random
import sys
import zlib

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


def population(
    root: str | None = None,
    project: str = "pbt-demo",
    members: int = 16,
    generations: int = 4,
    steps: int = 40,
) -> list[str]:
    """A population-based training run of `members` members: each generation the worst
    quarter exploits the best (a fork of a better member's history at its last step, re-using
    its own id, with a perturbed learning rate) and explores; every member logs a loss, an
    accuracy, a histogram of its weights and, each generation, a small image. Then a fine-tuning
    fork of the best. Returns the run ids."""
    import numpy as np

    lake = runlake.Lake(root)
    rng = random.Random(7)
    names = [f"member-{i:02d}" for i in range(members)]
    lrs = {m: 10 ** rng.uniform(-2.5, -0.7) for m in names}
    loss: dict[str, float] = {}
    quiet = {"console": "off", "x_disable_stats": True}

    def train(run: runlake.Run, member: str, generation: int) -> None:
        value = loss.get(member, 2.5)
        noise = np.random.default_rng(zlib.crc32(f"{member}/{generation}".encode()))
        for _ in range(steps):
            floor = 0.05 + 0.5 * lrs[member]  # a high learning rate is fast but settles higher
            value = floor + (value - floor) * (1 - lrs[member]) * math.exp(float(noise.normal(0, 0.03)))
            weights = noise.normal(0, 1 / (1 + run.step / 50), 256)
            run.log({"loss": value, "acc": 1 - math.exp(-1 / value), "weights": runlake.Histogram(weights)})
        shade = int(255 * min(1.0, value / 2.5))
        picture = np.zeros((32, 32, 3), dtype=np.uint8)
        picture[..., 0], picture[..., 2] = shade, 255 - shade
        run.log({"samples": runlake.Image(picture, caption=f"{member} gen {generation}")}, commit=False)
        loss[member] = value

    for member in names:
        run = lake.init(project, id=member, group="pbt", config={"lr": lrs[member]}, settings=quiet)
        train(run, member, 0)
        run.finish()
    for generation in range(1, generations):
        ranked = sorted(names, key=lambda m: loss[m])
        quarter = max(1, members // 4)
        exploits = dict(zip(ranked[-quarter:], ranked[:quarter], strict=True))
        at = {m: lake.run(m).last_step for m in names}  # where each member ended the last generation
        for member in names:
            if member in exploits:  # exploit: a fork of the better member at its last step, then explore
                winner = exploits[member]
                lrs[member] = lrs[winner] * rng.choice((0.8, 1.25))
                loss[member] = loss[winner]
                run = lake.init(
                    project,
                    id=member,
                    fork_from=f"{winner}?_step={at[winner]}",
                    resume="allow",
                    config={"lr": lrs[member]},
                    settings=quiet,
                )
            else:
                run = lake.init(project, id=member, resume="allow", settings=quiet)
            train(run, member, generation)
            run.finish()
    best = min(names, key=lambda m: loss[m])
    tune = lake.init(
        project,
        id="finetune",
        fork_from=f"{best}?_step={lake.run(best).last_step}",
        config={"lr": lrs[best] / 10},
        group="finetune",
        settings=quiet,
    )
    lrs["finetune"], loss["finetune"] = lrs[best] / 10, loss[best]
    train(tune, "finetune", generations)
    # an evaluation, as W&B users log one: a confusion matrix of a 4-class task (the lower the
    # loss, the fewer mistakes) and each member's final loss as bars
    classes = ["cat", "dog", "bird", "fish"]
    guess = np.random.default_rng(11)
    truth = guess.integers(0, 4, 400)
    wrong = guess.random(400) < min(0.9, 2 * loss["finetune"])
    preds = np.where(wrong, (truth + guess.integers(1, 4, 400)) % 4, truth)
    finals = runlake.Table(columns=["member", "loss"], data=[[m, float(loss[m])] for m in names])
    tune.log(
        {
            "eval/confusion": runlake.plot.confusion_matrix(
                y_true=truth.tolist(), preds=preds.tolist(), class_names=classes, title="eval confusion"
            ),
            "population/final_loss": runlake.plot.bar(
                finals, "member", "loss", title="final loss per member"
            ),
        },
        commit=False,
    )
    tune.finish()
    lake.close()
    return [*names, "finetune"]


if __name__ == "__main__":
    if "--population" in sys.argv[1:]:
        main()
        print("\nadding a population-based training project (pbt-demo)...")
        population()
        print("done: `runlake ui` shows it")
    else:
        main()
