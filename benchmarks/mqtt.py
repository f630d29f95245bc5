"""Benchmarks for issues 4 and 12: MQTT latency, the controller's CPU with publishing on,
a command flood, a fleet.

Prints figures; asserts nothing about speed (the machines are shared and noisy).
Run: ``python -m benchmarks.mqtt [--json OUT] [--tables 200] [--fleet-seconds 30]``
(about three minutes).  Needs Debian's ``mosquitto`` (the broker every part runs on, on a
free loopback port, persistence off), secured as a clinic's would be: the files
``hydrotherm broker mosquitto-config`` writes (passwords, the account ACL); every client
logs in with its own account.

Method:

* **Latency, board reading -> MQTT subscriber.**  One simulated board on a pty, the real
  link, controller and bridge in this process, a paho subscriber in this process too (one
  monotonic clock for all).  The controller's ``poll`` is wrapped to note the moment it
  first holds each telemetry frame (the link counts them: ``link.counters.telemetry``).
  Three figures:

  - *trip*: a sensor is opened on the simulated board; from the moment the controller
    holds the first report showing it to the subscriber receiving the ``events`` trip
    entry, the ``cushion/1/problem`` = ``ON`` value and the ``state`` with the trip
    (default settings: a changed state is published at most every 0.5 s, so the
    ``state`` figure includes that deliberate rate limit; ``events`` does not);
  - *freshness*: for every ``state`` message received meanwhile, its age: receive time
    minus the moment the controller got the newest reading in it (the state carries the
    telemetry count) - what a dashboard's numbers lag behind the board;
  - *pipeline*: setpoint changes made at the controller (``set_setpoint``), with
    ``min_interval_s = 0.05`` so the rate limit does not dominate: the change to the
    subscriber receiving ``events``, the ``state`` and ``cushion/0/setpoint_c``.

* **Controller CPU per hour.**  ``hydrotherm run --heat`` against ``hydrotherm sim`` (two
  subprocesses), publishing to Mosquitto with the default settings; and beside it the
  same with ``--no-mqtt``.  utime+stime of each ``run`` process from /proc over a window
  after start-up, scaled to an hour of real time.

* **Flood.**  One table (as in *latency*, default settings) and, from the dashboard's own
  account, 10,000 well-formed setpoint commands in 10 s (QoS 1).  Halfway through, a
  heat-off from a second dashboard client: the time until the controller has heat off,
  and until its reply arrives.  Meanwhile an observer records every ``state``: its age
  on arrival (receive wall time minus the snapshot's ``time``), the longest gap between
  two, and whether ``status`` ever said ``offline``; the bridge's disconnects, the
  gate's accepted/refused counts and the event log's ``command_refused`` entries.

* **Fleet.**  ``hydrotherm sim --tables N`` (one process) and N controllers with their
  bridges in worker processes of 50 (table ids f000.., each its own paho client and its
  own table account, the default 5 ms poll), all heating, on one Mosquitto with the
  accounts and ACL; a ``FleetClient`` in this process, as the dashboard account (it does
  nothing else meanwhile), receives every table.  Messages per second at the FleetClient
  in the window when all tables are up; each table's count of published states against
  the states the FleetClient received (a difference is a lost update); CPU of the
  FleetClient (this process), the workers, the simulator and Mosquitto from /proc; the
  update latency at the FleetClient (receive wall time minus each state's ``time``, as a
  fleet page sees it).  Run twice, on tables of their own: with the default publishing
  settings, and stressed (a changed state at most every 0.05 s, a state at least every
  0.5 s).  The workers report trips, link reconnects and host-watchdog cuts: non-zero
  would mean this machine could not keep N tables in real time.  In the default run the
  real dashboard process and a browser on its fleet page watch too
  (``benchmarks/fleet_dashboard.py``; ``--no-dashboard`` leaves them out).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.fleet_dashboard import FleetDashboard
from benchmarks.stats import percentile
from controller.eventlog import EventLog
from controller.mqtt.accounts import CredentialStore, table_account
from controller.mqtt.bridge import MqttBridge
from controller.mqtt.broker import free_port, wait_for_port
from controller.mqtt.client import parse_broker_url
from controller.mqtt.fleet import FleetClient
from controller.mqtt.mosquitto import write_config
from controller.runner import ControllerRunner
from controller.service import Controller
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import SensorStatus, Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import Config, MqttConfig, from_mapping
from sim.server import SimServer

EXE = shutil.which("hydrotherm") or str(Path(sys.executable).parent / "hydrotherm")
TICK = os.sysconf("SC_CLK_TCK")
#: the fleet's second run: more traffic than the defaults give
STRESS = {"min_interval_s": 0.05, "state_interval_s": 0.5}


# --- helpers -------------------------------------------------------------------------------

class Mosquitto:
    """Debian's mosquitto on a free loopback port, persistence off, on the files
    ``hydrotherm broker mosquitto-config`` writes (accounts for ``table_ids``, the ACL)."""

    def __init__(self, directory: Path, table_ids: list[str]) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(binary).exists():
            raise SystemExit("mosquitto not found: install Debian's `mosquitto` package")
        self.port = free_port()
        self.dir = directory
        paths = write_config(directory, table_ids, port=self.port)
        self.store = CredentialStore(directory)
        paths["conf"].write_text(paths["conf"].read_text() + "persistence false\n"
                                 "log_dest none\n")
        self.proc = subprocess.Popen([binary, "-c", str(paths["conf"])],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", self.port, 10)
        self.base_url = f"mqtt://127.0.0.1:{self.port}"
        self.url = self.url_as("dashboard")

    def url_as(self, user: str) -> str:
        return f"mqtt://{user}:{self.store.password(user)}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [1000 * x for x in values]
    return {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "max_ms": max(ms) if ms else float("nan"),
            "mean_ms": statistics.fmean(ms) if ms else float("nan")}


def wait_until(cond: Any, timeout_s: float, step_s: float = 0.005) -> bool:
    end = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(step_s)
    return True


class Subscriber:
    """A paho subscriber recording (monotonic receive time, topic, payload)."""

    def __init__(self, url: str, topics: list[str]) -> None:
        addr = parse_broker_url(url, env={})
        self.lock = threading.Lock()
        self.messages: list[tuple[float, str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        if addr.username:
            self.client.username_pw_set(addr.username, addr.password)
        self.ready = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError("subscriber could not subscribe")

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        t = time.monotonic()
        with self.lock:
            self.messages.append((t, msg.topic, bytes(msg.payload)))

    def since(self, index: int) -> list[tuple[float, str, bytes]]:
        with self.lock:
            return self.messages[index:]

    def mark(self) -> int:
        with self.lock:
            return len(self.messages)

    def first(self, after: int, topic: str, pred: Any = lambda p: True,
              timeout_s: float = 5.0) -> float | None:
        """Receive time of the first message on ``topic`` (index >= after) matching."""
        found: list[float] = []

        def look() -> bool:
            for t, top, payload in self.since(after):
                if top == topic and pred(payload):
                    found.append(t)
                    return True
            return False

        return found[0] if wait_until(look, timeout_s) else None

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class LocalTable:
    """Simulated board + controller + runner + bridge in this process."""

    def __init__(self, broker: Mosquitto, table_id: str,
                 mqtt_over: dict[str, Any] | None = None, log: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="htbm"))
        self.cfg = from_mapping({"plant": {"initial_water_c": 34.0},
                                 "mqtt": {"table_id": table_id, **(mqtt_over or {})}})
        self.server = SimServer(self.cfg, RealClock(), self.dir).start()
        clock = RealClock()
        self.link = BoardLink(self.cfg.link, Thermistor(self.cfg.sensor), clock,
                              url=self.server.ports[0].path)
        self.controller = Controller(self.cfg, self.link, clock,
                                     log=EventLog(self.dir / "events.sqlite3") if log else None)
        for i in (0, 1):
            self.controller.set_heat(i, True, "benchmark")
        self.seen: dict[int, float] = {}  # telemetry count -> when the controller held it
        self.open_seen: list[float] = []  # when it first held a report with cushion 1 open
        self._last_tel = -1
        self._open = False
        real_poll = self.controller.poll

        def poll() -> None:
            real_poll()
            n = self.link.counters.telemetry
            if n != self._last_tel:
                now = time.monotonic()
                self._last_tel = n
                self.seen[n] = now
                r = self.link.latest
                is_open = r is not None and r.cushions[1].primary.status is not SensorStatus.OK
                if is_open and not self._open:
                    self.open_seen.append(now)
                self._open = is_open

        self.controller.poll = poll  # type: ignore[method-assign]
        self.runner = ControllerRunner(self.controller).start()
        url = broker.url_as(table_account(table_id))
        self.bridge = MqttBridge(self.controller, self.cfg, parse_broker_url(url, env={})).start()
        if not (self.bridge.wait_connected(10) and wait_until(lambda: self.link.healthy, 10)):
            raise RuntimeError("table did not come up")
        self.topics = self.bridge.topics

    def stop(self) -> None:
        self.bridge.stop()
        self.runner.stop()
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- 1. latency ---------------------------------------------------------------------------

def latency(broker: Mosquitto, trips: int, changes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    url = broker.url_as("observer")
    table = LocalTable(broker, "lat")
    t = table.topics
    sub = Subscriber(url, [t.state, t.events, t.value(1, "problem")])
    try:
        wait_until(lambda: table.controller.snapshot()["cushions"][1]["water_c"]["estimate"]
                   is not None, 10)
        time.sleep(1.0)
        start = sub.mark()
        ev_lat, value_lat, state_lat = [], [], []
        for _ in range(trips):
            n_open = len(table.open_seen)
            mark = sub.mark()
            table.server.handle({"fault": "sensor_open", "cushion": 1, "sensor": "primary"})
            if not wait_until(lambda n=n_open: len(table.open_seen) > n, 5):
                continue
            t1 = table.open_seen[-1]
            ev = sub.first(mark, t.events, lambda p: json.loads(p)["kind"] == "trip")
            val = sub.first(mark, t.value(1, "problem"), lambda p: p == b"ON")
            st = sub.first(mark, t.state,
                           lambda p: bool(json.loads(p)["cushions"][1]["trips"]))
            for box, got in ((ev_lat, ev), (value_lat, val), (state_lat, st)):
                if got is not None:
                    box.append(got - t1)
            table.server.handle({"fault": "sensor_open", "cushion": 1, "sensor": "primary",
                                 "clear": True})
            time.sleep(0.3)
            mark = sub.mark()
            table.controller.request_reset("benchmark", 1)
            sub.first(mark, t.value(1, "problem"), lambda p: p == b"OFF", 5)
            time.sleep(0.2)
        ages = []
        for rx, topic, payload in sub.since(start):
            if topic == t.state:
                tel = json.loads(payload)["link"]["counters"]["telemetry"]
                if tel in table.seen:
                    ages.append(rx - table.seen[tel])
        out["trip_to_events"] = summary_ms(ev_lat)
        out["trip_to_problem_value"] = summary_ms(value_lat)
        out["trip_to_state"] = summary_ms(state_lat)
        out["state_freshness"] = summary_ms(ages)
    finally:
        sub.stop()
        table.stop()

    table = LocalTable(broker, "pipe", {"min_interval_s": 0.05})
    t = table.topics
    sub = Subscriber(url, [t.state, t.events, t.value(0, "setpoint_c")])
    try:
        ev_lat, state_lat, value_lat = [], [], []
        for k in range(changes):
            value = round(36.0 + 0.1 * (1 + k % 19), 1)
            mark = sub.mark()
            t0 = time.monotonic()
            table.controller.set_setpoint(0, value, "benchmark")
            ev = sub.first(mark, t.events, lambda p, v=value: json.loads(p)["kind"] == "setpoint"
                           and json.loads(p)["detail"]["to"] == v)
            st = sub.first(mark, t.state, lambda p, v=value:
                           json.loads(p)["cushions"][0]["setpoint_c"] == v)
            val = sub.first(mark, t.value(0, "setpoint_c"),
                            lambda p, v=value: p == f"{v:.1f}".encode())
            for box, got in ((ev_lat, ev), (state_lat, st), (value_lat, val)):
                if got is not None:
                    box.append(got - t0)
            time.sleep(0.06)
        out["change_to_events"] = summary_ms(ev_lat)
        out["change_to_state"] = summary_ms(state_lat)
        out["change_to_value"] = summary_ms(value_lat)
    finally:
        sub.stop()
        table.stop()
    return out


# --- 2. controller CPU per hour -------------------------------------------------------------

def controller_cpu(broker: Mosquitto, seconds: float, warmup_s: float = 4.0) -> dict[str, Any]:
    url = broker.url_as(table_account("cpu"))
    work = Path(tempfile.mkdtemp(prefix="htbm"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        runs = {}
        for name, extra in (("mqtt", ["--broker", url, "--table-id", "cpu"]),
                            ("no_mqtt", ["--no-mqtt"])):
            sim_dir = work / f"sim-{name}"
            sim = subprocess.Popen([EXE, "sim", "--dir", str(sim_dir)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(sim)
            if not wait_until(lambda d=sim_dir: (d / "control.sock").exists(), 10, 0.05):
                raise RuntimeError("hydrotherm sim did not start")
            run = subprocess.Popen([EXE, "run", "--port", str(sim_dir / "table0"), "--heat",
                                    "--data-dir", str(work / f"data-{name}"),
                                    "--interval", "3600", *extra],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(run)
            runs[name] = (sim, run)
        time.sleep(warmup_s)
        c0 = {n: (proc_cpu_s(r.pid), proc_cpu_s(s.pid)) for n, (s, r) in runs.items()}
        t0 = time.monotonic()
        time.sleep(seconds)
        dt = time.monotonic() - t0
        out: dict[str, Any] = {"window_s": dt}
        for n, (s, r) in runs.items():
            run_cpu = proc_cpu_s(r.pid) - c0[n][0]
            sim_cpu = proc_cpu_s(s.pid) - c0[n][1]
            out[n] = {"cpu_s_per_hour": run_cpu / dt * 3600, "cpu_pct": 100 * run_cpu / dt,
                      "rss_mb": proc_rss_mb(r.pid), "sim_cpu_pct": 100 * sim_cpu / dt}
        out["mqtt_overhead_cpu_s_per_hour"] = (out["mqtt"]["cpu_s_per_hour"]
                                               - out["no_mqtt"]["cpu_s_per_hour"])
        return out
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        shutil.rmtree(work, ignore_errors=True)


# --- 3. flood -------------------------------------------------------------------------------

def flood(broker: Mosquitto, n: int, seconds: float) -> dict[str, Any]:
    table = LocalTable(broker, "flood", log=True)
    t = table.topics
    sub = Subscriber(broker.url_as("observer"), [t.state, t.status])
    wall_rx: list[tuple[float, float]] = []  # (receive wall time, state time)
    lock = threading.Lock()
    real = sub.client.on_message

    def on_message(client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == t.state:
            with lock:
                wall_rx.append((time.time(), json.loads(msg.payload)["time"]))
        real(client, userdata, msg)

    sub.client.on_message = on_message
    a = parse_broker_url(broker.url, env={})
    flooder = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flooder")
    flooder.username_pw_set(a.username, a.password)
    flooder.max_inflight_messages_set(1000)
    flooder.connect(a.host, a.port)
    flooder.loop_start()
    dash = FleetClient(MqttConfig(), parse_broker_url(broker.url, env={})).start()
    out: dict[str, Any] = {}
    try:
        dash.wait_connected(10)
        time.sleep(1.0)
        mark = sub.mark()
        with lock:
            w0 = len(wall_rx)
        cpu0 = time.process_time()
        heat: dict[str, Any] = {}

        def heat_off() -> None:
            time.sleep(seconds / 2)
            t0 = time.monotonic()
            done = threading.Event()

            def watch() -> None:
                while not done.is_set():
                    if not table.controller.cushions[0].heat_on:
                        heat["applied"] = time.monotonic() - t0
                        return
                    time.sleep(0.001)

            th = threading.Thread(target=watch)
            th.start()
            reply = dash.command("flood", "heat", {"cushion": 0, "on": False,
                                                    "actor": "therapist"}, timeout_s=10)
            heat["reply"] = time.monotonic() - t0
            heat["ok"] = reply.get("ok")
            th.join(5)
            done.set()

        hth = threading.Thread(target=heat_off)
        t_start = time.monotonic()
        hth.start()
        for i in range(n):
            body = {"cushion": 1, "value": 36.0 + (i % 30) / 10, "actor": "flood",
                    "request_id": f"f{i}"}
            flooder.publish(t.command("setpoint"), json.dumps(body), qos=1)
            lag = t_start + seconds * (i + 1) / n - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        flood_s = time.monotonic() - t_start
        hth.join(15)
        time.sleep(1.0)
        cpu = time.process_time() - cpu0
        with lock:
            during = wall_rx[w0:]
        states = [rx for rx, _ in during]
        gaps = [b - a for a, b in zip(states, states[1:], strict=False)]
        msgs = sub.since(mark)
        logged = table.controller.log.events(kinds=["command_refused"])
        out = {"sent": n, "flood_s": flood_s,
               "state_age": summary_ms([rx - st for rx, st in during]),
               "max_state_gap_s": max(gaps) if gaps else float("nan"),
               "offline_seen": any(top == t.status and p == b"offline" for _, top, p in msgs),
               "disconnects": table.bridge.counters["disconnects"],
               "heat_off_applied_ms": 1000 * heat.get("applied", float("nan")),
               "heat_off_reply_ms": 1000 * heat.get("reply", float("nan")),
               "heat_off_ok": heat.get("ok"),
               "gate": dict(table.bridge.gate.counters),
               "refused_events": len(logged),
               "refusals_counted": sum(e.detail.get("count", 1) for e in logged),
               "process_cpu_pct": 100 * cpu / (time.monotonic() - t_start)}
    finally:
        dash.stop()
        flooder.disconnect()
        flooder.loop_stop()
        sub.stop()
        table.stop()
    return out


# --- 4. fleet -------------------------------------------------------------------------------

#: tables per worker process: pyserial waits with select(), which cannot take descriptors
#: above 1023, so one process cannot hold 200 tables (each has a pty, pyserial's pipes and
#: a paho socket pair); real tables are separate processes anyway
PER_WORKER = 50


def fleet_ids(tables: int, tag: str = "f") -> list[str]:
    return [f"{tag}{i:03d}" for i in range(tables)]


def fleet_worker(sim_dir: str, first: int, count: int, url: str, seconds: float,
                 poll_s: float, mqtt_over: dict[str, Any], accounts_dir: str, tag: str) -> None:
    """Subprocess: controllers + bridges for boards ``first``.. of one ``hydrotherm sim``,
    each logged in as its own table account."""
    store = CredentialStore(accounts_dir)
    base = parse_broker_url(url, env={})
    items = []
    ids = fleet_ids(first + count, tag)
    for i in range(first, first + count):
        tid = ids[i]
        cfg: Config = from_mapping({"mqtt": {"table_id": tid, **mqtt_over}})
        user = table_account(tid)
        address = parse_broker_url(f"mqtt://{user}:{store.password(user)}@{base.host}:"
                                   f"{base.port}", env={})
        clock = RealClock()
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), clock,
                         url=str(Path(sim_dir) / f"table{i}"))
        c = Controller(cfg, link, clock)
        for k in (0, 1):
            c.set_heat(k, True, "benchmark")
        runner = ControllerRunner(c, poll_s=poll_s).start()
        bridge = MqttBridge(c, cfg, address).start()
        items.append((c, runner, bridge))
    print(json.dumps({"started": True}), flush=True)
    time.sleep(seconds)

    def stop_all(fn: Any) -> None:
        threads = [threading.Thread(target=fn, args=(it,)) for it in items]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)

    trips = sum(1 for c, _, _ in items if c.supervisor.trips)
    # the counter counts the first connection too
    reconnects = sum(c.link.counters.reconnects - 1 for c, _, _ in items)
    stop_all(lambda it: it[2].stop())  # each publishes a last state, then offline
    stop_all(lambda it: it[1].stop())
    print(json.dumps({
        "published": {b.cfg.table_id: b.counters["state_published"] for _, _, b in items},
        "events_published": sum(b.counters["events_published"] for _, _, b in items),
        "tables_tripped": trips, "link_reconnects": reconnects,
        "link_events": dict(Counter(e.kind for c, _, _ in items for e in c.link.events
                                    if e.kind != "connected")),
        "trip_reasons": dict(Counter(t.reason for c, _, _ in items
                                     for t in c.supervisor.trips)),
        "watchdog_fired": sum(r.watchdog_fired for _, r, _ in items),
    }), flush=True)


def fleet(broker: Mosquitto, tables: int, seconds: float, poll_s: float,
          mqtt_over: dict[str, Any] | None = None, tag: str = "f",
          dashboard: bool = False) -> dict[str, Any]:
    """``tables`` controllers in workers of ``PER_WORKER``, one FleetClient (the dashboard
    account) here.  ``tag`` starts the table ids, so each run has tables of its own.
    ``dashboard``: the real dashboard process and a browser on its fleet page as well
    (``benchmarks.fleet_dashboard``)."""
    url, broker_pid = broker.url, broker.proc.pid
    work = Path(tempfile.mkdtemp(prefix="htbm"))
    sim_dir = work / "sim"
    prefix = (mqtt_over or {}).get("prefix", "hydrotherm")
    view = FleetClient(MqttConfig(prefix=prefix), parse_broker_url(url, env={})).start()
    ages: list[float] = []
    measuring = threading.Event()

    def on_update(table_id: str, leaf: str, value: Any) -> None:
        if leaf == "state" and measuring.is_set() and isinstance(value, dict):
            ages.append(time.time() - value["time"])

    view.listeners.append(on_update)
    sim = None
    workers: list[subprocess.Popen[str]] = []
    dash = None
    try:
        if not view.wait_connected(10):
            raise RuntimeError("FleetClient could not connect")
        if dashboard:
            dash = FleetDashboard(url)
            dash.ready.wait(90)
        sim = subprocess.Popen([EXE, "sim", "--tables", str(tables), "--dir", str(sim_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: (sim_dir / "control.sock").exists(), 30, 0.05):
            raise RuntimeError("hydrotherm sim did not start")
        t_start = time.monotonic()
        for first in range(0, tables, PER_WORKER):
            count = min(PER_WORKER, tables - first)
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "benchmarks.mqtt", "--fleet-worker", str(sim_dir),
                 str(first), str(count), broker.base_url, str(seconds), str(poll_s),
                 json.dumps(mqtt_over or {}), str(broker.dir), tag],
                stdout=subprocess.PIPE, text=True))
        for w in workers:
            assert w.stdout is not None
            w.stdout.readline()  # started

        ids = set(fleet_ids(tables, tag))  # other tables on the broker: offline

        def mine() -> dict[str, Any]:
            return {k: v for k, v in view.snapshot().items() if k in ids}

        def all_up() -> bool:
            snap = mine()
            return len(snap) == tables and all(
                v["status"] == "online" and v["state"] and v["state"]["link"]["healthy"]
                for v in snap.values())

        up = wait_until(all_up, 45, 0.1)
        t_up = time.monotonic()
        window = max(5.0, seconds - (t_up - t_start) - 2.0)
        m0, c0 = view.messages, time.process_time()
        pids = {"sim": sim.pid, "mosquitto": broker_pid,
                **{f"worker{k}": w.pid for k, w in enumerate(workers)}}
        cpu0 = {n: proc_cpu_s(pid) for n, pid in pids.items()}
        if dash is not None:
            dash.begin()
        measuring.set()
        time.sleep(window)
        measuring.clear()
        dash_out = dash.end() if dash is not None else None
        dt = time.monotonic() - t_up
        msgs, sub_cpu = view.messages - m0, time.process_time() - c0
        cpu = {n: 100 * (proc_cpu_s(pid) - cpu0[n]) / dt for n, pid in pids.items()}
        rss = sum(proc_rss_mb(w.pid) for w in workers)
        reports = []
        for w in workers:
            line = w.stdout.readline()  # type: ignore[union-attr]
            w.wait(60)
            reports.append(json.loads(line))
        wait_until(lambda: all(v["status"] == "offline" for v in mine().values()), 20, 0.1)
        time.sleep(0.5)
        received = {tid: v["state_updates"] for tid, v in mine().items()}
        published = {k: v for r in reports for k, v in r["published"].items()}
        # published - received per table: > 0 lost, < 0 duplicated (QoS 1 may redeliver)
        lost = {tid: n - received.get(tid, 0) for tid, n in published.items()
                if n != received.get(tid, 0)}
        worker_cpu = sum(v for k, v in cpu.items() if k.startswith("worker"))
        return {"tables": tables, "all_up": up, "startup_s": t_up - t_start, "window_s": dt,
                "workers": len(workers),
                "messages": msgs, "messages_per_s": msgs / dt,
                "subscriber_cpu_pct": 100 * sub_cpu / dt,
                "worker_cpu_pct": worker_cpu, "sim_cpu_pct": cpu["sim"],
                "mosquitto_cpu_pct": cpu["mosquitto"],
                "worker_rss_mb": rss,
                "states_published": sum(published.values()),
                "states_received": sum(received.get(t, 0) for t in published),
                "tables_with_lost_updates": lost, "poll_s": poll_s,
                "update_latency": summary_ms(ages),
                "dashboard": None if dash_out is None else {
                    **{k: v for k, v in dash_out.items() if not k.endswith("_ms")},
                    "page_latency": summary_ms([x / 1000 for x in
                                                dash_out["page_latency_ms"]]),
                    "sse_latency": summary_ms([x / 1000 for x in
                                               dash_out["sse_latency_ms"]])},
                "link_events": dict(sum((Counter(r["link_events"]) for r in reports),
                                        Counter())),
                "trip_reasons": dict(sum((Counter(r["trip_reasons"]) for r in reports),
                                         Counter())),
                **{k: sum(r[k] for r in reports)
                   for k in ("tables_tripped", "link_reconnects", "watchdog_fired",
                             "events_published")}}
    finally:
        view.stop()
        if dash is not None:
            dash.stop()
        for p in (*workers, sim):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)


# --- main -------------------------------------------------------------------------------------

def _line(label: str, s: dict[str, float]) -> str:
    return (f"{label:<44} p50 {s['p50_ms']:7.1f} ms  p99 {s['p99_ms']:7.1f} ms  "
            f"max {s['max_ms']:7.1f} ms  (n={s['n']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--tables", type=int, default=200, help="fleet size")
    ap.add_argument("--fleet-seconds", type=float, default=25.0)
    ap.add_argument("--stress-seconds", type=float, default=18.0,
                    help="the fleet again, publishing at least every 0.5 s (0: skip)")
    ap.add_argument("--cpu-seconds", type=float, default=20.0)
    ap.add_argument("--trips", type=int, default=10)
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--no-dashboard", action="store_true",
                    help="the fleet without the real dashboard and its fleet page")
    ap.add_argument("--poll-s", type=float, default=0.005, help="fleet controllers' poll")
    ap.add_argument("--flood", type=int, default=10000, help="commands in the flood")
    ap.add_argument("--flood-seconds", type=float, default=10.0)
    ap.add_argument("--only", action="append", choices=("latency", "cpu", "flood", "fleet"),
                    help="run only this part (repeatable)")
    ap.add_argument("--fleet-worker", nargs=9, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fleet_worker:
        d, first, n, url, secs, poll, over, accounts, tag = args.fleet_worker
        fleet_worker(d, int(first), int(n), url, float(secs), float(poll), json.loads(over),
                     accounts, tag)
        return
    work = Path(tempfile.mkdtemp(prefix="htbm"))
    broker = Mosquitto(work, ["lat", "pipe", "cpu", "flood", *fleet_ids(args.tables, "f"),
                              *fleet_ids(args.tables, "s")])
    res: dict[str, Any] = {"cpus": os.cpu_count()}
    only = set(args.only or ("latency", "cpu", "flood", "fleet"))
    try:
        t0 = time.monotonic()
        if "latency" in only:
            res["latency"] = lat = latency(broker, args.trips, args.changes)
            print("latency on loopback (Mosquitto 2, one process, one monotonic clock):")
            for key, label in (
                    ("trip_to_events", "board trip -> subscriber, events"),
                    ("trip_to_problem_value", "board trip -> subscriber, problem value"),
                    ("trip_to_state", "board trip -> subscriber, state"),
                    ("state_freshness", "reading age in each state received"),
                    ("change_to_events", "setpoint change -> events"),
                    ("change_to_state", "setpoint change -> state (min_interval 0.05)"),
                    ("change_to_value", "setpoint change -> setpoint_c value")):
                print(_line("  " + label, lat[key]))
        if "cpu" in only:
            res["controller_cpu"] = cpu = controller_cpu(broker, args.cpu_seconds)
            print(f"controller CPU (hydrotherm run --heat, {cpu['window_s']:.0f} s window):")
            for name, label in (("mqtt", "publishing to Mosquitto"), ("no_mqtt", "--no-mqtt")):
                c = cpu[name]
                print(f"  {label:<42} {c['cpu_s_per_hour']:7.0f} CPU s per hour "
                      f"({c['cpu_pct']:.2f} % of a core), RSS {c['rss_mb']:.0f} MiB; "
                      f"simulator {c['sim_cpu_pct']:.1f} %")
            print(f"  {'MQTT share':<42} {cpu['mqtt_overhead_cpu_s_per_hour']:7.0f} "
                  "CPU s per hour")
        if "flood" in only:
            res["flood"] = fl = flood(broker, args.flood, args.flood_seconds)
            print(f"command flood: {fl['sent']} setpoint commands in {fl['flood_s']:.1f} s "
                  "from the dashboard account, on one table (default settings):")
            print(_line("  state age on arrival during the flood", fl["state_age"]))
            print(f"  longest gap between states {fl['max_state_gap_s'] * 1000:.0f} ms; "
                  f"status offline seen: {'YES' if fl['offline_seen'] else 'no'}; "
                  f"bridge disconnects {fl['disconnects']}")
            print(f"  heat-off in the middle: applied after {fl['heat_off_applied_ms']:.0f} ms, "
                  f"reply after {fl['heat_off_reply_ms']:.0f} ms (ok: {fl['heat_off_ok']})")
            print(f"  gate: accepted {fl['gate']['accepted']}, refused (rate) "
                  f"{fl['gate']['refused_rate']}, refused (queue) {fl['gate']['refused_queue']}; "
                  f"event log command_refused entries {fl['refused_events']} (counting "
                  f"{fl['refusals_counted']}); CPU of this process (table, flooder, "
                  f"observer) "
                  f"{fl['process_cpu_pct']:.0f} % of a core")
        if "fleet" in only:
            runs = [("fleet", "default settings", args.fleet_seconds, {}, "f",
                     not args.no_dashboard)]
            if args.stress_seconds > 0:
                runs.append(("fleet_stress", "state at least every 0.5 s, changes every 0.05 s",
                             args.stress_seconds, dict(STRESS), "s", False))
            for key, label, secs, over, tag, dash in runs:
                res[key] = f = fleet(broker, args.tables, secs, args.poll_s, over, tag, dash)
                print(f"fleet of {f['tables']} simulated tables on one Mosquitto, {label} "
                      f"({f['window_s']:.0f} s window, all up after {f['startup_s']:.1f} s: "
                      f"{'yes' if f['all_up'] else 'NO'}):")
                print(f"  FleetClient: {f['messages_per_s']:.0f} messages/s, "
                      f"CPU {f['subscriber_cpu_pct']:.1f} % of a core")
                print(_line("  update latency (state time -> FleetClient)",
                            f["update_latency"]))
                print(f"  states published {f['states_published']}, received "
                      f"{f['states_received']}, tables with lost updates: "
                      f"{len(f['tables_with_lost_updates'])}")
                print(f"  {f['workers']} workers ({f['tables']} controllers + bridges, poll "
                      f"{f['poll_s'] * 1000:.0f} ms): CPU {f['worker_cpu_pct']:.0f} % "
                      f"({f['worker_cpu_pct'] / f['tables']:.2f} % per table), RSS "
                      f"{f['worker_rss_mb']:.0f} MiB; simulator CPU {f['sim_cpu_pct']:.0f} %; "
                      f"Mosquitto CPU {f['mosquitto_cpu_pct']:.1f} %")
                d = f["dashboard"]
                if d is not None:
                    print(f"  dashboard process (FleetClient, SSE to one browser on /fleet): "
                          f"CPU {d['cpu_pct']:.1f} % of a core, RSS {d['rss_mb']:.0f} MiB")
                    print(_line("  /api/stream update latency (state time -> SSE)",
                                d["sse_latency"]))
                    if d["page_error"]:
                        print(f"  fleet page: not measured: {d['page_error']}")
                    else:
                        print(_line("  fleet page update latency (state time -> card)",
                                    d["page_latency"]))
                print(f"  tables tripped {f['tables_tripped']} {f['trip_reasons'] or ''}, "
                      f"link reconnects {f['link_reconnects']} {f['link_events'] or ''}, "
                      f"host watchdog fired {f['watchdog_fired']}")
        res["total_s"] = time.monotonic() - t0
        print(f"(total {res['total_s']:.0f} s on {res['cpus']} CPUs)")
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
