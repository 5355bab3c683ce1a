"""A run's config and summary objects, with W&B's semantics (see README "Coming from W&B").

config: a dict with attribute access; changing a value already set raises ConfigError unless
`allow_val_change` (per call, or for the run at init). Accepts dicts, argparse Namespaces,
absl flags and YAML files. summary: the last logged value of every key, with values you set on
top until the key is logged again (last write wins); "a.b" keys read as nested dicts.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from ..errors import ConfigError

Run = Any  # the run.Run that owns these objects (not imported: run.py imports this module)


def jsonable(value: Any) -> Any:
    """Config/summary values as JSON can hold them (numpy/torch scalars become numbers)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    for attr in ("item", "tolist"):
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                return jsonable(fn())
            except Exception:  # noqa: BLE001 - not a scalar/array after all
                pass
    return str(value)


def load_yaml(path: str) -> dict[str, Any]:
    """A config file as W&B reads it: `key: {value: v}` entries (config-defaults.yaml, the
    format W&B writes), or plain `key: v` entries; `wandb_version` is skipped."""
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(f"config file {path!r} does not exist")
    try:
        with open(path) as fh:
            loaded = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path!r} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path!r} must hold a mapping of names to values")
    loaded.pop("wandb_version", None)
    loaded.pop("_wandb", None)
    wrapped = all(isinstance(v, dict) and "value" in v for v in loaded.values())
    return {str(k): (v["value"] if wrapped else v) for k, v in loaded.items()}


def parse_config(params: Any) -> dict[str, Any]:
    """What wandb's config accepts, as a dict: a mapping, a YAML path, an argparse Namespace,
    absl FLAGS (or the absl.flags module), or any object with a __dict__."""
    if params is None:
        return {}
    if isinstance(params, str | os.PathLike):
        return load_yaml(os.fspath(params))
    if isinstance(params, Mapping):
        return {str(k): v for k, v in params.items()}
    if isinstance(params, argparse.Namespace):
        return dict(vars(params))
    module = inspect.getmodule(params)
    if module is not None and module.__name__ == "absl.flags":
        params = params.FLAGS  # the module itself was passed
        module = inspect.getmodule(params)
    if module is not None and module.__name__.startswith("absl.flags"):
        return {name: params[name].value for name in dir(params)}
    if hasattr(params, "__dict__"):
        return {k: v for k, v in vars(params).items() if not k.startswith("_")}
    raise TypeError(
        f"config must be a dict, a YAML file path, an argparse.Namespace or absl flags, got {type(params).__name__}"
    )


def filter_keys(config: dict[str, Any], include: Any, exclude: Any) -> dict[str, Any]:
    if include and exclude:
        raise ValueError("config_include_keys and config_exclude_keys cannot be combined")
    if include:
        return {k: v for k, v in config.items() if k in set(include)}
    if exclude:
        return {k: v for k, v in config.items() if k not in set(exclude)}
    return config


class Config(dict):  # type: ignore[type-arg]
    """The run's config: a dict (attribute access too, as in wandb) persisted with the run."""

    def __init__(
        self, run: Run | None, data: Mapping[str, Any] | None = None, allow_val_change: bool = False
    ) -> None:
        super().__init__(data or {})
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_allow", bool(allow_val_change))

    def _touch(self) -> None:
        run = object.__getattribute__(self, "_run")
        if run is not None:
            run._meta_dirty = True

    def _sanitize(self, key: Any, value: Any, allow_val_change: bool | None) -> tuple[str, Any]:
        if not isinstance(key, str):
            raise TypeError(f"config keys must be str, got {type(key).__name__} {key!r}")
        key = key.strip("-")  # as W&B: "--lr" is "lr"
        from .media import Histogram, Media

        if isinstance(value, Media | Histogram):
            raise TypeError(f"config[{key!r}]: media and histograms cannot be config values (log them)")
        allow = object.__getattribute__(self, "_allow") if allow_val_change is None else allow_val_change
        if not allow and key in self and jsonable(super().__getitem__(key)) != jsonable(value):
            raise ConfigError(
                f"config key {key!r} is already {super().__getitem__(key)!r}; changing it to {value!r} needs "
                "config.update({...}, allow_val_change=True) (or init(allow_val_change=True))"
            )
        return key, value

    def __setitem__(self, key: str, value: Any) -> None:
        key, value = self._sanitize(key, value, None)
        super().__setitem__(key, value)
        self._touch()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._touch()

    def update(self, d: Any = None, allow_val_change: bool | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        items = {**parse_config(d), **kwargs}
        checked = dict(self._sanitize(k, v, allow_val_change) for k, v in items.items())
        super().update(checked)
        self._touch()

    def setdefaults(self, d: Any) -> None:
        """Set the keys of `d` that are not set yet (W&B's setdefaults)."""
        items = parse_config(d)
        super().update({k: v for k, v in items.items() if k.strip("-") not in self})
        self._touch()

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return super().__getitem__(key)

    def as_dict(self) -> dict[str, Any]:
        return dict(self)

    def persist(self) -> None:
        self._touch()

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value


class Summary(MutableMapping[str, Any]):
    """Last logged value of every key (effective history), with values you set on top; a
    key set here holds until the same key is logged again (last write wins, as in W&B)."""

    def __init__(self, run: Run, prefix: str = "") -> None:
        self._run = run
        self._prefix = prefix

    def _merged(self) -> dict[str, Any]:
        return self._run._summary_snapshot()

    def _names(self) -> dict[str, Any]:
        """This view's keys: whole names, and the first "." section of nested ones."""
        merged = self._merged()
        if not self._prefix:
            return merged
        return {k[len(self._prefix) :]: v for k, v in merged.items() if k.startswith(self._prefix)}

    def __getitem__(self, key: str) -> Any:
        names = self._names()
        if key in names:
            return names[key]
        nested = key + "."
        if any(k.startswith(nested) for k in names):
            return Summary(self._run, self._prefix + nested)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._run._set_summary(self._prefix + key, value)

    def __delitem__(self, key: str) -> None:
        names = self._names()
        if key not in names and not any(k.startswith(key + ".") for k in names):
            raise KeyError(key)
        self._run._delete_summary(self._prefix + key)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k.split(".", 1)[0] for k in self._names()))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.as_dict() if isinstance(v, Summary) else v) for k, v in self.items()}

    def __repr__(self) -> str:
        return f"Summary({self.as_dict()!r})"
