"""`wandb.sweep()` and `wandb.agent()` without a server: the sweep lives in the root, and any
number of agents, in this process or on other machines sharing the root, claim its trials.

An agent claims trial n (the lowest number nobody took), proposes its parameters (grid:
the n-th combination; random; bayes: Optuna told every finished trial), then runs it: calls
`function` (whose `init()` joins the trial) or starts the sweep's `program` with its `command`
(the trial handed over in $RUNLAKE_SWEEP_TRIAL and as command-line arguments, as W&B's agent
does). With `early_terminate`, a checker reads the trials' metric every
$RUNLAKE_SWEEP_CHECK_INTERVAL seconds (default 5) and stops a trial hyperband rules out:
SIGINT to this process's main thread for a function (as wandb does), SIGTERM to a program.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from typing import Any

from ..errors import RunlakeError
from ..lake import Lake, default
from ..store.manifests import SweepDoc, TrialDoc
from ..write import registry
from ..write import sweeps as store
from ..write import trial as trial_mod
from . import hyperband
from .search import check_bayes, propose
from .space import Space, flatten, parse

DEFAULT_COMMAND = ["${env}", "${interpreter}", "${program}", "${args}"]


def _interval() -> float:
    return float(os.environ.get("RUNLAKE_SWEEP_CHECK_INTERVAL", "5"))


def sweep(
    sweep: dict[str, Any] | Callable[[], dict[str, Any]],
    entity: str | None = None,
    project: str | None = None,
    prior_runs: list[str] | None = None,
    *,
    root: Any = None,
) -> str:
    """Store a sweep (W&B's configuration dict) in the root; returns its id."""
    config = sweep() if callable(sweep) else sweep
    if not isinstance(config, dict):
        raise TypeError(f"sweep must be a configuration dict, got {type(config).__name__}")
    space = parse(config)
    if space.method == "bayes":
        check_bayes(space)
    project = project or config.get("project") or os.environ.get("WANDB_PROJECT") or "demo"
    entity = entity or config.get("entity")
    doc = store.create(default(root).storage, project, config, entity)
    print(f"runlake: created sweep {doc.sweep_id} in project {project} ({space.method})", file=sys.stderr)
    return doc.sweep_id


def _split(sweep_id: str, project: str | None) -> tuple[str | None, str]:
    parts = sweep_id.strip("/").split("/")  # "entity/project/id" or "project/id" as W&B prints them
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return project, parts[0]


class Agent:
    def __init__(self, lake: Lake, doc: SweepDoc) -> None:
        self.lake, self.doc = lake, doc
        self.space: Space = parse(doc.config)

    # ---- claiming ----------------------------------------------------------------------
    def history(self) -> list[tuple[dict[str, Any], float]]:
        """(params, metric) of the trials whose run has the metric in its summary."""
        name = self.space.metric_name
        if name is None:
            return []
        runs = {
            r["run_id"]: json.loads(r["summary"] or "{}")
            for r in self.lake.sql(
                "SELECT run_id, summary FROM runs WHERE sweep_id = ?", [self.doc.sweep_id]
            ).iter_rows(named=True)
        }
        out = []
        for trial in store.trials(self.lake.storage, self.doc):
            value = runs.get(trial.run_id, {}).get(name)
            if isinstance(value, dict):  # a define_metric summary: its aggregate
                value = value.get("min" if self.space.minimize else "max", value.get("last"))
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append((trial.params, float(value)))
        return out

    def claim(self) -> TrialDoc | None:
        """The next trial, claimed by this agent (None: the sweep has no more)."""
        storage = self.lake.storage
        number = len(store.trials(storage, self.doc))
        while True:
            if self.space.run_cap is not None and number >= self.space.run_cap:
                return None
            params = propose(
                self.space, self.doc.sweep_id, number, self.history() if self.space.method == "bayes" else []
            )
            if params is None:
                return None
            claimed = store.claim(storage, self.doc, number, params)
            if claimed is not None:
                return claimed
            number += 1  # another agent took it: the next number

    # ---- early termination ---------------------------------------------------------------
    def _values(self, run_id: str) -> list[float]:
        name = self.space.metric_name
        if name is None:
            return []
        try:
            frame = self.lake.history(run_id, [name])
        except RunlakeError:
            return []
        if name not in frame.columns:
            return []
        return [float(v) for v in frame[name].to_list() if v is not None]

    def ruled_out(self, trial: TrialDoc) -> bool:
        spec = self.space.early_terminate
        if not spec:
            return False
        mine = self._values(trial.run_id)
        others = [
            self._values(t.run_id)
            for t in store.trials(self.lake.storage, self.doc)
            if t.run_id != trial.run_id
        ]
        return hyperband.should_stop(mine, others, spec, self.space.minimize)

    def _checker(self, trial: TrialDoc, stop: Callable[[], None]) -> tuple[threading.Event, threading.Event]:
        done, fired = threading.Event(), threading.Event()

        def watch() -> None:
            while not done.wait(_interval()):
                try:
                    if self.ruled_out(trial):
                        fired.set()
                        stop()
                        return
                except Exception:  # noqa: BLE001 - a failed check never stops a trial
                    continue

        if self.space.early_terminate:
            threading.Thread(target=watch, name="runlake-sweep-check", daemon=True).start()
        return done, fired

    # ---- running -------------------------------------------------------------------------
    def run_function(self, trial: TrialDoc, function: Callable[[], Any]) -> str:
        trial_mod.offer(
            trial_mod.Trial(self.doc.sweep_id, self.doc.project, trial.number, trial.run_id, trial.params)
        )
        main = (
            threading.main_thread().ident if threading.current_thread() is threading.main_thread() else None
        )

        def interrupt() -> None:  # as wandb stops a run: Ctrl+C to the main thread
            if main is not None:
                signal.pthread_kill(main, signal.SIGINT)

        done, fired = self._checker(trial, interrupt)
        state = "finished"
        try:
            function()
        except KeyboardInterrupt:
            if not fired.is_set():
                raise
            state = "early_terminated"
        except Exception:  # noqa: BLE001 - as W&B's agent: report, go on with the next trial
            traceback.print_exc()
            state = "failed"
        finally:
            done.set()
            trial_mod.offer(None)
            run: Any = registry.get(self.lake.storage.key, trial.run_id)
            if run is not None and not run.finished:  # the function left its run open: as W&B, finish it
                run.finish(exit_code=0 if state in ("finished", "early_terminated") else 1)
        return state

    def command(self, trial: TrialDoc) -> tuple[list[str], dict[str, str]]:
        config = self.doc.config
        program = config.get("program")
        template = config.get("command") or DEFAULT_COMMAND
        if program is None and any("${program}" in str(c) for c in template):
            raise RunlakeError("this sweep has no program: run it with runlake.agent(sweep_id, function=...)")
        flat = flatten(trial.params)
        args = [f"--{k}={v}" for k, v in flat.items()]
        params_file = os.path.join(
            tempfile.gettempdir(), f"runlake-sweep-{self.doc.sweep_id}-{trial.number}.json"
        )
        with open(params_file, "w") as fh:
            json.dump(trial.params, fh)
        macros: dict[str, list[str]] = {
            "${env}": ["/usr/bin/env"],
            "${interpreter}": [sys.executable],
            "${program}": [str(program)],
            "${args}": args,
            "${args_no_hyphens}": [a[2:] for a in args],
            "${args_no_boolean_flags}": args,
            "${args_json}": [json.dumps(trial.params)],
            "${args_json_file}": [params_file],
            "${project}": [self.doc.project],
            "${entity}": [self.doc.entity or ""],
        }
        argv: list[str] = []
        for part in template:
            argv += macros.get(str(part), [str(part)])
        env = {
            **os.environ,
            trial_mod.ENV: trial_mod.Trial(
                self.doc.sweep_id, self.doc.project, trial.number, trial.run_id, trial.params
            ).to_env(),
            "WANDB_SWEEP_ID": self.doc.sweep_id,
            "RUNLAKE_ROOT": self.lake.url,
            "WANDB_PROJECT": self.doc.project,
        }
        return argv, env

    def run_program(self, trial: TrialDoc) -> str:
        argv, env = self.command(trial)
        print(f"runlake: agent: trial {trial.number}: {shlex.join(argv)}", file=sys.stderr)
        proc = subprocess.Popen(argv, env=env)
        done, fired = self._checker(trial, proc.terminate)
        try:
            code = proc.wait()
        finally:
            done.set()
        if fired.is_set():
            return "early_terminated"
        return "finished" if code == 0 else "failed"


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
    *,
    root: Any = None,
) -> int:
    """Run trials of a sweep in this process until `count` are done (None: until the sweep has
    no more: a grid done, `run_cap` reached); returns how many this agent ran."""
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError(f"count must be a positive int or None, got {count!r}")
    lake = default(root)
    project, bare = _split(sweep_id, project)
    worker = Agent(lake, store.find(lake.storage, bare, project))
    ran = 0
    while count is None or ran < count:
        trial = worker.claim()
        if trial is None:
            break
        state = worker.run_function(trial, function) if function is not None else worker.run_program(trial)
        store.end(lake.storage, worker.doc, trial, state)
        ran += 1
    return ran
