"""Record what the real wandb client stores for each case of battery.py (run by hand, not by
the suite: wandb stays out of the test dependencies).

    python -m venv /tmp/wb && /tmp/wb/bin/pip install wandb==0.31.0 numpy pyyaml
    cd <checkout> && /tmp/wb/bin/python -m tests.parity.record_wandb

Writes tests/data/wandb-parity.json: per case, the rows (step -> {key: value}) as W&B's
backend keeps them (nested dicts flattened with "."), the final summary and config, and the
exception W&B raised, if any. `_runtime` and wandb's own `_wandb` keys are left out; a
row's `_timestamp` is kept only when the case logged one itself.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile
import warnings

os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"

import wandb  # noqa: E402
from wandb.proto import wandb_internal_pb2 as pb  # noqa: E402

from runlake.importers.wandb_log import chunks  # noqa: E402

from .battery import CASES, STAMPED  # noqa: E402
from .surface import SURFACE  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "wandb-parity.json")
SURFACE_OUT = os.path.join(os.path.dirname(__file__), "..", "data", "wandb-surface.json")


def kinds(row: dict) -> dict:
    """{key: kind}; a media value W&B flattened into `key._type`, `key.path`, ... is one key."""
    typed = {k[: -len("._type")]: v for k, v in row.items() if k.endswith("._type")}
    out = dict(typed)
    for key, value in row.items():
        if not any(key == t or key.startswith(t + ".") for t in typed):
            out[key] = kind(value)
    return out


def kind(value) -> str:
    """What a stored value is, comparable across trackers: a media `_type`, else its JSON type."""
    if isinstance(value, dict) and "_type" in value:
        return str(value["_type"])
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _path(item) -> str:
    return ".".join(item.nested_key) if item.nested_key else item.key


def read(path: str) -> dict:
    rows: dict[int, dict] = {}
    summary: dict = {}
    config: dict = {}
    for raw in chunks(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            for item in record.run.config.update:
                config[_path(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                config[_path(item)] = json.loads(item.value_json)
            for item in record.config.remove:
                config.pop(_path(item), None)
        elif kind == "history":
            row = {_path(i): json.loads(i.value_json) for i in record.history.item}
            step = int(row.pop("_step", record.history.step.num))
            rows[step] = row
        elif kind == "summary":
            for item in record.summary.update:
                summary[_path(item)] = json.loads(item.value_json)
            for item in record.summary.remove:
                summary.pop(_path(item), None)
    config.pop("_wandb", None)
    for key in list(summary):
        if key.split(".")[0] in ("_wandb", "_runtime", "_step", "_timestamp"):
            summary.pop(key)
    return {"rows": rows, "summary": summary, "config": config}


def record_case(name: str, fn) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        error = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fn(wandb, {"dir": tmp})
            except Exception as exc:  # noqa: BLE001 - recorded
                error = type(exc).__name__
                if wandb.run is not None:
                    wandb.run.finish()
        wandb.teardown()  # waits for wandb-core to write everything (finish alone may not)
        files = glob.glob(os.path.join(tmp, "wandb", "offline-run-*", "*.wandb"))
        assert len(files) == 1, files
        out = read(files[0])
    for row in out["rows"].values():
        row.pop("_runtime", None)
        if row.get("_timestamp") not in STAMPED.get(name, ()):
            row.pop("_timestamp", None)
    out["error"] = error
    return out


def surface() -> None:
    """python -m tests.parity.record_wandb --surface: keys and kinds of the surface cases."""
    results = {"wandb": wandb.__version__, "cases": {}}
    for name, fn in SURFACE.items():
        out = record_case(name, fn)
        results["cases"][name] = {
            "error": out["error"],
            "rows": {step: kinds(row) for step, row in out["rows"].items()},
            "summary": sorted(kinds(out["summary"])),
        }
        print(name, "error:", out["error"], file=sys.stderr)
    with open(SURFACE_OUT, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
        fh.write("\n")


def main() -> None:
    if "--surface" in sys.argv:
        surface()
        return
    results = {"wandb": wandb.__version__, "cases": {}}
    for name, fn in CASES.items():
        results["cases"][name] = record_case(name, fn)
        print(name, "error:", results["cases"][name]["error"], file=sys.stderr)
    with open(OUT, "w") as fh:
        json.dump(results, fh, indent=1, sort_keys=True)
        fh.write("\n")


if __name__ == "__main__":
    main()
