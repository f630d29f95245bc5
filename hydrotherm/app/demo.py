"""``hydrotherm demo``: the whole system on one machine.

An embedded broker (unless one is configured), N simulated boards on ptys, one real
controller per table over the real link with its event log and MQTT bridge, and the
dashboard on the same broker with a tester panel that injects faults into the simulated
boards.  The dashboard sees the tables only through MQTT, exactly as in a clinic; the
tester panel is the one wire from the dashboard to the simulator, and it is made here
(``demo_actions``), not in the dashboard.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from controller.mqtt.fleet import FleetClient
from controller.runner import ControllerRunner
from dashboard.app import create_app
from dashboard.auth import FIRST_USER, UserStore, load_secret_key
from dashboard.context import DemoActions
from dashboard.server import DashboardServer
from hydrotherm.clock import RealClock, ScaledClock
from hydrotherm.config import Config
from sim.server import SimServer

from .errors import UsageError
from .parts import (
    attach_schedule,
    build_controller,
    install_stop,
    open_log,
    start_bridge,
    start_broker,
    status_line,
)


def demo_timing(cfg: Config, speed: float) -> Config:
    """The demo's time limits at ``speed``× (simulation only).

    The plant and the controller share a clock that runs N× faster, so every time limit
    in simulated seconds shrinks N× in wall time: at 60× the 1 s stale-telemetry limit is
    17 ms of wall time, less than one scheduling hiccup of a busy laptop, and the demo
    would trip on the operating system rather than on a fault.  Limits that guard against
    *wall-clock* events (link silence, dead-man, ACK, refresh, loop stall) are widened by
    ``speed / 6`` so they keep at least a sixth of their real-time wall duration; the
    physics (temperatures, rates, windows of minutes) is untouched.  Never used by
    ``hydrotherm run``.
    """
    f = max(1.0, speed / 6.0)
    if f == 1.0:
        return cfg
    link, board, safety = cfg.link, cfg.board, cfg.safety
    return replace(
        cfg,
        link=replace(link, ack_timeout_s=link.ack_timeout_s * f, refresh_s=link.refresh_s * f,
                     stale_s=link.stale_s * f,
                     silence_reconnect_s=link.silence_reconnect_s * f),
        board=replace(board, deadman_s=board.deadman_s * f),
        safety=replace(safety, stale_telemetry_s=safety.stale_telemetry_s * f,
                       control_stall_s=safety.control_stall_s * f))


def demo_actions(server: SimServer, table_ids: list[str]) -> DemoActions:
    """The dashboard's tester panel: fault injection into the simulated boards."""

    def act(name: str, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        table_id = params.pop("table_id", table_ids[0])
        if table_id not in table_ids:
            return {"ok": False, "error": f"no simulated table {table_id!r}"}
        idx = table_ids.index(table_id)
        if name in ("client_on", "client_off"):
            results = [server.handle({"cmd": "client", "table": idx, "cushion": c,
                                      "on": name == "client_on"}) for c in (0, 1)]
            bad = [r for r in results if not r.get("ok")]
            return bad[0] if bad else {"ok": True}
        clear = bool(params.pop("clear", False))
        return server.handle({"cmd": "fault", "fault": name, "table": idx, "clear": clear,
                              **params})

    return act


def demo_password() -> str:
    return secrets.token_urlsafe(9)


def run_demo(cfg: Config, *, speed: float, tables: int, seed: int | None,
             sim_dir: str | None, data_dir: str | None, host: str | None,
             dashboard_port: int | None, interval_s: float,
             duration_s: float | None) -> int:
    if speed <= 0:
        raise UsageError("--speed must be positive")
    if not 1 <= tables <= 50:
        raise UsageError("--tables must be 1–50")
    clock = ScaledClock(speed) if speed != 1 else RealClock()
    cfg = demo_timing(cfg, speed)
    poll_s = 0.005 if speed <= 1 else 0.001
    root = (Path(data_dir).expanduser() if data_dir else cfg.data_dir) / "demo"
    directory = Path(sim_dir) if sim_dir else None
    stop = install_stop()
    started: list[Any] = []  # stopped in reverse order, whatever happens
    runners: list[Any] = []
    try:
        server = SimServer(cfg, clock, directory, tables=tables, seed=seed).start()
        started.append(server)
        address, embedded = start_broker(cfg)
        if embedded is not None:
            started.append(embedded)  # stopped after every client of it (reverse order)
        first_id = cfg.mqtt.table_id
        table_ids = [first_id] + [f"{first_id}-{i}" for i in range(1, tables)]
        for i, table_id in enumerate(table_ids):
            tcfg = replace(cfg, mqtt=replace(cfg.mqtt, table_id=table_id))
            log = open_log(cfg, str(root / table_id))
            controller = build_controller(tcfg, server.ports[i].path, clock, log)
            attach_schedule(controller, log)
            for c in range(2):
                controller.set_heat(c, True, "demo")
            runner = ControllerRunner(controller, poll_s=poll_s)
            runner.start()
            started.append(runner)
            runners.append(runner)
            started.append(start_bridge(tcfg, controller, address))
        # the dashboard, on the same broker, with a fresh demo login each run
        fleet = FleetClient(cfg.mqtt, address).start()
        started.append(fleet)
        users = UserStore(root / "users.toml")
        password = demo_password()
        users.set_password(FIRST_USER, password)
        app = create_app(cfg, fleet, users, secret_key=load_secret_key(root), demo=True,
                         demo_actions=demo_actions(server, table_ids))
        host = host or cfg.dashboard.host
        port = cfg.dashboard.port if dashboard_port is None else dashboard_port
        try:
            dash = DashboardServer(app, host, port, cfg.dashboard.threads).start()
        except OSError as exc:
            raise UsageError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror}"
                             " (pass --dashboard-port)") from None
        started.append(dash)
        print(f"dashboard: {dash.url}/  login: {FIRST_USER} / {password}", flush=True)
        print(f"{tables} simulated table(s) at x{speed} speed; Ctrl-C stops "
              "everything (heaters off first)", flush=True)
        t_end = time.monotonic() + duration_s if duration_s else None
        while not stop.wait(interval_s):
            for table_id, runner in zip(table_ids, runners, strict=True):
                print(f"[{table_id}] " + status_line(runner.controller), flush=True)
            if t_end and time.monotonic() >= t_end:
                break
    finally:
        # heaters off first (each runner stops its controller), then the rest in reverse
        ordered = [p for p in started if p in runners] + \
            [p for p in reversed(started) if p not in runners]
        for part in ordered:
            try:
                part.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                print(f"while stopping {type(part).__name__}: {exc}", file=sys.stderr)
    print("stopped: heaters off, event logs closed, dashboard, broker and simulator stopped",
          flush=True)
    return 0
