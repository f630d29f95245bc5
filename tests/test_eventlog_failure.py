"""Issue 9 part 4: the event log's own failures are events.

The failures are SQLite's own: "database or disk is full" (SQLITE_FULL), caused by capping
the file with the ``max_page_count`` pragma ("space returns": the cap is lifted), and
"attempt to write a readonly database" (SQLITE_READONLY) with the ``query_only`` pragma:
the error paths a full or read-only disk takes, without root.  (The end-to-end test, with
the operating system refusing the writes (RLIMIT_FSIZE) and a real broker, is in
``test_eventlog_failure_mqtt.py``.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.eventbuffer import EventBuffer
from controller.eventlog import EventLog
from controller.service import LOG_ALARM, Controller
from hydrotherm.config import from_mapping
from sim.harness import InProcessHarness

T0 = 1_790_000_000.0
BIG = "x" * 6000  # bigger than a page: every such row needs new pages


def cap(log: EventLog, pages: int | None = None) -> None:
    """No more pages than the file has now (so the next row that needs a page fails),
    or ``pages`` (a large number lifts the cap)."""
    db = log._conn()
    if pages is None:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def uncap(log: EventLog) -> None:
    cap(log, 1_000_000)


def read_only(log: EventLog, on: bool) -> None:
    """SQLite's own read-only refusal (SQLITE_READONLY, what a disk remounted read-only
    gives), switched on and off for this connection: every write fails, small or big."""
    log._conn().execute(f"PRAGMA query_only = {int(on)}")


@pytest.fixture
def log(tmp_path: Path) -> EventLog:
    with EventLog(tmp_path / "events.sqlite3") as lg:
        yield lg


def test_the_cap_really_makes_sqlite_refuse(log: EventLog) -> None:
    import sqlite3

    cap(log)
    with pytest.raises(sqlite3.OperationalError, match="full"):
        log.record("setpoint", T0, detail={"pad": BIG})
    uncap(log)
    log.record("setpoint", T0, detail={"pad": BIG})


def test_rows_wait_in_order_and_are_all_written_when_space_returns(log: EventLog) -> None:
    buf = EventBuffer(log)
    assert buf.record("controller_start", T0) is not None and buf.writable
    cap(log)
    for i in range(20):
        assert buf.record("setpoint", T0 + 1 + i, cushion=i % 2, actor="t",
                          detail={"to": 30 + i, "pad": BIG}) is None
    assert not buf.writable and buf.queued == 20 and "full" in buf.error
    buf.retry(0.0)
    assert buf.queued == 20  # still full: nothing lost, nothing written
    uncap(log)
    row_id = buf.record("heat", T0 + 50, cushion=0, actor="t", detail={"to": True})
    assert row_id is not None and buf.writable and buf.queued == 0
    events = log.events()
    assert [e.kind for e in events] == ["controller_start"] + ["setpoint"] * 20 + ["heat"]
    assert [e.detail.get("to") for e in events[1:21]] == list(range(30, 50))
    assert [e.time for e in events] == sorted(e.time for e in events)  # their own times
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert buf.written_late == 21 and buf.dropped == 0


def test_retry_alone_writes_the_waiting_rows(log: EventLog) -> None:
    buf = EventBuffer(log, retry_s=1.0)
    cap(log)
    buf.record("trip", T0, cushion=0, reason="over_temperature", detail={"pad": BIG})
    assert buf.queued == 1
    uncap(log)
    buf.retry(10.0)
    assert buf.writable and [e.reason for e in log.events()] == ["over_temperature"]


def test_a_full_queue_drops_the_oldest_non_trip_rows_and_counts_them(log: EventLog) -> None:
    buf = EventBuffer(log, max_rows=5)
    cap(log)
    kinds = ["setpoint", "trip", "setpoint", "heat", "board_fault", "setpoint", "alarm",
             "setpoint", "trip", "setpoint", "setpoint", "heat"]
    for i, kind in enumerate(kinds):
        buf.record(kind, T0 + i, cushion=0, reason=f"r{i}", detail={"i": i, "pad": BIG})
    trips = [i for i, k in enumerate(kinds) if k in ("trip", "board_fault")]
    assert buf.queued == 5 and buf.dropped == len(kinds) - 5
    uncap(log)
    buf.retry(0.0)
    assert buf.writable
    events = log.events()
    written = [e.detail["i"] for e in events if "i" in e.detail]
    assert all(i in written for i in trips)  # trips never dropped
    assert written == sorted(written)
    gaps = [e for e in events if e.kind == "events_dropped"]
    # (a small gap row may fit where the big rows do not, so there can be several)
    assert gaps and sum(g.detail["count"] for g in gaps) == buf.dropped
    assert buf.dropped == len(kinds) - len(written)
    dropped = sorted(set(range(len(kinds))) - set(written))
    for g in gaps:
        assert "trip" not in g.detail["kinds"] and "board_fault" not in g.detail["kinds"]
        assert sum(g.detail["kinds"].values()) == g.detail["count"]
        assert g.reason.startswith(f"{g.detail['count']} event")
        assert g.time - T0 in dropped  # it stands where its first dropped row stood
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_only_trips_may_exceed_the_bound(log: EventLog) -> None:
    buf = EventBuffer(log, max_rows=2)
    cap(log)
    for i in range(5):
        buf.record("trip", T0 + i, cushion=0, reason="over_temperature",
                   detail={"pad": BIG})
    assert buf.queued == 5 and buf.dropped == 0
    uncap(log)
    buf.retry(0.0)
    assert len(log.events(kinds=["trip"])) == 5


def test_a_malformed_event_is_refused_not_queued(log: EventLog) -> None:
    buf = EventBuffer(log)
    cap(log)
    buf.record("setpoint", T0, detail={"pad": BIG})
    with pytest.raises(ValueError, match="unknown event kind"):
        buf.record("explode", T0 + 1)
    assert buf.queued == 1
    uncap(log)
    buf.retry(0.0)
    assert buf.writable and [e.kind for e in log.events()] == ["setpoint"]


def test_close_hands_back_what_could_not_be_written(log: EventLog) -> None:
    buf = EventBuffer(log)
    cap(log)
    buf.record("trip", T0, cushion=1, reason="sensor_open", detail={"pad": BIG})
    left = buf.close()
    assert [(r["kind"], r["reason"], r["cushion"]) for r in left] == [
        ("trip", "sensor_open", 1)]


# --- the controller: alarm, heating on, nothing lost ------------------------------------------

STEP = 0.2


class Rig:
    def __init__(self, path: Path) -> None:
        cfg = from_mapping({"plant": {"initial_water_c": 30.0}})
        self.h = InProcessHarness(cfg, seed=3, step_s=STEP)
        self.log = EventLog(path)
        self.c = Controller(cfg, self.h.link, self.h.clock, log=self.log)
        self.published: list[dict] = []
        self.c.listeners.append(self.published.append)
        for i in range(2):
            self.c.set_heat(i, True, "test")
        self.c.start()

    def run(self, seconds: float) -> None:
        end = self.h.clock.now() + seconds
        while self.h.clock.now() < end - 1e-9:
            self.h.clock.advance(STEP)
            self.h.table.poll()
            self.c.poll()

    def alarms(self) -> list[list[str]]:
        return [[a["name"] for a in c["alarms"]] for c in self.c.snapshot()["cushions"]]

    def log_events(self, kind: str) -> list[dict]:
        return [e for e in self.published if e.get("type") == "event" and e["kind"] == kind
                and e["reason"] == LOG_ALARM]


def test_controller_raises_the_alarm_keeps_heating_and_loses_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "events.sqlite3")
    rig.run(20.0)
    assert rig.h.table.plant.power_w == [300.0, 300.0]
    assert rig.alarms() == [[], []]
    read_only(rig.log, True)
    # A person's commands while the disk is full: each is an event that must not be lost.
    values = [31.0, 32.5, 33.0, 34.2, 35.0]
    for i, v in enumerate(values):
        rig.c.set_setpoint(i % 2, v, f"therapist-{i}")
        if i == 0:
            # raised by the first failed write itself, before any further poll
            assert rig.alarms() == [[LOG_ALARM], [LOG_ALARM]]
            assert len(rig.log_events("alarm")) == 1
        rig.run(1.0)
    snap = rig.c.snapshot()
    assert snap["event_log"]["writable"] is False and snap["event_log"]["queued"] >= 5
    assert "readonly" in snap["event_log"]["error"]
    detail = snap["cushions"][0]["alarms"][0]["detail"]
    assert "cannot be written" in detail and "wait in memory" in detail
    rig.run(60.0)
    # Heating is not stopped by a log failure.
    assert not rig.c.supervisor.trips and rig.h.link.healthy
    assert rig.h.table.plant.power_w == [300.0, 300.0]
    assert rig.h.table.board.relay_closed
    assert rig.alarms() == [[LOG_ALARM], [LOG_ALARM]]  # stays while anything waits
    assert len(rig.log_events("alarm")) == 1 and not rig.log_events("alarm_cleared")
    assert snap["event_log"]["samples_lost"] > 0 or rig.c.events.samples_lost > 0
    read_only(rig.log, False)
    rig.run(2.0)  # the next retry or history sample writes the queue
    assert rig.alarms() == [[], []]
    assert len(rig.log_events("alarm_cleared")) == 1
    assert rig.c.snapshot()["event_log"] == {"writable": True, "queued": 0, "dropped": 0,
                                             "samples_lost": rig.c.events.samples_lost,
                                             "error": ""}
    events = rig.log.events()
    setpoints = [(e.actor, e.detail["to"]) for e in events if e.kind == "setpoint"]
    assert setpoints == [(f"therapist-{i}", v) for i, v in enumerate(values)]
    kinds = [e.kind for e in events]
    alarm_at = kinds.index("alarm")
    assert kinds.index("alarm_cleared") > alarm_at
    assert events[alarm_at].reason == LOG_ALARM
    # the alarm row follows the first setpoint that could not be written, in time order
    assert [e.time for e in events] == sorted(e.time for e in events)
    rig.c.stop()


def test_a_trip_while_the_log_is_read_only_reaches_the_log_later(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "events.sqlite3")
    rig.run(10.0)
    read_only(rig.log, True)
    rig.h.table.inject("sensor_open", cushion=1, sensor="primary")
    rig.run(3.0)
    assert [t.reason for t in rig.c.supervisor.trips] == ["sensor_open"]
    assert rig.log.events(kinds=["trip"]) == []  # not yet: the disk refuses
    assert rig.alarms() == [[LOG_ALARM], [LOG_ALARM]]
    read_only(rig.log, False)
    rig.run(2.0)
    trips = rig.log.events(kinds=["trip"])
    assert [(t.reason, t.cushion) for t in trips] == [("sensor_open", 1)]
    assert rig.alarms() == [[], []]
    rig.c.stop()


def test_the_dashboard_says_it_in_words(tmp_path: Path) -> None:
    """The state the controller publishes, presented as the dashboard shows it."""
    from dashboard.present import describe_event, present_cushion

    rig = Rig(tmp_path / "events.sqlite3")
    rig.run(5.0)
    read_only(rig.log, True)
    rig.c.set_setpoint(0, 36.0, "therapist")
    cfg = rig.c.cfg
    for c in rig.c.snapshot()["cushions"]:
        shown = present_cushion(cfg, c, usable=True)["alarms"]
        assert [a["name"] for a in shown] == [LOG_ALARM]
        assert "event log cannot be written" in shown[0]["text"]
        assert "Heating goes on" in shown[0]["text"]
    text = describe_event(cfg, {"kind": "events_dropped", "detail": {"count": 12}})
    assert "12" in text and "could not be written" in text
    read_only(rig.log, False)
    rig.c.stop()
