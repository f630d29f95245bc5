"""The therapist's tools and the trip alerts through Flask's test client, on a real stack
(embedded broker, simulated board on a pty, the real controller): presets (CRUD, CSRF,
400s, applying one reaches the controller), session timers (the server ends a session
and sends the end action itself), the energy estimate, trip alerts and their logged
acknowledgement, plain words instead of codes, and the event log's filters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dashboard.alerts import ACKS_FILE
from dashboard.app import create_app
from dashboard.auth import UserStore
from dashboard.plain import actor_text, refusal_text
from dashboard.presets import PRESETS_FILE
from dashboard.tools_api import energy_kwh
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import from_mapping
from tests.test_dashboard import PASSWORD, SECRET, csrf_of, login, wait_for


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    cfg = from_mapping({"plant": {"initial_water_c": 35.0},
                        "mqtt": {"state_interval_s": 1.0},
                        "dashboard": {"command_timeout_s": 2.0, "standby_setpoint_c": 31.5}})
    with LocalStack(cfg, tmp_path_factory.mktemp("tools-stack"), heat=(True, True)) as st:
        yield st


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> UserStore:
    store = UserStore(tmp_path_factory.mktemp("tools-data") / "users.toml")
    store.set_password("therapist", PASSWORD)
    return store


@pytest.fixture(scope="module")
def app(stack: LocalStack, users: UserStore) -> Iterator[Flask]:
    a = create_app(stack.cfg, stack.fleet, users, secret_key=SECRET, testing=True,
                   heartbeat_s=0.5)
    assert wait_for(lambda: stack.fleet.table("table0") is not None
                    and stack.fleet.table("table0").state is not None, 20.0)
    yield a
    a.extensions["hydrotherm"].close()


@pytest.fixture
def s(app: Flask) -> tuple[FlaskClient, dict[str, str]]:
    c = app.test_client()
    assert login(c).status_code == 302
    return c, {"X-CSRFToken": csrf_of(c)}


def setpoints(stack: LocalStack) -> list[float]:
    return [c.setpoint_c for c in stack.controller.cushions]


# --- presets ------------------------------------------------------------------------------

def test_presets_crud_with_csrf_and_reasons(s: tuple[FlaskClient, dict[str, str]],
                                            users: UserStore) -> None:
    c, h = s
    body = {"name": "Mrs Meier", "setpoints": [38.5, 36.0]}
    assert c.post("/api/presets", json=body).status_code == 403  # no CSRF token
    r = c.post("/api/presets", json=body, headers=h)
    assert r.status_code == 201, r.json
    assert c.post("/api/presets", json=body, headers=h).status_code == 409
    bad = [({"name": "", "setpoints": [37, 37]}, "name must be 1"),
           ({"name": "x\u0007", "setpoints": [37, 37]}, "control characters"),
           ({"name": "x", "setpoints": [37]}, "list of two numbers"),
           ({"name": "x", "setpoints": [37, 45]}, "outside"),
           ({"name": "x", "setpoints": [37, "hot"]}, "must be a number"),
           ({"name": "x", "setpoints": [37, 37], "extra": 1}, "unknown field"),
           ({"name": "x"}, "missing field")]
    for b, reason in bad:
        r = c.post("/api/presets", json=b, headers=h)
        assert r.status_code == 400 and reason in r.json["error"], (b, r.json)
    listed = c.get("/api/presets").json["presets"]
    assert listed == [{"name": "Mrs Meier", "setpoints": [38.5, 36.0]}]
    # update, then it is stored on disk next to the users file (per dashboard)
    r = c.put("/api/presets/Mrs Meier", json={"setpoints": [38.0, 36.5]}, headers=h)
    assert r.status_code == 200, r.json
    stored = json.loads((users.path.parent / PRESETS_FILE).read_text())
    assert stored == {"Mrs Meier": [38.0, 36.5]}
    assert c.put("/api/presets/nobody", json={"setpoints": [37, 37]},
                 headers=h).status_code == 404
    assert c.delete("/api/presets/Mrs Meier").status_code == 403
    assert c.delete("/api/presets/Mrs Meier", headers=h).status_code == 200
    assert c.get("/api/presets").json["presets"] == []
    assert c.delete("/api/presets/Mrs Meier", headers=h).status_code == 404


def test_applying_a_preset_sets_both_cushions(s: tuple[FlaskClient, dict[str, str]],
                                              stack: LocalStack) -> None:
    c, h = s
    assert c.post("/api/presets", json={"name": "warm", "setpoints": [38.2, 36.4]},
                  headers=h).status_code == 201
    r = c.post("/api/tables/table0/preset", json={"name": "warm"}, headers=h)
    assert r.status_code == 200, r.json
    assert "Upper body 38.2 °C" in r.json["message"]
    assert setpoints(stack) == [38.2, 36.4]
    assert c.post("/api/tables/table0/preset", json={"name": "cold"},
                  headers=h).status_code == 404
    assert c.post("/api/tables/table0/preset", json={"name": 5},
                  headers=h).status_code == 400
    events = stack.controller.log.events(kinds=["setpoint"])[-2:]
    assert {e.actor for e in events} == {"mqtt:dashboard/therapist"}


# --- session timers -----------------------------------------------------------------------

def test_session_timer_validation(s: tuple[FlaskClient, dict[str, str]]) -> None:
    c, h = s
    for body, reason in (({"minutes": 0}, "minutes must be"), ({"minutes": "60"}, "minutes"),
                         ({"minutes": 10, "action": "explode"}, "action must be one of"),
                         ({}, "missing field")):
        r = c.post("/api/tables/table0/timer", json=body, headers=h)
        assert r.status_code == 400 and reason in r.json["error"], (body, r.json)
    assert c.post("/api/tables/table0/timer", json={"minutes": 10}).status_code == 403
    assert c.post("/api/tables/nosuch/timer", json={"minutes": 10},
                  headers=h).status_code == 404
    assert c.delete("/api/tables/table0/timer", headers=h).status_code == 404


def test_the_server_ends_a_session_with_the_standby_setpoint(
        s: tuple[FlaskClient, dict[str, str]], app: Flask, stack: LocalStack) -> None:
    """No browser is involved once the timer runs: the server's thread acts."""
    c, h = s
    r = c.post("/api/tables/table0/timer", json={"minutes": 30, "action": "standby"},
               headers=h)
    assert r.status_code == 200, r.json
    timers = c.get("/api/timers").json["timers"]
    assert 29 * 60 < timers["table0"]["remaining_s"] <= 30 * 60
    dash = app.extensions["hydrotherm"]
    # the timer is due now: move its end into the past, as the clock would
    with dash.timers._lock:
        dash.timers._timers["table0"]["ends_at"] = time.time() - 1
    assert wait_for(lambda: setpoints(stack) == [31.5, 31.5], 10.0), setpoints(stack)
    done = wait_for(lambda: dash.timers.all().get("table0", {}).get("finished"), 5.0)
    assert done and "standby 31.5 °C" in done["text"], done
    actors = {e.actor for e in stack.controller.log.events(kinds=["setpoint"])[-2:]}
    assert actors == {"mqtt:dashboard/session timer (therapist)"}


# --- energy -------------------------------------------------------------------------------

def test_energy_is_output_times_rated_power_over_time() -> None:
    # half output for an hour at 1 s samples, then a 10-minute gap (no data: not counted)
    rows = [[float(t), 35.0, 37.0, 0.5] for t in range(0, 3601)]
    rows += [[3601.0 + 600 + t, 35.0, 37.0, 1.0] for t in range(0, 61)]
    kwh, covered = energy_kwh(rows, 300.0)
    want = (0.5 * 300 * 3600 + 1.0 * 300 * 60) / 3.6e6
    assert abs(kwh - want) < 1e-9 and covered == 3660.0


def test_energy_today_from_the_controllers_history(s: tuple[FlaskClient, dict[str, str]],
                                                   stack: LocalStack) -> None:
    c, _ = s
    r = c.get("/api/tables/table0/energy")
    assert r.status_code == 200, r.json
    body = r.json
    assert body["kwh"] >= 0 and len(body["cushions"]) == 2
    assert "estimated from the applied output × the rated heater power" in body["text"]
    # the controller has been heating both cushions since the start: some energy
    assert any(x["covered_s"] > 0 for x in body["cushions"]), body
    assert c.get("/api/tables/table0/energy?x=1").status_code == 400


# --- alerts, acknowledgement, plain words ---------------------------------------------------

def test_a_trip_raises_an_alert_that_a_person_acknowledges(
        s: tuple[FlaskClient, dict[str, str]], stack: LocalStack, users: UserStore) -> None:
    c, h = s
    assert c.get("/api/alerts").json["alerts"] == []
    assert stack.sim.handle({"fault": "sensor_open", "cushion": 1, "sensor": "primary"})["ok"]
    try:
        alerts = wait_for(lambda: c.get("/api/alerts").json["alerts"], 15.0, 0.2)
        assert alerts, "no alert for the trip"
        a = alerts[0]
        assert a["table_id"] == "table0" and a["text"] == "Lower body: Sensor disconnected"
        assert not a["acknowledged"]
        assert c.post("/api/alerts/ack", json={"key": a["key"]}).status_code == 403
        assert c.post("/api/alerts/ack", json={"key": "nope"}, headers=h).status_code == 404
        assert c.post("/api/alerts/ack", json={"key": 5}, headers=h).status_code == 400
        r = c.post("/api/alerts/ack", json={"key": a["key"]}, headers=h)
        assert r.status_code == 200, r.json
        again = c.get("/api/alerts").json["alerts"][0]
        assert again["acknowledged"] and again["acknowledged_by"] == "therapist"
        logged = [json.loads(line) for line in
                  (users.path.parent / ACKS_FILE).read_text().splitlines()]
        assert logged[-1]["user"] == "therapist" and logged[-1]["reason"] == "sensor_open"
        # a refused reset is told in plain words: the trip's title, no codes
        r = c.post("/api/tables/table0/reset", json={"cushion": 1}, headers=h)
        assert r.status_code == 409
        assert "Sensor disconnected" in r.json["message"], r.json
        assert "sensor_open" not in r.json["message"] and "cushion 1" not in r.json["message"]
        assert "sensor_open" in r.json["error"]  # the code stays in the API
        page = c.get("/tables/table0").text
        assert 'id="alert-banner"' in page
    finally:
        stack.sim.handle({"fault": "sensor_open", "cushion": 1, "sensor": "primary",
                          "clear": True})

    def reset() -> bool:
        if not stack.controller.supervisor.trips:
            return True
        stack.controller.request_reset("test", 1)
        return False
    assert wait_for(reset, 20.0, 1.0)
    assert wait_for(lambda: c.get("/api/alerts").json["alerts"] == [], 10.0, 0.3)


def test_plain_words_for_codes() -> None:
    assert actor_text("mqtt:dashboard/therapist") == "therapist"
    assert actor_text(None) == ""
    text = refusal_text("sensor_open: cushion 0: primary open; no_rise: cushion 1: slow")
    assert "sensor_open" not in text and "no_rise" not in text and "cushion 0" not in text
    assert "Sensor disconnected" in text and "upper body cushion" in text, text
    assert refusal_text("these trips need a service person: rise_while_off") == \
        "these trips need a service person: Warming with the heater off"


def test_event_log_filters_and_words(s: tuple[FlaskClient, dict[str, str]],
                                     stack: LocalStack) -> None:
    c, h = s
    assert c.post("/api/tables/table0/setpoint", json={"cushion": 1, "value": 36.8},
                  headers=h).status_code == 200
    page = c.get("/tables/table0/events?range=1h").text
    assert "mqtt:" not in page  # the actor as a name
    assert 'data-kind="setpoint"' in page and 'data-kind="controller_start"' in page
    only = c.get("/tables/table0/events?range=1h&kind=settings").text
    assert 'data-kind="setpoint"' in only and 'data-kind="controller_start"' not in only
    lower = c.get("/tables/table0/events?range=1h&kind=settings&cushion=1").text
    assert 'data-cushion="1"' in lower and 'data-cushion="0"' not in lower
    odd = c.get("/tables/table0/events?range=zz&kind=zz&cushion=9&before=x")
    assert odd.status_code == 200  # a hand-edited address falls back to the defaults
    old = c.get(f"/tables/table0/events?range=1h&before={time.time() - 3000}").text
    assert 'data-kind="setpoint"' not in old




def test_a_due_timer_waits_for_the_broker_then_acts(tmp_path: Any) -> None:
    """Just after a restart the broker may not be connected yet: the end action is
    retried, not dropped; given up (and said so) only after RETRY_FOR_S."""
    from dashboard.timers import RETRY_FOR_S, SessionTimers

    now = [1000.0]
    ready = [False]
    calls: list[tuple[str, str, str]] = []

    def runner(tid: str, action: str, user: str) -> str | None:
        calls.append((tid, action, user))
        return "done" if ready[0] else None
    timers = SessionTimers(tmp_path / "t.json", runner, poll_s=3600.0, clock=lambda: now[0])
    try:
        timers.start("a", 1, "heat_off", "therapist")
        timers.start("b", 1, "standby", "therapist")
        now[0] += 61
        timers.tick()
        assert len(calls) == 2 and set(timers.all()) == {"a", "b"}
        assert "finished" not in timers.all()["a"]
        # a restart keeps them (the file)
        again = SessionTimers(tmp_path / "t.json", runner, poll_s=3600.0,
                              clock=lambda: now[0])
        assert set(again.all()) == {"a", "b"}
        again.close()
        ready[0] = True
        timers.cancel("b")
        timers.tick()
        assert timers.all()["a"]["finished"]["text"] == "done"
        ready[0] = False
        timers.start("c", 1, "heat_off", "therapist")
        now[0] += 60 + RETRY_FOR_S + 1
        timers.tick()
        assert "could not be sent" in timers.all()["c"]["finished"]["text"]
    finally:
        timers.close()
