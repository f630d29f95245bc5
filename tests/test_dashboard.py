"""The dashboard through Flask's test client, against a real stack: the embedded broker, a
simulated board on a pty, the real controller and its MQTT bridge, and a FleetClient.

Every route is exercised: login and logout, CSRF refusals, validation with the reason,
commands carrying the logged-in user into the controller's event log, the live stream,
health, metrics, the OpenAPI document, an unreachable broker and a silent controller.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from paho.mqtt.enums import CallbackAPIVersion

from controller.mqtt.broker import free_port
from controller.mqtt.client import parse_broker_url
from controller.mqtt.fleet import FleetClient
from dashboard import cli as dash_cli
from dashboard.api import ApiError, check_setpoint
from dashboard.app import create_app
from dashboard.auth import LoginLimiter, UserStore, ensure_first_user, load_secret_key
from dashboard.live import Subscriber
from dashboard.present import present_table, trip_texts
from dashboard.server import serve
from hydrotherm.app.stack import LocalStack
from hydrotherm.config import Config, from_mapping

PASSWORD = "correct horse battery"
SECRET = b"0123456789abcdef0123456789abcdef"


def wait_for(cond: Callable[[], Any], timeout_s: float, step_s: float = 0.05) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(step_s)
    return None


def make_cfg() -> Config:
    return from_mapping({"plant": {"initial_water_c": 35.0},
                         "mqtt": {"state_interval_s": 1.0},
                         "dashboard": {"command_timeout_s": 1.0}})


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(make_cfg(), tmp_path_factory.mktemp("stack"),
                    extra_tables=("ghost", "gone")) as st:
        yield st


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> UserStore:
    store = UserStore(tmp_path_factory.mktemp("users") / "users.toml")
    store.set_password("therapist", PASSWORD)
    return store


@pytest.fixture(scope="module")
def app(stack: LocalStack, users: UserStore) -> Iterator[Flask]:
    a = create_app(stack.cfg, stack.fleet, users, secret_key=SECRET, testing=True,
                   heartbeat_s=0.5)
    yield a
    a.extensions["hydrotherm"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def login(client: FlaskClient, user: str = "therapist", password: str = PASSWORD,
          **kw: Any) -> Any:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"username": user, "password": password,
                                       "csrf_token": token, **kw})


def csrf_of(client: FlaskClient, path: str = "/fleet") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)


@pytest.fixture
def session(client: FlaskClient) -> tuple[FlaskClient, dict[str, str]]:
    """A logged-in client and the CSRF header its page would send."""
    assert login(client).status_code == 302
    return client, {"X-CSRFToken": csrf_of(client)}


def table_view(stack: LocalStack) -> dict[str, Any]:
    view = stack.fleet.table("table0")
    assert view is not None and view.state is not None
    return view.state


# --- login, logout, sessions ----------------------------------------------------------------

def test_pages_need_login_and_login_page_is_labelled(client: FlaskClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    for path in ("/fleet", "/tables/table0", "/tables/table0/events", "/events"):
        assert client.get(path).status_code == 302
    page = client.get("/login")
    assert page.status_code == 200
    assert '<label for="username">' in page.text and '<label for="password">' in page.text
    assert 'name="csrf-token"' in page.text


def test_login_logout_and_cookie_flags(client: FlaskClient) -> None:
    resp = login(client)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    cookie = resp.headers["Set-Cookie"]
    assert "hydrotherm_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Secure" not in cookie
    assert client.get("/").headers["Location"].endswith("/tables/table0")
    page = client.get("/tables/table0")
    assert page.status_code == 200 and "Upper body cushion" in page.text
    assert "Content-Security-Policy" in page.headers
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert client.post("/logout").status_code == 403  # CSRF on logout too
    resp = client.post("/logout", data={"csrf_token": token})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert client.get("/api/tables").status_code == 401
    assert client.get("/logout").status_code == 405


def test_secure_cookie_option(stack: LocalStack, users: UserStore) -> None:
    a = create_app(stack.cfg, stack.fleet, users, secret_key=SECRET, secure_cookies=True)
    try:
        resp = login(a.test_client())
        assert resp.status_code == 302 and "Secure" in resp.headers["Set-Cookie"]
    finally:
        a.extensions["hydrotherm"].close()


def test_wrong_password_and_unknown_user(client: FlaskClient) -> None:
    resp = login(client, password="wrong password")
    assert resp.status_code == 401 and "Wrong user name or password" in resp.text
    resp = login(client, user="nobody")
    assert resp.status_code == 401
    assert client.get("/api/tables").status_code == 401


def test_login_without_csrf_token_is_refused(client: FlaskClient) -> None:
    client.get("/login")
    resp = client.post("/login", data={"username": "therapist", "password": PASSWORD})
    assert resp.status_code == 403 and "expired" in resp.text
    assert client.get("/api/tables").status_code == 401


def test_login_rate_limit(stack: LocalStack, users: UserStore) -> None:
    a = create_app(stack.cfg, stack.fleet, users, secret_key=SECRET)
    try:
        c = a.test_client()
        for _ in range(5):
            assert login(c, password="nope-nope").status_code == 401
        resp = login(c, password="nope-nope")
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
        resp = login(c)  # even the right password waits its turn
        assert resp.status_code == 429
        other = a.test_client()  # another address is not affected
        other.environ_base["REMOTE_ADDR"] = "10.1.2.3"
        assert login(other).status_code == 302
    finally:
        a.extensions["hydrotherm"].close()


def test_login_limiter_backoff() -> None:
    now = [0.0]
    lim = LoginLimiter(free=2, base_s=1.0, max_s=8.0, forget_s=100.0, clock=lambda: now[0])
    for _ in range(2):
        assert lim.wait_s("a") == 0
        lim.failed("a")
    lim.failed("a")
    assert lim.wait_s("a") == pytest.approx(2.0)
    now[0] += 2.0
    assert lim.wait_s("a") == 0
    for _ in range(10):
        lim.failed("a")
    assert lim.wait_s("a") == pytest.approx(8.0)
    assert lim.wait_s("b") == 0
    lim.succeeded("a")
    assert lim.wait_s("a") == 0


def test_next_parameter_stays_on_site(client: FlaskClient) -> None:
    resp = login(client, next="//evil.example/x")
    assert resp.headers["Location"] == "/"
    client2 = client.application.test_client()
    resp = login(client2, next="/fleet")
    assert resp.headers["Location"] == "/fleet"


def test_password_change_ends_sessions(stack: LocalStack, tmp_path: Path) -> None:
    store = UserStore(tmp_path / "users.toml")
    store.set_password("anna", "first password")
    a = create_app(stack.cfg, stack.fleet, store, secret_key=SECRET)
    try:
        c = a.test_client()
        assert login(c, "anna", "first password").status_code == 302
        assert c.get("/api/tables").status_code == 200
        UserStore(store.path).set_password("anna", "second password")  # e.g. the CLI
        assert c.get("/api/tables").status_code == 401
        assert login(c, "anna", "second password").status_code == 302
    finally:
        a.extensions["hydrotherm"].close()


# --- the API: auth and CSRF ------------------------------------------------------------------

API_GETS = ["/api/tables", "/api/tables/table0", "/api/tables/table0/events",
            "/api/tables/table0/history?cushion=0", "/api/tables/table0/stream",
            "/api/stream"]
API_POSTS = [("/api/tables/table0/setpoint", {"cushion": 0, "value": 37.0}),
             ("/api/tables/table0/heat", {"cushion": 0, "on": True}),
             ("/api/tables/table0/reset", {"cushion": 0})]


def test_api_without_login_is_401_json(client: FlaskClient) -> None:
    for path in API_GETS:
        resp = client.get(path)
        assert resp.status_code == 401, path
        assert "not logged in" in resp.json["error"]
    token = csrf_of_login(client)
    for path, body in API_POSTS:
        resp = client.post(path, json=body, headers={"X-CSRFToken": token})
        assert resp.status_code == 401, path
        assert resp.json["error"]


def csrf_of_login(client: FlaskClient) -> str:
    page = client.get("/login")
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text).group(1)


def test_post_without_or_with_a_wrong_csrf_token_is_403(
        session: tuple[FlaskClient, dict[str, str]], stack: LocalStack) -> None:
    client, _ = session
    before = len(stack.controller.log.events())
    for path, body in API_POSTS:
        resp = client.post(path, json=body)
        assert resp.status_code == 403 and "CSRF" in resp.json["error"], path
        resp = client.post(path, json=body, headers={"X-CSRFToken": "forged"})
        assert resp.status_code == 403 and "CSRF" in resp.json["error"], path
    assert len(stack.controller.log.events()) == before  # nothing reached the controller


# --- commands --------------------------------------------------------------------------------

def test_setpoint_applied_and_actor_is_the_logged_in_user(
        session: tuple[FlaskClient, dict[str, str]], stack: LocalStack) -> None:
    client, h = session
    resp = client.post("/api/tables/table0/setpoint", json={"cushion": 0, "value": 37.5},
                       headers=h)
    assert resp.status_code == 200, resp.json
    assert resp.json["ok"] is True and resp.json["reply"]["setpoint_c"] == 37.5
    assert "37.5 °C" in resp.json["message"]
    last = stack.controller.log.events(kinds=["setpoint"])[-1]
    assert last.actor == "mqtt:dashboard/therapist" and last.detail["to"] == 37.5
    # the state topic follows, and the API shows it
    assert wait_for(lambda: client.get("/api/tables/table0").json["state"]["cushions"][0]
                    ["setpoint_c"] == 37.5, 5.0)
    # and the event API reports it with the actor too
    events = client.get("/api/tables/table0/events?limit=20").json["events"]
    assert any(e["kind"] == "setpoint" and e["actor"] == "mqtt:dashboard/therapist" for e in events)
    resp = client.post("/api/tables/table0/setpoint", json={"cushion": 0, "value": 37},
                       headers=h)
    assert resp.status_code == 200 and resp.json["reply"]["setpoint_c"] == 37.0


def test_heat_and_reset_commands(session: tuple[FlaskClient, dict[str, str]],
                                 stack: LocalStack) -> None:
    client, h = session
    resp = client.post("/api/tables/table0/heat", json={"cushion": 1, "on": True}, headers=h)
    assert resp.status_code == 200 and resp.json["reply"]["heat_on"] is True
    resp = client.post("/api/tables/table0/heat", json={"cushion": 1, "on": False}, headers=h)
    assert resp.status_code == 200 and "off" in resp.json["message"]
    heat = stack.controller.log.events(kinds=["heat"])[-1]
    assert heat.actor == "mqtt:dashboard/therapist" and heat.cushion == 1
    resp = client.post("/api/tables/table0/reset", json={}, headers=h)
    assert resp.status_code == 200 and "no trip" in resp.json["message"]


INVALID = [
    ("setpoint", {"cushion": 0, "value": 41}, "outside 30–40"),
    ("setpoint", {"cushion": 0, "value": 29.9}, "outside"),
    ("setpoint", {"cushion": 0, "value": 37.55}, "multiple of 0.1"),
    ("setpoint", {"cushion": 0, "value": 37.300000000000004}, "multiple of 0.1"),
    ("setpoint", {"cushion": 0, "value": "37"}, "must be a number"),
    ("setpoint", {"cushion": 0, "value": True}, "must be a number"),
    ("setpoint", {"cushion": 0, "value": None}, "must be a number"),
    ("setpoint", {"cushion": 2, "value": 37}, "cushion must be 0"),
    ("setpoint", {"cushion": True, "value": 37}, "cushion must be 0"),
    ("setpoint", {"cushion": "0", "value": 37}, "cushion must be 0"),
    ("setpoint", {"cushion": 0.0, "value": 37}, "cushion must be 0"),
    ("setpoint", {"cushion": 0}, "missing field(s): value"),
    ("setpoint", {"cushion": 0, "value": 37, "actor": "someone else"}, "unknown field(s): actor"),
    ("setpoint", [0, 37], "JSON object"),
    ("setpoint", None, "JSON object"),
    ("heat", {"cushion": 0, "on": "yes"}, "true or false"),
    ("heat", {"cushion": 0, "on": 1}, "true or false"),
    ("heat", {"cushion": -1, "on": True}, "cushion must be 0"),
    ("heat", {"on": True}, "missing field(s): cushion"),
    ("reset", {"cushion": 5}, "cushion must be 0"),
    ("reset", {"cushion": 0, "force": True}, "unknown field(s): force"),
    ("reset", "reset please", "JSON object"),
]


def test_invalid_commands_refused_with_the_reason(
        session: tuple[FlaskClient, dict[str, str]], stack: LocalStack) -> None:
    client, h = session
    before = len(stack.controller.log.events())
    for name, body, reason in INVALID:
        resp = client.post(f"/api/tables/table0/{name}", data=json.dumps(body), headers=h,
                           content_type="application/json")
        assert resp.status_code == 400, (name, body, resp.json)
        assert reason in resp.json["error"], (name, body, resp.json)
    raw = [("{", "JSON object"), ('{"cushion": 0, "value": NaN}', "finite"),
           ('{"cushion": 0, "value": Infinity}', "finite"), ("", "JSON object")]
    for text, reason in raw:
        resp = client.post("/api/tables/table0/setpoint", data=text, headers=h,
                           content_type="application/json")
        assert resp.status_code == 400 and reason in resp.json["error"], (text, resp.json)
    resp = client.post("/api/tables/table0/setpoint", data='{"cushion": 0, "value": 37}',
                       headers=h, content_type="text/plain")
    assert resp.status_code == 415 and "JSON" in resp.json["error"]
    resp = client.post("/api/tables/table0/setpoint", data="x" * 20000, headers=h,
                       content_type="application/json")
    assert resp.status_code == 413 and resp.json["error"]
    # refused here: nothing was sent to the controller
    assert len(stack.controller.log.events()) == before
    metrics = client.get("/metrics").text
    assert 'hydrotherm_dashboard_commands_total{command="setpoint",outcome="invalid"}' in metrics


def test_setpoint_grid_is_judged_on_the_decimal_value(stack: LocalStack,
                                                      app: Flask) -> None:
    dash = app.extensions["hydrotherm"]
    for ok in (30, 37.3, 36.6, 39.9, 40.0, 33.3):
        assert check_setpoint(dash, ok) == ok
    for bad in (37.25, 37.300000000000004, 30.05):
        with pytest.raises(ApiError):
            check_setpoint(dash, bad)


def test_query_validation(session: tuple[FlaskClient, dict[str, str]]) -> None:
    client, _ = session
    bad = [("/api/tables/table0/history", "cushion is required"),
           ("/api/tables/table0/history?cushion=2", "cushion must be 0 or 1"),
           ("/api/tables/table0/history?cushion=0&range=2h", "range must be one of"),
           ("/api/tables/table0/history?cushion=0&cushion=1", "given 2 times"),
           ("/api/tables/table0/history?cushion=0&x=1", "unknown query parameter"),
           ("/api/tables/table0/events?limit=0", "limit must be"),
           ("/api/tables/table0/events?limit=1001", "limit must be"),
           ("/api/tables/table0/events?limit=abc", "limit must be"),
           ("/api/tables/table0/events?since=yesterday", "since must be a number"),
           ("/api/tables/table0/events?since=inf", "finite"),
           ("/api/tables?all=1", "unknown query parameter")]
    for path, reason in bad:
        resp = client.get(path)
        assert resp.status_code == 400 and reason in resp.json["error"], (path, resp.json)


def test_unknown_table_is_404(session: tuple[FlaskClient, dict[str, str]]) -> None:
    client, h = session
    for path in ("/api/tables/nope", "/api/tables/nope/events",
                 "/api/tables/nope/history?cushion=0", "/api/tables/nope/stream"):
        resp = client.get(path)
        assert resp.status_code == 404 and "nope" in resp.json["error"], path
    resp = client.post("/api/tables/nope/setpoint", json={"cushion": 0, "value": 37},
                       headers=h)
    assert resp.status_code == 404
    assert client.get("/tables/nope").status_code == 404
    assert client.get("/tables/nope/events").status_code == 404
    resp = client.put("/api/tables/table0/setpoint", json={})
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"] and resp.json["error"]


def test_history_and_events(session: tuple[FlaskClient, dict[str, str]]) -> None:
    client, _ = session
    assert wait_for(lambda: len(client.get("/api/tables/table0/history?cushion=0")
                                .json["samples"]) >= 2, 10.0)
    for rng in ("1h", "6h", "24h", "7d"):
        resp = client.get(f"/api/tables/table0/history?cushion=1&range={rng}")
        assert resp.status_code == 200, resp.json
        body = resp.json
        assert body["columns"] == ["time", "water_c", "setpoint_c", "output"]
        assert body["range"] == rng and body["cushion"] == 1
        assert all(len(row) == 4 for row in body["samples"])
    resp = client.get("/api/tables/table0/events?since=0&limit=1000")
    kinds = [e["kind"] for e in resp.json["events"]]
    assert "controller_start" in kinds and "link_connected" in kinds
    assert all(e["text"] for e in resp.json["events"])


def test_trip_shown_in_words_reset_refused_then_accepted(
        session: tuple[FlaskClient, dict[str, str]], stack: LocalStack) -> None:
    client, h = session
    assert stack.sim.handle({"fault": "sensor_open", "cushion": 1, "sensor": "primary"})["ok"]
    try:
        def tripped() -> Any:
            view = client.get("/api/tables/table0").json["view"]
            trips = view["cushions"][1]["trips"]
            return trips if trips else None
        trips = wait_for(tripped, 10.0)
        assert trips and trips[0]["reason"] == "sensor_open"
        assert trips[0]["text"] == ("A temperature sensor is disconnected (open circuit). "
                                    "Heating stopped. Check the sensor cable, then reset.")
        page = client.get("/tables/table0")
        assert "Sensor disconnected" in page.text and "open circuit" in page.text
        resp = client.post("/api/tables/table0/reset", json={"cushion": 1}, headers=h)
        assert resp.status_code == 409, resp.json
        assert resp.json["ok"] is False and "sensor_open" in resp.json["error"]
        assert "refused" in resp.json["message"]
    finally:
        stack.sim.handle({"fault": "sensor_open", "cushion": 1, "sensor": "primary",
                          "clear": True})
    resp = wait_for(lambda: (r := client.post("/api/tables/table0/reset", json={"cushion": 1},
                                              headers=h)).status_code == 200 and r, 10.0)
    assert resp, "the reset was never accepted after the fault cleared"
    assert resp.json["reply"]["cleared"] == ["sensor_open"]
    refused = stack.controller.log.events(kinds=["reset_refused", "trip_reset"])
    assert {e.actor for e in refused} == {"mqtt:dashboard/therapist"}


def test_offline_table_and_silent_controller(
        session: tuple[FlaskClient, dict[str, str]], stack: LocalStack) -> None:
    client, h = session
    # two tables with accounts of their own but no controller answering (the broker lets a
    # table's account publish only its own subtree)
    pubs = {}
    for t in ("ghost", "gone"):
        addr = parse_broker_url(stack.url_as(f"table-{t}"), env={})
        pub = pubs[t] = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{t}")
        pub.username_pw_set(addr.username, addr.password)
        pub.connect(addr.host, addr.port)
        pub.loop_start()
    try:
        pubs["ghost"].publish("hydrotherm/ghost/status", "online", qos=1,
                              retain=True).wait_for_publish(5)
        pubs["gone"].publish("hydrotherm/gone/status", "offline", qos=1,
                             retain=True).wait_for_publish(5)
        assert wait_for(lambda: stack.fleet.table("ghost") and stack.fleet.table("gone"), 5.0)
        t0 = time.monotonic()
        resp = client.post("/api/tables/ghost/setpoint", json={"cushion": 0, "value": 37},
                           headers=h)
        assert resp.status_code == 504 and "did not answer" in resp.json["error"]
        assert time.monotonic() - t0 < 3.0  # dashboard.command_timeout_s = 1
        resp = client.post("/api/tables/gone/heat", json={"cushion": 0, "on": True}, headers=h)
        assert resp.status_code == 503 and "offline" in resp.json["error"]
        view = client.get("/api/tables/gone").json["view"]
        assert [p["code"] for p in view["problems"]] == ["offline"]
        assert client.get("/tables/gone").status_code == 200
        metrics = client.get("/metrics").text
        assert 'outcome="timeout"' in metrics and 'outcome="offline"' in metrics
    finally:
        for t, pub in pubs.items():
            pub.publish(f"hydrotherm/{t}/status", "", qos=1, retain=True).wait_for_publish(5)
            pub.loop_stop()
            pub.disconnect()


# --- pages -----------------------------------------------------------------------------------

def test_table_fleet_and_event_pages(session: tuple[FlaskClient, dict[str, str]]) -> None:
    client, _ = session
    page = client.get("/tables/table0")
    assert page.status_code == 200
    text = page.text
    for needle in ('aria-label="Raise the upper body setpoint by 0.5 °C"',
                   '<label for="sp-input-0">', 'data-action="reset"', 'id="chart"',
                   "vendor/uplot/uPlot.iife.min.js", 'id="page-data"', "Ready in"):
        assert needle in text, needle
    assert "Tester panel" not in text
    assert re.search(r'data-action="reset"\s+disabled', text)  # no trip: reset disabled
    fleet = client.get("/fleet")
    assert fleet.status_code == 200 and 'data-table="table0"' in fleet.text
    events = client.get("/tables/table0/events?range=7d")
    assert events.status_code == 200 and "Controller started" in events.text
    assert client.get("/events").headers["Location"].endswith("/tables/table0/events")
    for asset in ("/static/app.js", "/static/style.css", "/static/vendor/uplot/uPlot.min.css"):
        resp = client.get(asset)
        assert resp.status_code == 200
        resp.close()


# --- live updates ----------------------------------------------------------------------------

def read_events(resp: Any, until: Callable[[str], bool], timeout_s: float) -> str:
    buf = ""
    end = time.monotonic() + timeout_s
    for chunk in resp.response:
        buf += chunk.decode()
        if until(buf) or time.monotonic() > end:
            break
    return buf


def test_sse_stream_delivers_state(session: tuple[FlaskClient, dict[str, str]],
                                   app: Flask) -> None:
    client, _ = session
    dash = app.extensions["hydrotherm"]
    resp = client.get("/api/tables/table0/stream", buffered=False)
    try:
        assert resp.status_code == 200 and resp.mimetype == "text/event-stream"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert dash.broadcaster.clients == 1
        text = read_events(resp, lambda b: bool(re.search(r"id: \d+\nevent: table\n", b)), 10.0)
    finally:
        resp.close()
    assert text.startswith("retry: ")
    assert "event: broker\ndata: " in text
    live = re.search(r"id: \d+\nevent: table\ndata: (.*)\n\n", text)
    assert live, text[:500]
    view = json.loads(live.group(1))
    assert view["table_id"] == "table0" and view["status"] == "online"
    assert view["cushions"][0]["water_text"] != "—"
    assert dash.broadcaster.clients == 0  # closing the response unsubscribed
    metrics = client.get("/metrics").text
    assert "hydrotherm_dashboard_sse_clients 0.0" in metrics


def test_sse_all_tables_stream_and_events(session: tuple[FlaskClient, dict[str, str]]) -> None:
    client, h = session
    resp = client.get("/api/stream", buffered=False)
    try:
        client2 = client.application.test_client()
        assert login(client2).status_code == 302
        h2 = {"X-CSRFToken": csrf_of(client2)}

        def poke() -> None:
            time.sleep(0.3)
            client2.post("/api/tables/table0/setpoint", json={"cushion": 1, "value": 36.5},
                         headers=h2)
        threading.Thread(target=poke, daemon=True).start()
        text = read_events(resp, lambda b: "event: event\n" in b, 10.0)
    finally:
        resp.close()
    ev = re.search(r"event: event\ndata: (.*)\n\n", text)
    assert ev, text[-500:]
    body = json.loads(ev.group(1))
    assert body["kind"] == "setpoint" and body["actor"] == "mqtt:dashboard/therapist"
    assert body["text"] == "Setpoint 37.0 → 36.5 °C"


def test_subscriber_queue_is_bounded_and_drops_the_oldest() -> None:
    sub = Subscriber("t", maxlen=3)
    results = [sub.put(f"m{i}") for i in range(5)]
    assert results == [True, True, True, False, False]
    assert sub.dropped == 2
    assert sub.take(0.01) == ["m2", "m3", "m4"]
    t0 = time.monotonic()
    assert sub.take(0.2) == []
    assert time.monotonic() - t0 >= 0.15
    sub.close()
    assert sub.take(5.0) == []


def test_live_stream_cap_follows_threads(stack: LocalStack, users: UserStore) -> None:
    cfg = replace(stack.cfg, dashboard=replace(stack.cfg.dashboard, threads=4))
    a = create_app(cfg, stack.fleet, users, secret_key=SECRET)
    try:
        c = a.test_client()
        login(c)
        streams = [c.get("/api/stream", buffered=False) for _ in range(2)]
        for s in streams:
            assert s.status_code == 200
            next(iter(s.response))
        resp = c.get("/api/stream")
        assert resp.status_code == 503 and "too many" in resp.json["error"]
        for s in streams:
            s.close()
        assert a.extensions["hydrotherm"].broadcaster.clients == 0
    finally:
        a.extensions["hydrotherm"].close()


# --- broker unreachable ----------------------------------------------------------------------

def test_broker_unreachable(users: UserStore) -> None:
    cfg = make_cfg()
    fleet = FleetClient(cfg.mqtt, parse_broker_url(f"mqtt://127.0.0.1:{free_port()}")).start()
    a = create_app(cfg, fleet, users, secret_key=SECRET, heartbeat_s=0.3)
    try:
        c = a.test_client()
        resp = c.get("/healthz")
        assert resp.status_code == 503 and resp.json == {
            "status": "broker unreachable", "broker": False, "tables": 0}
        login(c)
        h = {"X-CSRFToken": csrf_of(c)}
        assert c.get("/api/tables").json["broker"] is False
        page = c.get("/tables/table0")
        assert page.status_code == 200 and "Broker unreachable" in page.text
        resp = c.post("/api/tables/table0/setpoint", json={"cushion": 0, "value": 37},
                      headers=h)
        assert resp.status_code == 502 and "broker unreachable" in resp.json["error"]
        resp = c.get("/api/tables/table0/history?cushion=0")
        assert resp.status_code == 502
        assert "hydrotherm_dashboard_broker_connected 0.0" in c.get("/metrics").text
        # the live stream still opens, says so, and keeps itself alive
        s = c.get("/api/tables/table0/stream", buffered=False)
        try:
            text = read_events(s, lambda b: ": keep-alive" in b, 5.0)
        finally:
            s.close()
        assert '"connected":false' in text and "Broker unreachable" in text
        assert ": keep-alive\n\n" in text
    finally:
        a.extensions["hydrotherm"].close()
        fleet.stop()


# --- health, metrics, OpenAPI ----------------------------------------------------------------

def test_healthz_and_metrics(session: tuple[FlaskClient, dict[str, str]]) -> None:
    client, _ = session
    anon = client.application.test_client()
    resp = anon.get("/healthz")
    assert resp.status_code == 200
    assert resp.json["status"] == "ok" and resp.json["broker"] is True
    assert resp.json["tables"] >= 1
    text = anon.get("/metrics").text
    for name in ("hydrotherm_dashboard_http_requests_total",
                 "hydrotherm_dashboard_http_request_seconds_bucket",
                 "hydrotherm_dashboard_sse_clients", "hydrotherm_dashboard_commands_total",
                 "hydrotherm_dashboard_broker_connected 1.0",
                 "hydrotherm_dashboard_tables_online"):
        assert name in text, name
    assert 'route="/healthz",status="200"' in text


def test_openapi_document_covers_every_api_route(client: FlaskClient, app: Flask,
                                                 stack: LocalStack) -> None:
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    doc = resp.json
    assert doc["openapi"].startswith("3.0")
    documented = set(doc["paths"])
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.rule != "/api/demo/fault":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            assert path in documented, path
            methods = {m.lower() for m in rule.methods - {"HEAD", "OPTIONS"}}
            assert methods <= set(doc["paths"][path]), path
    value = doc["components"]["schemas"]["SetpointRequest"]["properties"]["value"]
    c = stack.cfg.control
    assert (value["minimum"], value["maximum"]) == (c.setpoint_min_c, c.setpoint_max_c)
    post = doc["paths"]["/api/tables/{table_id}/setpoint"]["post"]
    assert {"200", "400", "401", "403", "404", "409", "502", "504"} <= set(post["responses"])
    assert "/api/demo/fault" not in documented


# --- demo hook -------------------------------------------------------------------------------

def test_demo_tester_panel(stack: LocalStack, users: UserStore, client: FlaskClient) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def actions(name: str, params: dict[str, Any]) -> dict[str, Any]:
        calls.append((name, params))
        return {"ok": name == "sensor_open", "error": "unknown fault"}

    a = create_app(stack.cfg, stack.fleet, users, secret_key=SECRET, demo=True,
                   demo_actions=actions)
    try:
        c = a.test_client()
        login(c)
        page = c.get("/tables/table0")
        assert "Tester panel" in page.text and '<option value="sensor_open"' in page.text
        h = {"X-CSRFToken": csrf_of(c)}
        body = {"name": "sensor_open", "params": {"cushion": 0}}
        assert c.post("/api/demo/fault", json=body).status_code == 403
        resp = c.post("/api/demo/fault", json=body, headers=h)
        assert resp.status_code == 200 and calls == [("sensor_open", {"cushion": 0})]
        resp = c.post("/api/demo/fault", json={"name": "nonsense"}, headers=h)
        assert resp.status_code == 400 and resp.json["error"] == "unknown fault"
        assert "/api/demo/fault" in c.get("/api/openapi.json").json["paths"]
    finally:
        a.extensions["hydrotherm"].close()
    # without demo the route does not exist for anyone
    login(client)
    resp = client.post("/api/demo/fault", json={"name": "sensor_open"},
                       headers={"X-CSRFToken": csrf_of(client)})
    assert resp.status_code == 404


# --- presentation ----------------------------------------------------------------------------

def test_every_trip_reason_has_plain_words() -> None:
    cfg = Config()
    reasons = {"over_temperature", "sensor_open", "sensor_short", "sensor_disagree",
               "no_rise", "rise_too_fast", "rise_while_off", "stale_telemetry", "board_fault",
               "control_stall", "plate_dry"}
    texts = trip_texts(cfg)
    assert set(texts) == reasons
    for title, text in texts.values():
        assert title and text.endswith(".") and ("reset" in text or "service" in text)
    assert "41.0 °C" in texts["over_temperature"][1]


def test_connection_states_are_never_hidden() -> None:
    cfg = Config()
    never = present_table(cfg, None, True, table_id="t")
    assert [p["code"] for p in never["problems"]] == ["unknown"] and not never["live"]
    down = present_table(cfg, None, False, "connection refused", table_id="t")
    assert down["problems"][0]["code"] == "broker"
    assert "connection refused" in down["problems"][0]["text"]
    state = {"time": 1.0, "tripped": False, "link": {"healthy": False, "state": "connecting",
                                                     "error": "no such port"},
             "cushions": []}
    view = {"table_id": "t", "status": "online", "readings": "offline", "state": state,
            "state_received_at": 1.0, "state_updates": 3}
    shown = present_table(cfg, view, True)
    assert [p["code"] for p in shown["problems"]] == ["readings"]
    assert "no such port" in shown["problems"][0]["text"]
    off = present_table(cfg, {**view, "status": "offline"}, True)
    assert "offline" in [p["code"] for p in off["problems"]]



def test_the_room_in_use_is_shown_only_while_the_table_is_live() -> None:
    """The room line says what the controller says it uses (measured or assumed, and why)
    and disappears when the state is not live: an old room next to "state unknown" would
    look like a reading."""
    cfg = Config()
    room = {"celsius": 21.0, "source": "configured", "reason": "no room sensor",
            "text": "room: configured 21 °C (no room sensor: a protocol 1.0 board)"}
    state = {"time": 1.0, "tripped": False, "link": {"healthy": True}, "cushions": [],
             "room": room}
    view = {"table_id": "t", "status": "online", "readings": "ok", "state": state,
            "state_received_at": 1.0, "state_updates": 3}
    shown = present_table(cfg, view, True)
    assert shown["room_text"] == "Room: configured 21 °C (no room sensor: a protocol 1.0 board)"
    assert present_table(cfg, {**view, "status": "offline"}, True)["room_text"] == ""
    assert present_table(cfg, view, False)["room_text"] == ""
    old = {**view, "state": {k: v for k, v in state.items() if k != "room"}}
    assert present_table(cfg, old, True)["room_text"] == ""


def test_the_page_shows_the_room_the_simulated_board_measures(
        session: tuple[FlaskClient, dict[str, str]], stack: LocalStack) -> None:
    """The real stack: the simulated 1.1 board's room sensor reaches the controller, its
    state and the page (the room is measured, not the configured assumption)."""
    client, _ = session
    assert wait_for(lambda: (table_view(stack).get("room") or {}).get("source") == "measured",
                    10.0), table_view(stack).get("room")
    room_c = table_view(stack)["room"]["celsius"]
    assert abs(room_c - stack.cfg.plant.room_c) < 1.0
    page = client.get("/tables/table0")
    assert re.search(r'id="room">Room: measured [0-9.]+ °C<', page.text), page.text[:2000]

# --- users, secrets, the CLI -----------------------------------------------------------------

def test_first_user_and_secret_key(tmp_path: Path) -> None:
    store = UserStore(tmp_path / "data" / "users.toml")
    password = ensure_first_user(store)
    assert password and len(password) >= 12
    assert ensure_first_user(store) is None
    assert store.verify("therapist", password) and not store.verify("therapist", "x" * 9)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert PASSWORD not in store.path.read_text() and password not in store.path.read_text()
    key = load_secret_key(tmp_path / "data")
    assert len(key) == 32 and load_secret_key(tmp_path / "data") == key
    assert stat.S_IMODE((tmp_path / "data" / "dashboard_secret").stat().st_mode) == 0o600


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    ap = argparse.ArgumentParser(prog="hydrotherm")
    ap.add_argument("--config")
    sub = ap.add_subparsers(dest="command", required=True)
    dash_cli.register(sub)
    args = ap.parse_args(argv)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return args.func(args)


def test_set_password_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    d = str(tmp_path)
    rc = run_cli(["dashboard", "set-password", "bob", "--data-dir", d, "--password-stdin"],
                 monkeypatch, "a long password\n")
    assert rc == 0 and "password set for bob" in capsys.readouterr().out
    store = UserStore(tmp_path / "users.toml")
    assert store.verify("bob", "a long password")
    rc = run_cli(["dashboard", "set-password", "bob", "--data-dir", d, "--password-stdin"],
                 monkeypatch, "short\n")
    err = capsys.readouterr().err
    assert rc == 2 and "at least 8 characters" in err and "Traceback" not in err
    rc = run_cli(["dashboard", "set-password", "bob", "--data-dir", d, "--password-stdin"],
                 monkeypatch, "")
    assert rc == 2 and "at least 8" in capsys.readouterr().err
    assert store.verify("bob", "a long password")  # unchanged by the refusals
    rc = run_cli(["dashboard", "set-password", "no spaces", "--data-dir", d,
                  "--password-stdin"], monkeypatch, "a long password\n")
    assert rc == 2 and "user name" in capsys.readouterr().err
    typed = iter(["another password", "another password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert run_cli(["dashboard", "set-password", "bob", "--data-dir", d], monkeypatch) == 0
    assert store.verify("bob", "another password")
    typed = iter(["one password", "other password"])
    assert run_cli(["dashboard", "set-password", "bob", "--data-dir", d], monkeypatch) == 2
    assert "differ" in capsys.readouterr().err


def test_serve_with_waitress(stack: LocalStack, tmp_path: Path) -> None:
    """``serve`` end to end: first-user password printed once, waitress on a free port,
    /healthz answers, a clean stop."""
    out = io.StringIO()
    stop = threading.Event()
    started: list[Any] = []
    rc: list[int] = []
    t = threading.Thread(target=lambda: rc.append(serve(
        stack.cfg, broker_url=stack.broker_url, host="127.0.0.1", port=0,
        data_dir=tmp_path, out=out, stop=stop, ready=started.append)), daemon=True)
    t.start()
    try:
        assert wait_for(lambda: started, 10.0)
        url = started[0].url
        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
            assert resp.status == 200 and json.loads(resp.read())["broker"] is True
        with urllib.request.urlopen(url + "/login", timeout=5) as resp:
            assert resp.headers["Server"] == "hydrotherm-dashboard"
    finally:
        stop.set()
        t.join(15)
    assert rc == [0]
    text = out.getvalue()
    assert "created dashboard user 'therapist' with password: " in text
    assert "dashboard on http://127.0.0.1:" in text and "dashboard stopped" in text
    assert (tmp_path / "users.toml").exists() and (tmp_path / "dashboard_secret").exists()


CLI_MAIN = """
import argparse, sys
from dashboard import cli
ap = argparse.ArgumentParser(prog="hydrotherm")
ap.add_argument("--config")
cli.register(ap.add_subparsers(dest="command", required=True))
args = ap.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def test_dashboard_serve_command_runs_until_sigterm(stack: LocalStack, tmp_path: Path) -> None:
    """``hydrotherm dashboard serve`` as its own process (the way ``register`` wires it):
    prints the first password and the URL, serves, and exits 0 on SIGTERM."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_MAIN, "dashboard", "serve", "--port", str(port),
         "--broker", stack.broker_url, "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "created dashboard user 'therapist' with password: " in first
        password = first.rsplit(": ", 1)[1].strip()
        proc.stdout.readline()  # where the password is stored
        assert f"dashboard on http://127.0.0.1:{port}" in proc.stdout.readline()
        assert UserStore(tmp_path / "users.toml").verify("therapist", password)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "dashboard stopped" in out
    bad = subprocess.run([sys.executable, "-c", CLI_MAIN, "dashboard", "serve", "--broker",
                          "http://nope", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "mqtt://" in bad.stderr and "Traceback" not in bad.stderr


def test_stream_over_waitress_ends_when_the_browser_goes_away(
        stack: LocalStack, users: UserStore) -> None:
    """Through the real server: chunks arrive as they happen (no buffering), and a client
    that disconnects frees its queue and its thread at the next write."""
    import http.client

    from dashboard.server import DashboardServer

    a = create_app(stack.cfg, stack.fleet, users, secret_key=SECRET, heartbeat_s=0.5)
    server = DashboardServer(a, "127.0.0.1", 0, threads=8).start()
    dash = a.extensions["hydrotherm"]
    try:
        c = a.test_client()
        login(c)
        cookie = c.get_cookie("hydrotherm_session").value
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/api/tables/table0/stream",
                     headers={"Cookie": f"hydrotherm_session={cookie}"})
        resp = conn.getresponse()
        assert resp.status == 200 and resp.getheader("Content-Type").startswith(
            "text/event-stream")
        t0 = time.monotonic()
        lines = []
        while not any(line.startswith(b"id: ") for line in lines):
            lines.append(resp.readline())
        assert time.monotonic() - t0 < 5.0  # a live event, flushed on its own
        assert dash.broadcaster.clients == 1
        resp.close()  # the browser goes away: its socket closes
        conn.close()
        assert wait_for(lambda: dash.broadcaster.clients == 0, 5.0)
    finally:
        server.stop()
    assert dash.broadcaster.closed.is_set()


def test_a_trip_that_needs_service_is_not_offered_for_reset() -> None:
    from dashboard.present import present_cushion

    cfg = Config()
    base = {"cushion": 1, "water_c": {"estimate": 34.2}, "setpoint_c": 37.0, "heat_on": True,
            "output": 0.0, "requested": 0.0, "ready_in_s": 900.0, "alarms": []}
    welded = {"reason": "rise_while_off", "detail": "welded relay?", "at": 0.0,
              "flags": [], "service_only": True, "service_why": "a relay may be welded on"}
    stale = {"reason": "stale_telemetry", "detail": "", "at": 0.0, "flags": [],
             "service_only": False, "service_why": None}
    blocked = {"state": "blocked", "text": "Cannot heat: Safety trip", "hvac_action": "off",
               "blocked_by": [{"reason": "tripped: rise_while_off", "text": "Safety trip"}]}
    c = present_cushion(cfg, {**base, "trips": [welded], "heat_state": blocked}, usable=True)
    assert not c["can_reset"] and "Reset is not offered here" in c["reset_note"]
    [t] = c["trips"]
    assert t["service"] and t["title"].startswith("Call service: ")
    assert "a relay may be welded on" in t["text"]
    assert c["action_text"] == "Cannot heat" and c["ready_text"] == ""
    both = present_cushion(cfg, {**base, "trips": [welded, stale]}, usable=True)
    assert both["can_reset"] and "Call service" in both["reset_note"]
    plain = present_cushion(cfg, {**base, "trips": [stale]}, usable=True)
    assert plain["can_reset"] and plain["reset_note"] == ""
    assert not plain["trips"][0]["title"].startswith("Call service")
