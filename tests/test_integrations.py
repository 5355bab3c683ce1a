"""Trainer integrations (#11), trained for real, tiny and on CPU: Ray Tune PBT, PyTorch
Lightning, Hugging Face transformers. Each test runs its training in a subprocess (a fresh
interpreter, as a user's script)."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest

import runlake

pytestmark = pytest.mark.slow
HERE = os.path.dirname(__file__)


def _script(name, *args, timeout=900):
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "scripts", name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]
    return out.stdout


def test_ray_pbt_exploits_are_forks_at_the_restored_checkpoint(tmp_path):
    pytest.importorskip("ray.tune")
    root, restores = tmp_path / "root", tmp_path / "restores.jsonl"
    printed = _script("ray_pbt.py", root, restores)
    reported = json.loads(printed.strip().splitlines()[-1])
    restored = [json.loads(line) for line in restores.read_text().splitlines()]
    exploits = [(r["trial"], r["from_trial"], r["step"]) for r in restored if r["trial"] != r["from_trial"]]
    assert exploits and [tuple(e) for e in reported["exploits"]] == exploits
    # Ray's own record of the exploits (pbt_global.txt names trials by experiment tag)
    (global_log,) = glob.glob(str(tmp_path / "ray" / "*" / "pbt_global.txt"))
    with open(global_log) as fh:
        recorded = [json.loads(line) for line in fh if line.strip()]
    by_index = {t.rsplit("_", 1)[1].lstrip("0") or "0": t for t, _, _ in exploits} | {
        f.rsplit("_", 1)[1].lstrip("0") or "0": f for _, f, _ in exploits
    }
    assert [(by_index[a.split("_")[0]], by_index[b.split("_")[0]]) for a, b, *_ in recorded] == [
        (t, f) for t, f, _ in exploits
    ]
    segments = runlake.sql("SELECT * FROM segments ORDER BY run_id, segment", root=str(root))
    forks = [
        (r["run_id"], r["parent_run_id"], r["cutoff"])
        for r in segments.iter_rows(named=True)
        if r["kind"] == "fork" and r["segment"] > 0
    ]
    assert sorted(forks) == sorted(exploits)  # every exploit, at the step of the checkpoint restored
    runs = runlake.runs(root=str(root))
    assert runs.height == 4 and set(runs["state"]) == {"finished"}
    for run_id in runs["run_id"]:
        history = runlake.history(run_id, ["score"], root=str(root))
        assert history["_step"].to_list() == list(range(1, 13))  # one row per iteration, none twice
    last = {trial: (source, step) for trial, source, step in exploits}  # a trial's latest exploit
    for trial, (source, step) in last.items():
        chain = runlake.lineage(trial, root=str(root))
        if chain["kind"][0] == "fork":  # not restored from its own checkpoint since
            assert (chain["run_id"][1], chain["cutoff"][0]) == (source, step)
            depths = runlake.sql(
                "SELECT step, source_depth FROM history WHERE run_id = ? AND key = 'score' ORDER BY step",
                root=str(root),
                params=[trial],
            )
            # steps up to the exploit come from the cloned trial's lineage, the rest are its own
            assert all(d > 0 for s, d in depths.rows() if s <= step)
            assert all(d == 0 for s, d in depths.rows() if s > step)
