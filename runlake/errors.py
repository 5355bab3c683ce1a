"""runlake's exceptions: one root, builtins mixed in where they fit."""

from __future__ import annotations


class RunlakeError(Exception):
    """Base class of every error runlake raises on purpose."""


class RunNotFoundError(RunlakeError, LookupError):
    """A run id that does not exist in the root."""


class ForkPointError(RunlakeError, ValueError):
    """A fork or rewind step past the last step the source run has."""


class CorruptPartError(RunlakeError):
    """A history part that cannot be read (truncated or corrupt); the message names the file."""


class InvalidSpecError(RunlakeError, ValueError):
    """A malformed argument: a run id, project name, fork spec or step."""


class QueryError(RunlakeError, ValueError):
    """A SQL query runlake refuses (it would write) or DuckDB could not run; the message keeps DuckDB's hints."""


class StepOrderWarning(UserWarning):
    """A log call at a step below the current one; its data is dropped (as in W&B)."""


class KeyCollisionWarning(UserWarning):
    """One log call names the same metric twice (e.g. {"a": {"b": 1}, "a/b": 2}); the last value is kept."""


class ConfigError(RunlakeError, ValueError):
    """A config value changed without allow_val_change=True (as W&B's ConfigError)."""
