"""Benchmark of the control law against its peers on the same simulated plant.

The reference run: both cushions 20 → 37 °C in a 21 °C room, a client lies down on both
at 3 h, 4.5 h in all.  Side by side: our model-based law, a plain thermostat, the
textbook PID (``simple-pid`` with relay-autotuned Ziegler–Nichols gains) and the
physical limit (full power until the water reaches the setpoint).  Then our law alone
in a 15 °C room (15 → 37 °C) and at a 40 °C setpoint.  The figures are of the *true*
water temperature of the worse cushion (see ``benchmarks/peers.py``).

Run: ``python -m benchmarks.control [--json OUT] [--plot OUT.png]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from benchmarks import peers
from benchmarks.peers import Trace
from hydrotherm.config import Config

#: The variant of the PID peer whose input is low-passed (seconds); see ``SimplePidLaw``.
PID_INPUT_FILTER_S = 30.0

_COLUMNS = (("settle s", 9), ("x phys", 7), ("overshoot", 10), ("steady err", 11),
            ("steady max", 11), ("client rec s", 13), ("client max", 11), ("energy Wh", 10),
            ("wall s", 7))


def _num(v: float | None, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "never"
    return format(v, fmt)


def _row(name: str, fig: dict[str, float | None]) -> str:
    vals = (_num(fig.get("settle_s"), ".0f"), _num(fig.get("settle_ratio"), ".3f"),
            _num(fig.get("overshoot_c"), ".3f"), _num(fig.get("steady_error_c"), ".4f"),
            _num(fig.get("steady_max_error_c"), ".4f"), _num(fig.get("client_recovery_s"), ".0f"),
            _num(fig.get("client_max_deviation_c"), ".3f"), _num(fig.get("energy_wh"), ".0f"),
            _num(fig.get("wall_s"), ".2f"))
    return f"{name:<34}" + "".join(f"{v:>{w}}" for v, (_, w) in zip(vals, _COLUMNS, strict=True))


def _header() -> str:
    return f"{'':<34}" + "".join(f"{h:>{w}}" for h, w in _COLUMNS)


def targets_met(fig: dict[str, float | None]) -> dict[str, bool]:
    """The issue's targets, checked on one run's figures."""
    ratio = fig.get("settle_ratio")
    over = fig.get("overshoot_c")
    steady = fig.get("steady_error_c")
    rec = fig.get("client_recovery_s")
    return {
        "settle <= 1.10 x physical minimum":
            ratio is not None and ratio <= peers.TARGET_SETTLE_RATIO,
        "overshoot <= 0.2 C": over is not None and over <= peers.TARGET_OVERSHOOT_C,
        "steady-state error within +-0.1 C":
            steady is not None and steady <= peers.TARGET_STEADY_ERROR_C,
        "client recovery < 600 s": rec is not None and rec < peers.TARGET_RECOVERY_S,
    }


def _physical_row(phys_s: float) -> dict[str, float | None]:
    """The physical limit: it reaches the setpoint at the physical minimum, by definition
    without overshoot; it has no hold, client or comparable energy figures."""
    return {"settle_s": phys_s, "settle_ratio": 1.0, "overshoot_c": 0.0,
            "steady_error_c": None, "steady_max_error_c": None, "client_recovery_s": None,
            "client_max_deviation_c": None, "energy_wh": None, "wall_s": None}


def run_all() -> dict[str, Any]:
    cfg = Config()
    ref = peers.REFERENCE
    phys = ref.physical_minimum_s(cfg)
    traces: dict[str, Trace] = {}
    results: dict[str, Any] = {"reference": {"scenario": ref.__dict__, "physical_minimum_s": phys,
                                             "runs": {}}}
    runs = results["reference"]["runs"]

    traces["ours"] = peers.run_scenario(cfg, ref, peers.ours(cfg, ref.setpoint_c))
    traces["thermostat (+-0.3 C, 2 s)"] = peers.run_scenario(
        cfg, ref, peers.thermostat_peer(ref.setpoint_c))
    t0 = time.perf_counter()
    tune = peers.autotune_for(cfg, ref.setpoint_c)
    tune_wall = time.perf_counter() - t0
    traces["simple-pid, ZN autotune"] = peers.run_scenario(
        cfg, ref, peers.simple_pid_peer(cfg, ref.setpoint_c, tune))
    traces[f"simple-pid, ZN, {PID_INPUT_FILTER_S:.0f} s input filter"] = peers.run_scenario(
        cfg, ref, peers.simple_pid_peer(cfg, ref.setpoint_c, tune,
                                        input_filter_s=PID_INPUT_FILTER_S))
    for name, tr in traces.items():
        runs[name] = tr.figures(phys)
    runs["physical limit"] = _physical_row(phys)
    results["reference"]["ours_targets"] = targets_met(runs["ours"])
    results["autotune"] = {**tune.__dict__, "ti_s": tune.ti_s, "td_s": tune.td_s,
                           "wall_s": tune_wall}

    extras = [peers.scenario(cfg, "15 C room, 15 -> 37 C", 37.0, 15.0, 15.0),
              peers.scenario(cfg, "setpoint 40, 20 -> 40 C", 40.0, 21.0, 20.0)]
    results["extras"] = {}
    for sc in extras:
        p = sc.physical_minimum_s(cfg)
        fig = peers.run_scenario(cfg, sc, peers.ours(cfg, sc.setpoint_c)).figures(p)
        results["extras"][sc.name] = {"scenario": sc.__dict__, "physical_minimum_s": p,
                                      "ours": fig, "ours_targets": targets_met(fig)}
    results["_traces"] = traces
    return results


def print_results(res: dict[str, Any]) -> None:
    ref = res["reference"]
    sc = ref["scenario"]
    print(f"Reference run: {sc['initial_c']:.0f} -> {sc['setpoint_c']:.0f} C in a "
          f"{sc['room_c']:.0f} C room, client on both cushions at {sc['client_on_at_s']:.0f} s, "
          f"{sc['duration_s']:.0f} s in all; physical minimum warm-up "
          f"{ref['physical_minimum_s']:.0f} s")
    print("(true water of the worse cushion; steady = last 30 min before the client; "
          "band +-0.2 C; C = degrees Celsius)")
    print(_header())
    for name, fig in ref["runs"].items():
        print(_row(name, fig))
    at = res["autotune"]
    print()
    print(f"simple-pid gains from a relay autotune (0/1 relay, +-0.1 C hysteresis, "
          f"{at['cycles']} cycles after 2 to settle, {at['wall_s']:.2f} s wall): "
          f"Tu = {at['tu_s']:.0f} s, a = {at['amplitude_c']:.3f} C, d = {at['relay_d']}, "
          f"Ku = 4d/(pi a) = {at['ku']:.3f} /C")
    print(f"  Ziegler-Nichols: Kp = 0.6 Ku = {at['kp']:.3f} /C, Ti = Tu/2 = {at['ti_s']:.0f} s, "
          f"Td = Tu/8 = {at['td_s']:.0f} s -> Ki = {at['ki']:.5f} /(C s), "
          f"Kd = {at['kd']:.1f} s/C")
    print()
    print("Targets (ours):")
    for name, ok in ref["ours_targets"].items():
        print(f"  {name:<40} {'met' if ok else 'MISSED'}")
    print()
    print("Our law in other conditions:")
    print(_header())
    for name, ex in res["extras"].items():
        print(_row(f"ours, {name}", ex["ours"]))
    for name, ex in res["extras"].items():
        missed = [k for k, ok in ex["ours_targets"].items() if not ok]
        print(f"  {name}: physical minimum {ex['physical_minimum_s']:.0f} s, client at "
              f"{ex['scenario']['client_on_at_s']:.0f} s; targets "
              + ("all met" if not missed else "MISSED: " + "; ".join(missed)))


def plot(res: dict[str, Any], out: str) -> bool:
    """Warm-up curves (cushion 0's true water) of the laws and the physical limit."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot: matplotlib is not installed, no plot written to {out} "
              "(pip install matplotlib to get one)")
        return False
    cfg = Config()
    ref = peers.REFERENCE
    traces: dict[str, Trace] = res["_traces"]
    fig, (ax_all, ax_zoom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    any_trace = next(iter(traces.values()))
    hours = [t / 3600.0 for t in any_trace.t_s]
    limit = peers.physical_limit_curve(cfg, ref.setpoint_c, ref.room_c, ref.initial_c,
                                       any_trace.t_s)
    for ax in (ax_all, ax_zoom):
        for name, tr in traces.items():
            ax.plot([t / 3600.0 for t in tr.t_s], tr.water_c[0], label=name, lw=1)
        ax.plot(hours, limit, "k--", label="physical limit", lw=1)
        ax.axhline(ref.setpoint_c, color="grey", lw=0.5)
        ax.axvline(ref.client_on_at_s / 3600.0, color="grey", lw=0.5, ls=":")
        ax.grid(alpha=0.3)
        ax.set_ylabel("true water, cushion 0 (°C)")
    ax_zoom.set_ylim(ref.setpoint_c - 1.0, ref.setpoint_c + 1.5)
    ax_zoom.set_xlabel("time (h); dotted: client lies down")
    ax_all.set_title(f"{ref.initial_c:.0f} → {ref.setpoint_c:.0f} °C, room "
                     f"{ref.room_c:.0f} °C")
    ax_all.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"plot written to {out}")
    return True


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else "inf"
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def law_step_cpu_us(steps: int = 50_000, repeats: int = 7) -> float:
    """CPU time of one ``CushionController.step`` (the control loop's hot path, once per
    control period per cushion) during a full-power warm-up, median of ``repeats``."""
    import random
    import statistics

    from controller.control import CushionController

    cfg = Config()
    rng = random.Random(1)
    vals = [20.0 + 0.0003 * k + rng.gauss(0.0, 0.02) for k in range(steps)]
    runs = []
    for _ in range(repeats):
        law = CushionController(cfg.control, cfg.plant, cfg.sensor)
        t0 = time.process_time()
        for k in range(steps):
            law.step(float(k), vals[k], 1.0, 37.0, True, vals[k])
        runs.append((time.process_time() - t0) / steps * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--plot", help="write warm-up curves to this PNG (needs matplotlib)")
    args = ap.parse_args()
    wall0 = time.perf_counter()
    res = run_all()
    print_results(res)
    if args.plot:
        plot(res, args.plot)
    total = time.perf_counter() - wall0
    step_us = law_step_cpu_us()
    res["law_step_cpu_us"] = step_us
    print(f"\ncontrol law step (hot path): {step_us:.2f} µs CPU per cushion per cycle")
    print(f"whole benchmark: {total:.1f} s wall")
    if args.json:
        out = {k: v for k, v in res.items() if not k.startswith("_")}
        out["wall_s"] = total
        Path(args.json).write_text(json.dumps(_jsonable(out), indent=2))


if __name__ == "__main__":
    main()
