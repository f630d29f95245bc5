"""The event log and the temperature history: one SQLite file, written by the controller.

Why SQLite: a person lies on warm water, so every trip, refusal, setpoint change and reset
must be on record, must survive a crash or a pulled plug, and must be readable by the CLI
(another process) and the MQTT thread while the controller keeps writing.  SQLite in WAL
mode gives exactly that with the standard library: readers never block the writer, the
writer never blocks readers, and a killed process leaves a database that opens clean.

Durability, by table:

* ``events`` commit with ``synchronous=FULL``: ``record`` returns only after the WAL has
  been flushed to stable storage, so an event the controller has acted on is never lost,
  not even to a power cut.
* ``history_second`` / ``history_minute`` commit with ``synchronous=NORMAL``: each sample
  is its own transaction (a killed process loses nothing that ``record_sample`` returned
  from), but the WAL is only fsynced at checkpoints.  A power cut may lose the last few
  seconds of history, never consistency.  Fsyncing once a second per cushion would wear an
  SD card for data whose loss harms nobody.

A write that fails (disk full, read-only, I/O error) raises ``sqlite3.Error`` here; the
controller never calls ``record`` directly but through ``controller/eventbuffer.py``, which
keeps the failed rows in order in memory until the disk takes writes again, and raises the
alarm ``event_log_unwritable`` meanwhile.

Times are unix epoch seconds as given by the caller (the wall clock in service, simulated
time in fast simulations); nothing here reads the clock, so retention is reckoned from the
newest sample seen, not from ``time.time()``.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EVENT_KINDS = frozenset({
    "setpoint", "heat", "trip", "trip_reset", "reset_refused", "alarm", "alarm_cleared",
    "link_connected", "link_disconnected", "board_fault", "command_refused",
    "controller_start", "controller_stop", "autotune", "events_dropped",
    # the ready-by schedule (controller/schedule): changed, late forecast, a morning
    # learned, a person took over
    "schedule", "schedule_late", "schedule_learned", "schedule_overridden",
})

#: Bumped whenever the tables change; a newer file is refused rather than misread.
SCHEMA_VERSION = 1

#: How long a connection waits for another connection's lock before giving up.  Writers
#: hold the lock for a millisecond or so; a checkpoint on a slow SD card may take longer.
BUSY_TIMEOUT_MS = 5000

#: Retention defaults: 1 s rows for a day, 1-minute aggregates for 90 days.
HISTORY_FINE_S = 86400
HISTORY_COARSE_S = 90 * 86400

#: Maintenance (rolling stale minutes, pruning) runs at most this often, in sample time.
_MAINTENANCE_EVERY_S = 60.0

#: Lower bound for "everything before this has been aggregated" when nothing has been.
_NOTHING_ROLLED = -(2**62)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    REAL    NOT NULL,
    kind    TEXT    NOT NULL,
    cushion INTEGER,
    actor   TEXT,
    reason  TEXT,
    detail  TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS events_time ON events (time);

-- One row per cushion per whole second, ``time`` being the sample's own timestamp.
CREATE TABLE IF NOT EXISTS history_second (
    cushion    INTEGER NOT NULL,
    second     INTEGER NOT NULL,
    time       REAL    NOT NULL,
    water_c    REAL,
    setpoint_c REAL,
    output     REAL,
    PRIMARY KEY (cushion, second)
) WITHOUT ROWID;

-- One row per cushion per minute, ``minute`` being the epoch second it starts at.
CREATE TABLE IF NOT EXISTS history_minute (
    cushion       INTEGER NOT NULL,
    minute        INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    water_mean    REAL,
    water_min     REAL,
    water_max     REAL,
    setpoint_mean REAL,
    output_mean   REAL,
    PRIMARY KEY (cushion, minute)
) WITHOUT ROWID;
"""

# Aggregates the 1 s rows of one cushion in [lo, hi) into whole minutes.  INSERT OR
# REPLACE makes re-rolling a minute (after a late sample) overwrite, not duplicate.
_ROLL = """
INSERT OR REPLACE INTO history_minute
    (cushion, minute, n, water_mean, water_min, water_max, setpoint_mean, output_mean)
SELECT cushion, second - second % 60 AS m, count(*), avg(water_c), min(water_c), max(water_c),
       avg(setpoint_c), avg(output)
FROM history_second
WHERE cushion = ? AND second >= ? AND second < ?
GROUP BY m
"""


@dataclass(frozen=True)
class Event:
    """One row of the event log, as read back."""

    id: int
    time: float  # unix epoch seconds (wall clock)
    kind: str
    cushion: int | None
    actor: str | None
    reason: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def iso(self) -> str:
        """The time as ISO-8601 UTC with milliseconds, e.g. ``2026-11-26T08:00:00.000Z``."""
        return _iso(self.time)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: plain types only, with the time both as a number and as ISO text."""
        return {"id": self.id, "time": self.time, "iso": self.iso, "kind": self.kind,
                "cushion": self.cushion, "actor": self.actor, "reason": self.reason,
                "detail": self.detail}


@dataclass(frozen=True)
class Sample:
    """One point of temperature history.

    A 1 s row is the first sample the cushion reported in that second.  A 1-minute row
    (``resolution_s == 60``) carries the means over the minute, ``time`` being the start of
    the minute, and the minimum and maximum water temperature seen in it; for 1 s rows the
    minimum and maximum equal ``water_c``, so a chart can draw a band from either kind.
    """

    time: float
    cushion: int
    water_c: float | None
    setpoint_c: float | None
    output: float | None  # heater output fraction 0..1
    water_min_c: float | None = None
    water_max_c: float | None = None
    resolution_s: int = 1


class EventLog:
    """The event log and history of one table.  Thread-safe; see the module docstring.

    ``path`` is a file (its parent directories are created) or ``None`` / ``":memory:"``
    for a private in-memory database, which fast simulations use.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *,
                 history_fine_s: float = HISTORY_FINE_S,
                 history_coarse_s: float = HISTORY_COARSE_S) -> None:
        if not history_fine_s >= 60 or not history_coarse_s >= 60:
            raise ValueError("history retention must be at least 60 s "
                             f"(history_fine_s={history_fine_s}, "
                             f"history_coarse_s={history_coarse_s})")
        self.history_fine_s = float(history_fine_s)
        self.history_coarse_s = float(history_coarse_s)
        if path is None or str(path) == ":memory:":
            self.path: Path | None = None
            target = ":memory:"
        else:
            self.path = Path(path).expanduser()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target = str(self.path)
        # The controller thread writes while the MQTT thread reads: one connection shared
        # under our own lock, so sqlite3's same-thread check would only get in the way.
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a commit happens
        # exactly where the code says and nowhere else.
        self._db: sqlite3.Connection | None = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False)
        self._lock = threading.Lock()
        self._sync: str | None = None
        try:
            self._open()
        except BaseException:
            self._db.close()
            self._db = None
            raise
        # History bookkeeping, loaded from the file on the first sample (see _load_state).
        self._state_loaded = False
        self._rolled: dict[int, int] = {}  # cushion -> all 1 s rows before this are rolled
        self._last_second: dict[int, int] = {}  # cushion -> newest whole second stored
        self._newest: float | None = None  # newest sample time, any cushion
        self._fine_floor = _NOTHING_ROLLED  # 1 s rows before this may have been pruned
        self._last_maintenance: float | None = None

    # --- opening and closing -----------------------------------------------------------

    def _open(self) -> None:
        db = self._db
        assert db is not None
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.path is not None:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"{self.path}: cannot use WAL mode (got {mode!r}); "
                                   "is it on a network file system?")
        self._set_sync("FULL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return  # nothing to write: a reader opening a live log takes no write lock
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: event log schema {version} is newer than this "
                               f"software understands ({SCHEMA_VERSION}); refusing to touch it")
        db.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created it while we waited for the lock.
            if db.execute("PRAGMA user_version").fetchone()[0] == 0:
                for statement in _SCHEMA.split(";\n"):  # no comment holds ";\n"
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close.  Idempotent.

        The checkpoint is PASSIVE: it never waits for a reader (a dashboard in the middle
        of a query must not delay the controller's shutdown); SQLite finishes the job and
        removes the WAL when the last connection closes.
        """
        with self._lock:
            db, self._db = self._db, None
            if db is None:
                return
            try:
                if self.path is not None:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass
            finally:
                db.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the event log is closed")
        return self._db

    def _set_sync(self, mode: str) -> None:
        """Switch synchronous between FULL (events) and NORMAL (samples), outside a
        transaction; a FULL commit also flushes the NORMAL commits before it."""
        if self._sync != mode:
            self._conn().execute(f"PRAGMA synchronous = {mode}")
            self._sync = mode

    # --- events --------------------------------------------------------------------------

    def record(self, kind: str, time: float, cushion: int | None = None,
               actor: str | None = None, reason: str | None = None,
               detail: dict[str, Any] | None = None) -> int:
        """Append one event and return its id, once it is durably committed.

        An unknown ``kind`` is a programming error and raises ValueError.  ``detail`` is
        stored as strict JSON: values JSON cannot hold (NaN, an enum, a Path) are stored
        as text rather than refused, because a trip must be logged whatever it carries.
        """
        t = self.check_event(kind, time, cushion, detail)
        text = json.dumps(_jsonable(detail or {}), ensure_ascii=False, allow_nan=False)
        with self._lock:
            db = self._conn()
            self._set_sync("FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT INTO events (time, kind, cushion, actor, reason, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (t, kind, cushion, _opt_str(actor), _opt_str(reason), text))
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
            row_id = cur.lastrowid
        assert row_id is not None
        return row_id

    @staticmethod
    def check_event(kind: str, time: float, cushion: int | None = None,
                    detail: dict[str, Any] | None = None) -> float:
        """Refuse a malformed event as ``record`` would, without writing; returns the
        time as a float.  (A queue of events waiting for the disk checks each one before
        keeping it, so a bad one can never block the queue.)"""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of "
                             f"{', '.join(sorted(EVENT_KINDS))}")
        t = _check_time(time)
        if cushion is not None and (isinstance(cushion, bool) or not isinstance(cushion, int)):
            raise TypeError(f"cushion must be an int or None, not {cushion!r}")
        if detail is not None and not isinstance(detail, dict):
            raise TypeError(f"detail must be a dict or None, not {type(detail).__name__}")
        return t

    def events(self, since: float | None = None, until: float | None = None,
               kinds: Iterable[str] | None = None, cushion: int | None = None,
               limit: int | None = None) -> list[Event]:
        """Events with ``since <= time < until``, oldest first.

        ``limit`` keeps the newest ``limit`` matching events (what "the last 50 events"
        means), still returned oldest first.  An unknown kind in ``kinds`` raises
        ValueError: a typo must not look like "no such events".
        """
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            where.append("time >= ?")
            args.append(float(since))
        if until is not None:
            where.append("time < ?")
            args.append(float(until))
        if kinds is not None:
            wanted = sorted(set([kinds] if isinstance(kinds, str) else kinds))
            unknown = [k for k in wanted if k not in EVENT_KINDS]
            if unknown:
                raise ValueError(f"unknown event kind(s): {', '.join(unknown)}")
            if not wanted:
                return []
            where.append(f"kind IN ({', '.join('?' * len(wanted))})")
            args.extend(wanted)
        if cushion is not None:
            where.append("cushion = ?")
            args.append(int(cushion))
        sql = "SELECT id, time, kind, cushion, actor, reason, detail FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is not None:
            if limit < 0:
                raise ValueError(f"limit must not be negative, got {limit}")
            sql += " ORDER BY time DESC, id DESC LIMIT ?"
            args.append(int(limit))
        else:
            sql += " ORDER BY time, id"
        with self._lock:
            rows = self._conn().execute(sql, args).fetchall()
        if limit is not None:
            rows.reverse()
        return [Event(id=r[0], time=r[1], kind=r[2], cushion=r[3], actor=r[4], reason=r[5],
                      detail=_load_detail(r[6])) for r in rows]

    # --- history ---------------------------------------------------------------------------

    def record_sample(self, time: float, cushion: int, water_c: float | None,
                      setpoint_c: float | None, output: float | None) -> None:
        """Store one sample: at most one row per cushion per whole second, committed now.

        A second sample in a second already stored is dropped before touching the file
        (telemetry may come at 4-5 Hz; the history is 1 s).  When a sample opens a new
        minute, the finished minutes are aggregated in the same transaction, so a crash can
        never leave a minute half-rolled.  Once a minute of sample time, minutes of a
        cushion that stopped reporting are rolled too, then 1 s rows older than
        ``history_fine_s`` and 1-minute rows older than ``history_coarse_s`` (both counted
        back from the newest sample) are deleted.  Samples older than the 1 s retention
        are ignored.  NaN or infinite readings are stored as missing.
        """
        t = _check_time(time)
        if t < 0:
            raise ValueError(f"sample time must not be negative, got {t}")
        if isinstance(cushion, bool) or not isinstance(cushion, int) or cushion < 0:
            raise ValueError(f"cushion must be a non-negative int, got {cushion!r}")
        values = (_opt_float(water_c), _opt_float(setpoint_c), _opt_float(output))
        second = math.floor(t)
        minute = second - second % 60
        with self._lock:
            db = self._conn()
            if not self._state_loaded:
                self._load_state(db)
            if self._last_second.get(cushion) == second:
                return
            if second < self._fine_floor or (
                    self._newest is not None and t < self._newest - self.history_fine_s):
                return
            new_rolled = dict(self._rolled)
            rolled = new_rolled.setdefault(cushion, _NOTHING_ROLLED)
            newest = t if self._newest is None else max(self._newest, t)
            maintain = (self._last_maintenance is None
                        or newest >= self._last_maintenance + _MAINTENANCE_EVERY_S)
            new_floor = self._fine_floor
            self._set_sync("NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute(
                    "INSERT OR IGNORE INTO history_second "
                    "(cushion, second, time, water_c, setpoint_c, output) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (cushion, second, t, *values))
                inserted = cur.rowcount == 1
                if minute > rolled:
                    # First sample of a new minute (or first since opening the file):
                    # everything of this cushion before it is finished.
                    db.execute(_ROLL, (cushion, rolled, minute))
                    new_rolled[cushion] = minute
                elif inserted and minute < rolled:
                    # A late sample in a minute already rolled (the clock stepped back):
                    # that minute's 1 s rows are all still here, so aggregate it again.
                    db.execute(_ROLL, (cushion, minute, minute + 60))
                if maintain:
                    new_floor = self._maintain(db, newest, new_rolled)
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
            # Bookkeeping only after the commit, so a failed write leaves it consistent.
            self._rolled = new_rolled
            self._fine_floor = new_floor
            self._newest = newest
            if maintain:
                self._last_maintenance = newest
            last = self._last_second.get(cushion)
            if last is None or second > last:
                self._last_second[cushion] = second

    def _maintain(self, db: sqlite3.Connection, newest: float, rolled: dict[int, int]) -> int:
        """Roll, then prune, inside the caller's transaction; returns the new 1 s floor.

        The 1 s cut is aligned to a whole minute so every minute is either entirely in
        ``history_second`` or entirely gone from it; ``history`` relies on that.
        """
        fine_cut = _floor_minute(newest - self.history_fine_s)
        coarse_cut = newest - self.history_coarse_s
        for cushion in sorted(rolled):
            start = rolled[cushion]
            if start < fine_cut:
                # A cushion that stopped reporting never saw its last minute close.
                db.execute(_ROLL, (cushion, start, fine_cut))
                rolled[cushion] = fine_cut
            db.execute("DELETE FROM history_second WHERE cushion = ? AND second < ?",
                       (cushion, fine_cut))
            db.execute("DELETE FROM history_minute WHERE cushion = ? AND minute < ?",
                       (cushion, coarse_cut))
        return max(self._fine_floor, fine_cut)

    def _load_state(self, db: sqlite3.Connection) -> None:
        """Pick up where a previous run (perhaps killed) left off.

        "Rolled up to" is the end of the newest aggregated minute, so 1 s rows written after
        it (the minute a killed process was in) are aggregated by the next sample.
        """
        cushions: set[int] = set()
        for table in ("history_second", "history_minute"):
            last = -1
            while True:  # one index seek per cushion instead of a full DISTINCT scan
                row = db.execute(f"SELECT min(cushion) FROM {table} WHERE cushion > ?",
                                 (last,)).fetchone()
                if row[0] is None:
                    break
                last = row[0]
                cushions.add(last)
        newest: float | None = None
        for c in cushions:
            m = db.execute("SELECT max(minute) FROM history_minute WHERE cushion = ?",
                           (c,)).fetchone()[0]
            self._rolled[c] = _NOTHING_ROLLED if m is None else m + 60
            row = db.execute("SELECT second, time FROM history_second WHERE cushion = ? "
                             "ORDER BY second DESC LIMIT 1", (c,)).fetchone()
            if row is not None:
                self._last_second[c] = row[0]
                newest = row[1] if newest is None else max(newest, row[1])
        self._newest = newest
        self._state_loaded = True

    def newest_sample_time(self) -> float | None:
        """The time of the newest 1 s history row of any cushion (None: none): the last
        sign of life a killed controller left (one index seek per cushion)."""
        newest: float | None = None
        with self._lock:
            db = self._conn()
            for c in (0, 1):
                row = db.execute("SELECT time FROM history_second WHERE cushion = ? "
                                 "ORDER BY second DESC LIMIT 1", (c,)).fetchone()
                if row is not None:
                    newest = row[0] if newest is None else max(newest, row[0])
        return newest

    def history(self, cushion: int, since: float, until: float | None = None) -> list[Sample]:
        """Samples of one cushion with ``since <= time < until``, oldest first.

        1 s rows wherever they still exist; before the oldest 1 s row, the 1-minute rows
        (each at the start of its minute).  The two never overlap: pruning removes whole
        minutes of 1 s rows.
        """
        hi = math.inf if until is None else float(until)
        lo = float(since)
        # Whole-second bounds for the primary-key range scan; infinities bind as REAL.
        sec_lo = math.floor(lo) if math.isfinite(lo) else lo
        sec_hi = math.ceil(hi) if math.isfinite(hi) else hi
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")  # one snapshot for both tables
            try:
                first = db.execute("SELECT min(second) FROM history_second WHERE cushion = ?",
                                   (cushion,)).fetchone()[0]
                boundary = math.inf if first is None else _floor_minute(first)
                coarse: list[tuple[Any, ...]] = []
                if lo < min(boundary, hi):
                    coarse = db.execute(
                        "SELECT minute, water_mean, setpoint_mean, output_mean, water_min, "
                        "water_max FROM history_minute WHERE cushion = ? AND minute >= ? "
                        "AND minute < ? ORDER BY minute",
                        (cushion, lo, min(boundary, hi))).fetchall()
                fine: list[tuple[Any, ...]] = []
                if first is not None and hi > lo:
                    fine = db.execute(
                        "SELECT time, water_c, setpoint_c, output FROM history_second "
                        "WHERE cushion = ? AND second >= ? AND second < ? AND time >= ? "
                        "AND time < ? ORDER BY second",
                        (cushion, sec_lo, sec_hi, lo, hi)).fetchall()
            finally:
                db.execute("COMMIT")
        out = [Sample(float(r[0]), cushion, r[1], r[2], r[3], r[4], r[5], 60) for r in coarse]
        out.extend(Sample(r[0], cushion, r[1], r[2], r[3], r[1], r[1], 1) for r in fine)
        return out


def open_default(data_dir: Path | str) -> EventLog:
    """The table's log in its data directory (``data.dir`` in the configuration)."""
    return EventLog(Path(data_dir).expanduser() / "events.sqlite3")


# --- the CLI's helpers -----------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_EPOCH = re.compile(r"\d+(?:\.\d+)?")


def parse_since(text: str, now: float) -> float:
    """Read ``--since``: a duration back from ``now`` ("90s", "15m", "2h", "3d"), an
    ISO-8601 date or date-time (naive means UTC), or a unix epoch number."""
    s = text.strip()
    m = _DURATION.fullmatch(s)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2)]
    if _EPOCH.fullmatch(s):
        return float(s)
    try:
        when = datetime.fromisoformat(s)
    except ValueError:
        pass
    else:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    raise ValueError(f"cannot read {text!r} as a time: give a duration back from now "
                     "(90s, 15m, 2h, 3d), an ISO-8601 date or time (2026-11-26, "
                     "2026-11-26T08:00, 2026-11-26T08:00Z; no zone means UTC) "
                     "or a unix epoch number")


def format_events(events: Sequence[Event], as_json: bool) -> str:
    """Events for a terminal (aligned columns, one line each) or as a JSON array.

    Text columns: ISO time (UTC), kind, cushion, actor, reason ("-" when absent), then the
    detail as ``key=value`` pairs.  No events gives "" in text and "[]" in JSON.
    """
    if as_json:
        return json.dumps([e.as_dict() for e in events], ensure_ascii=False, indent=2)
    rows = [(e.iso, e.kind, "-" if e.cushion is None else str(e.cushion),
             _one_line(e.actor), _one_line(e.reason), _compact(e.detail)) for e in events]
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)),
                                r[5]]).rstrip() for r in rows)


# --- small helpers ---------------------------------------------------------------------------

def _check_time(time: float) -> float:
    try:
        t = float(time)
    except (TypeError, ValueError):
        raise TypeError(f"time must be a number of epoch seconds, not {time!r}") from None
    if not math.isfinite(t):
        raise ValueError(f"time must be finite, got {time!r}")
    return t


def _floor_minute(t: float) -> int:
    s = math.floor(t)
    return s - s % 60


def _opt_float(x: float | None) -> float | None:
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _opt_str(x: object) -> str | None:
    return None if x is None else str(x)


def _rollback(db: sqlite3.Connection) -> None:
    try:
        db.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the failure already ended the transaction


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Plain JSON types only; anything else becomes its text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 20:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)


def _load_detail(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


def _iso(t: float) -> str:
    try:
        when = datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):
        return f"@{t}"
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _one_line(x: str | None) -> str:
    """A field for one text line: control characters (a newline in a reason) escaped."""
    if x is None or x == "":
        return "-"
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", x)


def _compact(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if isinstance(value, str) and value and not re.search(r"[\s=\"\x00-\x1f\x7f]", value):
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        parts.append(f"{_one_line(str(key))}={text}")
    return " ".join(parts)
