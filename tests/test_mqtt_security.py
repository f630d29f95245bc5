"""Who may do what on the broker (issue 12): accounts, ACL, credentials files, the embedded
broker's refusal to open beyond loopback without TLS, and the Mosquitto configuration
``hydrotherm broker mosquitto-config`` writes.

Tests taking ``broker`` run against Debian's Mosquitto (configured by the project's
generator) and against the embedded amqtt broker.  Everything is on loopback and bounded.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.mqtt.accounts import (
    CredentialStore,
    filter_within,
    may_publish,
    may_receive,
    may_subscribe,
    rules_for,
)
from controller.mqtt.broker import BrokerError, EmbeddedBroker, free_port
from controller.mqtt.client import make_client, parse_broker_url
from hydrotherm.config import MqttConfig
from tests.test_cli import EXE

pytest.register_assert_rewrite("tests.mqtt_fixtures")
from tests.mqtt_fixtures import (  # noqa: E402
    Mosquitto,
    Table,
    find_program,
    password,
    short_tmpdir,
    wait_for,
)
from tests.test_mqtt_tls import make_pki  # noqa: E402

pytest_plugins = ["tests.mqtt_fixtures"]


def connect(host: str, port: int, user: str | None = None, pw: str | None = None,
            **tls: Any) -> tuple[mqtt.Client, Any]:
    """A paho client; returns it and the CONNACK reason (None: no answer in 5 s)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    if user is not None:
        c.username_pw_set(user, pw)
    if tls:
        c.tls_set(**tls)
    got: list[Any] = []
    c.on_connect = lambda cl, u, f, rc, p: got.append(rc)
    c.connect(host, port)
    c.loop_start()
    wait_for(lambda: got, 5)
    return c, (got[0] if got else None)


def close(c: mqtt.Client) -> None:
    c.disconnect()
    c.loop_stop()


# --- the rules, without a broker ------------------------------------------------------------

def test_the_account_rules() -> None:
    t1, dash, ha, obs = (rules_for(u) for u in ("table-t1", "dashboard", "homeassistant",
                                                 "observer"))
    # a table: its own subtree and discovery, never another table's
    assert may_publish(t1, "hydrotherm/t1/status") and may_publish(t1, "hydrotherm/t1/state")
    assert may_publish(t1, "homeassistant/climate/hydrotherm_t1/cushion0/config")
    assert not may_publish(t1, "hydrotherm/t2/status")
    assert not may_publish(t1, "homeassistant/climate/hydrotherm_t2/cushion0/config")
    assert may_subscribe(t1, "hydrotherm/t1/cmd/+") and may_subscribe(t1, "homeassistant/status")
    assert not may_subscribe(t1, "hydrotherm/t2/cmd/+") and not may_subscribe(t1, "hydrotherm/#")
    assert not may_receive(t1, "hydrotherm/t2/cmd/heat")
    # the dashboard: reads every table, publishes only commands
    assert may_subscribe(dash, "hydrotherm/+/state") and may_receive(dash, "hydrotherm/t9/state")
    assert may_publish(dash, "hydrotherm/t1/cmd/heat")
    for topic in ("hydrotherm/t1/status", "hydrotherm/t1/state",
                  "hydrotherm/t1/cushion/0/setpoint_c/set", "homeassistant/status"):
        assert not may_publish(dash, topic), topic
    # Home Assistant: reads, and publishes only the plain .../set topics and its birth
    assert may_publish(ha, "hydrotherm/t1/cushion/0/setpoint_c/set")
    assert may_publish(ha, "homeassistant/status")
    assert not may_publish(ha, "hydrotherm/t1/cmd/heat")
    assert not may_publish(ha, "hydrotherm/t1/cushion/0/water_c")
    # the observer publishes nothing
    assert not any(may_publish(obs, t) for t in ("hydrotherm/t1/cmd/heat",
                                                 "hydrotherm/t1/cushion/0/mode/set",
                                                 "homeassistant/status"))
    assert may_subscribe(obs, "homeassistant/#") and may_subscribe(obs, "hydrotherm/#")
    # unknown users may do nothing
    assert rules_for("mallory") is None and not may_subscribe(None, "hydrotherm/#")
    # subscription filters: a '#' or '+' asked for is only covered by a wildcard
    assert filter_within("hydrotherm/+/state", "hydrotherm/#")
    assert not filter_within("hydrotherm/#", "hydrotherm/+")
    assert not filter_within("hydrotherm/+/cmd/+", "hydrotherm/t1/cmd/+")
    assert filter_within("hydrotherm/t1/cmd/+", "hydrotherm/t1/cmd/#")


def test_credentials_files_are_private_and_hashed(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "data")
    created = store.ensure(["t1"])
    assert set(created) == {"dashboard", "homeassistant", "observer", "table-t1"}
    for path in (store.credentials_path, store.passwd_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    plain = store.load()
    hashed = store.passwd_path.read_text()
    assert all(pw not in hashed for pw in plain.values()), "a plain password in the hash file"
    assert all(line.split(":", 1)[1].startswith("$argon2") for line in hashed.splitlines())
    # again: nothing changes; a new table adds only its account
    assert store.ensure(["t1"]) == []
    assert store.ensure(["t1", "t2"]) == ["table-t2"]
    assert {k: v for k, v in store.load().items() if k != "table-t2"} == plain
    with pytest.raises(ValueError, match="cannot be an MQTT account"):
        store.ensure(["a/b"])


# --- both brokers ----------------------------------------------------------------------------

def test_anonymous_and_wrong_passwords_are_refused(broker) -> None:
    anon, rc = connect(broker.host, broker.port)
    close(anon)
    assert rc is not None and rc.is_failure, f"anonymous client accepted ({broker.kind})"
    wrong, rc = connect(broker.host, broker.port, "dashboard", "not-the-password")
    close(wrong)
    assert rc is not None and rc.is_failure, "wrong password accepted"
    unknown, rc = connect(broker.host, broker.port, "mallory", "x")
    close(unknown)
    assert rc is not None and rc.is_failure, "unknown user accepted"
    right, rc = connect(broker.host, broker.port, "observer",
                        password(broker.port, "observer"))
    close(right)
    assert rc is not None and not rc.is_failure, f"the right password refused: {rc}"


def test_a_spoofing_client_cannot_publish_another_tables_status_or_state(
        broker, table_factory, recorder) -> None:
    """The attack of issue 12: a retained ``offline`` and a fake healthy state for a tripped
    table.  Every other account tries; the table's own controller can."""
    table: Table = table_factory(broker.url, table_id="t1")
    t = table.topics
    watch = recorder(broker.url_as("observer"), [f"{t.base}/#"])
    assert watch.wait_topic(t.status, lambda m: m.text == "online", 5)
    assert watch.wait_topic(t.state, timeout_s=5)
    fake = json.dumps({"time": time.time(), "table_id": "t1", "tripped": False,
                       "cushions": [{"cushion": 0, "water_c": {"estimate": 37.0}}]})
    for user in ("table-t2", "dashboard", "homeassistant", "observer"):
        spoof = recorder(broker.url_as(user), [])
        mark = watch.mark()
        for topic, payload in ((t.status, "offline"), (t.state, fake),
                               (t.value(0, "water_c"), "37.00"), (t.readings, "offline")):
            spoof.publish(topic, payload, retain=True)
        time.sleep(0.4)
        forged = [m for m in watch.messages[mark:]
                  if m.text in ("offline", "37.00") or m.payload == fake.encode()]
        assert forged == [], f"{user} published for t1: {forged}"
    # a newcomer still reads the table's own retained status and state
    late = recorder(broker.url_as("observer"), [t.status, t.state])
    assert late.wait_topic(t.status, lambda m: m.retain and m.text == "online", 5)
    state = late.wait_topic(t.state, lambda m: m.retain, 5)
    assert state is not None and state.json()["link"]["counters"]["frames_rx"] > 0
    # and the controller itself publishes: a change shows
    mark = watch.mark()
    table.controller.set_setpoint(0, 38.2, "local")
    assert watch.wait_topic(t.value(0, "setpoint_c"), lambda m: m.text == "38.2", 5,
                            after=mark)


def test_a_table_cannot_command_another_table(broker, sim_servers, table_factory,
                                              recorder) -> None:
    srv = sim_servers(2)
    t1 = table_factory(broker.url, table_id="t1", server=srv, index=0)
    t2 = table_factory(broker.url, table_id="t2", server=srv, index=1)
    rogue = recorder(broker.url_as("table-t2"), [t1.topics.result])
    rogue.publish(t1.topics.command("setpoint"),
                  json.dumps({"cushion": 0, "value": 39.9, "actor": "t2"}))
    rogue.publish(t1.topics.value_set(0, "setpoint_c"), "39.9")
    time.sleep(0.5)
    assert t1.controller.cushions[0].setpoint_c == 37.0
    assert not t1.events("setpoint") and not t1.events("command_refused")
    assert rogue.on(t1.topics.result) == [], "a table read another table's replies"
    assert t2.bridge.connected.is_set()


def test_actor_is_the_authenticated_account(table: Table, recorder) -> None:
    """A dashboard command is logged as mqtt:dashboard/<person>; Home Assistant's as
    mqtt:homeassistant, whatever a payload claims."""
    t = table.topics
    dash = recorder(table.url, [t.result])
    dash.publish(t.command("setpoint"), json.dumps({"cushion": 0, "value": 38.1,
                                                    "actor": "therapist"}))
    assert dash.wait_topic(t.result, lambda m: m.json()["ok"], 5)
    ha = recorder(table.url_as("homeassistant"), [t.result])
    ha.publish(t.value_set(1, "setpoint_c"), "36.4")
    assert ha.wait_topic(t.result, lambda m: m.json().get("setpoint_c") == 36.4, 5)
    actors = [(e.cushion, e.actor) for e in table.events("setpoint")]
    assert (0, "mqtt:dashboard/therapist") in actors and (1, "mqtt:homeassistant") in actors


# --- the embedded broker beyond loopback --------------------------------------------------------

def test_embedded_broker_beyond_loopback_needs_tls(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path)
    store.ensure(["table0"])
    with pytest.raises(BrokerError, match="needs TLS"):
        EmbeddedBroker("0.0.0.0", 0, passwd_file=store.passwd_path).start()
    # with a certificate it opens, TLS only, passwords still required
    pki = make_pki(short_tmpdir())
    port = free_port("0.0.0.0")
    b = EmbeddedBroker("0.0.0.0", port, passwd_file=store.passwd_path,
                       certfile=str(pki["server_cert"]), keyfile=str(pki["server_key"])).start()
    try:
        assert b.url.startswith("mqtts://")
        address = parse_broker_url(f"mqtts://observer:{store.password('observer')}"
                                   f"@127.0.0.1:{port}", env={})
        ok = make_client(MqttConfig(ca_file=str(pki["ca"])), address, "tls-observer")
        got: list[Any] = []
        ok.on_connect = lambda c, u, f, rc, p: got.append(rc)
        ok.connect(address.host, address.port)
        ok.loop_start()
        try:
            assert wait_for(lambda: got, 10) and not got[0].is_failure, got
        finally:
            close(ok)
        anon, rc = connect("127.0.0.1", port, ca_certs=str(pki["ca"]))
        close(anon)
        assert rc is not None and rc.is_failure, "anonymous accepted over TLS"
    finally:
        b.stop()


def test_run_refuses_an_open_embedded_broker_and_creates_credentials_once(
        tmp_path: Path, sim_servers) -> None:
    conf = tmp_path / "open.toml"
    conf.write_text('[mqtt]\nembedded_host = "0.0.0.0"\nembedded_port = 0\n')
    srv = sim_servers(1)
    data = tmp_path / "data"
    res = subprocess.run([EXE, "--config", str(conf), "run", "--port", srv.ports[0].path,
                          "--data-dir", str(data), "--duration", "1"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "needs TLS" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    # on loopback: the first run creates the accounts and says where they are
    conf.write_text("[mqtt]\nembedded_port = 0\n")
    outs = []
    for _ in range(2):
        res = subprocess.run([EXE, "--config", str(conf), "run", "--port", srv.ports[0].path,
                              "--data-dir", str(data), "--duration", "1"],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        outs.append(res.stdout)
    creds = data / "mqtt-credentials.toml"
    assert "created MQTT accounts" in outs[0] and str(creds) in outs[0]
    assert "created MQTT accounts" not in outs[1] and str(creds) in outs[1]
    for f in (creds, data / "mqtt-passwd"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    assert "table-table0" in creds.read_text() and "publishing as" in outs[1]


# --- Mosquitto, configured by the project ---------------------------------------------------------

def test_mosquitto_config_command_against_debian_mosquitto(tmp_path: Path) -> None:
    binary = find_program("mosquitto", "mosquitto")
    d = short_tmpdir()
    port = free_port()
    res = subprocess.run([EXE, "broker", "mosquitto-config", str(d), "--tables", "t1", "t2",
                          "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    for name in ("mosquitto.conf", "passwd", "acl", "mqtt-credentials.toml"):
        assert (d / name).exists(), name
    for name in ("passwd", "acl", "mqtt-credentials.toml"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600, name
    plain = CredentialStore(d).load()
    assert set(plain) == {"dashboard", "homeassistant", "observer", "table-t1", "table-t2"}
    hashed = (d / "passwd").read_text()
    assert all(pw not in hashed for pw in plain.values()) and "$7$" in hashed
    # beyond loopback without TLS: refused with the reason
    bad = subprocess.run([EXE, "broker", "mosquitto-config", str(tmp_path / "x"), "--tables",
                          "t1", "--host", "0.0.0.0"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "needs TLS" in bad.stderr
    proc = subprocess.Popen([binary, "-c", str(d / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: _listening(port), 10), "mosquitto did not start"
        anon, rc = connect("127.0.0.1", port)
        close(anon)
        assert rc is not None and rc.is_failure, "anonymous accepted"
        watch, rc = connect("127.0.0.1", port, "observer", plain["observer"])
        got: list[tuple[str, bytes]] = []
        lock = threading.Lock()

        def on_message(c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
            with lock:
                got.append((m.topic, bytes(m.payload)))

        watch.on_message = on_message
        watch.subscribe("hydrotherm/#", 1)
        time.sleep(0.3)
        spoof, rc = connect("127.0.0.1", port, "table-t2", plain["table-t2"])
        spoof.publish("hydrotherm/t1/status", "offline", qos=1, retain=True).wait_for_publish(5)
        spoof.publish("hydrotherm/t1/state", "{}", qos=1, retain=True).wait_for_publish(5)
        owner, rc = connect("127.0.0.1", port, "table-t1", plain["table-t1"])
        owner.publish("hydrotherm/t1/status", "online", qos=1, retain=True).wait_for_publish(5)
        assert wait_for(lambda: ("hydrotherm/t1/status", b"online") in got, 5)
        time.sleep(0.2)
        assert got == [("hydrotherm/t1/status", b"online")], got
        for c in (watch, spoof, owner):
            close(c)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_generated_mosquitto_files_are_what_the_fixture_runs(mosquitto: Mosquitto) -> None:
    """The ``broker``-parametrized tests run Mosquitto on exactly the generated files."""
    conf = mosquitto.conf.read_text()
    assert "allow_anonymous false" in conf and "acl_file" in conf and "password_file" in conf
    acl = (mosquitto.dir / "acl").read_text()
    assert "user table-table0\ntopic read hydrotherm/table0/cmd/#" in acl
    assert "user dashboard" in acl and "topic write hydrotherm/+/cmd/#" in acl
    assert os.access(mosquitto.dir / "passwd", os.R_OK)


def test_each_part_logs_in_with_its_own_account_from_the_credentials_file(
        tmp_path: Path) -> None:
    """With a broker URL but no credentials in it, the controller and the dashboard take
    their own account's password from the installation's file (what mosquitto-config
    writes); credentials given explicitly win."""
    from controller.mqtt.setup import setup_broker
    from dashboard.server import dashboard_address
    from hydrotherm.config import from_mapping

    store = CredentialStore(tmp_path)
    store.ensure(["t1"], broker_hashes=False)
    cfg = from_mapping({"mqtt": {"broker": "mqtt://broker.clinic:1883",
                                 "credentials_file": str(store.credentials_path)}})
    setup = setup_broker(cfg.mqtt, tmp_path / "unused", ["t1"], env={})
    assert setup.embedded is None
    t1 = setup.address_for("table-t1")
    assert (t1.host, t1.username, t1.password) == ("broker.clinic", "table-t1",
                                                   store.password("table-t1"))
    dash = dashboard_address(cfg, cfg.mqtt.broker, tmp_path / "unused")
    assert (dash.username, dash.password) == ("dashboard", store.password("dashboard"))
    explicit = setup_broker(cfg.mqtt, tmp_path, ["t1"],
                            env={"HYDROTHERM_MQTT_USERNAME": "me",
                                 "HYDROTHERM_MQTT_PASSWORD": "pw"})
    assert explicit.address_for("table-t1").username == "me"
