"""``hydrotherm events``: read a table's event log (who did what, which trip, when)."""

from __future__ import annotations

import time
from pathlib import Path

from controller.eventlog import format_events, open_default, parse_since
from hydrotherm.config import Config

from .errors import UsageError


def log_directory(cfg: Config, data_dir: str | None, table: str | None) -> Path:
    """The folder of the log to read: ``--data-dir`` (default ``data.dir``); with
    ``--table NAME`` its ``NAME`` folder, as ``hydrotherm demo`` writes them — without
    ``--data-dir`` the newest demo run's (``<data.dir>/demo/<start time>/NAME``)."""
    directory = Path(data_dir).expanduser() if data_dir else cfg.data_dir
    if table is None:
        return directory
    if not table or "/" in table or table in (".", ".."):
        raise UsageError(f"--table {table!r} is not a table name")
    if data_dir:
        return directory / table
    runs = sorted((d for d in (directory / "demo").glob("*/") if not d.is_symlink()
                   and (d / table / "events.sqlite3").exists()),
                  key=lambda d: (d / table / "events.sqlite3").stat().st_mtime)
    if not runs:
        raise UsageError(f"no demo run under {directory / 'demo'} has a table {table!r} "
                         "(pass --data-dir DIR, the folder `hydrotherm demo` printed)")
    return runs[-1] / table


def print_events(cfg: Config, data_dir: str | None, since: str | None,
                 kinds: list[str] | None, limit: int | None, as_json: bool,
                 table: str | None = None) -> int:
    directory = log_directory(cfg, data_dir, table)
    db = directory / "events.sqlite3"
    if not db.exists():
        hint = (f"no table {table!r} in this demo run" if table else
                "has `hydrotherm run` run here? a demo's logs: --table NAME")
        raise UsageError(f"no event log at {db} ({hint})")
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
