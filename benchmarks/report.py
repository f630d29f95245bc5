"""Every benchmark figure in one run: a table on stdout, JSON, and a PNG of the warm-ups.

Run: ``python -m benchmarks.report [--json OUT] [--plot OUT.png] [--quick]``.

Sections: the serial link and simulator (issue 2), the control law against its peers and
the safety detection latency per fault (issue 3), the supervisor and the law on 100 true
plants that differ from the model (issue 10, ``benchmarks/plants.py``; ``--quick``: the
first 20; its "with autotune" and ready-in rows are the saved run of
``python -m benchmarks.plants --with-autotune``, printed with its date and commit: an
autotune per table is too long for every report), MQTT (issue 4), the dashboard (issue 5).
Figures that depend on the machine are given with the machine they were measured on;
where a ratio fits (the controller against the physical minimum, simulated against wall
seconds) the ratio is measured within the same run.  Nothing here asserts a speed: the
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAULT_SCENARIOS = ("sensor_open", "sensor_short", "sensor_drift", "heater_stuck_on",
                   "heater_dead", "cushion_leak", "cushion_leak_full_power", "serial_noise",
                   "serial_silence", "board_reset", "unplug_replug", "host_stall",
                   "over_temperature")


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": cpu, "cores": os.cpu_count()}


def detection_latencies() -> list[dict[str, Any]]:
    """Run each shipped fault scenario; fault → trip and fault → heater at 0 %."""
    from sim.scenario import load_scenario, run_scenario

    rows = []
    for name in FAULT_SCENARIOS:
        path = ROOT / "sim" / "scenarios" / f"{name}.toml"
        if not path.exists():
            continue
        res = run_scenario(load_scenario(path))
        first = next((t for t in res.trips if t.detect_s is not None), None)
        rows.append({"scenario": name, "passed": res.passed,
                     "trip": first.reason if first else None,
                     "detect_s": first.detect_s if first else None,
                     "heater_off_s": first.heater_off_s if first else None,
                     "max_water_c": round(res.max_water_c, 2), "wall_s": round(res.wall_s, 2)})
    return rows


def mqtt_figures(quick: bool) -> dict[str, Any]:
    """``benchmarks.mqtt`` in a child process (it starts its own Mosquitto and processes)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mqtt.json"
        cmd = [sys.executable, "-m", "benchmarks.mqtt", "--json", str(out)]
        if quick:
            cmd += ["--fleet-seconds", "10", "--stress-seconds", "0", "--cpu-seconds", "8"]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=600)
        return json.loads(out.read_text())


def _section(name: str, fn: Any) -> Any:
    print(f"... {name}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - report the rest
        print(f"    {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"error": f"{type(exc).__name__}: {exc}"}
    print(f"    done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def run_all(quick: bool = False) -> dict[str, Any]:
    link_and_sim = importlib.import_module("benchmarks.link_and_sim")
    control = importlib.import_module("benchmarks.control")
    res: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M")}
    res["link_and_sim"] = _section("serial link and simulator", link_and_sim.run_all)
    res["control"] = _section("control law against its peers", control.run_all)
    res["detection"] = _section("detection latency per fault", detection_latencies)
    plants = importlib.import_module("benchmarks.plants")
    res["plants"] = _section("100 true plants: supervisor and control law", lambda: {
        k: v for k, v in plants.run_all(n_plants=20 if quick else 100).items()
        if k != "plants"})
    res["mqtt"] = _section("MQTT", lambda: mqtt_figures(quick))
    dashboard = importlib.import_module("benchmarks.dashboard")
    res["dashboard"] = _section("dashboard", lambda: dashboard.run(
        seconds=10.0 if quick else 40.0, n_clients=50))
    return res


def _f(v: Any, fmt: str = ".2f", unit: str = "") -> str:
    if v is None:
        return "-"
    if v == "inf" or (isinstance(v, float) and v == float("inf")):
        return "never"
    if isinstance(v, str):
        return v
    return format(v, fmt) + unit


def table(res: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for the terminal and the README."""
    rows: list[tuple[str, str]] = []
    ls = res.get("link_and_sim", {})
    if "parser" in ls:
        rows += [
            ("frames parsed per second", _f(ls["parser"]["parse_frames_per_s"], ",.0f")),
            ("4 h of board + plant simulated in",
             _f(ls["board_and_plant"]["wall_s"], ".2f", " s") +
             f" ({ls['board_and_plant']['sim_s_per_wall_s']:,.0f}× real time)"),
            ("board + plant + link, simulated s per wall s",
             _f(ls["board_plant_link"]["sim_s_per_wall_s"], ",.0f")),
            ("pty round trip command → ACK, p50 / p99",
             f"{ls['pty_round_trip']['p50_ms']:.2f} / {ls['pty_round_trip']['p99_ms']:.2f} ms"),
        ]
    ctl = res.get("control", {})
    if "reference" in ctl:
        runs = ctl["reference"]["runs"]
        phys = ctl["reference"]["physical_minimum_s"]
        rows.append(("physical minimum warm-up 20 → 37 °C", _f(phys, ".0f", " s")))
        for name, fig in runs.items():
            if name == "physical limit":
                continue
            settle = fig.get("settle_s")
            rows.append((f"{name}: settle (× physical min) / overshoot / steady error",
                         f"{_f(settle, '.0f', ' s')} ({_f(fig.get('settle_ratio'), '.3f')}) / "
                         f"{_f(fig.get('overshoot_c'), '.3f', ' °C')} / "
                         f"{_f(fig.get('steady_error_c'), '.4f', ' °C')}"))
    for row in res.get("detection", []) if isinstance(res.get("detection"), list) else []:
        rows.append((f"fault {row['scenario']}: trip / detect / heater off / max water",
                     f"{row['trip']} / {_f(row['detect_s'], '.1f', ' s')} / "
                     f"{_f(row['heater_off_s'], '.1f', ' s')} / {row['max_water_c']} °C"))
    pl = res.get("plants", {})
    if "summary" in pl:
        plants = importlib.import_module("benchmarks.plants")
        rows += plants.table_rows(pl["summary"])
    mq = res.get("mqtt", {})
    lat = mq.get("latency", {})
    for key, label in (("trip_to_events", "MQTT: board trip → events subscriber"),
                       ("trip_to_state", "MQTT: board trip → state subscriber"),
                       ("change_to_state", "MQTT: setpoint change → state subscriber")):
        if key in lat:
            rows.append((f"{label}, p50 / p99",
                         f"{lat[key]['p50_ms']:.1f} / {lat[key]['p99_ms']:.1f} ms"))
    cpu = mq.get("controller_cpu", {})
    if "mqtt" in cpu:
        rows.append(("controller CPU per hour of real time, publishing on",
                     f"{cpu['mqtt']['cpu_s_per_hour']:.0f} CPU s "
                     f"({cpu['mqtt']['cpu_pct']:.1f} % of a core)"))
    fl = mq.get("fleet", {})
    if "messages_per_s" in fl:
        rows.append((f"fleet of {fl['tables']} tables on one Mosquitto: messages/s at the "
                     "subscriber / its CPU / lost state updates",
                     f"{fl['messages_per_s']:.0f} / {fl['subscriber_cpu_pct']:.1f} % / "
                     f"{fl['states_published'] - fl['states_received']}"))
        rows.append((f"fleet of {fl['tables']}: controller CPU per table / tables tripped",
                     f"{fl['worker_cpu_pct'] / fl['tables']:.2f} % of a core / "
                     f"{fl['tables_tripped']}"))
        dash = fl.get("dashboard") or {}
        if "cpu_pct" in dash:
            rows.append((f"fleet of {fl['tables']}: dashboard CPU / fleet stream p99 / "
                         "fleet page handler p99",
                         f"{dash['cpu_pct']:.1f} % / "
                         f"{_f(dash['sse_latency']['p99_ms'], '.0f')} ms / "
                         f"{_f(dash['page_latency']['p99_ms'], '.0f')} ms"))
    db = res.get("dashboard", {})
    if "python_clients" in db:
        pc = db["python_clients"]
        rows += [
            ("dashboard: state → browser, p50 / p99",
             f"{_f(db.get('browser', {}).get('latency_p50_ms'), '.1f')} / "
             f"{_f(db.get('browser', {}).get('latency_p99_ms'), '.1f')} ms"),
            (f"dashboard: {db['clients']} live clients, missed updates",
             f"{pc['missed_updates']} (connected {pc['connected']})"),
            ("dashboard process with the clients: CPU / RSS",
             f"{_f(db.get('load_cpu_pct'), '.1f', ' %')} / {_f(db.get('load_rss_mb'), '.0f')} MiB"),
            ("dashboard table page weight (gzip)",
             f"{db['page_weight']['bytes'] / 1024:.1f} KiB "
             f"({db['page_weight'].get('gzip_bytes', 0) / 1024:.1f} KiB)"
             if "page_weight" in db else "-"),
        ]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--plot", help="PNG of the warm-up curves (needs matplotlib)")
    ap.add_argument("--quick", action="store_true", help="shorter load phases")
    ap.add_argument("--from-json", help="only print the table of an earlier --json file")
    args = ap.parse_args()
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        args.plot = None
        args.json = None
    else:
        res = run_all(quick=args.quick)
    m = res["machine"]
    print(f"Hydrotherm benchmark report, {res['started']}, Python {m['python']} on "
          f"{m['cpu'] or m['platform']} ({m['cores']} cores)")
    rows = table(res)
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"| {'figure':<{width}} | value |")
    print(f"| {'-' * width} | --- |")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    if args.plot:
        control = importlib.import_module("benchmarks.control")
        if "_traces" in res.get("control", {}):
            control.plot(res["control"], args.plot)
    if args.json:
        ctl = res.get("control", {})
        ctl.pop("_traces", None)
        Path(args.json).write_text(json.dumps(res, indent=2, default=str))


if __name__ == "__main__":
    main()
