"""A command flood against a table on Mosquitto and on the embedded broker (issue 12):
state keeps flowing, the controller stays connected, a heat-off still goes through,
refusals are rate-limited and counted rather than logged one by one.

Bounded: 3,000 commands over about 3 s on loopback, from the dashboard account itself (the
worst case: the flood shares an account with the real dashboard).  Timing bounds are
generous; the precise latency figures are in ``python -m benchmarks.mqtt --only flood``
and ``python -m benchmarks.flood_embedded``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.mqtt.bridge import EVENT_BACKLOG
from controller.mqtt.client import parse_broker_url
from controller.mqtt.fleet import FleetClient
from hydrotherm.config import MqttConfig

pytest.register_assert_rewrite("tests.mqtt_fixtures")
from tests.mqtt_fixtures import Table, wait_for  # noqa: E402

pytest_plugins = ["tests.mqtt_fixtures"]

FLOOD = 3000
FLOOD_S = 3.0


def flood(url: str, topic: str, n: int, seconds: float, stop: threading.Event) -> int:
    """Publish ``n`` well-formed setpoint commands (QoS 1) evenly over ``seconds``."""
    a = parse_broker_url(url, env={})
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flooder")
    c.username_pw_set(a.username, a.password)
    c.max_inflight_messages_set(1000)
    c.connect(a.host, a.port)
    c.loop_start()
    sent = 0
    t0 = time.monotonic()
    try:
        for i in range(n):
            if stop.is_set():
                break
            body = {"cushion": 1, "value": 36.0 + (i % 30) / 10, "actor": "flood",
                    "request_id": f"f{i}"}
            c.publish(topic, json.dumps(body), qos=1)
            sent += 1
            lag = t0 + seconds * (i + 1) / n - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        time.sleep(0.5)  # let the last ones out
    finally:
        c.disconnect()
        c.loop_stop()
    return sent


def test_a_command_flood_does_not_stall_state_or_heat_off(broker, table_factory,
                                                          recorder) -> None:
    """Once on Mosquitto, once on the embedded broker (amqtt, in this process with the
    table, as ``hydrotherm run`` hosts it; the flooder too, so it is the harder case)."""
    mosquitto = broker
    table: Table = table_factory(mosquitto.url, table_id="flood")
    t = table.topics
    watch = recorder(mosquitto.url_as("observer"), [t.state, t.status, t.result])
    assert watch.wait_topic(t.state, timeout_s=5)
    fleet = FleetClient(MqttConfig(), parse_broker_url(mosquitto.url, env={})).start()
    assert fleet.wait_connected(5)
    assert table.controller.cushions[0].heat_on
    stop = threading.Event()
    result: list[int] = []
    th = threading.Thread(target=lambda: result.append(
        flood(mosquitto.url, t.command("setpoint"), FLOOD, FLOOD_S, stop)))
    mark = watch.mark()
    t0 = time.monotonic()
    th.start()
    reply: dict[str, Any] = {}
    try:
        time.sleep(FLOOD_S / 2)  # in the thick of it
        reply = fleet.command("flood", "heat", {"cushion": 0, "on": False,
                                                "actor": "therapist"}, timeout_s=10)
    finally:
        th.join(FLOOD_S + 30)
        stop.set()
        fleet.stop()
    elapsed = time.monotonic() - t0
    assert result and result[0] == FLOOD
    # heat-off honoured, from the same (dashboard) account the flood came from
    assert reply.get("ok") is True, reply
    assert table.controller.cushions[0].heat_on is False
    assert ("heat", "mqtt:dashboard/therapist") in [(e.kind, e.actor)
                                                     for e in table.events("heat")]
    # the controller never dropped off the broker, and nobody saw it offline
    assert table.bridge.counters["disconnects"] == 0
    assert table.bridge.connected.is_set()
    during = watch.messages[mark:]
    assert not [m for m in during if m.topic == t.status and m.text == "offline"]
    # state kept flowing: no gap longer than the state interval plus a generous margin
    states = [m.at for m in during if m.topic == t.state]
    assert len(states) >= 2, "no state during the flood"
    gaps = [b - a for a, b in zip([t0, *states], [*states, time.monotonic()], strict=True)]
    assert max(gaps) < table.cfg.mqtt.state_interval_s + 3.0, gaps
    # the rate limit: at most the burst plus the rate over the flood got through
    gate = table.bridge.gate.counters
    mcfg = table.cfg.mqtt
    assert gate["accepted"] <= mcfg.command_burst * 3 + mcfg.command_rate_per_s * 3 * elapsed
    offered = gate["accepted"] + gate["refused_rate"] + gate["refused_queue"]
    assert offered <= FLOOD + 5  # (QoS 1 may redeliver a few)
    if broker.kind == "mosquitto":
        assert offered >= FLOOD - 5, gate  # Mosquitto delivers the whole flood
    # amqtt delivers only part of it in time (a pure-Python broker: see docs/mqtt.md);
    # still more than the rate allows, and the rest was refused
    assert gate["refused_rate"] > 0, gate
    # refused commands got a reason (the QoS 0 replies are rate-limited themselves)
    refusals = [m.json() for m in during if m.topic == t.result and not m.json()["ok"]]
    assert refusals and all("rate limit" in r["error"] for r in refusals)
    assert len(refusals) < FLOOD / 10
    # the event log was not written once per refused message
    assert wait_for(lambda: any("refused (rate limit)" in (e.reason or "")
                                for e in table.events("command_refused")), 12)
    logged = table.events("command_refused")
    assert len(logged) < 50, len(logged)
    counted = sum(e.detail.get("count", 0) for e in logged if "rate limit" in (e.reason or ""))
    assert 0 < counted <= gate["refused_rate"]
    assert all(e.actor == "mqtt:dashboard" for e in logged if "rate limit" in (e.reason or ""))


def test_online_is_republished_after_a_reconnect_with_a_full_backlog(
        mosquitto, table_factory, recorder) -> None:
    """The issue's second failure: after a reconnect ``online`` was lost behind a full
    paho queue.  Events made while the broker is away are capped, so the reconnect burst
    always fits; ``online`` is checked and retried."""
    table: Table = table_factory(mosquitto.url, table_id="flood", mqtt={"reconnect_max_s": 1.0})
    bridge = table.bridge
    mosquitto.stop()
    assert wait_for(lambda: not bridge.connected.is_set(), 10)
    for i in range(EVENT_BACKLOG + 200):  # more than the bridge queues while offline
        table.controller.record_event("autotune", detail={"n": i})
    assert bridge.counters["events_dropped"] >= 200
    published = bridge.counters["state_published"]
    mosquitto.start()
    assert bridge.wait_connected(15), bridge.last_error
    # republished: then a newcomer gets it retained (live messages carry no retain flag)
    assert wait_for(lambda: bridge.counters["state_published"] > published, 10)
    time.sleep(0.3)
    late = recorder(mosquitto.url_as("observer"), [table.topics.status, table.topics.state])
    got = late.wait_topic(table.topics.status, lambda m: m.retain and m.text == "online", 10)
    assert got is not None, "online was not republished after the reconnect"
    assert late.wait_topic(table.topics.state, lambda m: m.retain, 10), bridge.counters
    assert bridge.counters["publish_failures"] == 0
