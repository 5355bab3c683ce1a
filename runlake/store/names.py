"""Validation of user-given names and of `RUNID?_step=N` specs."""

from __future__ import annotations

import math
import re
import secrets
import string
from typing import NamedTuple

from ..errors import InvalidSpecError

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_ID_ALPHABET = string.ascii_lowercase + string.digits


class StepSpec(NamedTuple):
    run_id: str
    step: int


def check_name(value: object, what: str) -> str:
    """Return `value` if it is a safe run id or project name, else raise InvalidSpecError."""
    if not isinstance(value, str):
        raise InvalidSpecError(f"{what} must be a str, got {type(value).__name__}: {value!r}")
    if not _NAME_RE.fullmatch(value) or ".." in value or value in (".",):
        raise InvalidSpecError(
            f"invalid {what} {value!r}: use 1-128 characters from A-Z a-z 0-9 _ . - and no '..'"
        )
    return value


def new_run_id() -> str:
    """A random run id: 8 lowercase alphanumerics, as W&B generates them."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def parse_step_spec(spec: object, argument: str) -> StepSpec:
    """Parse `"<run_id>?_step=<N>"` (the `fork_from` / `resume_from` format)."""
    example = (
        f'expected "<run_id>?_step=<N>" with N a non-negative number, e.g. {argument}="abc12345?_step=200"'
    )

    if not isinstance(spec, str):
        raise InvalidSpecError(f"{argument} must be a str, got {type(spec).__name__}: {spec!r}; {example}")
    # as wandb's RunMoment parses it: "<run>?_step=<value>", an int or a float (its integer part)
    run_id, sep, query = spec.partition("?")
    name, eq, raw = query.partition("=")
    if (
        not sep
        or not eq
        or name != "_step"
        or not _NAME_RE.fullmatch(run_id)
        or ".." in run_id
        or run_id == "."
    ):
        raise InvalidSpecError(f"invalid {argument}={spec!r}: {example}")
    try:
        value = int(raw) if raw.isdigit() else float(raw)
    except ValueError:
        raise InvalidSpecError(f"invalid {argument}={spec!r}: {example}") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidSpecError(
            f"invalid {argument}={spec!r}: the step must be a finite number >= 0; {example}"
        )
    return StepSpec(run_id, int(value))
