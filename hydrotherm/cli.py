"""The ``hydrotherm`` command: one entry point with subcommands.

Errors a user can cause (bad configuration, unknown fault, no simulator running) end
with a one-line message on stderr and exit status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hydrotherm import config as config_mod
from hydrotherm.clock import RealClock, ScaledClock


class UsageError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    try:
        return config_mod.load(args.config)
    except config_mod.ConfigError as exc:
        raise UsageError(f"configuration refused: {exc}") from None


# --- config --------------------------------------------------------------------------------

def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    sys.stdout.write(config_mod.to_toml(cfg, with_docs=not args.bare))
    return 0


# --- sim -----------------------------------------------------------------------------------

def cmd_sim(args: argparse.Namespace) -> int:
    from sim.server import SimServer

    cfg = _load_config(args)
    directory = Path(args.dir) if args.dir else None
    server = SimServer(cfg, RealClock(), directory, tables=args.tables, seed=args.seed)
    server.start()
    try:
        for i, port in enumerate(server.ports):
            print(f"table {i}: {port.path} -> {port.slave_path}", flush=True)
        print(f"control socket: {server.control_path}", flush=True)
        print("open a table with: hydrotherm monitor --port " + server.ports[0].path, flush=True)
        print("inject a fault with: hydrotherm fault sensor_open --cushion 0", flush=True)
        stop = _install_stop()
        while not stop.wait(0.2):  # wake regularly so signals are handled promptly
            pass
    finally:
        server.stop()
    return 0


def _control_path(args: argparse.Namespace) -> Path:
    from sim.server import default_dir

    path = Path(args.control) if args.control else default_dir() / "control.sock"
    if not path.exists():
        raise UsageError(f"no simulator is listening at {path}: start `hydrotherm sim` first "
                         "(or pass --control PATH)")
    return path


def _send(args: argparse.Namespace, req: dict[str, Any]) -> int:
    from sim.server import send_control

    try:
        resp = send_control(_control_path(args), req)
    except OSError as exc:
        raise UsageError(f"simulator control socket: {exc}") from None
    if not resp.get("ok"):
        raise UsageError(resp.get("error", "refused"))
    print(json.dumps(resp) if len(resp) > 1 else "ok")
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    req: dict[str, Any] = {"cmd": "fault", "fault": args.name, "table": args.table,
                           "clear": args.clear}
    for key in ("cushion", "sensor", "offset_c", "kg_per_min", "error_rate", "duration_s"):
        value = getattr(args, key)
        if value is not None:
            req[key] = value
    return _send(args, req)


def cmd_client(args: argparse.Namespace) -> int:
    return _send(args, {"cmd": "client", "table": args.table, "cushion": args.cushion,
                        "on": args.state == "on"})


def cmd_sim_status(args: argparse.Namespace) -> int:
    return _send(args, {"cmd": "status"})


# --- monitor / demo ------------------------------------------------------------------------

def _format_reading(link: Any) -> str:
    r = link.latest
    if r is None or not link.healthy:
        return f"link {link.state.value}: readings unavailable {link.error}".rstrip()
    parts = []
    for i, c in enumerate(r.cushions):
        def fmt(s: Any) -> str:
            return f"{s.celsius:6.2f}" if s.celsius is not None else f"{s.status.value:>6}"
        parts.append(f"cushion {i}: {fmt(c.primary)} / {fmt(c.redundant)} °C "
                     f"out {c.applied * 100:5.1f} %")
    faults = ",".join(r.fault_names) or "none"
    return (" | ".join(parts) + f" | relay {'closed' if r.relay_closed else 'open'}"
            f" | faults {faults} | crc {link.counters.crc_errors}")


def _monitor_loop(link: Any, stop: threading.Event, interval_s: float,
                  duration_s: float | None, on_tick: Any = None) -> None:
    next_print = 0.0
    t_end = time.monotonic() + duration_s if duration_s else None
    while not stop.is_set():
        link.poll()
        if on_tick:
            on_tick()
        if time.monotonic() >= next_print:
            print(_format_reading(link), flush=True)
            next_print = time.monotonic() + interval_s
        if t_end and time.monotonic() >= t_end:
            break
        stop.wait(0.005)


def _make_link(cfg: config_mod.Config, url: str, clock: Any) -> Any:
    from firmware_bridge.link import BoardLink
    from firmware_bridge.thermistor import Thermistor

    def report(ev: Any) -> None:
        print(f"[link] {ev.kind}: {ev.detail}", flush=True)

    return BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url=url, on_event=report)


def _install_stop() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def cmd_monitor(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    url = args.port or cfg.link.port
    if not url:
        raise UsageError("no board given: pass --port URL or set link.port in the configuration")
    clock = RealClock()
    link = _make_link(cfg, url, clock)
    stop = _install_stop()
    try:
        _monitor_loop(link, stop, args.interval, args.duration)
    finally:
        link.close()
    return 0


def _build_controller(cfg: config_mod.Config, url: str, clock: Any, log: Any) -> Any:
    from controller.service import Controller

    link = _make_link(cfg, url, clock)
    return Controller(cfg, link, clock, log=log)


def _open_log(cfg: config_mod.Config, data_dir: str | None) -> Any:
    from controller.eventlog import open_default

    directory = Path(data_dir).expanduser() if data_dir else cfg.data_dir
    try:
        return open_default(directory)
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"cannot open the event log in {directory}: {exc}") from None


def _status_line(controller: Any) -> str:
    snap = controller.snapshot()
    if not snap["link"]["healthy"]:
        return f"link {snap['link']['state']}: readings unavailable {snap['link']['error']}"
    parts = []
    for c in snap["cushions"]:
        w = c["water_c"]["estimate"]
        trips = ",".join(t["reason"] for t in c["trips"])
        ready = c["ready_in_s"]
        parts.append(
            f"cushion {c['cushion']}: {w if w is None else f'{w:6.2f}'} °C "
            f"-> {c['setpoint_c']:.1f} {'heat' if c['heat_on'] else 'off '} "
            f"out {100 * (c['output'] or 0):5.1f} %"
            + (f" ready in {ready / 60:.0f} min" if ready else "")
            + (f" TRIPPED {trips}" if trips else ""))
    return " | ".join(parts)


def _run_controller(controller: Any, stop: threading.Event, interval_s: float,
                    duration_s: float | None, poll_s: float = 0.005) -> None:
    from controller.runner import ControllerRunner

    def on_watchdog(why: str) -> None:
        print(f"[watchdog] {why}", flush=True)

    runner = ControllerRunner(controller, poll_s=poll_s, on_watchdog=on_watchdog)
    controller.listeners.append(
        lambda e: e.get("type") == "event" and print(
            f"[event] {e['kind']} cushion={e['cushion']} actor={e['actor']} "
            f"reason={e['reason']} {e['detail']}", flush=True))
    runner.start()
    t_end = time.monotonic() + duration_s if duration_s else None
    try:
        while not stop.wait(interval_s):
            print(_status_line(controller), flush=True)
            if t_end and time.monotonic() >= t_end:
                break
    finally:
        runner.stop()


def _mqtt_config(cfg: config_mod.Config, args: argparse.Namespace) -> config_mod.Config:
    """Apply --broker / --table-id / --broker-port over the configuration, checked."""
    from dataclasses import asdict

    over = {}
    if getattr(args, "broker", None):
        over["broker"] = args.broker
    if getattr(args, "table_id", None):
        over["table_id"] = args.table_id
    if getattr(args, "broker_port", None) is not None:
        over["embedded_port"] = args.broker_port
    if not over:
        return cfg
    data = {k: v for k, v in asdict(cfg).items()}
    data["mqtt"] = {**data["mqtt"], **over}
    try:
        return config_mod.from_mapping(data)
    except config_mod.ConfigError as exc:
        raise UsageError(f"configuration refused: {exc}") from None


def _start_broker(cfg: config_mod.Config, data_dir: Path, table_ids: list[str]) -> Any:
    """The configured broker, or an embedded one started here on this installation's MQTT
    accounts (created on first use): a ``BrokerSetup`` giving each part its account."""
    from controller.broker import BrokerError
    from controller.mqtt_accounts import AccountError
    from controller.mqtt_client import BrokerUrlError
    from controller.mqtt_setup import setup_broker

    try:
        setup = setup_broker(cfg.mqtt, data_dir, table_ids)
    except (BrokerError, BrokerUrlError, AccountError) as exc:
        raise UsageError(str(exc)) from None
    if setup.embedded is not None:
        print(f"embedded MQTT broker on {setup.embedded.url} (passwords required)", flush=True)
    line = setup.announce()
    if line:
        print(line, flush=True)
    elif setup.store is not None and setup.embedded is not None:
        print(f"MQTT accounts: {setup.store.credentials_path}", flush=True)
    return setup


def _account_address(setup: Any, table_id: str) -> Any:
    from controller.mqtt_accounts import AccountError, table_account

    try:
        return setup.address_for(table_account(table_id))
    except AccountError as exc:
        raise UsageError(str(exc)) from None


def _start_bridge(cfg: config_mod.Config, controller: Any, address: Any) -> Any:
    """One controller's MQTT bridge on ``address``."""
    from controller.mqtt_bridge import MqttBridge

    try:
        bridge = MqttBridge(controller, cfg, address).start()
    except (OSError, ValueError) as exc:
        raise UsageError(f"MQTT: {exc}") from None
    print(f"publishing as {cfg.mqtt.prefix}/{cfg.mqtt.table_id} on {address.display()}",
          flush=True)
    return bridge


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _mqtt_config(_load_config(args), args)
    url = args.port or cfg.link.port
    if not url:
        raise UsageError("no board given: pass --port URL or set link.port in the configuration")
    log = _open_log(cfg, args.data_dir)
    clock = RealClock()
    controller = _build_controller(cfg, url, clock, log)
    _apply_start_commands(controller, args)
    bridge = embedded = None
    if not args.no_mqtt:
        setup = _start_broker(cfg, Path(args.data_dir).expanduser() if args.data_dir
                              else cfg.data_dir, [cfg.mqtt.table_id])
        embedded = setup.embedded
        try:
            bridge = _start_bridge(cfg, controller, _account_address(setup,
                                                                     cfg.mqtt.table_id))
        except UsageError:
            if embedded is not None:
                embedded.stop()
            raise
    stop = _install_stop()
    try:
        _run_controller(controller, stop, args.interval, args.duration)
    finally:
        if bridge is not None:
            bridge.stop()
        if embedded is not None:
            embedded.stop()
    print("stopped: heaters off, event log closed", flush=True)
    return 0


def _apply_start_commands(controller: Any, args: argparse.Namespace) -> None:
    from controller.service import CommandError

    try:
        for i, sp in enumerate(args.setpoint or []):
            controller.set_setpoint(i, sp, "cli")
        if args.heat:
            for i in range(2):
                controller.set_heat(i, True, "cli")
    except CommandError as exc:
        raise UsageError(str(exc)) from None


def cmd_events(args: argparse.Namespace) -> int:
    from controller.eventlog import format_events, open_default, parse_since

    cfg = _load_config(args)
    directory = Path(args.data_dir).expanduser() if args.data_dir else cfg.data_dir
    db = directory / "events.sqlite3"
    if not db.exists():
        raise UsageError(f"no event log at {db} (has `hydrotherm run` or `demo` run here?)")
    try:
        since = parse_since(args.since, time.time()) if args.since else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with open_default(directory) as log:
        try:
            events = log.events(since=since, kinds=args.kind or None, limit=args.limit)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    out = format_events(events, args.json)
    if out:
        print(out)
    return 0


def cmd_autotune(args: argparse.Namespace) -> int:
    """Identify the plant (simulated with --sim, else the board at --port) and write the
    model parameters and gains into the configuration file."""
    from controller.autotune import (
        AutotuneError,
        Autotuner,
        apply_result,
        autotune_in_process,
        format_report,
        write_config,
    )

    cfg = _load_config(args)
    target = args.write or args.config
    if not target and not args.dry_run:
        raise UsageError("say where to write the result: --write FILE (or --config FILE), "
                         "or --dry-run to only report")
    last = {"t": 0.0, "line": ""}

    def show(line: str) -> None:
        now = time.monotonic()
        if line != last["line"] and now - last["t"] >= args.interval:
            print(line, flush=True)
            last.update(t=now, line=line)

    try:
        if args.sim:
            result = autotune_in_process(cfg, seed=args.seed, progress=show)
        else:
            url = args.port or cfg.link.port
            if not url:
                raise UsageError("no board given: pass --port URL, or --sim")
            log = _open_log(cfg, args.data_dir)
            clock = RealClock()
            controller = _build_controller(cfg, url, clock, log)
            tuner = Autotuner(controller)
            stop = _install_stop()
            try:
                while not tuner.done:
                    if stop.is_set():
                        tuner.abort("interrupted by the user")
                    tuner.step()
                    show(tuner.progress)
                    clock.sleep(0.005)
                tuner.step()  # push the 0 % and the open relay
            finally:
                controller.stop()
            if tuner.error:
                raise AutotuneError(tuner.error)
            result = tuner.result
    except AutotuneError as exc:
        raise UsageError(f"autotune aborted: {exc}") from None
    print(format_report(result), flush=True)
    if args.dry_run:
        return 0 if result.ok else 1
    try:
        tuned = apply_result(cfg, result)
    except (AutotuneError, config_mod.ConfigError) as exc:
        raise UsageError(f"not written: {exc}") from None
    backup = write_config(Path(target), tuned)
    print(f"written to {target}" + (f" (previous file kept as {backup})" if backup else ""))
    return 0


def cmd_scenario_run(args: argparse.Namespace) -> int:
    from sim.scenario import main_scenario

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return main_scenario(args.file, args.json, args.plot, None if args.quiet else progress)


def demo_timing(cfg: config_mod.Config, speed: float) -> config_mod.Config:
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
    from dataclasses import replace

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


def _demo_actions(server: Any, table_ids: list[str]) -> Any:
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


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole system on one machine: embedded broker, simulated boards on ptys, one
    controller per table over the real link, and the dashboard."""
    from dataclasses import replace

    from controller.eventlog import open_default
    from controller.runner import ControllerRunner
    from dashboard.app import create_app
    from dashboard.auth import FIRST_USER, UserStore, load_secret_key
    from dashboard.server import DashboardServer
    from sim.server import SimServer

    cfg = _mqtt_config(_load_config(args), args)
    if args.speed <= 0:
        raise UsageError("--speed must be positive")
    if not 1 <= args.tables <= 50:
        raise UsageError("--tables must be 1–50")
    clock = ScaledClock(args.speed) if args.speed != 1 else RealClock()
    cfg = demo_timing(cfg, args.speed)
    poll_s = 0.005 if args.speed <= 1 else 0.001
    root = (Path(args.data_dir).expanduser() if args.data_dir else cfg.data_dir) / "demo"
    directory = Path(args.dir) if args.dir else None
    stop = _install_stop()
    started: list[Any] = []  # stopped in reverse order, whatever happens
    try:
        server = SimServer(cfg, clock, directory, tables=args.tables, seed=args.seed).start()
        started.append(server)
        first_id = cfg.mqtt.table_id
        table_ids = [first_id] + [f"{first_id}-{i}" for i in range(1, args.tables)]
        setup = _start_broker(cfg, root, table_ids)
        if setup.embedded is not None:
            started.append(setup.embedded)  # stopped after every client (reverse order)
        runners: list[Any] = []
        for i, table_id in enumerate(table_ids):
            tcfg = replace(cfg, mqtt=replace(cfg.mqtt, table_id=table_id))
            log = open_default(root / table_id)
            controller = _build_controller(tcfg, server.ports[i].path, clock, log)
            for c in range(2):
                controller.set_heat(c, True, "demo")
            runner = ControllerRunner(controller, poll_s=poll_s)
            runner.start()
            started.append(runner)
            runners.append(runner)
            started.append(_start_bridge(tcfg, controller, _account_address(setup, table_id)))
        # the dashboard, on the same broker, with a fresh demo login each run
        from controller.fleet import FleetClient
        from controller.mqtt_accounts import DASHBOARD

        fleet = FleetClient(cfg.mqtt, setup.address_for(DASHBOARD)).start()
        started.append(fleet)
        fleet.wait_connected(10)  # the broker checks an argon2 hash first
        users = UserStore(root / "users.toml")
        password = _demo_password()
        users.set_password(FIRST_USER, password)
        app = create_app(cfg, fleet, users, secret_key=load_secret_key(root), demo=True,
                         demo_actions=_demo_actions(server, table_ids))
        host = args.host or cfg.dashboard.host
        port = cfg.dashboard.port if args.dashboard_port is None else args.dashboard_port
        try:
            dash = DashboardServer(app, host, port, cfg.dashboard.threads).start()
        except OSError as exc:
            raise UsageError(f"cannot serve the dashboard on {host}:{port}: {exc.strerror}"
                             " (pass --dashboard-port)") from None
        started.append(dash)
        print(f"dashboard: {dash.url}/  login: {FIRST_USER} / {password}", flush=True)
        print(f"{args.tables} simulated table(s) at x{args.speed} speed; Ctrl-C stops "
              "everything (heaters off first)", flush=True)
        t_end = time.monotonic() + args.duration if args.duration else None
        while not stop.wait(args.interval):
            for table_id, runner in zip(table_ids, runners, strict=True):
                print(f"[{table_id}] " + _status_line(runner.controller), flush=True)
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


def _demo_password() -> str:
    import secrets

    return secrets.token_urlsafe(9)


# --- parser --------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hydrotherm",
                                 description="Heated water-cushion table controller")
    ap.add_argument("--config", help="TOML configuration file (default: $HYDROTHERM_CONFIG, "
                                     "else built-in defaults)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("config", help="configuration")
    csub = p.add_subparsers(dest="config_command", required=True)
    show = csub.add_parser("show", help="print the effective configuration as TOML")
    show.add_argument("--bare", action="store_true", help="without explanatory comments")
    show.set_defaults(func=cmd_config_show)

    p = sub.add_parser("sim", help="run simulated heater boards on pseudo-terminals")
    p.add_argument("--tables", type=int, default=1, help="number of simulated tables")
    p.add_argument("--dir", help="directory for the pty links and control socket")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.set_defaults(func=cmd_sim)

    def control_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--control", help="control socket of the running simulator")
        q.add_argument("--table", type=int, default=0, help="table number (default 0)")

    p = sub.add_parser("fault", help="inject (or --clear) a fault in a running simulator")
    from sim.faults import FAULTS

    p.add_argument("name", choices=sorted(FAULTS), metavar="NAME",
                   help="one of: " + ", ".join(FAULTS))
    p.add_argument("--cushion", type=int, choices=(0, 1))
    p.add_argument("--sensor", choices=("primary", "redundant"))
    p.add_argument("--offset-c", dest="offset_c", type=float)
    p.add_argument("--kg-per-min", dest="kg_per_min", type=float)
    p.add_argument("--error-rate", dest="error_rate", type=float)
    p.add_argument("--duration-s", dest="duration_s", type=float)
    p.add_argument("--clear", action="store_true", help="remove the fault instead")
    control_args(p)
    p.set_defaults(func=cmd_fault)

    p = sub.add_parser("client", help="a client lies on (or gets off) a cushion")
    p.add_argument("state", choices=("on", "off"))
    p.add_argument("--cushion", type=int, choices=(0, 1), required=True)
    control_args(p)
    p.set_defaults(func=cmd_client)

    p = sub.add_parser("sim-status", help="true plant state of a running simulator")
    control_args(p)
    p.set_defaults(func=cmd_sim_status)

    p = sub.add_parser("monitor", help="open a board and print live telemetry")
    p.add_argument("--port", help="pyserial URL: /dev/ttyUSB0, a pty path, socket://host:port")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between lines")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=cmd_monitor)

    def mqtt_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--broker", help="mqtt://[user:pass@]host[:port] or mqtts://...; "
                                        "default: mqtt.broker, else an embedded broker "
                                        "(credentials may come from "
                                        "$HYDROTHERM_MQTT_USERNAME/_PASSWORD)")
        q.add_argument("--broker-port", type=int, help="port of the embedded broker")
        q.add_argument("--table-id", help="this table's id in the topic tree")

    p = sub.add_parser("run", help="run the controller against a board")
    p.add_argument("--port", help="pyserial URL of the board (default: link.port)")
    p.add_argument("--data-dir", help="event log directory (default: data.dir)")
    p.add_argument("--setpoint", type=float, nargs="+", metavar="C",
                   help="setpoints at start, one per cushion")
    p.add_argument("--heat", action="store_true", help="switch heat on for both cushions")
    mqtt_args(p)
    p.add_argument("--no-mqtt", action="store_true", help="control only, publish nothing")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between status lines")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("events", help="read the event log")
    p.add_argument("--since", help="90s, 15m, 2h, 3d, an ISO date/time or a unix time")
    p.add_argument("--kind", action="append", help="only this kind (repeatable)")
    p.add_argument("--limit", type=int, help="only the newest N")
    p.add_argument("--json", action="store_true", help="JSON array instead of text")
    p.add_argument("--data-dir", help="event log directory (default: data.dir)")
    p.set_defaults(func=cmd_events)

    p = sub.add_parser("scenario", help="scripted sessions with faults, for testers")
    ssub = p.add_subparsers(dest="scenario_command", required=True)
    q = ssub.add_parser("run", help="run a scenario file faster than real time; exit 1 if an "
                                    "expectation fails, 2 if the file is malformed")
    q.add_argument("file", help="scenario TOML file (see docs/scenarios.md)")
    q.add_argument("--json", help="write the result as JSON to this file (- for stdout)")
    q.add_argument("--plot", help="write a PNG plot (needs matplotlib)")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.set_defaults(func=cmd_scenario_run)

    p = sub.add_parser("autotune", help="identify the plant and write the model and gains")
    p.add_argument("--sim", action="store_true", help="on a simulated table, in-process")
    p.add_argument("--port", help="pyserial URL of the real board (default: link.port)")
    p.add_argument("--write", help="configuration file to update (default: --config)")
    p.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    p.add_argument("--seed", type=int, default=0, help="noise seed for --sim")
    p.add_argument("--data-dir", help="event log directory (default: data.dir)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between progress lines")
    p.set_defaults(func=cmd_autotune)

    p = sub.add_parser("demo", help="the whole system: broker, simulated tables, "
                                    "controllers and the dashboard (the main job)")
    mqtt_args(p)
    p.add_argument("--tables", type=int, default=1, help="simulated tables (a clinic)")
    p.add_argument("--host", help="dashboard address (default 127.0.0.1)")
    p.add_argument("--dashboard-port", type=int, help="dashboard port (default 8080)")
    p.add_argument("--data-dir", help="event log directory (default: data.dir)")
    p.add_argument("--speed", type=float, default=1.0, help="run N times faster than real time")
    p.add_argument("--dir", help="directory for the pty link")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--interval", type=float, default=2.0, help="seconds between lines")
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.set_defaults(func=cmd_demo)
    from controller.mqtt_mosquitto import register as register_broker
    from dashboard.cli import register as register_dashboard

    register_broker(sub)

    register_dashboard(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"hydrotherm: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
