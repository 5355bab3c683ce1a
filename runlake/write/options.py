"""init()'s arguments as wandb.init takes them, normalised: settings, reinit, fork and rewind
points, config sources, tags, and the resume="auto" file."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidSpecError
from ..store.names import StepSpec, parse_step_spec
from ..store.storage import write_local_atomic
from .config import jsonable, parse_config

REINIT = ("default", "create_new", "finish_previous", "return_previous")
# wandb.init arguments that mean nothing for a local store: accepted, kept in run.json's
# metadata when given (README, "Coming from W&B").
KEPT = ("save_code", "tensorboard", "sync_tensorboard", "monitor_gym", "force", "anonymous")


def check_tags(tags: object) -> list[str]:
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Sequence | set | frozenset):
        raise TypeError(f"tags must be a list of str, got {type(tags).__name__}")
    out = []
    for tag in tags:
        if not isinstance(tag, str):
            raise TypeError(f"tags must be str, got {type(tag).__name__} {tag!r}")
        out.append(tag)
    return out


def settings_dict(settings: Any) -> dict[str, Any]:
    """`settings=` as a dict: a dict, runlake.Settings / wandb.Settings, or anything with attributes."""
    if settings is None:
        return {}
    if isinstance(settings, Mapping):
        return dict(settings)
    to_dict = getattr(settings, "to_dict", None) or getattr(settings, "model_dump", None)
    if callable(to_dict):
        return {k: v for k, v in dict(to_dict()).items() if v is not None}
    if hasattr(settings, "__dict__"):
        return {k: v for k, v in vars(settings).items() if not k.startswith("_") and v is not None}
    raise TypeError(f"settings must be a dict or runlake.Settings, got {type(settings).__name__}")


def reinit_mode(value: Any) -> str:
    if value is None or value == "default":
        return "create_new"
    if value is True:
        return "finish_previous"
    if value is False:
        return "return_previous"
    if value not in REINIT:
        raise InvalidSpecError(
            f"reinit must be one of {', '.join(map(repr, REINIT))}, True or False, got {value!r}"
        )
    return str(value)


def metadata(given_settings: dict[str, Any], mode: str, args: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": mode} if mode != "offline" else {}
    for name in KEPT:
        value = args.get(name)
        if value is not None and isinstance(value, bool | str | int | float):
            out[name] = value
    if given_settings:
        out["settings"] = jsonable({k: v for k, v in given_settings.items() if not callable(v)})
    return out


def moment(spec: Any, argument: str) -> StepSpec | None:
    """fork_from / resume_from: a "<run>?_step=<N>" string (as wandb's RunMoment parses it: a
    float step means its integer part) or a RunMoment-like object (run, value, metric)."""
    if spec is None:
        return None
    if not isinstance(spec, str) and hasattr(spec, "run") and hasattr(spec, "value"):
        metric = getattr(spec, "metric", "_step")
        if metric != "_step":
            raise InvalidSpecError(f"{argument}: only the metric '_step' is supported, got {metric!r}")
        spec = f"{spec.run}?_step={spec.value}"
    return parse_step_spec(spec, argument)


def config_defaults() -> dict[str, Any]:
    """config-defaults.yaml in the working directory, as W&B loads it."""
    if os.path.isfile("config-defaults.yaml"):
        return parse_config("config-defaults.yaml")
    return {}


def check_config(config: object) -> dict[str, Any]:
    out = parse_config(config)
    for key in out:
        if not isinstance(key, str):
            raise TypeError(f"config keys must be str, got {type(key).__name__} {key!r}")
    out = {k.strip("-"): v for k, v in out.items()}
    json.dumps(jsonable(out), allow_nan=True)
    return out


class ResumeFile:
    """resume="auto": the run a directory last started in a root's project, until it finishes
    cleanly (<dir or working directory>/.runlake-resume.json), as W&B's wandb-resume.json."""

    def __init__(self, local_dir: str | None, root: str, project: str) -> None:
        self.path = os.path.join(local_dir or os.getcwd(), ".runlake-resume.json")
        self.key = f"{root}#{project}"

    def _load(self) -> dict[str, str]:
        try:
            with open(self.path) as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in doc.items() if isinstance(v, str)} if isinstance(doc, dict) else {}

    def read(self) -> str | None:
        return self._load().get(self.key)

    def write(self, run_id: str) -> None:
        doc = self._load()
        doc[self.key] = run_id
        write_local_atomic(self.path, json.dumps(doc, indent=1).encode())

    def clear(self, run_id: str) -> None:
        doc = self._load()
        if doc.get(self.key) == run_id:
            del doc[self.key]
            write_local_atomic(self.path, json.dumps(doc, indent=1).encode())
