"""``hydrotherm demo`` as a newcomer runs it: the console script, a fresh data directory."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.mqtt.accounts import CredentialStore
from controller.mqtt.broker import free_port
from tests.test_cli import EXE


def read_until(proc: subprocess.Popen, pattern: str, timeout_s: float) -> tuple[re.Match, str]:
    seen = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(pattern, line)
        if m:
            return m, "".join(seen)
    raise AssertionError(f"{pattern!r} not printed; got:\n{''.join(seen)}")


def retained_state(port: int, topic: str, user: str, password: str,
                   timeout_s: float = 10.0) -> dict:
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-test")
    client.username_pw_set(user, password)
    client.on_connect = lambda c, *a: c.subscribe(topic, 1)
    client.on_message = lambda c, u, m: got.append(m.payload)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        end = time.monotonic() + timeout_s
        while not got and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
    assert got, f"no retained {topic}"
    return json.loads(got[-1])


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_demo_runs_the_whole_system_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    broker_port, dash_port = free_port(), free_port()
    proc = subprocess.Popen(
        [EXE, "demo", "--speed", "60", "--data-dir", str(tmp_path / "data"),
         "--dir", str(tmp_path / "sim"), "--broker-port", str(broker_port),
         "--dashboard-port", str(dash_port), "--interval", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # the embedded broker wants passwords: the demo creates the accounts, says where
        m, _ = read_until(proc, r"created MQTT accounts .*: passwords in (\S+) \(mode 0600\)",
                          30)
        creds = Path(m.group(1))
        assert creds == tmp_path / "data" / "mqtt-credentials.toml"  # --data-dir: kept there
        observer = CredentialStore(creds.parent).password("observer")
        m, _ = read_until(proc, r"dashboard: (http://\S+)/  login: therapist / (\S+)", 30)
        url, password = m.group(1), m.group(2)
        assert len(password) >= 8
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
            health = json.load(r)
        assert r.status == 200 and health["broker"] is True
        with urllib.request.urlopen(f"{url}/login", timeout=5) as r:
            assert r.status == 200 and b"password" in r.read().lower()
        state = retained_state(broker_port, "hydrotherm/table0/state", "observer", observer)
        with pytest.raises(AssertionError, match="no retained"):
            retained_state(broker_port, "hydrotherm/table0/state", "observer", "wrong", 2)
        assert state["table_id"] == "table0" and state["link"]["healthy"]
        read_until(proc, r"out 100\.0 %", 20)  # heating through the real link
        # the paced clock says whether it kept up or how far it fell behind
        read_until(proc, r"^\[clock\] simulated [\d.]+ min at x60; (keeping up|[\d.]+ "
                         r"simulated s behind)", 20)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "heaters off" in out
    assert port_closed(broker_port) and port_closed(dash_port)
    assert not (tmp_path / "sim" / "table0").exists()
    # nothing left behind: no process still holds the demo's data directory
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "data") not in ps
    # the event log recorded the session
    events = subprocess.run([EXE, "events", "--data-dir", str(tmp_path / "data"),
                             "--table", "table0", "--json"],
                            capture_output=True, text=True, timeout=30)
    kinds = [e["kind"] for e in json.loads(events.stdout)]
    assert "controller_start" in kinds and kinds[-1] == "controller_stop"


def test_each_demo_run_gets_a_fresh_data_folder_that_events_reads(tmp_path: Path) -> None:
    conf = tmp_path / "hydrotherm.toml"
    conf.write_text(f'[data]\ndir = "{tmp_path / "data"}"\n')
    folders = []
    for _ in range(2):
        res = subprocess.run(
            [EXE, "--config", str(conf), "demo", "--speed", "60", "--tables", "2",
             "--dir", str(tmp_path / "sim"), "--broker-port", "0", "--dashboard-port", "0",
             "--duration", "2", "--interval", "1"],
            capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout + res.stderr
        m = re.search(r"^data: (\S+) ", res.stdout, re.M)
        assert m, res.stdout
        folders.append(Path(m.group(1)))
        # one naming scheme: the simulator's links are the MQTT/dashboard table ids
        assert "publishing as hydrotherm/table1 " in res.stdout
        assert "(table0, table1)" in res.stdout and "heating switched on" in res.stdout
    assert folders[0] != folders[1] and folders[0].parent == folders[1].parent
    assert folders[0].parent == tmp_path / "data" / "demo"
    assert (tmp_path / "data" / "demo" / "latest").resolve() == folders[1].resolve()
    for folder in folders:
        assert (folder / "table1" / "events.sqlite3").exists()
    # without --data-dir, --table reads the newest run's log of that table
    newest = (folders[1] / "table1" / "events.sqlite3").stat().st_mtime
    os.utime(folders[0] / "table1" / "events.sqlite3", (newest - 60, newest - 60))
    res = subprocess.run([EXE, "--config", str(conf), "events", "--table", "table1", "--json"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    kinds = [e["kind"] for e in json.loads(res.stdout)]
    assert kinds.count("controller_start") == 1 and kinds[-1] == "controller_stop"
    missing = subprocess.run([EXE, "--config", str(conf), "events", "--table", "table9"],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "table9" in missing.stderr
    assert "Traceback" not in missing.stderr
