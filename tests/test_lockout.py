"""What a controller reads back from its event log at start (``controller/lockout.py``):
the service lockouts still in force, and how the previous run ended."""

from __future__ import annotations

from pathlib import Path

from controller.eventlog import EventLog
from controller.lockout import open_lockouts, previous_run_note


def test_open_lockouts_are_service_trips_not_reset_since(tmp_path: Path) -> None:
    with EventLog(tmp_path / "events.sqlite3") as log:
        assert open_lockouts(log) == []
        log.record("trip", 100.0, cushion=1, reason="rise_while_off",
                   detail={"detail": "welded relay?", "service": "a relay may be welded"})
        log.record("trip", 101.0, reason="stale_telemetry", detail={"detail": "no report"})
        log.record("trip", 102.0, reason="board_fault",
                   detail={"detail": "CUTOUT_0", "flags": ["cutout_0"], "flags_bits": 64,
                           "service": "a cut-out opened"})
        got = {(x.reason, x.cushion): x for x in open_lockouts(log)}
        assert set(got) == {("rise_while_off", 1), ("board_fault", None)}
        assert got[("board_fault", None)].flags == 64
        assert got[("rise_while_off", 1)].detail == "welded relay?"
        log.record("trip_reset", 103.0, cushion=1, actor="service:Sam", reason="rise_while_off",
                   detail={"detail": "service reset: SSR replaced"})
        assert [x.reason for x in open_lockouts(log)] == ["board_fault"]
        # a therapist's refused reset changes nothing; a later trip opens it again
        log.record("reset_refused", 104.0, reason="board_fault", actor="mqtt:nurse",
                   detail={"detail": "only a service person may reset this"})
        log.record("trip_reset", 105.0, reason="board_fault", actor="service:Sam",
                   detail={"detail": "service reset: plate refilled"})
        assert open_lockouts(log) == []


def test_previous_run_note_says_how_it_ended(tmp_path: Path) -> None:
    with EventLog(tmp_path / "events.sqlite3") as log:
        assert previous_run_note(log, 1000.0) == ""
        log.record("controller_start", 1000.0)
        log.record_sample(1010.0, 0, 37.0, 37.0, 0.5)
        log.record_sample(1050.0, 0, 37.0, 37.0, 0.5)  # killed after this one
        assert log.newest_sample_time() == 1050.0
        note = previous_run_note(log, 1170.0)
        assert "without a clean stop" in note and "2.0 min before this start" in note
        log.record("controller_start", 2000.0)
        log.record("controller_stop", 2030.0)
        note = previous_run_note(log, 2060.0)
        assert "stopped cleanly" in note and "30 s before this start" in note
