"""The controller in real time over a real pty: ``hydrotherm run``, SIGTERM, the watchdog."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.runner import ControllerRunner
from controller.service import Controller
from firmware_bridge import protocol as p
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import Config, from_mapping
from sim.server import SimServer, send_control
from tests.test_cli import EXE, run


def wait_for(cond, timeout_s: float, step_s: float = 0.05) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step_s)
    return False


@pytest.fixture
def sim_proc(tmp_path: Path) -> Iterator[Path]:
    d = tmp_path / "sim"
    proc = subprocess.Popen([EXE, "sim", "--dir", str(d)], stdout=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        assert wait_for(lambda: (d / "control.sock").exists(), 5.0)
        yield d
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)


def sim_status(d: Path) -> dict:
    return send_control(d / "control.sock", {"cmd": "status"})["tables"][0]


def test_run_heats_then_sigterm_leaves_heaters_off(sim_proc: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen([EXE, "run", "--port", str(sim_proc / "table0"), "--heat",
                             "--setpoint", "38", "38", "--data-dir", str(data),
                             "--broker-port", "0", "--interval", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: sim_status(sim_proc)["output"][0] > 0, 10.0), "never heated"
        assert sim_status(sim_proc)["relay_closed"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "heaters off" in out
    st = sim_status(sim_proc)
    assert st["output"] == [0.0, 0.0] and not st["relay_closed"]
    res = run("events", "--data-dir", str(data), "--json")
    assert res.returncode == 0, res.stderr
    kinds = [e["kind"] for e in json.loads(res.stdout)]
    assert "controller_start" in kinds and kinds[-1] == "controller_stop"
    assert "setpoint" in kinds and "heat" in kinds and "link_connected" in kinds
    text = run("events", "--data-dir", str(data), "--since", "1h")
    assert "controller_start" in text.stdout
    bad = run("events", "--data-dir", str(data), "--since", "yesterday-ish")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_run_refuses_bad_setpoint_at_start(sim_proc: Path, tmp_path: Path) -> None:
    res = run("run", "--port", str(sim_proc / "table0"), "--setpoint", "41", "37",
              "--data-dir", str(tmp_path / "d"), "--duration", "1", "--no-mqtt")
    assert res.returncode == 2 and "outside" in res.stderr


def test_watchdog_cuts_heaters_when_the_loop_hangs(tmp_path: Path) -> None:
    cfg: Config = from_mapping({"plant": {"initial_water_c": 30.0}})
    with SimServer(cfg, RealClock(), tmp_path / "sim") as server:
        clock = RealClock()
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url=server.ports[0].path)
        controller = Controller(cfg, link, clock)
        controller.set_heat(0, True, "test")
        fired: list[str] = []
        runner = ControllerRunner(controller, on_watchdog=fired.append).start()
        board = server.tables[0].board
        hang = {"on": False}
        try:
            assert wait_for(lambda: board.applied(0) > 0, 10.0), "never heated"
            hang["on"] = True
            real_cycle = controller._cycle

            def hung_cycle(now: float) -> None:
                while hang["on"]:  # the control law hangs holding the controller's lock
                    time.sleep(0.01)
                real_cycle(now)

            controller._cycle = hung_cycle  # type: ignore[method-assign]
            assert wait_for(lambda: board.applied(0) == 0, 8.0)
            assert fired and "stalled" in fired[0]
            # The host cut first, judged by the parts' own clocks rather than by this
            # thread's wall clock (which adds the test's own scheduling delays on a busy
            # machine): the watchdog measured the stall it acted on, shorter than the
            # board's dead-man, and the board never had to use its dead-man.
            assert runner.cut_after_s is not None
            print(f"watchdog cut after {runner.cut_after_s:.3f} s of stall")
            assert cfg.control.watchdog_s <= runner.cut_after_s < cfg.board.deadman_s
            with server.lock:
                deadman = p.Fault.for_channel("DEADMAN", 0) | p.Fault.for_channel("DEADMAN", 1)
                assert not board.faults & int(deadman), "the board's dead-man cut, not the host"
        finally:
            hang["on"] = False
            runner.stop()
        assert board.applied(0) == 0 and not board.relay_closed
