"""The ``hydrotherm`` command as a user runs it: console script, real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hydrotherm import config as config_mod

EXE = shutil.which("hydrotherm") or str(Path(sys.executable).parent / "hydrotherm")


def run(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_console_script_installed() -> None:
    assert Path(EXE).exists(), "install the project (pip install -e .) to get `hydrotherm`"


def test_config_show_prints_effective_config_that_reloads(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[plant]\nroom_c = 18.5\n[control]\nsetpoint_c = 36.0\n")
    res = run("--config", str(f), "config", "show")
    assert res.returncode == 0, res.stderr
    assert "room_c = 18.5" in res.stdout and "setpoint_c = [36.0, 36.0]" in res.stdout
    again = tmp_path / "again.toml"
    again.write_text(res.stdout)
    assert config_mod.load(again) == config_mod.load(f)


@pytest.mark.parametrize("body,key", [
    ("[control]\nsetpoint_max_c = 40.5\n", "control.setpoint_max_c"),
    ("[plant]\nheater_w = -10\n", "plant.heater_w"),
    ("[plant]\nheater_watts = 300\n", "plant.heater_watts"),
    ("[safety]\nover_temperature_c = 45\n", "safety.over_temperature_c"),
    ("[board]\ntelemetry_period_s = 1.0\n", "board.telemetry_period_s"),
    ("[nonsense]\nx = 1\n", "nonsense"),
])
def test_bad_config_refused_naming_the_key(tmp_path: Path, body: str, key: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(body)
    res = run("--config", str(f), "config", "show")
    assert res.returncode == 2
    assert key in res.stderr and "Traceback" not in res.stderr


def test_sim_fault_injection_from_cli(tmp_path: Path) -> None:
    d = tmp_path / "sim"
    proc = subprocess.Popen([EXE, "sim", "--dir", str(d), "--tables", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first.startswith("table0: ") and "/dev/pts/" in first
        assert proc.stdout.readline().startswith("table1: ")
        ctl = d / "control.sock"
        for _ in range(100):
            if ctl.exists():
                break
            time.sleep(0.05)
        ok = run("fault", "sensor_open", "--cushion", "0", "--control", str(ctl))
        assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
        # the same table names as the dashboard: table1 (or its number)
        ok = run("fault", "heater_stuck_on", "--cushion", "1", "--table", "table1",
                 "--control", str(ctl))
        assert ok.returncode == 0, ok.stderr
        status = run("sim-status", "--control", str(ctl))
        assert status.returncode == 0
        lines = status.stdout.splitlines()
        assert lines[0].split()[:2] == ["table", "cushion"] and len(lines) == 5
        row = {(ln.split()[0], ln.split()[1]): ln for ln in lines[1:]}
        assert "sensor_open (sensor=primary)" in row[("table0", "upper")]
        assert "heater_stuck_on" in row[("table1", "lower")]
        assert row[("table1", "upper")].rstrip().endswith("-")
        one = run("sim-status", "--table", "1", "--json", "--control", str(ctl))
        tables = json.loads(one.stdout)
        assert [t["table"] for t in tables] == ["table1"]
        assert tables[0]["active_faults"] == [{"fault": "heater_stuck_on", "cushion": 1}]
        nosuch = run("sim-status", "--table", "table7", "--control", str(ctl))
        assert nosuch.returncode == 2 and "table0, table1" in nosuch.stderr
        bad = run("fault", "sensor_open", "--control", str(ctl))  # no cushion
        assert bad.returncode == 2 and "cushion is required" in bad.stderr
        unknown = run("fault", "gremlins", "--control", str(ctl))
        assert unknown.returncode == 2
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert not (d / "control.sock").exists() and not (d / "table0").exists()


def test_every_fault_option_has_help() -> None:
    from hydrotherm.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("fault", "client", "sim-status", "events", "demo"):
        for action in sub.choices[command]._actions:
            assert action.help, f"hydrotherm {command} {action.option_strings or action.dest}"
    text = run("fault", "--help").stdout
    for option in ("--offset-c", "--kg-per-min", "--error-rate", "--duration-s", "--table"):
        assert option in text
    assert "cushion_leak: the cushion loses water" in " ".join(text.split())


def test_fault_without_simulator_is_a_clear_error(tmp_path: Path) -> None:
    res = run("fault", "board_reset", "--control", str(tmp_path / "none.sock"))
    assert res.returncode == 2 and "no simulator is listening" in res.stderr


def test_monitor_shows_live_telemetry_from_sim(tmp_path: Path) -> None:
    d = tmp_path / "sim"
    sim = subprocess.Popen([EXE, "sim", "--dir", str(d)], stdout=subprocess.PIPE, text=True)
    try:
        sim.stdout.readline()
        res = run("monitor", "--port", str(d / "table0"), "--interval", "0.5",
                  "--duration", "2.5")
        assert res.returncode == 0, res.stderr
        assert "[link] connected" in res.stdout
        assert "upper body:" in res.stdout and "lower body:" in res.stdout, res.stdout
        assert "°C" in res.stdout
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(timeout=10)


def test_autotune_sim_writes_a_config_that_loads(tmp_path: Path) -> None:
    out = tmp_path / "tuned.toml"
    res = run("autotune", "--sim", "--write", str(out), "--interval", "30", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "loss to room" in res.stdout and f"written to {out}" in res.stdout
    tuned = config_mod.load(out)
    assert abs(tuned.plant.water_kg - 25.0) < 1.25
    assert run("--config", str(out), "config", "show").returncode == 0


def test_autotune_needs_a_target() -> None:
    res = run("autotune", "--sim")
    assert res.returncode == 2 and "--write" in res.stderr


def test_scenario_run_cli_exit_codes(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    ok = run("scenario", "run", str(root / "sim" / "scenarios" / "sensor_open.toml"),
             "--json", str(tmp_path / "r.json"), "--quiet")
    assert ok.returncode == 0, ok.stderr
    assert '"passed": true' in (tmp_path / "r.json").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nduration_s = 60\nbogus = 1\n')
    res = run("scenario", "run", str(bad))
    assert res.returncode == 2 and "line 3" in res.stderr and "bogus" in res.stderr


def test_demo_timing_widens_wall_clock_limits_only() -> None:
    from hydrotherm.app.demo import demo_timing

    cfg = config_mod.Config()
    assert demo_timing(cfg, 1.0) is cfg
    fast = demo_timing(cfg, 60.0)
    assert fast.board.deadman_s == 30.0 and fast.safety.stale_telemetry_s == 10.0
    assert fast.link.refresh_s < fast.board.deadman_s
    assert fast.safety.over_temperature_c == cfg.safety.over_temperature_c
    assert fast.plant == cfg.plant and fast.safety.no_rise_window_s == cfg.safety.no_rise_window_s
