"""``hydrotherm schedule`` as a person runs it: the installed command in a subprocess,
against a data directory with no controller (it writes ``schedule.json`` itself) and
against a running controller (the change goes through its service socket to the same
``ScheduleRunner.update`` an MQTT edit uses, and is published in the table's state).

The running stack is the real one in-process: embedded broker, a simulated board on a
pty, the controller with its event log and a ``ScheduleRunner`` keeping its schedule in
the data directory, the service socket, the bridge and the dashboard's FleetClient."""

from __future__ import annotations

import getpass
import json
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.eventlog import EventLog
from controller.schedule import ScheduleRunner, ScheduleStore, SystemLocalTime
from controller.schedule.store import SCHEDULE_FILE
from controller.service_socket import SOCKET_NAME, ServiceSocket
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping
from tests.test_cli import run

pytestmark = pytest.mark.timeout(180)

ACTOR = f"cli:{getpass.getuser()}"


def _in_hours(h: float) -> str:
    t = datetime.now() + timedelta(hours=h)
    return f"{t.hour:02d}:{t.minute:02d}"


def _stored(d: Path) -> Any:
    return json.loads((d / SCHEDULE_FILE).read_text())


def _refused(res: Any, words: str) -> None:
    """Bad input: exit 2, one line on stderr naming the problem, nothing on stdout."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hydrotherm: "), res.stderr
    assert words in lines[0], lines[0]
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_edits_the_stored_file_when_no_controller_runs(tmp_path: Path) -> None:
    d = tmp_path / "table"
    d.mkdir()
    EventLog(d / "events.sqlite3").close()
    at = ["--data-dir", str(d)]
    res = run("schedule", "show", *at)
    assert res.returncode == 0, res.stderr
    assert "no ready times" in res.stdout and "no controller running" in res.stdout
    res = run("schedule", "add", "--ready-at", "08:45", "--setpoint", "37", "--days",
              "weekdays", "--until", "18:00", "--standby", "34", *at)
    assert res.returncode == 0, res.stderr
    assert "1. weekdays 08:45 both cushions 37.0 °C, until 18:00 then standby 34.0 °C" \
        in res.stdout
    res = run("schedule", "set", "--ready-at", "09:30", "--setpoint", "36.5", "--cushion",
              "lower", "--days", "sat", *at)
    assert res.returncode == 0, res.stderr
    assert _stored(d) == {"enabled": True, "entries": [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "ready_at": "08:45", "setpoint_c": 37.0,
         "cushion": None, "until": "18:00", "standby_c": 34.0},
        {"days": ["sat"], "ready_at": "09:30", "setpoint_c": 36.5, "cushion": 1}]}
    before = (d / SCHEDULE_FILE).read_text()
    # bad input: one line, exit 2, the file untouched
    for args, words in [
        (["add", "--ready-at", "8:45", "--setpoint", "37"], "the new entry's ready_at must be"),
        (["add", "--ready-at", "08:45", "--setpoint", "41"], "outside 30-40 °C"),
        (["add", "--ready-at", "10:00", "--setpoint", "37", "--days", "mon,xyz"],
         "'xyz' is not a day"),
        (["add", "--ready-at", "10:00", "--setpoint", "37", "--standby", "34"],
         "standby_c needs until"),
        (["add", "--ready-at", "08:45", "--setpoint", "36", "--days", "tue"],
         "the new entry repeats entry 1: cushion 0 on tue at 08:45"),
        (["remove", "3"], "no entry 3: the schedule has 2"),
        (["remove", "0"], "no entry 0"),
    ]:
        _refused(run("schedule", *args, *at), words)
    assert (d / SCHEDULE_FILE).read_text() == before
    res = run("schedule", "add", "--ready-at", "10:00", "--setpoint", "37", "--cushion",
              "sideways", *at)
    assert res.returncode == 2 and "invalid choice" in res.stderr  # argparse's own
    _refused(run("schedule", "show", "--data-dir", str(tmp_path / "nowhere")),
             "no data directory")
    # the configuration's setpoint range is the one applied
    cfg = tmp_path / "c.toml"
    cfg.write_text("[control]\nsetpoint_max_c = 38.0\n")
    _refused(run("--config", str(cfg), "schedule", "add", "--ready-at", "11:00",
                 "--setpoint", "39", *at), "outside 30-38 °C")
    # remove, off, show --json, clear
    res = run("schedule", "remove", "1", *at)
    assert res.returncode == 0 and "Removed: weekdays 08:45" in res.stdout, res.stderr
    assert [e["ready_at"] for e in _stored(d)["entries"]] == ["09:30"]
    assert run("schedule", "off", *at).returncode == 0
    shown = json.loads(run("schedule", "show", "--json", *at).stdout)
    assert shown["controller_running"] is False and shown["plan"] is None
    assert shown["schedule"]["enabled"] is False and len(shown["schedule"]["entries"]) == 1
    res = run("schedule", "clear", "--json", *at)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["schedule"] == {"enabled": False, "entries": []}
    assert _stored(d) == {"enabled": False, "entries": []}
    # each change is in the table's event log, with the account that made it
    log = EventLog(d / "events.sqlite3")
    try:
        ev = log.events(kinds=["schedule"])
    finally:
        log.close()
    assert [(e.actor, e.detail["entries"], e.detail["enabled"]) for e in ev] == [
        (ACTOR, 1, True), (ACTOR, 2, True), (ACTOR, 1, True), (ACTOR, 1, False),
        (ACTOR, 0, False)]


def test_a_stored_file_the_controller_would_refuse_is_named(tmp_path: Path) -> None:
    (tmp_path / SCHEDULE_FILE).write_text('{"entries": [{"ready_at": "8"}]}')
    _refused(run("schedule", "add", "--ready-at", "08:45", "--setpoint", "37",
                 "--data-dir", str(tmp_path)), "schedule clear` starts afresh")
    assert run("schedule", "clear", "--data-dir", str(tmp_path)).returncode == 0
    assert _stored(tmp_path) == {"enabled": True, "entries": []}


def test_a_socket_left_by_a_stopped_controller_is_not_taken_for_one(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(tmp_path / SOCKET_NAME))  # the file stays; nobody listens
    res = run("schedule", "add", "--ready-at", "07:00", "--setpoint", "35",
              "--data-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "no controller running" in res.stdout
    assert _stored(tmp_path)["entries"][0]["ready_at"] == "07:00"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[LocalStack, Path]]:
    cfg = from_mapping({"plant": {"initial_water_c": [24.0, 24.0]},
                        "mqtt": {"state_interval_s": 1.0, "min_interval_s": 0.1}})
    with LocalStack(cfg, tmp_path, heat=(False, False)) as st:
        assert st.controller is not None
        st.controller.schedule = ScheduleRunner(st.controller,
                                                SystemLocalTime(st.controller.clock),
                                                ScheduleStore(tmp_path))
        service = ServiceSocket(st.controller, tmp_path).start()
        try:
            yield st, tmp_path
        finally:
            service.stop()


def _wait(cond: Any, timeout_s: float) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    return None


def test_changes_reach_a_running_controller(running: tuple[LocalStack, Path]) -> None:
    st, d = running
    assert st.controller is not None and st.controller.log is not None
    runner = st.controller.schedule
    at = ["--data-dir", str(d)]
    ready = _in_hours(4)
    res = run("schedule", "add", "--ready-at", ready, "--setpoint", "36.5", "--cushion",
              "upper", *at)
    assert res.returncode == 0, res.stderr
    assert f"controller running at {d}" in res.stdout
    # the controller took it: in its runner, in its file, in its event log with the account
    assert [(e.ready_at.strftime("%H:%M"), e.setpoint_c, e.cushion)
            for e in runner.schedule.entries] == [(ready, 36.5, 0)]
    assert _stored(d)["entries"][0]["ready_at"] == ready
    ev = st.controller.log.events(kinds=["schedule"])
    assert ev and ev[-1].actor == ACTOR
    # ... plans it, and publishes it in the table's state (what the dashboard shows)
    plan = _wait(lambda: (lambda p: p if p and p[0]["next_ready_at"] else None)(
        json.loads(run("schedule", "show", "--json", *at).stdout)["plan"]), 30)
    assert plan, run("schedule", "show", *at).stdout
    assert plan[0]["next_ready_at"].endswith("T" + ready) and plan[0]["start_planned"]
    assert plan[1]["next_ready_at"] is None
    shown = run("schedule", "show", *at).stdout
    assert "1. every day" in shown and f"Upper body: ready at {plan[0]['next_ready_at'][:10]} " \
        f"{ready}. Heating starts at" in shown and "warm-up from" in shown, shown
    assert st.fleet is not None

    def published() -> Any:
        view = st.fleet.table(st.cfg.mqtt.table_id)
        state = view.as_dict().get("state") if view is not None else None
        return ((state or {}).get("schedule") or {}).get("entries") == 1
    assert _wait(published, 15)
    # bad input never reaches it
    _refused(run("schedule", "add", "--ready-at", "24:00", "--setpoint", "36", *at),
             "ready_at must be")
    assert len(runner.schedule.entries) == 1
    # switched off, then the entry removed: the controller follows each time
    assert run("schedule", "off", *at).returncode == 0
    assert runner.schedule.enabled is False
    res = run("schedule", "remove", "1", "--json", *at)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["controller_running"] is True and out["schedule"]["entries"] == []
    assert runner.schedule.entries == () and _stored(d)["entries"] == []
    assert [e.actor for e in st.controller.log.events(kinds=["schedule"])] == [ACTOR] * 3
    # a whole week (28 entries, every field) fits one request on the socket
    from controller.schedule.model import MAX_ENTRIES
    from controller.service_socket import request

    week = {"enabled": True, "entries": [
        {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
         "ready_at": f"{h:02d}:{m:02d}", "setpoint_c": 37.0, "cushion": None,
         "until": f"{(h + 1) % 24:02d}:{m:02d}", "standby_c": 34.0}
        for h, m in ((h, m) for h in range(7) for m in (0, 15, 30, 45))]}
    assert len(week["entries"]) == MAX_ENTRIES
    assert len(json.dumps({"cmd": "schedule", "schedule": week})) > 4096
    answer = request(d / SOCKET_NAME, {"cmd": "schedule", "schedule": week})
    assert answer["ok"], answer
    assert len(runner.schedule.entries) == MAX_ENTRIES
    # the controller validates again whatever reaches its socket
    bad = request(d / SOCKET_NAME, {"cmd": "schedule", "schedule": {"entries": [
        {"ready_at": "8", "setpoint_c": 37.0}]}})
    assert not bad["ok"] and bad["error"].startswith("schedule refused: entries[0].ready_at")
    assert len(runner.schedule.entries) == MAX_ENTRIES
    res = run("schedule", "show", *at)
    assert res.returncode == 0 and f"  {MAX_ENTRIES}. every day 06:45" in res.stdout, res.stdout


def test_table_picks_a_demo_tables_folder(tmp_path: Path) -> None:
    for name in ("table0", "table1"):
        (tmp_path / name).mkdir()
        EventLog(tmp_path / name / "events.sqlite3").close()
    res = run("schedule", "add", "--ready-at", "08:00", "--setpoint", "36", "--table",
              "table1", "--data-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert _stored(tmp_path / "table1")["entries"][0]["ready_at"] == "08:00"
    assert not (tmp_path / "table0" / SCHEDULE_FILE).exists()
    _refused(run("schedule", "show", "--table", "../x", "--data-dir", str(tmp_path)),
             "is not a table name")
    _refused(run("schedule", "show", "--table", "table7", "--data-dir", str(tmp_path)),
             "no data directory")
