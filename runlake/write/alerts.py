"""`run.alert(title, text, level, wait_duration)` and `AlertLevel`, as wandb has them.

An alert is stored as one small document in the run's meta directory
(`meta/alert-<time_ns>-<id>.json`: run, segment, step, time, level, title, text), which the
catalog folds into the `alerts` table; it is printed to stderr at once, and POSTed to
$RUNLAKE_ALERT_WEBHOOK (Slack-style JSON) on a background thread when that is set. As in W&B,
an alert whose title was alerted less than `wait_duration` ago (default one minute) is
suppressed: not stored, not printed, not sent.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request
import uuid
from datetime import timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

from ..store import settings
from ..store.manifests import AlertDoc

if TYPE_CHECKING:
    from .writer import Writer

TITLE_MAX = 64  # W&B: "must be less than 64 characters long"


class AlertLevel(Enum):
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def _level(level: str | AlertLevel | None) -> str:
    level = level or AlertLevel.INFO
    value = level.value if isinstance(level, AlertLevel) else level
    if value not in {lev.value for lev in AlertLevel}:
        raise ValueError("level must be one of 'INFO', 'WARN', or 'ERROR'")
    return str(value)


def _wait(wait_duration: Any) -> float:
    wait = wait_duration or timedelta(minutes=1)
    if isinstance(wait, bool):
        raise TypeError("wait_duration must be an int, float, or datetime.timedelta")
    if isinstance(wait, (int, float)):
        return float(wait)
    total = getattr(wait, "total_seconds", None)
    if not callable(total):
        raise TypeError("wait_duration must be an int, float, or datetime.timedelta")
    return float(total())


class Alerter:
    """One run's alerts: the rate limit per title, storing, printing, the webhook."""

    def __init__(self, writer: Writer, run_id: str) -> None:
        self.writer = writer
        self.run_id = run_id
        self.last: dict[str, float] = {}  # title -> when it was last alerted
        self.lock = threading.Lock()

    def alert(
        self, title: str, text: str, level: Any, wait_duration: Any, step: int | None, segment: int
    ) -> bool:
        """Raise one alert; False when suppressed by its title's wait_duration."""
        if not isinstance(title, str) or not title:
            raise TypeError(f"alert title must be a non-empty str, got {title!r:.80}")
        if len(title) >= TITLE_MAX:
            raise ValueError(f"alert title must be less than {TITLE_MAX} characters long, got {len(title)}")
        if not isinstance(text, str):
            raise TypeError(f"alert text must be a str, got {type(text).__name__}")
        level_name, wait = _level(level), _wait(wait_duration)
        now = time.time()
        with self.lock:
            last = self.last.get(title)
            if last is not None and now - last < wait:
                return False
            self.last[title] = now
        step = step if step is not None and step >= 0 else None  # nothing logged yet: no step
        doc = AlertDoc(
            run_id=self.run_id, title=title, text=text, level=level_name, at=now, step=step, segment=segment
        )
        storage = self.writer.storage
        name = f"alert-{time.time_ns()}-{uuid.uuid4().hex[:8]}.json"
        path = storage.paths.meta(self.writer.project, self.run_id, name)
        self.writer.store_media(path, json.dumps(doc.to_json()).encode())  # spilled if storage is down
        print(
            f"runlake: alert [{level_name}] {title}: {text} (run {self.run_id}, step {step})", file=sys.stderr
        )
        url = settings.alert_webhook()
        if url is not None:
            threading.Thread(target=_post, args=(url, doc), name="runlake-alert", daemon=True).start()
        return True


def run_alert(run: Any, title: str, text: str, level: Any = None, wait_duration: Any = None) -> None:
    """`run.alert(title, text, level=None, wait_duration=None)`, as W&B's: stored with the step
    of the row being built (or the last one committed), printed to stderr, POSTed to
    $RUNLAKE_ALERT_WEBHOOK; the same title again within `wait_duration` (1 minute) is dropped."""
    alerter = run.__dict__.get("_alerter")
    if alerter is None:
        alerter = run._alerter = Alerter(run._writer, run.id)
    step = run.step - (run._pending is None)
    alerter.alert(title, text, level, wait_duration, step, run._writer.segment)


def _post(url: str, doc: AlertDoc) -> None:
    body = {
        "text": f"*[{doc.level}] {doc.title}*\n{doc.text}",
        "runlake": {
            "run_id": doc.run_id,
            "step": doc.step,
            "level": doc.level,
            "title": doc.title,
            "text": doc.text,
            "at": doc.at,
        },
    }
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - an http(s) URL the user set
            response.read()
    except Exception as exc:  # noqa: BLE001 - a webhook down never stops training
        print(f"runlake: warning: alert {doc.title!r} was not delivered to {url}: {exc}", file=sys.stderr)
