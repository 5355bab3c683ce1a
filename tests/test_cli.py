"""The `runlake` command: every command, formats, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import polars as pl
import pytest
from click.testing import CliRunner
from trees import Branch, grow

import runlake
from runlake.cli import main


@pytest.fixture
def lake(local_root):
    grow(
        runlake.Lake(local_root),
        "p",
        Branch(
            "base0001", 20, lambda i: {"loss": 1.0 / (i + 1), "acc": i / 20}, init={"config": {"lr": 0.1}}
        ),
        Branch("child001", 5, lambda i: {"loss": 0.01}, fork_from="base0001?_step=10"),
        Branch("grand001", fork_from="child001?_step=12"),
        Branch(None, resume_from="base0001?_step=15"),
    )
    return local_root


def invoke(root, *args):
    return CliRunner().invoke(main, ["--root", root, *args], catch_exceptions=False)


def test_runs_table_and_json(lake):
    out = invoke(lake, "runs")
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert lines[0].split("\t") == [
        "id",
        "name",
        "project",
        "state",
        "group",
        "tags",
        "parent@step",
        "last step",
        "created",
    ]
    assert any("child001\t" in line and "base0001@10" in line for line in lines)
    data = json.loads(invoke(lake, "runs", "--json").output)
    assert {r["run_id"] for r in data} == {"base0001", "child001", "grand001"}
    empty = invoke(lake, "runs", "--project", "other")
    assert empty.stdout.splitlines()[1:] == []  # the header alone on stdout
    assert "no runs of project 'other' in root" in empty.stderr


def test_show(lake):
    out = invoke(lake, "show", "child001")
    assert out.exit_code == 0
    assert "parent_run_id  base0001" in out.output and "fork_step      10" in out.output
    info = json.loads(invoke(lake, "show", "base0001", "--json").output)
    assert info["config"] == {"lr": 0.1} and info["segment"] == 1
    assert [s["kind"] for s in info["segments"]] == ["root", "rewind"]


def test_history_formats(lake, tmp_path):
    out = invoke(lake, "history", "child001", "--keys", "loss", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert len(rows) == 16 and rows[-1]["_step"] == "15" and float(rows[-1]["loss"]) == 0.01
    data = json.loads(invoke(lake, "history", "child001", "-k", "loss", "-f", "json").output)
    assert [r["_step"] for r in data] == list(range(16))
    target = tmp_path / "h.parquet"
    assert invoke(lake, "history", "child001", "-f", "parquet", "-o", str(target)).exit_code == 0
    assert pl.read_parquet(target).equals(runlake.history("child001", root=lake))
    archived = invoke(lake, "history", "base0001", "--segment", "0", "-f", "csv").output
    assert len(archived.splitlines()) == 21
    table = invoke(lake, "history", "child001", "-k", "loss").output  # piped: tab-separated
    assert table.splitlines()[0].split("\t") == ["_step", "_timestamp", "_runtime", "loss"]


def test_lineage_tree_shows_ancestors_descendants_and_steps(lake):
    out = invoke(lake, "lineage", "child001").output
    assert out.splitlines()[0] == "base0001"
    assert "fork @10 → child001" in out and "fork @12 → grand001" in out
    out = invoke(lake, "lineage", "base0001").output
    assert "↺ rewind @15 → base0001 (segment 1)" in out and "fork @10 → child001" in out
    data = json.loads(invoke(lake, "lineage", "grand001", "--json").output)
    assert [a["run_id"] for a in data["ancestors"]] == ["grand001", "child001", "base0001"]
    assert data["descendants"] == []


def test_sql_command(lake):
    out = invoke(
        lake,
        "sql",
        "SELECT run_id, max(step) AS last FROM history WHERE key = 'loss' GROUP BY 1 ORDER BY 1",
        "-f",
        "csv",
    )
    assert out.output.splitlines() == ["run_id,last", "base0001,15", "child001,15", "grand001,12"]


@pytest.mark.slow  # a process per case
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["history", "nosuchrun"], "does not exist"),
        (["history", "../x"], "invalid run id"),
        (["sql", "SELEC nonsense"], "syntax error"),
        (["show", "nosuchrun"], "does not exist"),
        (["plot", "base0001", "--key", "loss", "-o", "x.svg"], ".png or .html"),
        (["history", "child001", "-f", "parquet"], "needs -o"),
    ],
)
def test_errors_are_one_line_without_traceback(lake, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "runlake.cli", "--root", lake, *args], capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_root_option_after_the_command(lake, tmp_path):
    out = CliRunner().invoke(main, ["--root", str(tmp_path / "elsewhere"), "runs", "--json", "--root", lake])
    assert out.exit_code == 0 and len(json.loads(out.output)) == 3
    empty = CliRunner().invoke(main, ["runs", "--root", str(tmp_path / "missing")])
    assert empty.exit_code == 0 and not (tmp_path / "missing").exists()  # reading creates nothing


@pytest.mark.slow  # starts the console script
def test_console_script_and_env_root(lake):
    import os
    import shutil

    exe = shutil.which("runlake") or str(__import__("pathlib").Path(sys.executable).with_name("runlake"))
    proc = subprocess.run(
        [exe, "runs", "--json"], capture_output=True, text=True, env={**os.environ, "RUNLAKE_ROOT": lake}
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 3


@pytest.mark.slow  # a fresh interpreter
def test_importing_runlake_leaves_pandas_to_the_first_run(tmp_path):
    # pandas costs ~0.15 s of every `import runlake` (the CLI, a training script's imports);
    # pyarrow wants it once a run builds arrays, and a run's start pays it on its own thread
    script = (
        "import sys, runlake\n"
        "print('pandas' in sys.modules)\n"
        f"run = runlake.init('p', root={str(tmp_path / 'root')!r}, id='warm0001')\n"
        "print('pandas' in sys.modules)\n"
        "run.log({'a': 1.0})\n"
        "run.finish()\n"
        f"print(runlake.history('warm0001', root={str(tmp_path / 'root')!r})['a'].to_list())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["False", "True", "[1.0]"]
