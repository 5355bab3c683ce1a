"""Hostile input: no user string becomes a path or SQL text; nothing is written outside the root."""

from __future__ import annotations

import json
import os

import pytest

import runlake

HOSTILE = [
    "../escape",
    "../../etc/passwd",
    "/abs/path",
    "C:\\windows",
    "a/../../b",
    "..",
    ".",
    "'; DROP TABLE runs; --",
    '"quoted"',
    "x' OR '1'='1",
    "semi;colon",
    "-- comment",
    "nul\x00byte",
    "new\nline",
    "tab\tchar",
    "x" * 10_000,
    "ünïcødé-名前-🚀",
    "\u202eright-to-left",
    "%2e%2e%2f",
    "${HOME}",
    "$(rm -rf /)",
    "back`tick`",
    "space in name",
    "",
]


def _tree(path):
    out = set()
    for dirpath, dirs, files in os.walk(path):
        for name in dirs + files:
            out.add(os.path.relpath(os.path.join(dirpath, name), path))
    return out


@pytest.fixture
def sandbox(tmp_path):
    root = tmp_path / "inside" / "lake"
    return tmp_path, str(root)


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_ids_and_projects_are_refused_and_nothing_is_written(sandbox, bad):
    outer, root = sandbox
    before = _tree(outer)
    for kwargs in ({"project": bad}, {"project": "p", "id": bad}):
        project = kwargs.pop("project")
        with pytest.raises(ValueError):
            runlake.init(project, root=root, **kwargs)
    for spec_arg in ("fork_from", "resume_from"):
        with pytest.raises(ValueError):
            runlake.init("p", root=root, **{spec_arg: f"{bad}?_step=1"})
    with pytest.raises(ValueError):
        runlake.init("p", root=root, id=bad, resume="allow")
    for reader in (runlake.history, runlake.lineage, runlake.descendants):
        with pytest.raises(ValueError):
            reader(bad, root=root)
    with pytest.raises(ValueError):
        runlake.runs(bad, root=root)
    assert _tree(outer) == before


def test_hostile_keys_and_metadata_are_data(sandbox):
    outer, root = sandbox
    keys = [k for k in HOSTILE if k and not k.startswith("_")]
    run = runlake.init(
        "p",
        root=root,
        name=HOSTILE[7],
        notes=HOSTILE[12],
        tags=HOSTILE[:5],
        config={k[:200]: k for k in keys},
    )
    for i in range(3):
        run.log({k: float(i) for k in keys} | {"label": HOSTILE[9]})
    run.summary[HOSTILE[0]] = HOSTILE[8]
    run.finish()
    frame = runlake.history(run.id, root=root)
    for key in keys:
        assert frame[key].to_list() == [0.0, 1.0, 2.0]
    assert frame["label"].to_list() == [HOSTILE[9]] * 3
    row = runlake.runs(root=root).row(0, named=True)
    assert row["name"] == HOSTILE[7] and row["notes"] == HOSTILE[12] and row["tags"] == HOSTILE[:5]
    # as W&B: config keys lose leading and trailing "-" (argparse's "--lr" is "lr")
    assert json.loads(row["config"]) == {k[:200].strip("-"): k for k in keys}
    assert json.loads(row["summary"])[HOSTILE[0]] == HOSTILE[8]
    for key in keys:
        hit = runlake.sql("SELECT count(*) AS n FROM history WHERE key = ?", root=root, params=[key])
        assert hit["n"].to_list() == [3]
    assert runlake.sql("SELECT count(*) AS n FROM runs WHERE name = ?", root=root, params=[HOSTILE[9]])[
        "n"
    ].to_list() == [0]
    assert runlake.sql("SELECT count(*) AS n FROM runs", root=root)["n"].to_list() == [
        1
    ]  # nothing was dropped
    # only runlake's own layout exists, inside the root
    names = _tree(outer)
    assert all(n == "inside" or n.startswith(os.path.join("inside", "lake")) for n in names)
    assert not any(k in n for n in names for k in keys if len(k) > 3 and k not in ("inside", "lake"))


@pytest.mark.slow  # one process per hostile argument
def test_hostile_cli_arguments_give_one_line_errors(sandbox):
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    outer, root = sandbox
    before = _tree(outer)
    calls = [
        args
        for bad in [h for h in HOSTILE if "\x00" not in h][:12]
        for args in (
            ["history", "--", bad],
            ["show", "--", bad],
            ["lineage", "--", bad],
            ["runs", "--project", bad],
        )
    ]

    def call(args):
        return subprocess.run(
            [sys.executable, "-m", "runlake.cli", "--root", root, *args], capture_output=True, text=True
        )

    # a few at a time: each is a process start and a refusal, most of it waiting on imports
    with ThreadPoolExecutor(max_workers=4) as pool:
        for args, proc in zip(calls, pool.map(call, calls), strict=True):
            assert proc.returncode == 1, (args, proc.stderr)
            assert "Traceback" not in proc.stderr and proc.stderr.startswith("runlake: error:")
    assert len(calls) == 48
    assert _tree(outer) == before
