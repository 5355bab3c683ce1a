"""TensorBoard sync (`init(sync_tensorboard=True)`, `runlake.tensorboard.patch()`): what a
`SummaryWriter` (torch.utils.tensorboard's or tensorboardX's) writes is also logged into the
current run, as W&B's sync does for scripts that only log through TensorBoard (cleanrl's).

Keys are the writer's tags (`charts/episodic_return`); with `root_logdir`, a writer in a
subdirectory of it gets that directory as a prefix (`train/loss` for `root/train`). W&B's step
rule: the TensorBoard step is logged as the `global_step` key, and everything written at one
global_step is one row (committed when a writer moves to another step, or the run ends); the
run's own `_step` counts those rows. Scalars become numbers, `add_histogram` a Histogram,
`add_image` an Image, `add_text` text. The event files are written as before.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from . import registry
from .media import Histogram, Image

_lock = threading.Lock()
_patched: dict[tuple[type, str], Any] = {}  # (class, method) -> the original
_root_logdir: str | None = None
_last_step: dict[int, Any] = {}  # id(run) -> the global_step of the row being built


def _key(writer: Any, tag: str) -> str:
    if _root_logdir is None:
        return tag
    log_dir = getattr(writer, "log_dir", None) or getattr(writer, "logdir", None)
    if not log_dir:
        return tag
    relative = os.path.relpath(os.path.abspath(log_dir), os.path.abspath(_root_logdir))
    if relative in (".", "") or relative.startswith(".."):
        return tag
    return f"{relative.replace(os.sep, '/')}/{tag}"


def _log(writer: Any, values: dict[str, Any], global_step: Any) -> None:
    run: Any = registry.current()
    if run is None or getattr(run, "finished", False):
        return
    # TensorBoard writes an event without a step at step 0: so does the sync (W&B reads the events)
    step = (
        0 if global_step is None else int(global_step.item() if hasattr(global_step, "item") else global_step)
    )
    with _lock:
        last = _last_step.get(id(run))
        if last is not None and step != last:
            run.commit()
        _last_step[id(run)] = step
    row = {_key(writer, tag): value for tag, value in values.items()}
    row["global_step"] = step
    run.log(row, commit=False)


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _add_scalar(original: Any) -> Any:
    def add_scalar(
        self: Any, tag: str, scalar_value: Any, global_step: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        result = original(self, tag, scalar_value, global_step, *args, **kwargs)
        value = scalar_value.item() if hasattr(scalar_value, "item") else scalar_value
        _log(self, {tag: float(value)}, global_step)
        return result

    return add_scalar


def _add_scalars(original: Any) -> Any:
    def add_scalars(
        self: Any,
        main_tag: str,
        tag_scalar_dict: dict[str, Any],
        global_step: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        result = original(self, main_tag, tag_scalar_dict, global_step, *args, **kwargs)
        values = {
            f"{main_tag}/{k}": float(v.item() if hasattr(v, "item") else v)
            for k, v in tag_scalar_dict.items()
        }
        _log(self, values, global_step)
        return result

    return add_scalars


def _add_histogram(original: Any) -> Any:
    def add_histogram(
        self: Any, tag: str, values: Any, global_step: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        result = original(self, tag, values, global_step, *args, **kwargs)
        _log(self, {tag: Histogram(_array(values).reshape(-1), num_bins=64)}, global_step)
        return result

    return add_histogram


def _add_image(original: Any) -> Any:
    def add_image(
        self: Any,
        tag: str,
        img_tensor: Any,
        global_step: Any = None,
        walltime: Any = None,
        dataformats: str = "CHW",
    ) -> Any:
        result = original(self, tag, img_tensor, global_step, walltime, dataformats)
        image = _array(img_tensor)
        if dataformats.upper() == "CHW" and image.ndim == 3:
            image = np.moveaxis(image, 0, -1)
        _log(self, {tag: Image(image)}, global_step)
        return result

    return add_image


def _add_text(original: Any) -> Any:
    def add_text(
        self: Any, tag: str, text_string: str, global_step: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        result = original(self, tag, text_string, global_step, *args, **kwargs)
        _log(self, {tag: str(text_string)}, global_step)
        return result

    return add_text


_WRAPPERS = {
    "add_scalar": _add_scalar,
    "add_scalars": _add_scalars,
    "add_histogram": _add_histogram,
    "add_image": _add_image,
    "add_text": _add_text,
}


def _writer_classes(pytorch: bool, tensorboard_x: bool) -> list[type]:
    found: list[type] = []
    if pytorch:
        try:
            from torch.utils.tensorboard import SummaryWriter as TorchWriter

            found.append(TorchWriter)
        except Exception:  # noqa: BLE001 - torch or tensorboard missing: nothing to patch
            pass
    if tensorboard_x:
        try:
            from tensorboardX import SummaryWriter as XWriter

            found.append(XWriter)
        except Exception:  # noqa: BLE001
            pass
    return found


def patch(
    root_logdir: str | None = None, pytorch: bool = True, tensorboard_x: bool = True, save: bool = True
) -> list[str]:
    """Make SummaryWriters log into the current run too; returns the classes patched. Patching
    twice is harmless; `unpatch()` puts the originals back."""
    global _root_logdir
    _root_logdir = root_logdir
    classes = _writer_classes(pytorch, tensorboard_x)
    with _lock:
        for cls in classes:
            for name, wrap in _WRAPPERS.items():
                if (cls, name) in _patched or not hasattr(cls, name):
                    continue
                original = getattr(cls, name)
                _patched[(cls, name)] = original
                setattr(cls, name, wrap(original))
    return [f"{c.__module__}.{c.__name__}" for c in classes]


def unpatch() -> None:
    with _lock:
        for (cls, name), original in _patched.items():
            setattr(cls, name, original)
        _patched.clear()
        _last_step.clear()
