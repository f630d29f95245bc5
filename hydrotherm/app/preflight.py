"""Checks of what a person hands the ``hydrotherm`` command, made before anything starts.

Why a module of its own: a wrong path is a person's mistake, not a bug, so it deserves one
sentence naming the problem (the CLI prints it and exits with status 2), never a Python
traceback and never a controller that starts and then silently cannot work.  The checks
here are the ones that need the file system or the serial port; the configuration's own
values are checked by ``hydrotherm.config``.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.eventlog import EventLog


class PreflightError(ValueError):
    """Something given to the command cannot work; the message is one line for a person."""


def check_data_dir(directory: str | os.PathLike[str]) -> Path:
    """The data directory, created if missing, and proven writable by writing a file in it.

    Writing a probe file is the only honest test: ``os.access`` answers for the real user
    id, ignores read-only mounts on some systems and says yes to root everywhere."""
    d = Path(directory).expanduser()
    if d.exists() and not d.is_dir():
        raise PreflightError(f"the data directory {d} is a file, not a directory: "
                             "pass --data-dir DIR or set data.dir to a directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreflightError(f"cannot create the data directory {d}: {_why(exc)}") from None
    try:
        fd, name = tempfile.mkstemp(prefix=".hydrotherm-write-test-", dir=d)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise PreflightError(f"the data directory {d} is not writable ({_why(exc)}): the "
                             "event log must be written there; pass --data-dir DIR or set "
                             "data.dir") from None
    return d


def open_event_log(directory: str | os.PathLike[str]) -> EventLog:
    """The table's event log in a checked data directory, or one sentence why not."""
    from controller.eventlog import open_default

    d = check_data_dir(directory)
    db = d / "events.sqlite3"
    for path in (db, db.with_name(db.name + "-wal")):
        # SQLite opens a file it may not write read-only without a word, and only the
        # first event would fail: refuse now instead.
        try:
            os.close(os.open(path, os.O_RDWR))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise PreflightError(f"the event log {path} cannot be written ({_why(exc)}): "
                                 "fix its permissions, or pass --data-dir DIR") from None
    try:
        return open_default(d)
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        raise PreflightError(f"cannot open the event log {d / 'events.sqlite3'}: "
                             f"{_why(exc)}") from None


def check_board_port(url: str) -> None:
    """A port given as a path (``/dev/ttyUSB0``, a pty) must exist and not be a directory.

    URLs (``socket://``, ``rfc2217://``) are not files; ``first_open`` tries them."""
    if "://" in url:
        return
    path = Path(url)
    if path.is_dir():
        raise PreflightError(f"{url} is a directory, not a serial port: pass --port with "
                             "the board's device, e.g. /dev/ttyUSB0")
    if not path.exists():
        raise PreflightError(f"there is no serial port {url}: check that the board is "
                             "plugged in and the name is right (--port or link.port)")


def first_open(link: Any) -> None:
    """Open the board's port once, now, through the link itself (so a board is never
    opened twice, which resets some USB boards).  After this first success the link
    reconnects by itself whenever the port goes away; only a port that cannot be opened
    at all when a person starts the controller is their mistake to fix."""
    link.poll()
    if link.state.value == "disconnected":
        error = link.error
        link.close()
        raise PreflightError(f"{error or 'cannot open ' + repr(link.url)}; is the board "
                             "connected, and is this its port? (--port or link.port)")


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower() if exc.strerror[:1].isupper() else exc.strerror
    return str(exc)
