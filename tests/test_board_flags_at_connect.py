"""Latched board flags are trips whenever they are seen (issue 9, part 1), and the service
lockout (part 3), against the board emulator on a real pty in real time.

* every latchable flag found latched when the controller connects is a ``board_fault``
  trip at the first report of the connection (the measured time from "connected" to the
  trip is printed); a therapist's reset clears the ones whose cause the data can show
  gone, sends CLEAR_FAULTS and closes the relay again; the board's hot-water limit and a
  cut-out need ``hydrotherm service reset``, and stay latched on the board until then;
* ``hydrotherm run`` killed with SIGKILL while heating, the board's dead-man fires, the
  controller started again: a trip naming the dead-man and the previous run's end;
* the cable pulled past the dead-man and plugged back: the same truth;
* a clean stop and start: no trip.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.eventlog import EventLog
from controller.runner import ControllerRunner
from controller.service import Controller
from controller.service_socket import ServiceSocket, ServiceSocketError, request
from firmware_bridge import protocol as p
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import Config
from sim.server import SimServer
from tests.test_cli import EXE, run

FLAGS = ["DEADMAN_0", "DEADMAN_1", "LIMIT_HOT_0", "LIMIT_HOT_1", "LIMIT_SENSOR_0",
         "LIMIT_SENSOR_1", "CUTOUT_0", "CUTOUT_1"]
SERVICE = {"LIMIT_HOT_0", "LIMIT_HOT_1", "CUTOUT_0", "CUTOUT_1"}


def wait_for(cond: Any, timeout_s: float, step_s: float = 0.02) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step_s)
    return bool(cond())


@pytest.fixture
def server(tmp_path: Path, cfg: Config) -> Iterator[SimServer]:
    with SimServer(cfg, RealClock(), tmp_path / "sim", tables=1, seed=5) as srv:
        yield srv


class Host:
    """One controller in this process over the pty, with its event log, service socket
    and a record of its events with their monotonic arrival time."""

    def __init__(self, cfg: Config, server: SimServer, data: Path) -> None:
        self.log = EventLog(data / "events.sqlite3")
        clock = RealClock()
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url=server.ports[0].path)
        self.controller = Controller(cfg, link, clock, log=self.log)
        for c in (0, 1):
            self.controller.set_heat(c, True, "test")
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.controller.listeners.append(
            lambda e: e.get("type") == "event" and self.events.append((time.monotonic(), e)))
        self.runner = ControllerRunner(self.controller)
        self.service = ServiceSocket(self.controller, data)

    def __enter__(self) -> Host:
        self.runner.start()
        self.service.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.service.stop()
        self.runner.stop()

    def first(self, kind: str, reason: str | None = None) -> tuple[float, dict[str, Any]] | None:
        return next(((t, e) for t, e in list(self.events)
                     if e["kind"] == kind and (reason is None or e["reason"] == reason)), None)

    def reset(self, actor: str) -> Any:
        done = threading.Event()
        out: list[Any] = []
        self.controller.request_reset(actor, None, lambda r: (out.append(r), done.set()))
        assert done.wait(10), "the reset was never judged"
        return out[0]


def board(server: SimServer) -> dict[str, Any]:
    with server.lock:
        return server.status(0)


@pytest.mark.parametrize("flag", FLAGS)
def test_a_flag_latched_before_connecting_is_a_trip_at_the_first_report(
        flag: str, server: SimServer, cfg: Config, tmp_path: Path) -> None:
    bit = int(p.Fault[flag])
    with server.lock:
        server.tables[0].board.latch(bit)
    assert board(server)["faults"] & bit and not board(server)["relay_closed"]
    with Host(cfg, server, tmp_path / "data") as host:
        assert wait_for(lambda: host.first("trip", "board_fault"), 5.0), "no trip"
        t_conn, _ = host.first("link_connected")  # type: ignore[misc]
        t_trip, ev = host.first("trip", "board_fault")  # type: ignore[misc]
        print(f"\n{flag}: board_fault trip {1000 * (t_trip - t_conn):.0f} ms after connecting")
        latch = host.controller.supervisor.latches.latched[("board_fault", None)]
        assert latch.reports_at_trip == 1, "not judged at the first report of the connection"
        detail = ev["detail"]["detail"]
        assert "when the controller connected" in detail and f"{flag}:" in detail
        assert "board has been running for" in detail
        assert flag.lower() in ev["detail"]["flags"]
        snap = host.controller.snapshot()
        assert snap["tripped"] and all(c["trips"] for c in snap["cushions"])
        [trip] = snap["cushions"][0]["trips"]
        assert trip["service_only"] is (flag in SERVICE)
        time.sleep(1.0)  # heat was asked for: the relay must stay open and nothing heat
        st = board(server)
        assert not st["relay_closed"] and st["output"] == [0.0, 0.0]
        assert host.controller.snapshot()["cushions"][0]["ready_in_s"] is None or snap["tripped"]

        res = host.reset("therapist")
        if flag in SERVICE:
            assert not res.ok and "only a service person" in res.refused[0][1]
            time.sleep(0.5)
            st = board(server)
            assert st["faults"] & bit, "a therapist's reset cleared a service-only board flag"
            assert not st["relay_closed"]
            ans = request(host.service.path, {"cmd": "reset", "name": "Sam Service",
                                              "reason": "plate and SSR checked"})
            assert ans["ok"] and ans["cleared"] == ["board_fault"], ans
        else:
            assert res.ok and [t.reason for t in res.cleared] == ["board_fault"]
        # CLEAR_FAULTS went out, the flag is gone, the relay closes again and it heats
        assert wait_for(lambda: board(server)["relay_closed"] and board(server)["faults"] == 0,
                        5.0), board(server)
        assert wait_for(lambda: max(board(server)["output"]) > 0, 5.0)
        assert not host.controller.snapshot()["tripped"]


def test_a_fresh_board_only_has_its_boot_reset_and_does_not_trip(
        server: SimServer, cfg: Config, tmp_path: Path) -> None:
    assert board(server)["faults"] == int(p.Fault.RESET)
    with Host(cfg, server, tmp_path / "data") as host:
        assert wait_for(lambda: board(server)["relay_closed"]
                        and max(board(server)["output"]) > 0, 5.0)
        assert host.first("trip") is None and board(server)["faults"] == 0


def test_unplug_past_the_deadman_and_replug_is_a_board_fault(
        server: SimServer, cfg: Config, tmp_path: Path) -> None:
    with Host(cfg, server, tmp_path / "data") as host:
        assert wait_for(lambda: max(board(server)["output"]) > 0, 5.0), "never heated"
        assert server.handle({"fault": "unplug"}) == {"ok": True}
        deadman = int(p.Fault.DEADMAN_0 | p.Fault.DEADMAN_1)
        assert wait_for(lambda: board(server)["faults"] & deadman, cfg.board.deadman_s + 3)
        assert server.handle({"fault": "replug"}) == {"ok": True}
        n0 = len([e for _, e in host.events if e["kind"] == "link_connected"])
        assert wait_for(lambda: len([e for _, e in host.events
                                     if e["kind"] == "link_connected"]) > n0, 10.0)
        assert wait_for(lambda: any("DEADMAN_0" in e["detail"].get("detail", "")
                                    for _, e in host.events if e["kind"] == "trip"), 3.0)
        t_conn = [t for t, e in host.events if e["kind"] == "link_connected"][-1]
        t_trip = next(t for t, e in host.events
                      if e["kind"] == "trip" and "DEADMAN_0" in e["detail"].get("detail", ""))
        print(f"\nunplug/replug: board_fault trip {1000 * (t_trip - t_conn):.0f} ms after "
              "reconnecting")
        trips = {t.reason: t for t in host.controller.supervisor.trips}
        assert "dead-man" in trips["board_fault"].detail
        time.sleep(1.0)
        assert not board(server)["relay_closed"] and board(server)["output"] == [0.0, 0.0]
        assert wait_for(lambda: host.controller.link.healthy, 5.0)
        res = host.reset("therapist")
        assert res.ok, (res.refused, host.controller.link.state, host.controller.link.error,
                        host.controller.link.counters, board(server),
                        [(round(t, 2), e["kind"], e["detail"]) for t, e in host.events])
        assert wait_for(lambda: board(server)["relay_closed"], 5.0)


def test_restart_with_a_service_lockout_keeps_it(server: SimServer, cfg: Config,
                                                 tmp_path: Path) -> None:
    """A cut-out trip left latched by a controller that stopped is latched again by the
    next one from the event log, although the board no longer shows the flag."""
    data = tmp_path / "data"
    with server.lock:
        server.tables[0].board.latch(int(p.Fault.CUTOUT_1))
    with Host(cfg, server, data) as host:
        assert wait_for(lambda: host.controller.supervisor.service_needed, 5.0)
    with server.lock:  # someone clears the board behind the controller's back
        server.tables[0].board.faults = 0
    with Host(cfg, server, data) as host:
        assert wait_for(lambda: host.controller.supervisor.service_needed, 5.0)
        [trip] = host.controller.supervisor.trips
        assert "awaiting a service reset" in trip.detail and "CUTOUT_1" in trip.detail
        time.sleep(1.0)
        assert not board(server)["relay_closed"]
        assert not host.reset("therapist").ok
        ans = request(host.service.path, {"cmd": "reset", "name": "Sam", "reason": "refilled"})
        assert ans["ok"], ans
        assert wait_for(lambda: board(server)["relay_closed"], 5.0)
    with Host(cfg, server, data) as host:  # and once reset, a restart does not bring it back
        assert wait_for(lambda: board(server)["relay_closed"], 5.0)
        assert host.controller.supervisor.trips == []


def test_service_socket_is_private_and_checks_its_input(server: SimServer, cfg: Config,
                                                        tmp_path: Path) -> None:
    with Host(cfg, server, tmp_path / "data") as host:
        mode = stat.S_IMODE(os.stat(host.service.path).st_mode)
        assert mode == 0o600, oct(mode)
        for body, why in (({"cmd": "reset", "name": "x", "reason": " "}, "reason"),
                          ({"cmd": "reset", "reason": "y"}, "name"),
                          ({"cmd": "reset", "name": "x", "reason": "y", "cushion": 2},
                           "cushion"),
                          ({"cmd": "reboot"}, "unknown cmd")):
            ans = request(host.service.path, body)
            assert not ans["ok"] and why in ans["error"], ans
        with pytest.raises(ServiceSocketError, match="already serves"):
            ServiceSocket(host.controller, tmp_path / "data").start()
    # a stale socket file left by a killed controller is replaced; any other file is not
    other = tmp_path / "other"
    other.mkdir()
    (other / "service.sock").write_text("not a socket")
    with pytest.raises(ServiceSocketError, match="not a socket"):
        ServiceSocket(None, other).start()


# --- `hydrotherm run` as a process -------------------------------------------------------------


def _start_run(port: str, data: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([EXE, "run", "--port", port, "--heat", "--setpoint", "38", "38",
                             "--data-dir", str(data), "--no-mqtt", "--interval", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Lines:
    """A process's stdout lines, each with its monotonic arrival time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._t = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._t.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, text: str) -> float | None:
        return next((t for t, line in list(self.lines) if text in line), None)


def _events(data: Path) -> list[dict[str, Any]]:
    res = run("events", "--data-dir", str(data), "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_kill_9_past_the_deadman_then_restart_trips_naming_the_deadman(
        server: SimServer, cfg: Config, tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = server.ports[0].path
    proc = _start_run(port, data)
    try:
        assert wait_for(lambda: max(board(server)["output"]) > 0
                        and board(server)["relay_closed"], 15.0), "never heated"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    deadman = int(p.Fault.DEADMAN_0 | p.Fault.DEADMAN_1)
    assert wait_for(lambda: board(server)["faults"] & deadman == deadman,
                    cfg.board.deadman_s + 3), board(server)
    time.sleep(1.0)  # well past the dead-man
    assert not board(server)["relay_closed"]

    t_start = time.monotonic()
    proc = _start_run(port, data)
    lines = Lines(proc)
    try:
        assert wait_for(lambda: lines.first("reason=board_fault"), 15.0), lines.lines
        t_conn, t_trip = lines.first("[event] link_connected"), lines.first("reason=board_fault")
        assert t_conn is not None and t_trip is not None and t_trip >= t_conn
        print(f"\nafter kill -9: board_fault trip {1000 * (t_trip - t_conn):.0f} ms after "
              f"connecting, {t_trip - t_start:.2f} s after the process was started (as "
              "printed by `hydrotherm run`)")
        assert wait_for(lambda: lines.first("Heater board fault"), 5.0)  # the status line, in words
        time.sleep(1.0)
        assert not board(server)["relay_closed"] and board(server)["output"] == [0.0, 0.0]
        status = run("service", "status", "--data-dir", str(data))
        assert status.returncode == 0 and "board_fault [therapist may reset]" in status.stdout
        trips = [e for e in _events(data) if e["kind"] == "trip"]
        detail = trips[-1]["detail"]["detail"]
        print(f"the trip's detail: {detail}")
        assert "DEADMAN_0, DEADMAN_1:" in detail and "heaters 0 and 1 off" in detail
        assert "dead-man" in detail
        assert "without a clean stop" in detail and "before this start" in detail
        # a person's reset (here the service command: any named person may reset a
        # dead-man) sends CLEAR_FAULTS and the relay closes again
        res = run("service", "reset", "--name", "Sam", "--reason", "controller was killed",
                  "--data-dir", str(data))
        assert res.returncode == 0 and "cleared board_fault" in res.stdout, res
        assert wait_for(lambda: board(server)["relay_closed"] and board(server)["faults"] == 0,
                        5.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    resets = [e for e in _events(data) if e["kind"] == "trip_reset"]
    assert resets[-1]["actor"].startswith("service:Sam (account ")
    assert "controller was killed" in resets[-1]["detail"]["detail"]

    # a clean stop (above) and a start: nothing latched, no trip, it heats
    n_before = len(_events(data))
    proc = _start_run(port, data)
    try:
        assert wait_for(lambda: board(server)["relay_closed"]
                        and max(board(server)["output"]) > 0, 15.0), "never heated"
        time.sleep(1.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
    new = _events(data)[n_before:]
    assert [e for e in new if e["kind"] == "trip"] == []
    assert "link_connected" in [e["kind"] for e in new]


def test_service_cli_refuses_mistakes_in_one_line(tmp_path: Path) -> None:
    res = run("service", "reset", "--name", "Sam", "--reason", "x", "--data-dir",
              str(tmp_path))
    assert res.returncode == 2 and "no controller is running" in res.stderr
    assert "Traceback" not in res.stderr
    res = run("service", "reset", "--name", "Sam", "--reason", "  ", "--data-dir",
              str(tmp_path))
    assert res.returncode == 2 and "--reason must not be empty" in res.stderr
    res = run("service", "reset", "--name", "Sam", "--data-dir", str(tmp_path))
    assert res.returncode == 2 and "--reason" in res.stderr
