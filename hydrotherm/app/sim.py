"""``hydrotherm sim`` (simulated boards on ptys, or TCP), the tester's commands to a running
simulator (``fault``, ``client``, ``sim-status`` over its control socket), and
``hydrotherm scenario run``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydrotherm.clock import RealClock
from hydrotherm.config import Config
from sim.scenario import main_scenario
from sim.server import SimServer, default_dir, send_control

from .errors import UsageError
from .parts import install_stop


def run_sim(cfg: Config, directory: Path | None, tables: int, seed: int | None,
            firmware: str | None = None) -> int:
    """Simulated boards on ptys until Ctrl-C: the Python board emulator, or with
    ``firmware`` the compiled board firmware (an ELF) running in simavr."""
    if firmware:
        from sim.firmware import FirmwareUnavailable, make_server

        try:
            server = make_server(cfg, firmware, RealClock(), directory, tables=tables,
                                 seed=seed)
        except FirmwareUnavailable as exc:
            raise UsageError(str(exc)) from None
    else:
        server = SimServer(cfg, RealClock(), directory, tables=tables, seed=seed)
    server.start()
    try:
        for name, port in zip(server.names, server.ports, strict=True):
            print(f"{name}: {port.path} -> {port.slave_path}", flush=True)
        print(f"control socket: {server.control_path}", flush=True)
        print("open a table with: hydrotherm monitor --port " + server.ports[0].path, flush=True)
        print("inject a fault with: hydrotherm fault sensor_open --cushion 0", flush=True)
        stop = install_stop()
        while not stop.wait(0.2):  # wake regularly so signals are handled promptly
            pass
    finally:
        server.stop()
    return 0


def control_path(control: str | None) -> Path:
    """The running simulator's control socket (``--control``, else the default)."""
    path = Path(control) if control else default_dir() / "control.sock"
    if not path.exists():
        raise UsageError(f"no simulator is listening at {path}: start `hydrotherm sim` first "
                         "(or pass --control PATH)")
    return path


def send_to_sim(control: str | None, req: dict[str, Any]) -> int:
    """One request to the running simulator; prints its answer (``ok`` or the JSON)."""
    try:
        resp = send_control(control_path(control), req)
    except OSError as exc:
        raise UsageError(f"simulator control socket: {exc}") from None
    if not resp.get("ok"):
        raise UsageError(resp.get("error", "refused"))
    print(json.dumps(resp) if len(resp) > 1 else "ok")
    return 0


def print_sim_status(control: str | None, table: str | None, as_json: bool) -> int:
    """``hydrotherm sim-status``: the simulator's true plant state, as a table for a
    person (``--json``: the simulator's answer as it is, for scripts)."""
    req: dict[str, Any] = {"cmd": "status"}
    if table is not None:
        req["table"] = table
    try:
        resp = send_control(control_path(control), req)
    except OSError as exc:
        raise UsageError(f"simulator control socket: {exc}") from None
    if not resp.get("ok"):
        raise UsageError(resp.get("error", "refused"))
    print(json.dumps(resp["tables"], indent=2) if as_json else format_status(resp["tables"]))
    return 0


def format_status(tables: list[dict[str, Any]]) -> str:
    """One row per cushion: true water and plate temperature, output, client, faults."""
    head = ("table", "cushion", "water °C", "plate °C", "output", "relay", "client",
            "cable", "faults")
    rows = []
    for t in tables:
        faults = t.get("active_faults", [])
        for c in (0, 1):
            mine = [f for f in faults if f.get("cushion", c) == c]
            rows.append((
                str(t["table"]), ("upper body", "lower body")[c],
                f"{t['water_c'][c]:.2f}", f"{t['plate_c'][c]:.2f}",
                f"{100 * t['output'][c]:.0f} %",
                "closed" if t["relay_closed"] else "open",
                "on" if t["client_on"][c] else "-",
                "plugged" if t["plugged"] else "UNPLUGGED",
                ", ".join(_fault_text(f) for f in mine) or "-"))
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                     for r in (head, *rows))


def _fault_text(f: dict[str, Any]) -> str:
    extra = [f"{k}={v}" for k, v in f.items() if k not in ("fault", "cushion")]
    return f["fault"] + (f" ({', '.join(extra)})" if extra else "")


def run_scenario_file(path: str, json_out: str | None, plot_out: str | None,
                      quiet: bool, board: str | None = None,
                      firmware: str | None = None) -> int:
    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return main_scenario(path, json_out, plot_out, None if quiet else progress,
                         board=board, firmware=firmware)
