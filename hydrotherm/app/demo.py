"""``hydrotherm demo``: the whole system on one machine.

An embedded broker (unless one is configured), N simulated boards on ptys, one real
controller per table over the real link with its event log and MQTT bridge, and the
dashboard on the same broker with a tester panel that injects faults into the simulated
boards.  The dashboard sees the tables only through MQTT, exactly as in a clinic; the
tester panel is the one wire from the dashboard to the simulator, and it is made here
(``demo_actions``), not in the dashboard.
"""

from __future__ import annotations

import re
import secrets
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.mqtt.accounts import DASHBOARD, table_account
from controller.mqtt.fleet import FleetClient
from controller.runner import ControllerRunner
from dashboard.app import create_app
from dashboard.auth import FIRST_USER, UserStore, load_secret_key
from dashboard.context import DemoActions
from dashboard.server import DashboardServer
from hydrotherm.clock import PacedClock, RealClock
from hydrotherm.config import Config
from sim.server import SimServer

from .errors import UsageError
from .parts import (
    account_address,
    attach_schedule,
    build_controller,
    install_stop,
    open_log,
    start_bridge,
    start_broker,
    start_service_socket,
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
    ``hydrotherm run``.  A busy machine can still miss more than that; ``demo_clock``
    then holds simulated time rather than let a limit expire on time nobody lived.
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


def demo_clock(cfg: Config, speed: float) -> PacedClock | RealClock:
    """The demo's shared clock: real time at ×1, else a ``PacedClock`` that holds
    simulated time when the simulator or a controller loop falls behind (a busy
    machine), so no time limit is ever judged on time a participant did not live.

    It may run ahead of the slowest participant by a quarter of the shortest limit a
    late participant could break (telemetry age, the board's dead-man, the control
    stall), so a hold always comes well before a false trip; ``cfg`` is the demo's
    configuration (``demo_timing`` applied)."""
    if speed == 1:
        return RealClock()
    shortest = min(cfg.safety.stale_telemetry_s, cfg.link.stale_s, cfg.board.deadman_s,
                   cfg.safety.control_stall_s)
    return PacedClock(speed, lead_s=shortest / 4)


def table_names(first: str, n: int) -> list[str]:
    """The demo's table names, the same in the simulator, MQTT, the dashboard and the
    CLI: a trailing number counts up (``table0``, ``table1``, ``table2``; ``room3``,
    ``room4``), any other name gets ``-1``, ``-2``, ..."""
    m = re.fullmatch(r"(.*?)(\d+)", first)
    if m:
        return [f"{m.group(1)}{int(m.group(2)) + i}" for i in range(n)]
    return [first] + [f"{first}-{i}" for i in range(1, n)]


def demo_data_root(cfg: Config, data_dir: str | None) -> Path:
    """Where this demo run keeps its event logs and login: ``--data-dir`` as given (kept
    across runs), else a fresh ``<data.dir>/demo/<start time>`` (so a second run's chart
    never mixes with the first's) with ``<data.dir>/demo/latest`` pointing to it."""
    if data_dir:
        return Path(data_dir).expanduser()
    base = cfg.data_dir / "demo"
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    root, n = base / stamp, 1
    while root.exists():
        n += 1
        root = base / f"{stamp}-{n}"
    return root


def _point_latest(root: Path) -> None:
    latest = root.parent / "latest"
    try:
        if latest.is_symlink():
            latest.unlink()
        if not latest.exists():
            latest.symlink_to(root.name)
    except OSError:
        pass  # only a convenience


def demo_actions(server: SimServer, table_ids: list[str],
                 runners: dict[str, ControllerRunner] | None = None) -> DemoActions:
    """The dashboard's tester panel: fault injection into the simulated boards (and
    ``host_stall``, the control loop hanging, into a table's controller); ``status``
    lists the faults now active on a table."""

    def act(name: str, params: dict[str, Any]) -> dict[str, Any]:
        params = dict(params)
        table_id = params.pop("table_id", table_ids[0])
        if table_id not in table_ids:
            return {"ok": False, "error": f"no simulated table {table_id!r}"}
        if name == "status":
            status = server.handle({"cmd": "status", "table": table_id})
            runner = (runners or {}).get(table_id)
            left = runner.controller.control_stall_left_s() if runner else 0.0
            if status.get("ok") and left > 0:
                status["tables"][0]["active_faults"].append(
                    {"fault": "host_stall", "remaining_s": round(left, 1)})
            return status
        if name in ("client_on", "client_off"):
            results = [server.handle({"cmd": "client", "table": table_id, "cushion": c,
                                      "on": name == "client_on"}) for c in (0, 1)]
            bad = [r for r in results if not r.get("ok")]
            return bad[0] if bad else {"ok": True}
        clear = bool(params.pop("clear", False))
        if name == "host_stall":
            runner = (runners or {}).get(table_id)
            if runner is None:
                return {"ok": False, "error": "host_stall needs the table's controller"}
            duration = params.get("duration_s", 60.0)
            if isinstance(duration, bool) or not isinstance(duration, int | float) \
                    or not 0 < duration <= 3600:
                return {"ok": False, "error": "host_stall: duration_s must be 0–3600"}
            runner.controller.stall_control(0.0 if clear else float(duration))
            return {"ok": True}
        return server.handle({"cmd": "fault", "fault": name, "table": table_id,
                              "clear": clear, **params})

    return act


def clock_line(clock: PacedClock) -> str:
    """How far the paced clock fell behind ``speed`` × wall time, for the console."""
    now = clock.now()
    head = f"[clock] simulated {now / 60:.1f} min at x{clock.speed:g}"
    if not clock.holds:
        return head + "; keeping up"
    return (head + f"; {clock.behind_s:.1f} simulated s behind (held {clock.holds} times "
            "for a part the busy machine had not yet run; no time limit was affected)")


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
    cfg = demo_timing(cfg, speed)
    clock = demo_clock(cfg, speed)
    poll_s = 0.005 if speed <= 1 else 0.001
    root = demo_data_root(cfg, data_dir)
    table_ids = table_names(cfg.mqtt.table_id, tables)
    directory = Path(sim_dir) if sim_dir else None
    stop = install_stop()
    started: list[Any] = []  # stopped in reverse order, whatever happens
    runners: list[Any] = []
    try:
        logs = {t: open_log(cfg, str(root / t)) for t in table_ids}  # refuses a bad dir first
        if data_dir is None:
            _point_latest(root)
        print(f"data: {root} (one event log per table: hydrotherm events --data-dir "
              f"{root} --table {table_ids[0]})", flush=True)
        server = SimServer(cfg, clock, directory, tables=tables, seed=seed,
                           names=table_ids).start()
        started.append(server)
        setup = start_broker(cfg, root, table_ids)
        if setup.embedded is not None:
            started.append(setup.embedded)  # stopped after every client (reverse order)
        for i, table_id in enumerate(table_ids):
            tcfg = replace(cfg, mqtt=replace(cfg.mqtt, table_id=table_id))
            log = logs[table_id]
            controller = build_controller(tcfg, server.ports[i].path, clock, log)
            attach_schedule(controller, log)
            for c in range(2):
                controller.set_heat(c, True, "demo")
            runner = ControllerRunner(controller, poll_s=poll_s)
            runner.start()
            started.append(runner)
            started.append(start_service_socket(controller, log))
            runners.append(runner)
            started.append(start_bridge(tcfg, controller,
                                        account_address(setup, table_account(table_id))))
        # the dashboard, on the same broker, with a fresh demo login each run
        fleet = FleetClient(cfg.mqtt, account_address(setup, DASHBOARD)).start()
        started.append(fleet)
        fleet.wait_connected(10)  # the broker checks an argon2 hash first
        users = UserStore(root / "users.toml")
        password = demo_password()
        users.set_password(FIRST_USER, password)
        app = create_app(cfg, fleet, users, secret_key=load_secret_key(root), demo=True,
                         demo_actions=demo_actions(server, table_ids,
                                                   dict(zip(table_ids, runners, strict=True))))
        host = host or cfg.dashboard.host
        port = cfg.dashboard.port if dashboard_port is None else dashboard_port
        try:
            dash = DashboardServer(app, host, port, cfg.dashboard.threads).start()
        except OSError as exc:
            raise UsageError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror}"
                             " (pass --dashboard-port)") from None
        started.append(dash)
        print(f"dashboard: {dash.url}/  login: {FIRST_USER} / {password}", flush=True)
        print(f"{tables} simulated table(s) ({', '.join(table_ids)}) at x{speed:g} speed, "
              "heating switched on; this terminal is the demo's: Ctrl-C stops everything "
              "(heaters off first)", flush=True)
        t_end = time.monotonic() + duration_s if duration_s else None
        while not stop.wait(interval_s):
            for table_id, runner in zip(table_ids, runners, strict=True):
                print(f"[{table_id}] " + status_line(runner.controller), flush=True)
            if isinstance(clock, PacedClock):
                print(clock_line(clock), flush=True)
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
