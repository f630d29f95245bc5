"""The event log and history: round trips, retention, crash safety, concurrent readers."""

from __future__ import annotations

import json
import math
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.eventlog import (
    EVENT_KINDS,
    SCHEMA_VERSION,
    Event,
    EventLog,
    Sample,
    format_events,
    open_default,
    parse_since,
)

T0 = 1_800_000_000  # a whole minute (2027-01-15T08:00:00Z)
DAY = 86400


@pytest.fixture
def log(tmp_path: Path):
    with EventLog(tmp_path / "sub" / "dir" / "events.sqlite3") as lg:
        yield lg


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=5)


# --- events ---------------------------------------------------------------------------------


def test_record_round_trip_with_detail(log: EventLog) -> None:
    detail = {"water_c": [41.2, 40.9], "sensor": "primary", "nested": {"ok": True, "n": None},
              "unit": "°C", "bad": math.nan, "big": math.inf, "path": Path("/x")}
    a = log.record("trip", T0 + 1.5, cushion=1, actor="supervisor", reason="over_temperature",
                   detail=detail)
    b = log.record("controller_start", T0 + 2.0)
    assert b > a
    first, second = log.events()
    assert first == Event(a, T0 + 1.5, "trip", 1, "supervisor", "over_temperature",
                          {"water_c": [41.2, 40.9], "sensor": "primary",
                           "nested": {"ok": True, "n": None}, "unit": "°C",
                           "bad": "nan", "big": "inf", "path": "/x"})
    assert second == Event(b, T0 + 2.0, "controller_start", None, None, None, {})
    # strict JSON on disk: no NaN/Infinity tokens another reader would choke on
    raw = _raw(log.path).execute("SELECT detail FROM events WHERE id = ?", (a,)).fetchone()[0]
    assert json.loads(raw, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_as_dict_is_json_ready(log: EventLog) -> None:
    log.record("setpoint", T0 + 0.25, cushion=0, actor="dashboard", detail={"to": 38.5})
    (ev,) = log.events()
    d = json.loads(json.dumps(ev.as_dict()))
    assert d == {"id": ev.id, "time": T0 + 0.25, "iso": "2027-01-15T08:00:00.250Z",
                 "kind": "setpoint", "cushion": 0, "actor": "dashboard", "reason": None,
                 "detail": {"to": 38.5}}
    assert datetime.fromisoformat(d["iso"]).timestamp() == T0 + 0.25


def test_filters(log: EventLog) -> None:
    ids = {}
    for i, (kind, cushion) in enumerate([("heat", 0), ("heat", 1), ("trip", 0), ("alarm", 1),
                                         ("trip_reset", 0), ("setpoint", None)]):
        ids[i] = log.record(kind, T0 + 10 * i, cushion=cushion)

    def got(**kw):
        return [e.id for e in log.events(**kw)]

    assert got() == [ids[i] for i in range(6)]
    assert got(since=T0 + 20) == [ids[2], ids[3], ids[4], ids[5]]  # since is inclusive
    assert got(until=T0 + 20) == [ids[0], ids[1]]  # until is exclusive
    assert got(since=T0 + 10, until=T0 + 40) == [ids[1], ids[2], ids[3]]
    assert got(kinds=["trip", "trip_reset"]) == [ids[2], ids[4]]
    assert got(kinds="heat") == [ids[0], ids[1]]
    assert got(kinds=[]) == []
    assert got(cushion=1) == [ids[1], ids[3]]
    assert got(cushion=0, kinds={"heat", "trip"}) == [ids[0], ids[2]]
    assert got(limit=2) == [ids[4], ids[5]]  # the newest two, oldest first
    assert got(limit=0) == []
    assert got(since=T0 + 10, limit=10) == [ids[i] for i in range(1, 6)]
    with pytest.raises(ValueError, match="trpi"):
        log.events(kinds=["trpi"])
    with pytest.raises(ValueError):
        log.events(limit=-1)


def test_events_ordered_by_time_not_insertion(log: EventLog) -> None:
    late = log.record("heat", T0 + 5)
    early = log.record("heat", T0 + 1)
    assert [e.id for e in log.events()] == [early, late]


def test_unknown_kind_refused_and_nothing_written(log: EventLog) -> None:
    with pytest.raises(ValueError, match="unknown event kind 'explode'"):
        log.record("explode", T0)
    assert log.events() == []
    assert "trip" in EVENT_KINDS and "events_dropped" in EVENT_KINDS and len(EVENT_KINDS) == 19


@pytest.mark.parametrize("kwargs", [
    {"time": math.nan}, {"time": math.inf}, {"time": "soon"},
    {"cushion": "1"}, {"cushion": True}, {"detail": ["not", "a", "dict"]},
])
def test_bad_arguments_refused(log: EventLog, kwargs) -> None:
    args = {"kind": "heat", "time": T0, **kwargs}
    with pytest.raises((TypeError, ValueError)):
        log.record(**args)
    assert log.events() == []


def test_file_schema_reopen_close(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "events.sqlite3"
    lg = EventLog(path)
    eid = lg.record("controller_start", T0, actor="cli")
    lg.close()
    lg.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        lg.record("controller_stop", T0)
    con = _raw(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()
    with EventLog(path) as again:
        assert [e.id for e in again.events()] == [eid]
        assert again.record("controller_stop", T0 + 1) > eid


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    EventLog(path).close()
    con = _raw(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(RuntimeError, match="newer"):
        EventLog(path)


@pytest.mark.parametrize("where", [None, ":memory:"])
def test_in_memory(where) -> None:
    with EventLog(where) as lg:
        assert lg.path is None
        eid = lg.record("heat", T0, cushion=0)
        assert [e.id for e in lg.events()] == [eid]
    with EventLog(where) as fresh:  # private: nothing shared between instances
        assert fresh.events() == []


def test_open_default(tmp_path: Path) -> None:
    with open_default(tmp_path / "data") as lg:
        assert lg.path == tmp_path / "data" / "events.sqlite3"
        lg.record("heat", T0)
    assert (tmp_path / "data" / "events.sqlite3").is_file()


def test_retention_parameters_checked() -> None:
    with pytest.raises(ValueError):
        EventLog(None, history_fine_s=0)
    with pytest.raises(ValueError):
        EventLog(None, history_coarse_s=math.nan)
    lg = EventLog(None)
    assert (lg.history_fine_s, lg.history_coarse_s) == (86400, 90 * 86400)


# --- history --------------------------------------------------------------------------------


def _feed(lg: EventLog, seconds, cushion=0, water=lambda s: 30.0 + s / 100, offset=0.25):
    """One sample per second at T0 + s + offset; returns {second: water} as fed."""
    fed = {}
    for s in seconds:
        w = water(s)
        lg.record_sample(T0 + s + offset, cushion, w, 36.0 + (s // 60) / 10, (s % 4) / 4)
        fed[s] = w
    return fed


def _expect_minute(fed: dict, minute_s: int):
    """Mean/min/max water and mean setpoint/output of one fed minute (T0-relative)."""
    secs = [s for s in fed if minute_s <= s < minute_s + 60]
    waters = [fed[s] for s in secs if fed[s] is not None and math.isfinite(fed[s])]
    return (sum(waters) / len(waters), min(waters), max(waters),
            36.0 + (minute_s // 60) / 10, sum((s % 4) / 4 for s in secs) / len(secs))


def _check_coarse(sample: Sample, fed: dict) -> None:
    minute = int(sample.time - T0)
    mean, lo, hi, sp, out = _expect_minute(fed, minute)
    assert sample.resolution_s == 60 and minute % 60 == 0
    assert sample.water_c == pytest.approx(mean)
    assert (sample.water_min_c, sample.water_max_c) == (pytest.approx(lo), pytest.approx(hi))
    assert sample.setpoint_c == pytest.approx(sp)
    assert sample.output == pytest.approx(out)


def test_history_one_second_rows_at_most_one_per_second() -> None:
    lg = EventLog(None)
    for q in range(90 * 4):  # 4 Hz for 90 s, both cushions
        t = T0 + q / 4
        lg.record_sample(t, 0, 30 + q, 37.0, 0.5)
        lg.record_sample(t, 1, math.nan if q % 8 == 0 else 20 + q, None, None)
    rows = lg.history(0, T0)
    assert [r.time for r in rows] == [T0 + s for s in range(90)]  # first sample of each second
    assert [r.water_c for r in rows] == [30 + 4 * s for s in range(90)]
    assert all(r.resolution_s == 1 and r.setpoint_c == 37.0 and r.output == 0.5 for r in rows)
    assert rows[3].water_min_c == rows[3].water_max_c == rows[3].water_c
    other = lg.history(1, T0)
    assert [r.water_c for r in other[:3]] == [None, 24, None]  # NaN stored as missing
    assert other[0].setpoint_c is None and other[0].output is None
    window = lg.history(0, T0 + 10, T0 + 20)  # since inclusive, until exclusive
    assert [r.time for r in window] == [T0 + s for s in range(10, 20)]
    assert lg.history(0, T0 + 10.5, T0 + 12) == [window[1]]
    assert lg.history(2, T0) == []


def test_minute_aggregates_and_pruning_small_retention() -> None:
    fine_s, coarse_s = 120, 600
    lg = EventLog(None, history_fine_s=fine_s, history_coarse_s=coarse_s)
    fed = _feed(lg, range(900), water=lambda s: None if s % 17 == 0 else 30 + (s * 7 % 60) / 10)
    newest = T0 + 899.25
    rows = lg.history(0, 0)
    coarse = [r for r in rows if r.resolution_s == 60]
    fine = [r for r in rows if r.resolution_s == 1]
    assert rows == coarse + fine and coarse and fine
    # 1 s rows: none much older than the retention, none missing within it
    slack = 60 + 60  # pruning runs once a minute, at whole minutes
    assert min(r.time for r in fine) >= newest - fine_s - slack
    assert {int(r.time - T0) for r in fine} >= set(range(900 - fine_s, 900))
    # 1-minute rows: old ones gone, the rest contiguous up to the 1 s rows, values right
    assert min(r.time for r in coarse) >= newest - coarse_s - slack
    assert min(r.time for r in coarse) <= newest - coarse_s + 60
    assert [r.time for r in coarse] == list(range(int(coarse[0].time), int(fine[0].time), 60))
    for r in coarse:
        _check_coarse(r, fed)


def test_default_retention_with_time_jumps(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    lg = EventLog(path)
    block_a = _feed(lg, range(180))
    assert len(lg.history(0, T0)) == 180
    b0 = DAY + 600
    block_b = _feed(lg, range(b0, b0 + 180))
    con = _raw(path)
    # block A's 1 s rows are gone from the file, its minutes remain
    assert con.execute("SELECT count(*) FROM history_second WHERE second < ?",
                       (T0 + DAY,)).fetchone()[0] == 0
    old = lg.history(0, T0, T0 + 180)
    assert [r.time for r in old] == [T0, T0 + 60, T0 + 120]
    for r in old:
        _check_coarse(r, block_a)
    recent = lg.history(0, T0 + b0)
    assert len(recent) == 180 and all(r.resolution_s == 1 for r in recent)
    everything = lg.history(0, T0)
    assert everything == old + recent
    # 91 days on: block A's minutes are past 90 days, block B's are not
    c0 = 91 * DAY
    _feed(lg, range(c0, c0 + 120))
    assert con.execute("SELECT count(*) FROM history_minute WHERE minute < ?",
                       (T0 + DAY,)).fetchone()[0] == 0
    rows = lg.history(0, T0)
    assert [r.time for r in rows[:3]] == [T0 + b0, T0 + b0 + 60, T0 + b0 + 120]
    for r in rows[:3]:
        _check_coarse(r, block_b)
    assert len(rows) == 3 + 120 and all(r.resolution_s == 1 for r in rows[3:])
    lg.close()
    con.close()


def test_cushion_that_stops_reporting_is_rolled_before_pruning() -> None:
    lg = EventLog(None, history_fine_s=120, history_coarse_s=3600)
    fed1 = _feed(lg, range(10, 40), cushion=1)  # reports for 30 s, then never again
    _feed(lg, range(10, 600), cushion=0)
    rows = lg.history(1, T0)
    assert len(rows) == 1
    _check_coarse(rows[0], fed1)


def test_restart_aggregates_the_interrupted_minute(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    lg = EventLog(path)
    fed = _feed(lg, range(0, 100))  # minute 0 rolled, minute 1 (40 s) still open
    lg.close()
    con = _raw(path)

    def minutes():
        return [r[0] - T0 for r in con.execute(
            "SELECT minute FROM history_minute WHERE cushion = 0 ORDER BY minute")]

    assert minutes() == [0]
    with EventLog(path) as again:
        again.record_sample(T0 + 100.25, 0, 99.0, 36.0, 0.0)  # same minute: nothing to roll
        fed[100] = 99.0
        assert minutes() == [0]
        again.record_sample(T0 + 100.5, 0, 1.0, 36.0, 0.0)  # same second: dropped
        again.record_sample(T0 + 200.25, 0, 40.0, 36.0, 0.0)
        assert minutes() == [0, 60]
        row = con.execute("SELECT n, water_mean, water_max FROM history_minute "
                          "WHERE cushion = 0 AND minute = ?", (T0 + 60,)).fetchone()
        assert row[0] == 41
        assert row[1] == pytest.approx(_expect_minute(fed, 60)[0])
        assert row[2] == 99.0
    con.close()


def test_late_sample_re_aggregates_and_stale_sample_ignored(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    lg = EventLog(path, history_fine_s=600)
    fed = _feed(lg, [s for s in range(0, 130) if s != 30])
    con = _raw(path)
    query = "SELECT n, water_max FROM history_minute WHERE minute = ?"
    assert con.execute(query, (T0,)).fetchone() == (59, pytest.approx(30.59))
    lg.record_sample(T0 + 30.5, 0, 50.0, 36.0, 0.5)  # the clock stepped back
    assert con.execute(query, (T0,)).fetchone() == (60, 50.0)
    fed[30] = 50.0
    _feed(lg, range(130, 800))
    before = lg.history(0, 0)
    lg.record_sample(T0 + 100.25, 0, 99.0, 36.0, 0.0)  # older than the 1 s retention
    assert lg.history(0, 0) == before
    _check_coarse(before[0], fed)
    con.close()
    lg.close()


@pytest.mark.parametrize("args", [(-1.0, 0), (math.nan, 0), (T0, -1), (T0, True), (T0, 0.0)])
def test_record_sample_refuses_bad_arguments(args) -> None:
    lg = EventLog(None)
    with pytest.raises((TypeError, ValueError)):
        lg.record_sample(args[0], args[1], 30.0, 37.0, 0.5)


# --- crash safety and concurrency -----------------------------------------------------------

_WRITER = r"""
import sys
from controller.eventlog import EventLog
log = EventLog(sys.argv[1])
i = int(sys.argv[2])
while True:
    eid = log.record("heat", float(i), cushion=i % 2, actor="kill-test",
                     detail={"i": i, "pad": "x" * 300})
    log.record_sample(float(i), 0, 30.0 + (i % 100) / 10, 37.0, 0.5)
    sys.stdout.write(f"{eid}\n")
    sys.stdout.flush()
    i += 1
"""


def test_kill_never_loses_a_returned_event(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    rng = random.Random(7)
    printed: list[int] = []
    start = T0
    for reads in (1, 3, 25, 120):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(start)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        try:
            for _ in range(reads):
                line = proc.stdout.readline()
                assert line.endswith("\n"), "writer died early"
                printed.append(int(line))
            time.sleep(rng.uniform(0, 0.004))  # land the kill anywhere in a write
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        rest = proc.stdout.read()
        proc.stdout.close()
        printed.extend(int(x) for x in rest.splitlines(keepends=True) if x.endswith("\n"))
        con = _raw(path)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        present = {r[0] for r in con.execute("SELECT id FROM events")}
        con.close()
        assert set(printed) <= present, sorted(set(printed) - present)
        start += 10_000
    with EventLog(path) as lg:  # and the log carries on after the kills
        assert {e.id for e in lg.events()} >= set(printed)
        assert lg.record("controller_start", start) > max(printed)
        lg.record_sample(start, 0, 30.0, 37.0, 0.0)
        assert lg.history(0, start) != []


_SNAPSHOT_READER = r"""
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
con.execute("BEGIN")
print(con.execute("SELECT count(*) FROM events").fetchone()[0], flush=True)
sys.stdin.readline()
print(con.execute("SELECT count(*) FROM events").fetchone()[0], flush=True)
con.execute("COMMIT")
print(con.execute("SELECT count(*) FROM events").fetchone()[0], flush=True)
"""


def test_reader_process_does_not_block_the_writer(log: EventLog) -> None:
    for i in range(3):
        log.record("heat", T0 + i)
    proc = subprocess.Popen([sys.executable, "-c", _SNAPSHOT_READER, str(log.path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline() == "3\n"  # the reader now holds a read transaction
        slowest = 0.0
        for i in range(50):
            t = time.perf_counter()
            log.record("heat", T0 + 10 + i)
            log.record_sample(T0 + 10 + i, 0, 35.0, 37.0, 1.0)
            slowest = max(slowest, time.perf_counter() - t)
        assert slowest < 1.0
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "3\n"  # its snapshot is consistent
        assert proc.stdout.readline() == "53\n"  # and a new one sees every write
    finally:
        proc.kill()
        proc.wait(timeout=10)


_POLLING_READER = r"""
import json, sys
from controller.eventlog import EventLog
log = EventLog(sys.argv[1])
target = int(sys.argv[2])
print("ready", flush=True)
counts = []
while not counts or counts[-1] < target:
    counts.append(len(log.events()))
    log.history(0, 0)
print(json.dumps(counts), flush=True)
log.close()
"""


def test_reader_process_polls_while_writer_writes(log: EventLog) -> None:
    log.record("controller_start", T0)
    n = 150
    proc = subprocess.Popen([sys.executable, "-c", _POLLING_READER, str(log.path), str(n + 1)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        for i in range(n):
            log.record("heat", T0 + 1 + i, cushion=i % 2)
            log.record_sample(T0 + 1 + i, 0, 35.0, 37.0, 1.0)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    counts = json.loads(out)
    assert counts == sorted(counts) and counts[-1] == n + 1
    assert len(set(counts)) > 2  # it really read while the writes went on


def test_threads_share_one_log() -> None:
    lg = EventLog(None)
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                lg.events(kinds=["heat"])
                lg.history(0, T0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(300):
        lg.record("heat", T0 + i, cushion=0)
        lg.record_sample(T0 + i, 0, 30.0, 37.0, 0.5)
    done.set()
    for t in threads:
        t.join(timeout=10)
    assert errors == []
    assert len(lg.events()) == 300 and len(lg.history(0, T0)) == 300


# --- CLI helpers ----------------------------------------------------------------------------

NOW = 1_764_144_000.0  # 2025-11-26T08:00:00Z


@pytest.mark.parametrize("text, expected", [
    ("90s", NOW - 90), ("15m", NOW - 900), ("2h", NOW - 7200), ("3d", NOW - 3 * DAY),
    (" 1.5h ", NOW - 5400), ("0s", NOW),
    ("2026-11-26", datetime(2026, 11, 26, tzinfo=UTC).timestamp()),
    ("2026-11-26T08:00", datetime(2026, 11, 26, 8, tzinfo=UTC).timestamp()),
    ("2026-11-26T08:00Z", datetime(2026, 11, 26, 8, tzinfo=UTC).timestamp()),
    ("2026-11-26T08:00:30+02:00", datetime(2026, 11, 26, 6, 0, 30, tzinfo=UTC).timestamp()),
    ("2026-11-26 08:00:00.5", datetime(2026, 11, 26, 8, 0, 0, 500000, tzinfo=UTC).timestamp()),
    ("1764144000", 1764144000.0), ("1764144000.25", 1764144000.25),
])
def test_parse_since_forms(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "yesterday", "15x", "-5m", "5 minutes", "2026-13-01",
                                  "nan", "1e9", "m15", "2026-11-26T25:00"])
def test_parse_since_refuses_junk(text: str) -> None:
    with pytest.raises(ValueError, match="cannot read .* as a time"):
        parse_since(text, NOW)


def _sample_events() -> list[Event]:
    return [
        Event(1, T0, "controller_start", None, None, None, {}),
        Event(2, T0 + 1.5, "trip", 1, "supervisor", "over_temperature",
              {"water_c": 41.2, "sensor": "primary", "note": "two words"}),
        Event(12, T0 + 60, "setpoint", 0, "dashboard", "line\nbreak", {"to": 38.5}),
    ]


def test_format_events_text() -> None:
    lines = format_events(_sample_events(), as_json=False).split("\n")
    assert len(lines) == 3
    assert lines[0].split() == ["2027-01-15T08:00:00.000Z", "controller_start", "-", "-", "-"]
    assert lines[1].split("  ")[0] == "2027-01-15T08:00:01.500Z"
    assert lines[1].split() == ["2027-01-15T08:00:01.500Z", "trip", "1", "supervisor",
                                "over_temperature", "water_c=41.2", "sensor=primary",
                                'note="two', 'words"']
    assert "line\\x0abreak" in lines[2] and lines[2].endswith("to=38.5")
    # aligned: every column starts at the same place on every line
    for word in ("trip", "supervisor", "over_temperature"):
        col = lines[1].index(word)
        assert lines[0][col - 2:col] == "  " and lines[2][col - 2:col] == "  "
        assert lines[0][col] != " " and lines[2][col] != " "
    assert format_events([], as_json=False) == ""


def test_format_events_json() -> None:
    evs = _sample_events()
    data = json.loads(format_events(evs, as_json=True))
    assert data == [e.as_dict() for e in evs]
    assert data[1]["iso"] == "2027-01-15T08:00:01.500Z" and data[1]["cushion"] == 1
    assert json.loads(format_events([], as_json=True)) == []
