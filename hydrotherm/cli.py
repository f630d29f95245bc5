"""The ``hydrotherm`` command: one entry point with subcommands.

This module only parses arguments and calls the composition root (``hydrotherm.app``),
which builds and wires the simulator, link, controller, MQTT and dashboard.  Each
command imports its part of ``hydrotherm.app`` when it runs, so ``hydrotherm config show``
does not load the dashboard.

Errors a user can cause (bad configuration, unknown fault, no simulator running) end
with a one-line message on stderr and exit status 2; nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hydrotherm import config as config_mod
from hydrotherm.app.errors import UsageError, load_config


def _load_config(args: argparse.Namespace) -> config_mod.Config:
    return load_config(args.config)


def _mqtt_config(cfg: config_mod.Config, args: argparse.Namespace) -> config_mod.Config:
    """Apply --broker / --table-id / --broker-port over the configuration, checked."""
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


def _board_url(args: argparse.Namespace, cfg: config_mod.Config) -> str:
    url = args.port or cfg.link.port
    if not url:
        raise UsageError("no board given: pass --port URL or set link.port in the configuration")
    return url


# --- commands: each parses its arguments and calls hydrotherm.app ---------------------------

def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = _load_config(args)
    sys.stdout.write(config_mod.to_toml(cfg, with_docs=not args.bare))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from hydrotherm.app.sim import run_sim

    cfg = _load_config(args)
    return run_sim(cfg, Path(args.dir) if args.dir else None, args.tables, args.seed,
                   firmware=args.firmware)


def cmd_fault(args: argparse.Namespace) -> int:
    from hydrotherm.app.sim import send_to_sim

    req: dict[str, Any] = {"cmd": "fault", "fault": args.name,
                           "table": args.table or 0, "clear": args.clear}
    for key in ("cushion", "sensor", "offset_c", "kg_per_min", "error_rate", "duration_s"):
        value = getattr(args, key)
        if value is not None:
            req[key] = value
    return send_to_sim(args.control, req)


def cmd_client(args: argparse.Namespace) -> int:
    from hydrotherm.app.sim import send_to_sim

    return send_to_sim(args.control, {"cmd": "client", "table": args.table or 0,
                                      "cushion": args.cushion, "on": args.state == "on"})


def cmd_sim_status(args: argparse.Namespace) -> int:
    from hydrotherm.app.sim import print_sim_status

    return print_sim_status(args.control, args.table, args.json)


def cmd_monitor(args: argparse.Namespace) -> int:
    from hydrotherm.app.monitor import run_monitor

    cfg = _load_config(args)
    return run_monitor(cfg, _board_url(args, cfg), args.interval, args.duration)


def cmd_run(args: argparse.Namespace) -> int:
    from hydrotherm.app.run import run_table

    cfg = _mqtt_config(_load_config(args), args)
    return run_table(cfg, _board_url(args, cfg), data_dir=args.data_dir,
                     setpoints=args.setpoint, heat=args.heat, mqtt=not args.no_mqtt,
                     interval_s=args.interval, duration_s=args.duration)


def cmd_events(args: argparse.Namespace) -> int:
    from hydrotherm.app.events import print_events

    cfg = _load_config(args)
    return print_events(cfg, args.data_dir, args.since, args.kind, args.limit, args.json,
                        table=args.table)


def cmd_autotune(args: argparse.Namespace) -> int:
    """Identify the plant (simulated with --sim, else the board at --port) and write the
    model parameters and gains into the configuration file."""
    import time

    from hydrotherm.app.autotune import run_autotune

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

    return run_autotune(cfg, sim=args.sim, seed=args.seed, url=args.port or cfg.link.port,
                        data_dir=args.data_dir, target=target, dry_run=args.dry_run, show=show,
                        room_c=args.room_c, heater_w=args.heater_w)


def cmd_scenario_run(args: argparse.Namespace) -> int:
    from hydrotherm.app.sim import run_scenario_file

    return run_scenario_file(args.file, args.json, args.plot, args.quiet, board=args.board,
                             firmware=args.firmware)


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole system on one machine: embedded broker, simulated boards on ptys, one
    controller per table over the real link, and the dashboard."""
    from hydrotherm.app.demo import run_demo

    cfg = _mqtt_config(_load_config(args), args)
    return run_demo(cfg, speed=args.speed, tables=args.tables, seed=args.seed,
                    sim_dir=args.dir, data_dir=args.data_dir, host=args.host,
                    dashboard_port=args.dashboard_port, interval_s=args.interval,
                    duration_s=args.duration)


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
    p.add_argument("--firmware", metavar="ELF",
                   help="run the compiled board firmware in simavr (e.g. "
                        "firmware/build/hydrotherm-board.elf) instead of the Python board")
    p.set_defaults(func=cmd_sim)

    def control_args(q: argparse.ArgumentParser, table_help: str = "the table: its name "
                     "(table0, table1, ...; as the dashboard names it) or its number "
                     "(default: the first)") -> None:
        q.add_argument("--control", help="control socket of the running simulator "
                                         "(default: the one `hydrotherm sim` or `demo` "
                                         "started)")
        q.add_argument("--table", help=table_help)

    from sim.faults import DEFAULTS, FAULTS

    p = sub.add_parser("fault", help="inject (or --clear) a fault in a running simulator",
                       epilog="faults: " + "; ".join(f"{f.name}: {f.doc}"
                                                     for f in FAULTS.values()))
    p.add_argument("name", choices=sorted(FAULTS), metavar="NAME",
                   help="one of: " + ", ".join(FAULTS))
    p.add_argument("--cushion", type=int, choices=(0, 1),
                   help="which cushion: 0 (upper body) or 1 (lower body); needed by the "
                        "sensor, heater and leak faults")
    p.add_argument("--sensor", choices=("primary", "redundant", "plate"),
                   help="which of the cushion's sensors: its two water sensors or its plate "
                        "sensor (protocol 1.1 boards) (sensor faults; default "
                        f"{DEFAULTS['sensor']})")
    p.add_argument("--offset-c", dest="offset_c", type=float, metavar="C",
                   help="sensor_drift: how far the sensor reads off, °C "
                        f"(default {DEFAULTS['offset_c']:g})")
    p.add_argument("--kg-per-min", dest="kg_per_min", type=float, metavar="KG",
                   help="cushion_leak: water lost per minute "
                        f"(default {DEFAULTS['kg_per_min']:g})")
    p.add_argument("--error-rate", dest="error_rate", type=float, metavar="P",
                   help="serial_noise: probability that a byte is corrupted, 0–1 "
                        f"(default {DEFAULTS['error_rate']:g})")
    p.add_argument("--duration-s", dest="duration_s", type=float, metavar="S",
                   help="serial_silence: how long the board is silent, seconds "
                        f"(default {DEFAULTS['duration_s']:g})")
    p.add_argument("--clear", action="store_true", help="remove the fault instead")
    control_args(p)
    p.set_defaults(func=cmd_fault)

    p = sub.add_parser("client", help="a client lies on (or gets off) a cushion")
    p.add_argument("state", choices=("on", "off"), help="on: lies down, off: gets up")
    p.add_argument("--cushion", type=int, choices=(0, 1), required=True,
                   help="0 (upper body) or 1 (lower body)")
    control_args(p)
    p.set_defaults(func=cmd_client)

    p = sub.add_parser("sim-status", help="true plant state of a running simulator")
    control_args(p, "only this table: its name or number (default: every table)")
    p.add_argument("--json", action="store_true", help="the simulator's JSON answer, "
                                                       "for scripts")
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
    p.add_argument("--data-dir", help="event log directory (default: data.dir; with "
                                      "--table: the newest demo run's)")
    p.add_argument("--table", help="a demo table's log (table0, table1, ...): the "
                                   "<data-dir>/<table> folder")
    p.set_defaults(func=cmd_events)

    p = sub.add_parser("scenario", help="scripted sessions with faults, for testers")
    ssub = p.add_subparsers(dest="scenario_command", required=True)
    q = ssub.add_parser("run", help="run a scenario file faster than real time; exit 1 if an "
                                    "expectation fails, 2 if the file is malformed")
    q.add_argument("file", help="scenario TOML file (see docs/scenarios.md)")
    q.add_argument("--json", help="write the result as JSON to this file (- for stdout)")
    q.add_argument("--plot", help="write a PNG plot (needs matplotlib)")
    q.add_argument("--quiet", action="store_true", help="no progress lines")
    q.add_argument("--board", choices=("python", "firmware"),
                   help="the board to run it on, overriding the file's [board] kind: the "
                        "Python emulator or the compiled firmware in simavr")
    q.add_argument("--firmware", metavar="ELF",
                   help="the firmware to run (implies --board firmware; default: built "
                        "with make -C firmware)")
    q.set_defaults(func=cmd_scenario_run)

    p = sub.add_parser("autotune", help="identify the plant and write the model and gains")
    p.add_argument("--sim", action="store_true", help="on a simulated table, in-process")
    p.add_argument("--port", help="pyserial URL of the real board (default: link.port)")
    p.add_argument("--write", help="configuration file to update (default: --config)")
    p.add_argument("--dry-run", action="store_true", help="report only, write nothing")
    p.add_argument("--seed", type=int, default=0, help="noise seed for --sim")
    p.add_argument("--data-dir", help="event log directory (default: data.dir)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between progress lines")
    p.add_argument("--room-c", type=float, help="the room temperature, measured (°C); "
                   "default: identified from the record, and the report says so")
    p.add_argument("--heater-w", type=float, help="the heater power per cushion, measured "
                   "(W); default: the nameplate plant.heater_w, and the report says so")
    p.set_defaults(func=cmd_autotune)

    p = sub.add_parser("demo", help="the whole system: broker, simulated tables, "
                                    "controllers and the dashboard (the main job)")
    mqtt_args(p)
    p.add_argument("--tables", type=int, default=1, help="simulated tables (a clinic)")
    p.add_argument("--host", help="dashboard address (default 127.0.0.1)")
    p.add_argument("--dashboard-port", type=int, help="dashboard port (default 8080)")
    p.add_argument("--data-dir", help="keep the event logs and login here, across runs "
                                      "(default: a fresh <data.dir>/demo/<start time> "
                                      "each run)")
    p.add_argument("--speed", type=float, default=1.0, help="run N times faster than real "
                   "time (the clock holds when the machine is too busy to keep up)")
    p.add_argument("--dir", help="directory for the pty links and control socket")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between lines")
    p.add_argument("--duration", type=float, help="stop after this many wall seconds")
    p.set_defaults(func=cmd_demo)
    from dashboard.cli import register as register_dashboard

    register_dashboard(sub)
    from hydrotherm.service_cmd import register as register_service

    register_service(sub)
    from hydrotherm.schedule_cmd import register as register_schedule

    register_schedule(sub)
    from hydrotherm.broker_cmd import register as register_broker

    register_broker(sub)
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
