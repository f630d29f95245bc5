"""``hydrotherm events``: read a table's event log (who did what, which trip, when)."""

from __future__ import annotations

import time
from pathlib import Path

from controller.eventlog import format_events, open_default, parse_since
from hydrotherm.config import Config

from .errors import UsageError


def print_events(cfg: Config, data_dir: str | None, since: str | None,
                 kinds: list[str] | None, limit: int | None, as_json: bool) -> int:
    directory = Path(data_dir).expanduser() if data_dir else cfg.data_dir
    db = directory / "events.sqlite3"
    if not db.exists():
        raise UsageError(f"no event log at {db} (has `hydrotherm run` or `demo` run here?)")
    try:
        t0 = parse_since(since, time.time()) if since else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with open_default(directory) as log:
        try:
            events = log.events(since=t0, kinds=kinds or None, limit=limit)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    out = format_events(events, as_json)
    if out:
        print(out)
    return 0
