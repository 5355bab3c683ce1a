"""Validation of user-given names and of `RUNID?_step=N` specs."""

from __future__ import annotations

import re
import secrets
import string
from typing import NamedTuple

from ..errors import InvalidSpecError

_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_SPEC_RE = re.compile(r"([A-Za-z0-9_.-]{1,128})\?_step=([0-9]+)")
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
        f'expected "<run_id>?_step=<N>" with N a non-negative integer, e.g. {argument}="abc12345?_step=200"'
    )
    if not isinstance(spec, str):
        raise InvalidSpecError(f"{argument} must be a str, got {type(spec).__name__}: {spec!r}; {example}")
    match = _SPEC_RE.fullmatch(spec)
    if match is None or ".." in match.group(1) or match.group(1) == ".":
        raise InvalidSpecError(f"invalid {argument}={spec!r}: {example}")
    return StepSpec(match.group(1), int(match.group(2)))
