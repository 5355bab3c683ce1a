"""Artifacts without a server (#26): W&B's Artifact API, content-addressed storage (the same
bytes stored once), versions and aliases, use and download, the local registry, code, lineage
in SQL, the checkpoint a fork starts from, retention, and a writer killed mid-log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from shim import run_as_wandb

import runlake
from runlake.cli import main
from runlake.errors import RunlakeError


def _blob_bytes(root):
    total = 0
    for directory, _, files in os.walk(os.path.join(root, "artifacts", "_blobs")):
        total += sum(os.path.getsize(os.path.join(directory, f)) for f in files if ".tmp-" not in f)
    return total


@pytest.fixture
def files(tmp_path):
    d = tmp_path / "ckpt"
    (d / "sub").mkdir(parents=True)
    (d / "model.bin").write_bytes(os.urandom(300_000))
    (d / "sub" / "cfg.json").write_text('{"a": 1}')
    return d


def test_log_use_download_and_dedupe(tmp_path, files):
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    run = lake.init("p", id="a")
    run.log({"loss": 1.0})
    art = runlake.Artifact("ckpt", type="model", description="weights", metadata={"epoch": 1})
    art.add_dir(str(files))
    with art.new_file("notes.txt", mode="w") as fh:
        fh.write("hello")
    art.add_reference("file://" + str(files / "sub" / "cfg.json"), name="linked.json")
    art.add(runlake.Table(columns=["a"], data=[[1], [2]]), "preds")
    with pytest.raises(ValueError, match="relative path"):
        art.add_file(str(files / "model.bin"), name="../escape.bin")
    logged = run.log_artifact(art, aliases=["best"])
    assert (logged.name, logged.version, logged.type) == ("ckpt:v0", "v0", "model")
    assert logged.aliases == ["best", "latest"] and logged.metadata == {"epoch": 1}
    assert sorted(e.path for e in logged.files()) == [
        "linked.json",
        "model.bin",
        "notes.txt",
        "preds.table.parquet",
        "sub/cfg.json",
    ]
    assert (
        logged.get_entry("linked.json").ref.startswith("file://") and logged.get_entry("linked.json").digest
    )
    with pytest.raises(RunlakeError, match="cannot change"):
        logged.add_file(str(files / "model.bin"), name="late.bin")
    # the same files again: no new version; a changed set: v1, and latest moves
    again = runlake.Artifact("ckpt", type="model")
    again.add_dir(str(files))
    with again.new_file("notes.txt", mode="w") as fh:
        fh.write("hello")
    again.add_reference("file://" + str(files / "sub" / "cfg.json"), name="linked.json")
    again.add(runlake.Table(columns=["a"], data=[[1], [2]]), "preds")
    assert run.log_artifact(again).version == "v0"
    bigger = runlake.Artifact("ckpt", type="model")
    bigger.add_dir(str(files))
    bigger.add_file(str(files / "model.bin"), name="copy.bin")  # the same bytes under another name
    v1 = run.log_artifact(bigger)
    assert v1.version == "v1" and v1.aliases == ["latest"]
    run.finish()
    assert _blob_bytes(root) < 300_000 + 10_000  # model.bin is stored once for three entries
    # another run uses it, by alias, version or path, and downloads it
    user = lake.init("p", id="b")
    best = user.use_artifact("ckpt:best")
    assert best.version == "v0" and user.use_artifact("p/ckpt:v1").version == "v1"
    out = best.download(str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "notes.txt").read_text() == "hello" and out == str(tmp_path / "dl")
    assert (tmp_path / "dl" / "model.bin").read_bytes() == (files / "model.bin").read_bytes()
    assert (tmp_path / "dl" / "linked.json").read_text() == '{"a": 1}'
    with pytest.raises(LookupError):
        user.use_artifact("ckpt:nope")
    user.finish()
    usage = lake.sql("SELECT run_id, direction, version FROM artifact_usage ORDER BY used_at, version")
    assert usage.rows() == [
        ("a", "output", 0),
        ("a", "output", 0),
        ("a", "output", 1),
        ("b", "input", 0),
        ("b", "input", 1),
    ]
    assert lake.sql("SELECT count(*) AS n FROM artifacts")["n"][0] == 2
    files_v1 = lake.sql("SELECT file_path FROM artifact_files WHERE version = 1 ORDER BY 1")[
        "file_path"
    ].to_list()
    assert files_v1 == ["copy.bin", "model.bin", "sub/cfg.json"]
    api = runlake.Api(root=root)
    assert [a.version for a in api.run("p/a").logged_artifacts()] == ["v0", "v1"]
    assert [a.version for a in api.run("p/b").used_artifacts()] == ["v0", "v1"]
    assert api.artifact("p/ckpt:best").version == "v0" and api.artifact_exists("p/ckpt:v1")
    assert not api.artifact_exists("p/ckpt:v9")


def test_models_registry_and_code(tmp_path, files, monkeypatch):
    monkeypatch.chdir(tmp_path)  # use_model downloads to ./artifacts/<name>:<version>, as W&B
    root = str(tmp_path / "root")
    run = runlake.init("p", id="m", root=root)
    model = run.log_model(str(files / "model.bin"), name="mlp", aliases=["prod"])
    assert model.type == "model" and model.aliases == ["latest", "prod"]
    linked = run.link_model(
        str(files / "model.bin"), registered_model_name="mnist-classifier", aliases=["staging"]
    )
    assert linked.project == "_registry" and linked.metadata["linked_from"].startswith("p/")
    path = run.use_model("mlp:prod")
    with open(path, "rb") as fh:
        assert fh.read() == (files / "model.bin").read_bytes()
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "train.py").write_text("print(1)\n")
    (src / "pkg" / "util.py").write_text("x = 1\n")
    (src / "notes.md").write_text("not code\n")
    code = run.log_code(str(src))
    assert code.type == "code" and sorted(e.path for e in code.files()) == ["pkg/util.py", "train.py"]
    run.finish()
    api = runlake.Api(root=root)
    assert api.artifact("wandb-registry-model/mnist-classifier:staging").type == "model"


def test_which_runs_used_the_checkpoint_a_run_logged_at_a_step_and_the_fork_checkpoint(tmp_path, files):
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    a = lake.init("p", id="A")
    for step in range(600):
        a.log({"loss": 1.0 / (step + 1)})
        if step in (100, 300, 500):
            ckpt = runlake.Artifact("ckpt", type="model", metadata={"step": step})
            with ckpt.new_file("weights.txt", mode="w") as fh:
                fh.write(str(step))
            a.log_artifact(ckpt)
    a.finish()
    fork = lake.init("p", id="F", fork_from="A?_step=400")
    fork.use_artifact("ckpt:v1")
    fork.finish()
    late = lake.init("p", id="L")
    late.use_artifact("p/ckpt:v2")
    late.finish()
    users = lake.sql(
        "SELECT u.run_id FROM artifacts AS a JOIN artifact_usage AS u ON u.artifact_project = a.project "
        "AND u.name = a.name AND u.version = a.version AND u.direction = 'input' WHERE a.run_id = 'A' AND a.step = 500"
    )
    assert users["run_id"].to_list() == ["L"]
    # the checkpoint a fork at step N starts from: on the effective lineage, at or below N
    assert lake.checkpoint("A", 450)["version"].to_list() == [1, 0]
    assert lake.checkpoint("F", 650)["version"].to_list() == [1, 0]  # the fork's lineage ends at A's 400
    out = CliRunner().invoke(
        main, ["--root", root, "fork", "A", "--step", "499", "--artifact", "ckpt"], catch_exceptions=False
    )
    assert out.exit_code == 0 and out.stdout.strip() == "p/ckpt:v1"
    # a rewind: the abandoned attempt's checkpoint after the rewind point is not the run's any more
    again = lake.init("p", resume_from="A?_step=350")
    again.log({"loss": 0.0})
    again.finish()
    assert lake.checkpoint("A", 600)["version"].to_list() == [1, 0]
    none = CliRunner().invoke(main, ["--root", root, "fork", "A", "--step", "50"])
    assert none.exit_code == 1 and "no artifact" in none.output


def test_retention_keeps_fork_checkpoints_and_collects_unused_files(tmp_path, files):
    root = str(tmp_path / "root")
    lake = runlake.Lake(root)
    a = lake.init("p", id="A")
    for step in range(30):
        a.log({"x": float(step)})
        if step in (10, 20):
            art = runlake.Artifact("ckpt", type="model")
            with art.new_file("w.txt", mode="w") as fh:
                fh.write(f"weights at {step}" * 1000)
            art.add_file(str(files / "model.bin"))  # shared by both versions
            a.log_artifact(art, aliases=[f"s{step}"])
    a.finish()
    lake.init("p", id="F", fork_from="A?_step=15").finish()  # its checkpoint: v0 (step 10)
    with pytest.raises(RunlakeError, match="has aliases"):
        lake.delete_artifact("ckpt:v0", "p")
    with pytest.raises(RunlakeError, match="forked from"):
        lake.delete_artifact("ckpt:v0", "p", delete_aliases=True)
    before = _blob_bytes(root)
    lake.delete_artifact("ckpt:s20", "p", delete_aliases=True)  # v1: nothing forks from it
    assert lake.sql("SELECT version FROM artifacts")["version"].to_list() == [0]
    with pytest.raises(LookupError):
        lake.artifact("p/ckpt:v1")
    lake.compact(grace=3600)
    assert _blob_bytes(root) == before  # within the grace: kept
    lake.compact(grace=0)
    assert before - _blob_bytes(root) == len("weights at 20" * 1000)  # only v1's own file went
    lake.delete_artifact("ckpt:v0", "p", delete_aliases=True, force=True)
    lake.compact(grace=0)
    assert _blob_bytes(root) == 0


KILLED_MID_LOG = """
import os, signal, sys
import runlake
from runlake.write import artifact_store
real = artifact_store.commit_version
def commit(storage, doc):
    os.kill(os.getpid(), signal.SIGKILL)  # every file stored, the version not yet made
artifact_store.commit_version = commit
run = runlake.init("p", id="k", root=sys.argv[1])
art = runlake.Artifact("ckpt", type="model")
art.add_file(sys.argv[2])
run.log_artifact(art)
"""


@pytest.mark.slow
def test_a_writer_killed_during_log_artifact_leaves_no_version(tmp_path, files):
    root = str(tmp_path / "root")
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_MID_LOG, root, str(files / "model.bin")], capture_output=True, text=True
    )
    assert proc.returncode == -9, proc.stderr
    lake = runlake.Lake(root)
    assert _blob_bytes(root) == 300_000  # the file was stored...
    assert (
        not os.path.isdir(os.path.join(root, "artifacts", "p", "ckpt"))
        and lake.sql("SELECT * FROM artifacts").height == 0
    )
    with pytest.raises(LookupError):
        lake.artifact("p/ckpt:latest")
    lake.compact(grace=0)  # ...and nothing uses it: collected
    assert _blob_bytes(root) == 0
    run = lake.init("p", id="k2")
    art = runlake.Artifact("ckpt", type="model")
    art.add_file(str(files / "model.bin"))
    assert run.log_artifact(art).version == "v0"
    run.finish()


@pytest.mark.slow
def test_the_registry_quickstart_and_checkpoint_loop_run_unchanged(tmp_path):
    here = os.path.dirname(__file__)
    root = str(tmp_path / "root")
    proc = run_as_wandb(
        os.path.join(here, "scripts", "artifacts", "registry_quickstart.py"), tmp_path, root=root
    )
    assert proc.stdout.strip() == "1 weights 1"  # the best epoch's checkpoint
    lake = runlake.Lake(root)
    names = lake.sql(
        "SELECT name, count(*) AS n FROM artifacts WHERE project = 'registry_quickstart' GROUP BY 1 ORDER BY 1"
    )
    assert names.rows() == [
        ("gemma-finetuned", 1),
        ("model_epoch000", 1),
        ("model_epoch001", 1),
        ("model_epoch002", 1),
    ]
    assert lake.artifact("wandb-registry-model/first-collection:latest").type == "model"
    used = lake.sql("SELECT name, version FROM artifact_usage WHERE direction = 'input'")
    assert used.rows() == [("model", 1)]  # the registry's "model" collection, v1 (epoch 1 linked second)
