"""The controller on MQTT, against Debian's Mosquitto and the embedded amqtt broker.

Tests taking the ``broker`` or ``table`` fixture run once per broker.  Everything is real
time on loopback: a simulated board on a pty, the real link, controller and bridge, and
real paho clients as consumers.  The Hypothesis properties at the end call the bridge's
command handler in-process, with paho message objects, so they can run many examples.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from controller.eventlog import EventLog
from controller.mqtt.bridge import MqttBridge
from controller.mqtt.client import parse_broker_url
from controller.mqtt.fleet import FleetClient
from controller.mqtt.topics import COMMANDS, QUERIES, VALUES, Topics
from controller.service import Controller
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import MqttConfig
from tests.test_cli import EXE

pytest.register_assert_rewrite("tests.mqtt_fixtures")
from tests.mqtt_fixtures import Recorder, Table, table_config, wait_for  # noqa: E402

pytest_plugins = ["tests.mqtt_fixtures"]

DEFAULT_SETPOINT = 37.0


def cmd(actor: str = "tester", **fields: Any) -> dict[str, Any]:
    return {"actor": actor, "request_id": uuid.uuid4().hex[:12], **fields}


def send(rec: Recorder, table: Table, name: str, body: dict[str, Any] | bytes | str,
         timeout_s: float = 5.0, **publish_kw: Any) -> dict[str, Any]:
    """Publish a command (QoS 1) and return the next reply on the result topic."""
    mark = rec.mark()
    payload = json.dumps(body) if isinstance(body, dict) else body
    rec.publish(table.topics.command(name), payload, qos=1, **publish_kw)
    rid = body.get("request_id") if isinstance(body, dict) else None
    if len(payload) > table.cfg.mqtt.command_max_bytes or publish_kw.get("retain") \
            or not isinstance(rid, str) or len(rid) > 64:
        rid = None  # refused unread, or an unusable id: the reply carries none
    got = rec.wait_topic(table.topics.result,
                         lambda m: rid is None or m.json().get("request_id") == rid,
                         timeout_s, after=mark)
    assert got is not None, f"no reply to {name} {body!r}"
    return got.json()


def healthy_estimate(table: Table, timeout_s: float = 10.0) -> None:
    """Wait until the controller has a water estimate (a control cycle on a good link)."""
    assert wait_for(lambda: table.controller.snapshot()["cushions"][0]["water_c"]["estimate"]
                    is not None, timeout_s), "no water estimate"


# --- publishing ----------------------------------------------------------------------------

def test_status_and_state_are_retained_for_a_late_subscriber(table: Table, recorder) -> None:
    healthy_estimate(table)
    t = table.topics
    # published after the estimate appeared (a changed state goes out within 0.1 s)
    assert wait_for(lambda: table.bridge.counters["state_published"] >= 2, 5)
    rec = recorder(table.url, [t.status, t.state, t.readings])
    status = rec.wait_topic(t.status)
    assert status is not None and status.retain and status.text == "online"
    readings = rec.wait_topic(t.readings)
    assert readings is not None and readings.retain and readings.text == "online"
    first = rec.wait_topic(t.state)
    assert first is not None and first.retain, "state must be retained"
    state = rec.wait_topic(t.state, lambda m: m.json()["cushions"][0]["water_c"]["estimate"]
                           is not None).json()
    assert state["table_id"] == "table0"
    assert state["link"]["healthy"] is True and state["link"]["state"] == "connected"
    counters = state["link"]["counters"]
    assert counters["frames_rx"] > 0 and counters["frames_tx"] > 0 and "crc_errors" in counters
    board = state["board"]
    assert board["serial"] and board["firmware"] and board["protocol"]
    c0 = state["cushions"][0]
    for key in ("water_c", "sensor_status", "setpoint_c", "heat_on", "output", "requested",
                "ready_in_s", "trips", "alarms"):
        assert key in c0, key
    assert set(c0["water_c"]) == {"primary", "redundant", "estimate"}
    assert isinstance(c0["water_c"]["primary"], float)
    assert isinstance(c0["water_c"]["redundant"], float)
    assert c0["setpoint_c"] == DEFAULT_SETPOINT and c0["heat_on"] is True
    assert state["cushions"][1]["heat_on"] is False
    # and it keeps coming: "on change and at least every state_interval_s"
    n = rec.mark()
    assert rec.wait_topic(t.state, timeout_s=table.cfg.mqtt.state_interval_s + 2, after=n)


def test_per_value_topics(table: Table, recorder) -> None:
    healthy_estimate(table)
    t = table.topics
    rec = recorder(table.url, [f"{t.base}/cushion/+/+", t.result])
    want = {t.value(i, v) for i in (0, 1) for v in VALUES}
    assert wait_for(lambda: want <= {m.topic for m in rec.messages}, 5), \
        want - {m.topic for m in rec.messages}
    assert all(rec.on(topic)[0].retain for topic in want), "per-value topics are retained"

    def value(i: int, name: str) -> str:
        got = rec.wait_topic(t.value(i, name), lambda m: m.text != "None", 5)
        assert got is not None, (i, name)
        return got.text

    w = value(0, "water_c")
    assert 30 < float(w) < 40 and len(w.split(".")[1]) == 2
    assert value(0, "setpoint_c") == "37.0"
    assert value(0, "heat") == "ON" and value(1, "heat") == "OFF"
    assert value(0, "mode") == "heat" and value(1, "mode") == "off"
    assert value(0, "action") in ("heating", "idle") and value(1, "action") == "off"
    assert value(0, "output_pct").isdigit()
    ready = rec.latest(t.value(0, "ready_in_min")).text
    assert ready == "None" or ready.isdigit()
    assert rec.latest(t.value(1, "ready_in_min")).text == "None"  # heat off: no estimate
    assert value(0, "trip") == "none" and value(0, "problem") == "OFF"
    assert value(0, "trip_reason") == "none" and value(0, "reset_allowed") == "OFF"
    assert value(0, "alarm") == "none"
    assert rec.wait_topic(t.value(0, "heat_state"),
                          lambda m: m.text in ("heating", "ready", "holding"), 5)
    assert rec.latest(t.value(1, "heat_state")).text == "off"
    detail = json.loads(value(1, "heat_state_detail"))
    assert detail["blocked_by"] == ["heat off"] and detail["text"] == "Heating off"
    # no topic ever carries the word "unavailable" (Home Assistant logs an error for it)
    assert not [m for m in rec.messages if m.text == "unavailable"]
    # a change shows on its topic
    mark = rec.mark()
    assert send(rec, table, "setpoint", cmd(cushion=1, value=38.4))["ok"]
    assert rec.wait_topic(t.value(1, "setpoint_c"), lambda m: m.text == "38.4", 5, after=mark)


def test_readings_unavailable_while_the_link_is_down(table: Table, recorder) -> None:
    healthy_estimate(table)
    t = table.topics
    url = table.url
    rec = recorder(url, [t.readings, t.state, f"{t.base}/cushion/+/water_c",
                         f"{t.base}/cushion/+/output_pct"])
    assert rec.wait_topic(t.readings, lambda m: m.text == "online")
    mark = rec.mark()
    assert table.fault("unplug")["ok"]
    assert rec.wait_topic(t.readings, lambda m: m.text == "offline", 10, after=mark), \
        "readings never went offline"
    for i in (0, 1):
        assert rec.wait_topic(t.value(i, "water_c"), lambda m: m.text == "None", 5,
                              after=mark)
        assert rec.wait_topic(t.value(i, "output_pct"), lambda m: m.text == "None", 5,
                              after=mark)
    state = rec.wait_topic(t.state, lambda m: not m.json()["link"]["healthy"], 5, after=mark)
    assert state is not None
    for c in state.json()["cushions"]:
        assert c["water_c"] == {"primary": None, "redundant": None, "estimate": None}
        assert c["output"] is None and c["ready_in_s"] is None
        assert c["sensor_status"] == {"primary": "unavailable", "redundant": "unavailable"}
        assert c["heat_state"]["state"] == "blocked"
        assert c["heat_state"]["blocked_by"][0]["reason"] == "link down"
    # a consumer arriving during the outage reads "offline", not old numbers
    late = recorder(url, [t.readings, t.value(0, "water_c")])
    assert late.wait_topic(t.readings).text == "offline"
    assert late.wait_topic(t.value(0, "water_c")).text == "None"
    # plugged back in: numbers return
    mark = rec.mark()
    assert table.fault("unplug", clear=True)["ok"]
    assert rec.wait_topic(t.readings, lambda m: m.text == "online", 15, after=mark)
    assert rec.wait_topic(t.value(0, "water_c"), lambda m: m.text != "None", 10,
                          after=mark)


def _write_config(path: Path, **mqtt_over: Any) -> Path:
    lines = ["[plant]", "initial_water_c = 36.0", "[mqtt]", "keepalive_s = 5",
             "min_interval_s = 0.1"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in mqtt_over.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_last_will_on_a_killed_controller_and_offline_on_a_clean_stop(
        broker, sim_servers, recorder, tmp_path: Path) -> None:
    srv = sim_servers(1)
    conf = _write_config(tmp_path / "c.toml")
    topics = Topics("hydrotherm", "proc")
    rec = recorder(broker.url, [topics.status])

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [EXE, "--config", str(conf), "run", "--port", srv.ports[0].path, "--broker",
             broker.url_as("table-proc"), "--table-id", "proc",
             "--data-dir", str(tmp_path / "data"),
             "--interval", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    for how in (signal.SIGTERM, signal.SIGKILL):
        mark = rec.mark()
        proc = start()
        try:
            assert rec.wait_topic(topics.status, lambda m: m.text == "online", 20, after=mark), \
                "controller never came online"
            mark = rec.mark()
            proc.send_signal(how)
            proc.wait(15)
            # SIGKILL: the broker sees the socket close (or, at worst, the keep-alive of 5 s
            # lapse: 1.5 x 5 s) and publishes the will; SIGTERM: the controller says it
            got = rec.wait_topic(topics.status, lambda m: m.text == "offline", 10, after=mark)
            assert got is not None, f"no offline after {how.name}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            for f in (proc.stdout, proc.stderr):
                if f:
                    f.close()
    # the offline is retained: a later consumer reads it
    late = recorder(broker.url, [topics.status])
    got = late.wait_topic(topics.status)
    assert got is not None and got.retain and got.text == "offline"


def test_in_process_stop_says_offline(table: Table, recorder) -> None:
    rec = recorder(table.url, [table.topics.status])
    assert rec.wait_topic(table.topics.status, lambda m: m.text == "online")
    mark = rec.mark()
    table.stop()
    assert rec.wait_topic(table.topics.status, lambda m: m.text == "offline", 5, after=mark)


# --- commands ------------------------------------------------------------------------------

def test_commands_accepted_and_logged(table: Table, recorder) -> None:
    t = table.topics
    rec = recorder(table.url, [t.result, t.state, t.events])
    reply = send(rec, table, "setpoint", cmd(actor="alice", cushion=0, value=38.5,
                                             sent_at=time.time()))
    assert reply["ok"] is True and reply["command"] == "setpoint"
    assert reply["cushion"] == 0 and reply["setpoint_c"] == 38.5
    assert reply["request_id"]
    assert rec.wait_topic(t.state, lambda m: m.json()["cushions"][0]["setpoint_c"] == 38.5, 5)
    assert table.controller.cushions[0].setpoint_c == 38.5
    ev = rec.wait_topic(t.events, lambda m: m.json()["kind"] == "setpoint", 5)
    assert ev is not None and ev.json()["actor"] == "mqtt:dashboard/alice"
    assert ev.json()["table_id"] == "table0"
    assert send(rec, table, "heat", cmd(actor="alice", cushion=1, on=True))["ok"]
    assert rec.wait_topic(t.state, lambda m: m.json()["cushions"][1]["heat_on"], 5)
    logged = [(e.kind, e.actor, e.cushion) for e in table.events()]
    # the account (from the ACL-guarded topic) and the person the dashboard vouches for
    assert ("setpoint", "mqtt:dashboard/alice", 0) in logged
    assert ("heat", "mqtt:dashboard/alice", 1) in logged


def refusals() -> list[tuple[str, str, Any, str]]:
    """(label, command, payload, a phrase the reason must contain)."""
    now = time.time()
    return [
        ("above range", "setpoint", cmd(cushion=0, value=41), "outside"),
        ("below range", "setpoint", cmd(cushion=0, value=29), "outside"),
        ("NaN-ish string", "setpoint", cmd(cushion=0, value="38"), "must be a number"),
        ("malformed JSON", "setpoint", b'{"cushion": 0, "value": 38', "not JSON"),
        ("not UTF-8", "setpoint", b"\xff\xfe\x00", "not JSON"),
        ("JSON array", "setpoint", b"[0, 38]", "must be a JSON object"),
        ("JSON number", "setpoint", b"38", "must be a JSON object"),
        ("unknown command", "boil", cmd(cushion=0, value=38), "unknown command"),
        ("unknown field", "setpoint", cmd(cushion=0, value=38, colour="red"), "unknown field"),
        ("missing actor", "setpoint", {"cushion": 0, "value": 38, "request_id": "no-actor"},
         "actor"),
        ("blank actor", "setpoint", cmd(actor="  ", cushion=0, value=38), "actor"),
        ("missing value", "setpoint", cmd(cushion=0), "needs cushion and value"),
        ("float cushion", "setpoint", cmd(cushion=0.0, value=38), "cushion must be"),
        ("bool cushion", "heat", cmd(cushion=True, on=False), "cushion must be"),
        ("cushion 2", "setpoint", cmd(cushion=2, value=38), "cushion must be"),
        ("heat not bool", "heat", cmd(cushion=0, on="off"), "true or false"),
        ("oversized", "setpoint", cmd(cushion=0, value=38, pad="x" * 1100), "byte limit"),
        ("stale", "setpoint", cmd(cushion=0, value=38, sent_at=now - 3600), "stale"),
        ("from the future", "setpoint", cmd(cushion=0, value=38, sent_at=now + 3600),
         "future"),
        ("sent_at not a number", "setpoint", cmd(cushion=0, value=38, sent_at="now"), "sent_at"),
        ("request_id too long", "setpoint", {**cmd(cushion=0, value=38), "request_id": "r" * 65},
         "request_id"),
    ]


def test_commands_refused_with_reasons(table: Table, recorder) -> None:
    t = table.topics
    rec = recorder(table.url, [t.result])
    refused_before = len(table.events("command_refused"))
    cases = refusals()
    for label, name, body, reason in cases:
        reply = send(rec, table, name, body)
        assert reply["ok"] is False, label
        assert reason in reply["error"], (label, reply["error"])
        if isinstance(body, dict) and isinstance(body.get("request_id"), str) \
                and len(body["request_id"]) <= 64 and label != "oversized":
            assert reply["request_id"] == body["request_id"], label
    assert [c.setpoint_c for c in table.controller.cushions] == [DEFAULT_SETPOINT] * 2
    assert [c.heat_on for c in table.controller.cushions] == [True, False]
    refused = table.events("command_refused")
    assert len(refused) - refused_before == len(cases)
    assert all(e.reason for e in refused)


def test_retained_command_is_ignored_and_cleared(broker, table_factory, recorder) -> None:
    topics = Topics("hydrotherm", "retained")
    rec = recorder(broker.url, [topics.result])
    # someone leaves a retained setpoint on the broker before the controller connects
    rec.publish(topics.command("setpoint"), json.dumps(cmd(cushion=0, value=39.5,
                                                           request_id="ret-1")),
                qos=1, retain=True)
    table = table_factory(broker.url, table_id="retained")
    reply = rec.wait_topic(topics.result, timeout_s=5)
    assert reply is not None and reply.json()["ok"] is False
    assert "retained" in reply.json()["error"]
    assert reply.json()["command"] == "setpoint"
    time.sleep(0.3)  # anything that would act on it has had its chance
    assert table.controller.cushions[0].setpoint_c == DEFAULT_SETPOINT
    assert any("retained" in (e.reason or "") for e in table.events("command_refused"))
    # the retained copy is gone: a new subscriber gets nothing on the command topic
    probe = recorder(broker.url, [topics.command("setpoint")])
    assert probe.wait_topic(topics.command("setpoint"), timeout_s=0.5) is None
    # and clearing it did not produce a second refusal (empty payloads are not commands)
    assert len(rec.on(topics.result)) == 1


def test_reset_over_mqtt(table: Table, recorder) -> None:
    t = table.topics
    healthy_estimate(table)
    rec = recorder(table.url, [t.result, t.value(0, "problem"), t.state])
    assert table.fault("sensor_open", cushion=0, sensor="primary")["ok"]
    assert rec.wait_topic(t.value(0, "problem"), lambda m: m.text == "ON", 10), "no trip"
    trip_state = rec.wait_topic(t.state, lambda m: m.json()["cushions"][0]["trips"], 5)
    assert trip_state.json()["cushions"][0]["trips"][0]["reason"] == "sensor_open"
    # the cause persists: refused, with the reason
    reply = send(rec, table, "reset", cmd(actor="nurse", cushion=0), timeout_s=8)
    assert reply["ok"] is False and reply["command"] == "reset"
    assert "sensor_open" in reply["error"] and reply["refused"]
    assert table.controller.supervisor.trips
    # cause cleared: accepted
    assert table.fault("sensor_open", cushion=0, sensor="primary", clear=True)["ok"]
    time.sleep(0.2)
    reply = send(rec, table, "reset", cmd(actor="nurse", cushion=0), timeout_s=8)
    assert reply["ok"] is True and "sensor_open" in reply["cleared"]
    assert rec.wait_topic(t.value(0, "problem"), lambda m: m.text == "OFF", 5)
    kinds = [(e.kind, e.actor) for e in table.events()]
    assert ("trip_reset", "mqtt:dashboard/nurse") in kinds


def test_a_trip_that_needs_service_is_refused_over_mqtt(table: Table, recorder) -> None:
    """Issue 9 part 3: a cut-out (a service-only board flag) cannot be reset over MQTT;
    the state says so per trip, and the board's flag is not even asked to clear."""
    t = table.topics
    healthy_estimate(table)
    rec = recorder(table.url, [t.result, t.state])
    with table.server.lock:
        table.server.tables[table.index].board.latch(0x80)  # CUTOUT_1
    st = rec.wait_topic(t.state, lambda m: m.json()["service_needed"], 10)
    assert st, "no state with service_needed"
    [trip] = st.json()["cushions"][1]["trips"]
    assert trip["reason"] == "board_fault" and trip["flags"] == ["cutout_1"]
    assert trip["service_only"] is True and "cut-out" in trip["service_why"]
    reply = send(rec, table, "reset", cmd(actor="nurse"), timeout_s=8)
    assert reply["ok"] is False and reply["cleared"] == []
    assert "only a service person may reset this" in reply["error"]
    assert reply["refused"][0]["service_only"] is True
    assert table.sim_status()["faults"] & 0x80 and not table.sim_status()["relay_closed"]
    assert ("reset_refused", "mqtt:dashboard/nurse") in [(e.kind, e.actor) for e in table.events()]
    # the service person's reset (here in-process) clears it; the relay closes again
    done: list[Any] = []
    table.controller.request_reset("service:Sam", None, done.append,
                                   service_reason="plate checked, cut-out closed")
    assert wait_for(lambda: done, 5) and done[0].ok
    assert rec.wait_topic(t.state, lambda m: not m.json()["service_needed"], 10)


# --- brokers -------------------------------------------------------------------------------

def test_broker_restart_survived_and_state_republished(mosquitto, table_factory,
                                                       recorder) -> None:
    table = table_factory(mosquitto.url, mqtt={"reconnect_max_s": 2.0})
    t = table.topics
    rec = recorder(mosquitto.url, [t.result])
    assert send(rec, table, "setpoint", cmd(cushion=0, value=39.0))["ok"]
    rec.close()
    board = table.server.tables[0].board
    mosquitto.stop()
    assert wait_for(lambda: not table.bridge.connected.is_set(), 5)
    # control goes on without the broker: the board keeps getting fresh heater commands
    rx0 = table.controller.link.counters.as_dict()
    time.sleep(1.5)
    assert table.controller.link.healthy
    assert table.controller.link.counters.as_dict() != rx0
    assert board.applied(0) > 0, "heater stopped while the broker was down"
    assert table.controller.cushions[0].setpoint_c == 39.0
    # an event while disconnected (queued, delivered after the reconnect)
    table.controller.set_setpoint(1, 36.5, "local")
    published = table.bridge.counters["state_published"]
    mosquitto.start()  # same port, persistence off: the broker has nothing retained
    assert table.bridge.wait_connected(10), "no reconnect"
    # once the bridge has republished, a newcomer must find everything retained
    assert wait_for(lambda: table.bridge.counters["state_published"] > published, 5)
    time.sleep(0.3)
    late = recorder(mosquitto.url_as("observer"), [f"{t.base}/#", "homeassistant/#"])
    assert late.wait_topic(t.status, lambda m: m.retain and m.text == "online", 5)
    state = late.wait_topic(t.state, lambda m: m.retain, 5)
    assert state is not None
    cushions = state.json()["cushions"]
    assert cushions[0]["setpoint_c"] == 39.0 and cushions[1]["setpoint_c"] == 36.5
    assert late.wait_topic(t.readings, lambda m: m.retain, 5)
    want = {t.value(i, v) for i in (0, 1) for v in VALUES}
    assert wait_for(lambda: want <= {m.topic for m in late.messages if m.retain}, 5)
    assert wait_for(lambda: len({m.topic for m in late.messages
                                 if m.topic.startswith("homeassistant/") and m.retain})
                    == N_DISCOVERY,
                    5), "discovery not republished"
    assert table.bridge.counters["connects"] >= 2


def test_embedded_broker_sends_only_the_retained_messages_subscribed_to(
        embedded_broker, table_factory, recorder) -> None:
    """amqtt 0.12.1 would send a new client the retained messages of every topic filter any
    client ever subscribed to; controller/mqtt/broker.py works around it."""
    table = table_factory(embedded_broker.url)
    t = table.topics
    first = recorder(embedded_broker.url_as("observer"), [t.status, "homeassistant/#"])
    assert first.wait_topic(t.status)
    first.close()
    second = recorder(embedded_broker.url_as("observer"), [t.readings])
    assert second.wait_topic(t.readings, timeout_s=5)
    time.sleep(0.3)
    assert {m.topic for m in second.messages} == {t.readings}


def test_wrong_credentials_refused_right_ones_from_the_environment_work(
        mosquitto_factory, table_factory, recorder, monkeypatch) -> None:
    m = mosquitto_factory(users={"table": "s3cret", "watcher": "w4tch"})
    host = f"{m.host}:{m.port}"
    watcher = recorder(f"mqtt://{host}", ["hydrotherm/#"], username="watcher", password="w4tch")
    fast = {"reconnect_max_s": 1.0}
    bad = table_factory(f"mqtt://table:wrong@{host}", table_id="bad", mqtt=fast,
                        wait_connected=False)
    assert wait_for(lambda: "refused" in bad.bridge.last_error, 10), bad.bridge.last_error
    assert not bad.bridge.connected.is_set()
    # anonymous is refused too
    anon = table_factory(f"mqtt://{host}", table_id="anon", mqtt=fast, wait_connected=False)
    assert wait_for(lambda: "refused" in anon.bridge.last_error, 10)
    # right credentials, from the environment (not on the command line)
    monkeypatch.setenv("HYDROTHERM_MQTT_USERNAME", "table")
    monkeypatch.setenv("HYDROTHERM_MQTT_PASSWORD", "s3cret")
    import os

    good = table_factory(f"mqtt://{host}", table_id="good", env=dict(os.environ))
    assert good.bridge.address.username == "table"
    assert "s3cret" not in good.bridge.address.display()
    assert watcher.wait_topic("hydrotherm/good/status", lambda m: m.text == "online", 5)
    assert watcher.wait_topic("hydrotherm/good/state", timeout_s=5)
    assert not [x for x in watcher.messages if x.topic.split("/")[1] in ("bad", "anon")], \
        "a refused client published"


def test_mqtt5_request_response(mosquitto, table_factory, recorder) -> None:
    table = table_factory(mosquitto.url, mqtt={"protocol": "5"})
    # under the table's own subtree: the only place its account may publish (docs/mqtt.md)
    reply_topic = f"{table.topics.base}/reply/{uuid.uuid4().hex[:8]}"
    rec = recorder(mosquitto.url, [reply_topic, table.topics.result], protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = reply_topic
    props.CorrelationData = b"\x00corr-42"
    rec.publish(table.topics.command("setpoint"),
                json.dumps({"cushion": 0, "value": 38.0, "actor": "v5"}),
                properties=props)
    got = rec.wait_topic(reply_topic, timeout_s=5)
    assert got is not None, "no reply on the ResponseTopic"
    assert got.json()["ok"] is True and got.json()["setpoint_c"] == 38.0
    assert got.properties.CorrelationData == b"\x00corr-42"
    # refusals go the same way
    props.CorrelationData = b"second"
    mark = rec.mark()
    rec.publish(table.topics.command("setpoint"),
                json.dumps({"cushion": 0, "value": 45, "actor": "v5"}), properties=props)
    got = rec.wait_topic(reply_topic, timeout_s=5, after=mark)
    assert got is not None and got.json()["ok"] is False and "outside" in got.json()["error"]
    assert got.properties.CorrelationData == b"second"
    # a request with a ResponseTopic is answered there only
    assert rec.on(table.topics.result) == []


# --- Home Assistant ------------------------------------------------------------------------

_COMMON_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "device", "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon",
    "json_attributes_template", "json_attributes_topic", "name", "object_id", "origin",
    "payload_available", "payload_not_available", "qos", "unique_id", "default_entity_id",
}
#: Home Assistant's documented MQTT discovery keys (MQTT climate, binary sensor, sensor)
HA_KEYS = {
    "climate": _COMMON_KEYS | {
        "action_template", "action_topic", "current_humidity_template",
        "current_humidity_topic", "current_temperature_template",
        "current_temperature_topic", "fan_mode_command_template", "fan_mode_command_topic",
        "fan_mode_state_template", "fan_mode_state_topic", "fan_modes", "initial",
        "max_humidity", "max_temp", "min_humidity", "min_temp", "mode_command_template",
        "mode_command_topic", "mode_state_template", "mode_state_topic", "modes",
        "optimistic", "payload_off", "payload_on", "power_command_template",
        "power_command_topic", "precision", "preset_mode_command_template",
        "preset_mode_command_topic", "preset_mode_state_topic",
        "preset_mode_value_template", "preset_modes", "retain", "swing_mode_command_template",
        "swing_mode_command_topic", "swing_mode_state_template", "swing_mode_state_topic",
        "swing_modes", "target_humidity_command_template", "target_humidity_command_topic",
        "target_humidity_state_template", "target_humidity_state_topic",
        "temperature_command_template", "temperature_command_topic",
        "temperature_high_command_template", "temperature_high_command_topic",
        "temperature_high_state_template", "temperature_high_state_topic",
        "temperature_low_command_template", "temperature_low_command_topic",
        "temperature_low_state_template", "temperature_low_state_topic",
        "temperature_state_template", "temperature_state_topic", "temperature_unit",
        "temp_step", "value_template"},
    "binary_sensor": _COMMON_KEYS | {
        "device_class", "expire_after", "force_update", "off_delay", "payload_off",
        "payload_on", "state_topic", "value_template"},
    "sensor": _COMMON_KEYS | {
        "device_class", "expire_after", "force_update", "last_reset_value_template",
        "options", "state_class", "state_topic", "suggested_display_precision",
        "unit_of_measurement", "value_template"},
    "button": _COMMON_KEYS | {
        "command_template", "command_topic", "device_class", "payload_press", "retain"},
}
#: per cushion: climate, problem, output, ready, water, heat state, trip reason, reset
#: button; per table: the last refusal
N_DISCOVERY = 2 * 8 + 1
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer",
               "model", "model_id", "name", "serial_number", "suggested_area", "sw_version",
               "via_device"}
AVAILABILITY_KEYS = {"payload_available", "payload_not_available", "topic", "value_template"}
SENSOR_DEVICE_CLASSES = {"duration", "temperature", "power_factor", "enum", None}


def test_home_assistant_discovery(table: Table, recorder) -> None:
    t = table.topics
    url = table.url_as("homeassistant")  # reads discovery, may publish the .../set topics
    probe = recorder(url, ["homeassistant/#"])  # the broker has all of them ...
    assert wait_for(lambda: len({m.topic for m in probe.messages}) >= N_DISCOVERY, 5)
    rec = recorder(url, ["homeassistant/#", t.result])  # ... so a newcomer gets them retained
    assert wait_for(lambda: len({m.topic for m in rec.messages}) >= N_DISCOVERY, 5)
    time.sleep(0.2)
    configs: dict[str, Any] = {}
    for m in rec.messages:  # the first of each: the retained copy a newcomer receives
        if m.topic.endswith("/config"):
            configs.setdefault(m.topic, m)
    assert len(configs) == N_DISCOVERY, sorted(configs)
    assert all(m.retain for m in configs.values()), "discovery must be retained"
    by_component: dict[str, list[dict[str, Any]]] = {}
    for topic, m in configs.items():
        parts = topic.split("/")
        assert parts[0] == "homeassistant" and len(parts) == 5, topic
        component, node = parts[1], parts[2]
        assert node == "hydrotherm_table0"
        body = m.json()
        assert set(body) <= HA_KEYS[component], (component, set(body) - HA_KEYS[component])
        assert set(body["device"]) <= DEVICE_KEYS
        assert body["device"]["identifiers"] == ["hydrotherm_table0"]
        assert body["device"]["sw_version"], "sw_version in every discovery"
        if "availability" in body:
            assert body["availability_mode"] == "all"
            for a in body["availability"]:
                assert set(a) <= AVAILABILITY_KEYS
            topics = {a["topic"] for a in body["availability"]}
            if component == "button":
                assert topics == {t.status, body["command_topic"].replace("/reset/set",
                                                                          "/reset_allowed")}
            else:
                assert topics == {t.status, t.readings}
        else:
            assert body["availability_topic"] == t.status
        assert body["payload_available"] if "availability" not in body else True
        by_component.setdefault(component, []).append(body)
    assert len(by_component["climate"]) == 2 and len(by_component["binary_sensor"]) == 2
    assert len(by_component["sensor"]) == 2 * 5 + 1 and len(by_component["button"]) == 2
    uids = [b["unique_id"] for bodies in by_component.values() for b in bodies]
    assert len(set(uids)) == N_DISCOVERY
    water = [b for b in by_component["sensor"] if b["unique_id"].endswith("_water")]
    assert [(b["device_class"], b["state_class"], b["unit_of_measurement"]) for b in water] \
        == [("temperature", "measurement", "°C")] * 2
    enums = {b["unique_id"].split("_", 3)[-1]: b for b in by_component["sensor"]
             if b.get("device_class") == "enum"}
    assert set(enums) == {"heat_state", "trip_reason"}
    assert "blocked" in enums["heat_state"]["options"]
    assert {"none", "sensor_open", "board_fault"} <= set(enums["trip_reason"]["options"])
    for i, climate in enumerate(sorted(by_component["climate"], key=lambda b: b["unique_id"])):
        assert climate["min_temp"] == 30 and climate["max_temp"] == 40
        assert climate["temp_step"] == table.cfg.control.setpoint_step_c == 0.1
        assert climate["modes"] == ["heat", "off"]
        assert climate["current_temperature_topic"] == t.value(i, "water_c")
        assert climate["temperature_state_topic"] == t.value(i, "setpoint_c")
        assert climate["mode_state_topic"] == t.value(i, "mode")
        assert climate["action_topic"] == t.value(i, "action")
    for b in by_component["binary_sensor"]:
        assert b["device_class"] == "problem"
        assert (b["payload_on"], b["payload_off"]) == ("ON", "OFF")
    for b in by_component["sensor"]:
        assert b.get("device_class") in SENSOR_DEVICE_CLASSES
    # the climate's command topics drive the table (actor: the homeassistant account)
    c0 = next(b for b in by_component["climate"] if b["unique_id"].endswith("c0_climate"))
    mark = rec.mark()
    rec.publish(c0["temperature_command_topic"], "38.5")
    reply = rec.wait_topic(t.result, timeout_s=5, after=mark)
    assert reply is not None and reply.json()["ok"] and reply.json()["setpoint_c"] == 38.5
    mark = rec.mark()
    rec.publish(c0["mode_command_topic"], "off")
    assert rec.wait_topic(t.result, lambda m: m.json().get("heat_on") is False, 5, after=mark)
    mark = rec.mark()
    rec.publish(c0["mode_command_topic"], "cool")
    bad = rec.wait_topic(t.result, timeout_s=5, after=mark)
    assert bad is not None and not bad.json()["ok"] and "heat or off" in bad.json()["error"]
    assert table.controller.cushions[0].heat_on is False
    assert ("setpoint", "mqtt:homeassistant") in [(e.kind, e.actor) for e in table.events()]
    # Home Assistant restarts: discovery comes again
    mark = rec.mark()
    rec.publish("homeassistant/status", "online")
    assert wait_for(lambda: len({m.topic for m in rec.messages[mark:]
                                 if m.topic.endswith("/config")}) == N_DISCOVERY, 5), \
        "discovery not re-sent on homeassistant/status online"


def test_home_assistant_sees_a_blocked_cushion_and_can_reset_it(table: Table,
                                                                recorder) -> None:
    """What Home Assistant reads for a tripped cushion: hvac_action ``off`` (never
    ``idle``), the heat state and trip reason, the reset button offered; a press while
    the cause persists is refused and shows on the refusal topic."""
    healthy_estimate(table)
    t = table.topics
    # as Home Assistant's account: the only one that may press its plain ``…/set`` topics
    rec = recorder(table.url_as("homeassistant"),
                   [f"{t.base}/cushion/0/+", t.result, t.refusal])
    assert rec.wait_topic(t.value(0, "heat_state"), lambda m: m.text != "blocked", 5)
    mark = rec.mark()
    assert table.fault("sensor_open", cushion=0, sensor="primary")["ok"]
    for name, want in (("action", "off"), ("heat_state", "blocked"),
                       ("trip_reason", "sensor_open"), ("reset_allowed", "ON"),
                       ("ready_in_min", "None")):
        assert rec.wait_topic(t.value(0, name), lambda m, w=want: m.text == w, 5, after=mark), \
            (name, want, rec.latest(t.value(0, name)))
    detail = json.loads(rec.latest(t.value(0, "heat_state_detail")).text)
    assert detail["blocked_by"] == ["tripped: sensor_open"]
    assert detail["text"].startswith("Cannot heat: Safety trip: Sensor disconnected")
    assert rec.latest(t.value(0, "action")).text != "idle"
    # the button: refused while the sensor is still open, visible as the last refusal
    mark = rec.mark()
    rec.publish(t.value_set(0, "reset"), "PRESS")
    reply = rec.wait_topic(t.result, timeout_s=5, after=mark)
    assert reply is not None and reply.json()["ok"] is False
    assert "sensor_open" in reply.json()["error"]
    refusal = rec.wait_topic(t.refusal, timeout_s=5, after=mark)
    assert refusal is not None
    assert refusal.json()["command"] == "reset" and "sensor_open" in refusal.json()["error"]
    late = recorder(table.url, [t.refusal])
    assert late.wait_topic(t.refusal, lambda m: m.retain, 5), "the refusal is retained"
    # a setpoint Home Assistant may send outside the range is refused and shown too
    mark = rec.mark()
    rec.publish(t.value_set(0, "setpoint_c"), "45")
    refusal = rec.wait_topic(t.refusal, timeout_s=5, after=mark)
    assert refusal is not None and "outside" in refusal.json()["error"]
    assert refusal.json()["actor"] == "mqtt:homeassistant"
    assert rec.wait_topic(t.result, lambda m: "outside" in m.json()["error"], 5, after=mark)
    for bad in ("1_0", "0x20", "nan"):
        mark = rec.mark()
        rec.publish(t.value_set(0, "setpoint_c"), bad)
        r = rec.wait_topic(t.result, timeout_s=5, after=mark)
        assert r is not None and not r.json()["ok"] and "not a number" in r.json()["error"]
        assert repr(bad) in r.json()["error"]
    mark = rec.mark()
    rec.publish(f"{t.base}/cushion/0_0/mode/set", "off")
    r = rec.wait_topic(t.result, timeout_s=5, after=mark)
    assert r is not None and not r.json()["ok"] and "bad cushion" in r.json()["error"]
    # the cause gone, the button resets the trip
    assert table.fault("sensor_open", cushion=0, sensor="primary", clear=True)["ok"]
    ok = False
    for _ in range(5):
        mark = rec.mark()
        rec.publish(t.value_set(0, "reset"), "PRESS")
        r = rec.wait_topic(t.result, timeout_s=5, after=mark)
        if r is not None and r.json()["ok"]:
            ok = True
            break
        time.sleep(0.5)
    assert ok, "reset never accepted"
    assert rec.wait_topic(t.value(0, "reset_allowed"), lambda m: m.text == "OFF", 5)
    assert rec.wait_topic(t.value(0, "heat_state"), lambda m: m.text != "blocked", 5)


# --- fleets --------------------------------------------------------------------------------

def test_fleet_client_sees_every_table(broker, sim_servers, table_factory) -> None:
    srv = sim_servers(2)
    mcfg = MqttConfig()
    fleet = FleetClient(mcfg, parse_broker_url(broker.url, env={})).start()
    late = None
    try:
        assert fleet.wait_connected(5)
        t1 = table_factory(broker.url, table_id="t1", server=srv, index=0)
        t2 = table_factory(broker.url, table_id="t2", server=srv, index=1)
        assert wait_for(lambda: all(fleet.table(i) and fleet.table(i).online
                                    and fleet.table(i).state
                                    and fleet.table(i).state["board"] for i in ("t1", "t2")),
                        5)
        assert fleet.table("t1").state["board"]["serial"] != \
            fleet.table("t2").state["board"]["serial"]
        # a consumer arriving later learns the whole clinic from the retained topics
        late = FleetClient(mcfg, parse_broker_url(broker.url, env={})).start()
        assert wait_for(lambda: set(late.snapshot()) >= {"t1", "t2"} and all(
            v["status"] == "online" and v["state"] for v in late.snapshot().values()), 5)
        reply = late.command("t1", "setpoint", {"cushion": 0, "value": 38.2,
                                                "actor": "reception"})
        assert reply["ok"] is True and reply["setpoint_c"] == 38.2
        assert t1.controller.cushions[0].setpoint_c == 38.2
        assert t2.controller.cushions[0].setpoint_c == DEFAULT_SETPOINT
        assert wait_for(lambda: fleet.table("t1").state["cushions"][0]["setpoint_c"] == 38.2, 5)
        refused = late.command("t2", "setpoint", {"cushion": 0, "value": 45,
                                                  "actor": "reception"})
        assert refused["ok"] is False and "outside" in refused["error"]
        assert any(e["kind"] == "setpoint" for e in fleet.table("t1").events)
        t2.stop()
        assert wait_for(lambda: fleet.table("t2").status == "offline", 5)
        assert fleet.table("t1").online
        nobody = late.command("t2", "setpoint", {"cushion": 0, "value": 38, "actor": "r"},
                              timeout_s=1.0)
        assert nobody["ok"] is False and "offline" in nobody["error"]
    finally:
        fleet.stop()
        if late is not None:
            late.stop()


# --- Hypothesis: command payloads, in-process ---------------------------------------------

class _Harness:
    """A bridge around a controller whose board is never opened; publish() recorded."""

    def __init__(self) -> None:
        cfg = table_config("hyp")
        clock = RealClock()
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url="/nonexistent/hyp")
        self.log = EventLog(None)
        self.controller = Controller(cfg, link, clock, log=self.log)
        self.bridge = MqttBridge(self.controller, cfg, parse_broker_url("mqtt://127.0.0.1:1",
                                                                        env={}))
        self.published: list[tuple[str, bytes, bool]] = []

        def publish(topic: str, payload: Any = None, qos: int = 0, retain: bool = False,
                    properties: Any = None) -> Any:
            data = payload.encode() if isinstance(payload, str) else bytes(payload or b"")
            self.published.append((topic, data, retain))
            return None

        self.bridge.client.publish = publish  # type: ignore[method-assign]
        self.topics = self.bridge.topics

    def deliver(self, topic: str, payload: bytes, retain: bool = False) -> list[dict]:
        """Hand one message to the bridge; return the replies it published."""
        self.published.clear()
        self.controller._pending_reset = None  # noqa: SLF001 - a deferred reset from before
        msg = mqtt.MQTTMessage(topic=topic.encode())
        msg.payload = payload
        msg.retain = retain
        msg.qos = 1
        self.bridge._handle_command(msg)  # noqa: SLF001 - raising here is the failure
        return [json.loads(p) for t, p, _ in self.published if t == self.topics.result]

    def settings(self) -> tuple[Any, ...]:
        return tuple((c.setpoint_c, c.heat_on) for c in self.controller.cushions)


@pytest.fixture(scope="module")
def hyp() -> _Harness:
    return _Harness()


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
_json = st.recursive(_json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=10), kids, max_size=4)),
    max_leaves=10)
_field_names = st.sampled_from(["cushion", "value", "on", "actor", "request_id", "sent_at",
                                "since", "until", "limit", "kinds", "max_points", "extra"])
_fields = st.dictionaries(_field_names, _json, max_size=6)


def _encode(x: Any) -> bytes:
    return json.dumps(x, allow_nan=True).encode()


_command_topics = st.one_of(
    st.sampled_from([f"cmd/{n}" for n in (*COMMANDS, *QUERIES)]),
    st.text(alphabet=st.characters(blacklist_characters="/+#\x00",
                                   blacklist_categories=("Cs",)),
            min_size=1, max_size=12).map(lambda s: f"cmd/{s}"),
    st.tuples(st.sampled_from(["0", "1", "2", "x", "-1"]),
              st.sampled_from(["setpoint_c", "mode", "heat", "water_c"])).map(
        lambda p: f"cushion/{p[0]}/{p[1]}/set"))
_payloads = st.one_of(st.binary(max_size=300), _json.map(_encode), _fields.map(_encode),
                      st.text(max_size=40).map(str.encode))

#: a valid body per command, to be mutated one field at a time
_VALID = {"setpoint": {"cushion": 0, "value": 38.0, "actor": "a"},
          "heat": {"cushion": 1, "on": True, "actor": "a"},
          "reset": {"cushion": 0, "actor": "a"},
          "history": {"cushion": 0, "max_points": 10},
          "events": {"limit": 10, "kinds": ["setpoint"]}}


@st.composite
def _near_valid(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid command with one or two fields replaced by any JSON value, or dropped."""
    name = draw(st.sampled_from(sorted(_VALID)))
    body = dict(_VALID[name])
    for _ in range(draw(st.integers(1, 2))):
        key = draw(_field_names)
        if key in body and draw(st.booleans()):
            del body[key]
        else:
            body[key] = draw(_json)
    return f"cmd/{name}", _encode(body)


def _check_one(hyp: _Harness, topic: str, payload: bytes, retain: bool) -> None:
    """Deliver one message: nothing raises, a reply comes (ok, or not ok with a reason),
    and only an accepted command changes a setting, to something in range."""
    before = hyp.settings()
    replies = hyp.deliver(f"{hyp.topics.base}/{topic}", payload, retain)
    after = hyp.settings()
    if not payload:
        assert replies == [] and after == before
        return
    if not replies:
        # only a reset that passed validation answers later (after the board's report)
        assert topic == "cmd/reset" and not retain
        assert after == before
        return
    assert len(replies) == 1
    reply = replies[0]
    assert isinstance(reply["ok"], bool)
    if not reply["ok"]:
        assert isinstance(reply["error"], str) and reply["error"].strip()
        assert after == before, "a refused command changed the settings"
    elif after != before:
        assert not retain
        assert topic in ("cmd/setpoint", "cmd/heat") or topic.endswith("/set")
        for sp, _ in after:
            assert 30.0 <= sp <= 40.0 and math.isfinite(sp)
    hyp.controller.snapshot()  # still whole


@settings(max_examples=400, deadline=None)
@given(topic=_command_topics, payload=_payloads, retain=st.booleans())
def test_any_payload_is_answered_and_only_a_valid_command_changes_anything(
        hyp: _Harness, topic: str, payload: bytes, retain: bool) -> None:
    _check_one(hyp, topic, payload, retain)


def _malformed_setpoints() -> st.SearchStrategy[tuple[dict[str, Any] | bytes, bool]]:
    good = {"cushion": 0, "value": 38.0, "actor": "a"}
    bad_values = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).filter(
            lambda v: not (30.0 <= v <= 40.0)),
        st.integers().filter(lambda v: not 30 <= v <= 40), st.text(max_size=8), st.booleans(),
        st.none(), st.lists(st.integers(), max_size=2))
    bad_cushions = st.one_of(st.integers().filter(lambda c: c not in (0, 1)),
                             st.floats(), st.booleans(), st.text(max_size=3), st.none())
    bad_actors = st.one_of(st.none(), st.integers(), st.just(""), st.just("   "),
                           st.text(min_size=65, max_size=80).filter(str.strip))
    return st.one_of(
        bad_values.map(lambda v: ({**good, "value": v}, False)),
        bad_cushions.map(lambda c: ({**good, "cushion": c}, False)),
        bad_actors.map(lambda a: ({**good, "actor": a}, False)),
        st.sampled_from(["value", "cushion", "actor"]).map(
            lambda k: ({x: y for x, y in good.items() if x != k}, False)),
        st.text(min_size=1, max_size=10).filter(
            lambda k: k not in ("cushion", "value", "actor", "request_id", "sent_at")).map(
            lambda k: ({**good, k: 1}, False)),
        st.floats(31, 1e6).map(lambda age: ({**good, "sent_at": time.time() - age}, False)),
        st.just((good, True)),  # retained
        st.binary(max_size=200).filter(lambda b: not _is_json_object(b)).map(
            lambda b: (b, False)),
        st.integers(1025, 3000).map(lambda n: ({**good, "pad": "x" * n}, False)),
    )


def _is_json_object(b: bytes) -> bool:
    try:
        return isinstance(json.loads(b.decode()), dict)
    except (UnicodeDecodeError, ValueError):
        return False


@settings(max_examples=400, deadline=None)
@given(case=_near_valid(), retain=st.booleans())
def test_mutated_commands_never_crash_and_refusals_change_nothing(
        hyp: _Harness, case: tuple[str, bytes], retain: bool) -> None:
    _check_one(hyp, case[0], case[1], retain)


@settings(max_examples=300, deadline=None)
@given(case=_malformed_setpoints())
def test_malformed_setpoints_are_refused_with_a_reason(hyp: _Harness, case) -> None:
    body, retain = case
    payload = body if isinstance(body, bytes) else _encode(body)
    if not payload:
        return
    before = hyp.settings()
    replies = hyp.deliver(hyp.topics.command("setpoint"), payload, retain)
    assert len(replies) == 1 and replies[0]["ok"] is False
    assert replies[0]["error"].strip()
    assert hyp.settings() == before


@settings(max_examples=200, deadline=None)
@given(cushion=st.sampled_from([0, 1]), tenths=st.integers(300, 400),
       actor=st.text(min_size=1, max_size=64).filter(str.strip),
       with_time=st.booleans())
def test_valid_setpoints_are_applied(hyp: _Harness, cushion: int, tenths: int, actor: str,
                                     with_time: bool) -> None:
    body: dict[str, Any] = {"cushion": cushion, "value": tenths / 10, "actor": actor}
    if with_time:
        body["sent_at"] = time.time()
    replies = hyp.deliver(hyp.topics.command("setpoint"), _encode(body))
    assert len(replies) == 1 and replies[0]["ok"] is True, replies
    assert hyp.controller.cushions[cushion].setpoint_c == pytest.approx(tenths / 10)
