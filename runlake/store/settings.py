"""Every `RUNLAKE_*` environment variable, read here and nowhere else.

Each is read when it is needed (tests and users change them between calls); the defaults and
the checks live in one place, so a bad value is one clear error whoever asks.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from ..errors import RunlakeError

DEFAULT_ROOT = "./runlake-data"
# The default before 0.2: in a checkout it was the package's own folder. A root found there
# (it has runs/ or history/) is still read, with a notice, while ./runlake-data does not exist.
LEGACY_ROOT = "./runlake"
_noticed: set[str] = set()


def root(value: str | os.PathLike[str] | None) -> str:
    """The root URL: the argument, else $RUNLAKE_ROOT, else ./runlake-data (or a root at the old
    default ./runlake, with a notice)."""
    if value is None:
        value = os.environ.get("RUNLAKE_ROOT") or _default_root()
    return os.fspath(value)


def _default_root() -> str:
    if os.path.exists(DEFAULT_ROOT) or not any(
        os.path.isdir(os.path.join(LEGACY_ROOT, sub)) for sub in ("runs", "history")
    ):
        return DEFAULT_ROOT
    where = os.path.abspath(LEGACY_ROOT)
    if where not in _noticed:
        _noticed.add(where)
        warnings.warn(
            f"reading the root at the old default {where}; the default is now ./runlake-data: move it "
            "there, or pass root= / set $RUNLAKE_ROOT",
            RuntimeWarning,
            stacklevel=4,
        )
    return LEGACY_ROOT


def storage_options(value: dict[str, Any] | None) -> dict[str, Any]:
    """fsspec options: the argument, else $RUNLAKE_STORAGE_OPTIONS (a JSON object), else none."""
    if value is not None:
        if not isinstance(value, dict):
            raise TypeError(f"storage_options must be a dict, got {type(value).__name__}")
        return value
    raw = os.environ.get("RUNLAKE_STORAGE_OPTIONS")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        raise RunlakeError(f"$RUNLAKE_STORAGE_OPTIONS is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise RunlakeError("$RUNLAKE_STORAGE_OPTIONS must be a JSON object")
    return parsed


def flush_interval() -> float:
    """Seconds between background flushes (and heartbeats); $RUNLAKE_FLUSH_INTERVAL, default 5."""
    return _float("RUNLAKE_FLUSH_INTERVAL", 5.0, minimum=0.01)


def heartbeat_timeout() -> float:
    """A running run whose heartbeat is older than this reads `crashed` ($RUNLAKE_HEARTBEAT_TIMEOUT)."""
    return _float("RUNLAKE_HEARTBEAT_TIMEOUT", max(30.0, 6 * flush_interval()), minimum=0.05)


def verify_reads() -> bool:
    """Whether reads check each file's Parquet page checksums once per process before DuckDB
    scans it ($RUNLAKE_VERIFY=off: trust the files; `doctor` still checks them)."""
    return os.environ.get("RUNLAKE_VERIFY", "").strip().lower() not in ("off", "0", "no", "false")


def compact_grace() -> float:
    """Seconds a compaction leaves the parts it packed in place, for readers that listed them
    before (a `connect()` snapshot, a query under way); the next compaction after that removes
    them. $RUNLAKE_COMPACT_GRACE, default 600; 0 removes them at once."""
    return _float("RUNLAKE_COMPACT_GRACE", 600.0, minimum=0.0)


def log_window() -> float:
    """How far back a reader lists the commit log again each refresh, in seconds: longer than an
    entry's upload plus the clock skew between writers ($RUNLAKE_LOG_WINDOW, default 30)."""
    return _float("RUNLAKE_LOG_WINDOW", 30.0, minimum=0.0)


def checkpoint_every() -> int:
    """Log entries a reader applies past the newest checkpoint before it writes a new one
    ($RUNLAKE_CHECKPOINT_EVERY, default 1000; 0: never)."""
    return int(_float("RUNLAKE_CHECKPOINT_EVERY", 1000.0, minimum=0.0))


def relist_every() -> float:
    """Seconds between a long-lived reader's full listings of the root, which find what the
    commit log lacks (a writer killed between a manifest and its entry) ($RUNLAKE_RELIST_EVERY,
    default 3600; 0: never)."""
    return _float("RUNLAKE_RELIST_EVERY", 3600.0, minimum=0.0)


def log_grace() -> float:
    """Log entries older than the newest checkpoint by this many seconds are removed by compaction
    ($RUNLAKE_LOG_GRACE, default 3600)."""
    return _float("RUNLAKE_LOG_GRACE", 3600.0, minimum=0.0)


CONSOLE_MODES = ("auto", "off", "wrap", "redirect", "wrap_raw", "wrap_emu")


def console(given: Any = None) -> bool:
    """Is console output captured? `settings.console` as W&B ("auto", the default, and every
    other mode but "off" capture by wrapping sys.stdout/sys.stderr), else $WANDB_CONSOLE."""
    value = given if given is not None else (os.environ.get("WANDB_CONSOLE") or "auto")
    if value not in CONSOLE_MODES:
        raise RunlakeError(
            f"settings.console must be one of {', '.join(map(repr, CONSOLE_MODES))}, got {value!r}"
        )
    return value != "off"


def stats_interval(given: Any = None) -> float:
    """Seconds between system-metric samples: `settings.x_stats_sampling_interval` as wandb 0.31
    (default 15), else $WANDB_X_STATS_SAMPLING_INTERVAL."""
    raw = given if given is not None else os.environ.get("WANDB_X_STATS_SAMPLING_INTERVAL")
    if raw is None:
        return 15.0
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise RunlakeError(f"x_stats_sampling_interval must be a number of seconds, got {raw!r}") from None
    if not value >= 0.1:
        raise RunlakeError(f"x_stats_sampling_interval must be at least 0.1 s, got {raw!r}")
    return value


def stats_disabled(given: Any = None) -> bool:
    """`settings.x_disable_stats` (wandb 0.31), else $WANDB_X_DISABLE_STATS: no system metrics."""
    if given is not None:
        return bool(given)
    return os.environ.get("WANDB_X_DISABLE_STATS", "").strip().lower() in ("1", "true", "yes", "on")


def flush_rows() -> int:
    """Buffered rows that trigger an early flush ($RUNLAKE_FLUSH_ROWS, default 10,000)."""
    raw = os.environ.get("RUNLAKE_FLUSH_ROWS")
    if not raw:
        return 10_000
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"$RUNLAKE_FLUSH_ROWS must be a whole number, got {raw!r}") from None
    return max(1, value)


def spill_dir(local_dir: str | None = None) -> str:
    """Where parts wait while storage is down: <dir>/runlake/spill for `init(dir=...)`, else
    $RUNLAKE_SPILL_DIR, else <$RUNLAKE_DIR or ~/.cache/runlake>/spill."""
    if local_dir:
        return os.path.join(os.path.abspath(local_dir), "runlake", "spill")
    return os.environ.get("RUNLAKE_SPILL_DIR") or os.path.join(local_dir_default(), "spill")


def local_dir(given: str | None = None) -> str:
    """The base of the local files a run keeps outside the root (its `run.dir`): <dir>/runlake
    for `init(dir=...)`, else $RUNLAKE_DIR, else ~/.cache/runlake."""
    if given:
        return os.path.join(os.path.abspath(given), "runlake")
    return local_dir_default()


def local_dir_default() -> str:
    return os.environ.get("RUNLAKE_DIR") or _home_cache()


MODES = ("online", "offline", "shared", "disabled")


def mode(given: str | None = None) -> str:
    """`init(mode=...)`, else $RUNLAKE_MODE, else $WANDB_MODE (a W&B script's setting), else
    "offline". "online", "offline" and "shared" all log locally; "disabled" writes nothing."""
    value = given or os.environ.get("RUNLAKE_MODE") or os.environ.get("WANDB_MODE") or "offline"
    if value == "dryrun":  # wandb's old name for offline
        value = "offline"
    if value not in MODES:
        raise RunlakeError(f"mode must be one of {', '.join(map(repr, MODES))}, got {value!r}")
    return value


def cache_dir() -> str:
    """Where catalogs of remote roots are cached: $RUNLAKE_CACHE_DIR, else ~/.cache/runlake."""
    return os.environ.get("RUNLAKE_CACHE_DIR") or _home_cache()


def _home_cache() -> str:
    return os.path.join(os.path.expanduser("~"), ".cache", "runlake")


def _float(name: str, default: float, minimum: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"${name} must be a number of seconds, got {raw!r}") from None
    if not value >= minimum:
        raise ValueError(f"${name} must be at least {minimum}, got {raw!r}")
    return value


def alert_webhook() -> str | None:
    """$RUNLAKE_ALERT_WEBHOOK: an http(s) URL every alert is POSTed to as Slack-style JSON
    ({"text": ...}; a Slack incoming webhook takes it as is). Unset: alerts are stored and
    printed only."""
    url = os.environ.get("RUNLAKE_ALERT_WEBHOOK") or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise RunlakeError(f"RUNLAKE_ALERT_WEBHOOK must be an http:// or https:// URL, got {url!r}")
    return url


def log_model() -> str | None:
    """$RUNLAKE_LOG_MODEL, else W&B's $WANDB_LOG_MODEL: "checkpoint", "end", or unset/"false"
    (the Hugging Face callback logs no model, W&B's default)."""
    value = os.environ.get("RUNLAKE_LOG_MODEL") or os.environ.get("WANDB_LOG_MODEL") or ""
    value = value.strip().lower()
    return None if value in ("", "false", "0", "none") else ("end" if value in ("true", "1") else value)
