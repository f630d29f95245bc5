"""Benchmark of ``hydrotherm autotune`` and the ready-in estimate on the corner plants.

For each corner of the plausible range (``benchmarks/corners.py``): the autotune runs on
the simulated table whose true physics is the corner while the configuration is the
nominal model; then the control law warms the true table 20 → 37 °C (or from the corner's
start) twice, once with the untuned default configuration and once with the autotuned
one.  Printed per corner: the identified vs the true parameters with their 95 %
intervals (the heater power is the nameplate's, so capacities and conductances are
expected at ``nameplate / true power`` times the truth: that column is given), the settle
ratio (to that plant's physical minimum) and the overshoot with either configuration, and
the ready-in error at 10, 30 and 60 min of heating (estimate − true remaining, relative).

``evaluate_plant`` is the building block for other benchmarks (the 100-plant grid): it
returns the figures of one true plant as a dict.

Run: ``python -m benchmarks.autotune [--json OUT] [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from typing import Any

from benchmarks.corners import CORNERS
from benchmarks.peers import TARGET_OVERSHOOT_C, TARGET_SETTLE_RATIO, OurLaw, closed_loop
from controller.autotune import AutotuneError, apply_result
from controller.control import READY_BAND_C
from hydrotherm.app.autotune import autotune_in_process
from hydrotherm.config import Config, ConfigError
from sim.plant import physical_minimum_warmup_s

#: ready-in is judged this long after the heating started (the issue: after 10 min)
READY_CHECK_S = (600.0, 1800.0, 3600.0)
TARGET_READY_ERROR = 0.10


class _Recording(OurLaw):
    """Our law, recording cushion 0's ready-in estimate every control period."""

    def __init__(self, cfg: Config, setpoint_c: float) -> None:
        super().__init__(cfg, setpoint_c)
        self.ready: list[tuple[float, float | None]] = []

    def __call__(self, cushion: int, t: float, measured_c: float | None,
                 applied: float) -> float:
        self.last[cushion] = measured_c
        out = self.laws[cushion].step(t, measured_c, applied, self.setpoints[cushion], True,
                                      self.last[1 - cushion])
        if cushion == 0:
            self.ready.append((t, out.ready_in_s))
        return out.output


def warm_up(truth: Config, law_cfg: Config, setpoint_c: float = 37.0,
            seed: int = 3) -> dict[str, Any]:
    """Warm the true table (``truth``: its plant, room and start) with the law configured
    by ``law_cfg``; the control figures and the ready-in errors."""
    room = truth.plant.room_c
    start = truth.plant.initial_water_c[0]
    phys = physical_minimum_warmup_s(truth.plant, start, setpoint_c, room)
    law = _Recording(law_cfg, setpoint_c)
    duration = 1.1 * phys + 2400.0
    trace = closed_loop(truth, law, duration, setpoint_c, room, start, seed=seed)
    water = trace.water_c[0]
    ready_at = next((trace.t_s[k] for k, w in enumerate(water)
                     if w >= setpoint_c - READY_BAND_C), math.inf)
    errors: dict[str, float | None] = {}
    for at in READY_CHECK_S:
        key = f"ready_error_{at / 60:.0f}min"
        est = next((r for t, r in law.ready if t >= at), None)
        true_left = ready_at - at
        if est is None or true_left <= 0 or not math.isfinite(true_left):
            errors[key] = None
        else:
            errors[key] = (est - true_left) / true_left
    settle = trace.settle_s(min_hold_s=1200.0)
    return {"physical_minimum_s": phys, "settle_s": settle, "settle_ratio": settle / phys,
            "overshoot_c": trace.overshoot_c(),
            "steady_error_c": trace.steady_error_c(window_s=1200.0),
            "ready_at_s": ready_at, **errors}


def identify(truth: Config, believed: Config, seed: int = 3
             ) -> tuple[dict[str, Any], Config | None]:
    """Autotune on the true table ``truth`` with the configuration ``believed``: the
    identification's figures (identified values, intervals, problems or error, the
    proposed keys, wall time) and the tuned configuration (None when refused)."""
    wall = time.perf_counter()
    tuned_cfg: Config | None = None
    try:
        res = autotune_in_process(believed, seed=seed, sim_cfg=truth, step_s=0.2)
        ident: dict[str, Any] = {
            "ok": res.ok, "problems": list(res.problems), "room_source": res.room_source,
            "room_c": res.room_c,
            "room_ci95": list(res.room.ci95) if res.room is not None else None,
            "fits": [{
                "cushion": f.cushion,
                "water_kg": f.water_kg.value, "water_kg_ci95": list(f.water_kg.ci95),
                "loss_w_per_k": f.loss_to_room_w_per_k.value,
                "loss_ci95": list(f.loss_to_room_w_per_k.ci95),
                "plate_w_per_k": f.plate_to_water_w_per_k.value,
                "plate_ci95": list(f.plate_to_water_w_per_k.ci95),
                "r2": f.r2, "rms_c": f.residual_rms_c} for f in res.fits],
            "proposed": res.proposed,
        }
        if res.ok:
            try:
                tuned_cfg = apply_result(believed, res)
            except (AutotuneError, ConfigError) as exc:
                ident["problems"].append(str(exc))
    except AutotuneError as exc:
        ident = {"ok": False, "error": str(exc), "problems": [str(exc)]}
    ident["wall_s"] = time.perf_counter() - wall
    return ident, tuned_cfg


def targets_met(tuned: dict[str, Any] | None) -> bool:
    """Control with the tuned model meets the targets (and ready-in at 10 min)."""
    t = tuned
    return bool(
        t is not None and t["overshoot_c"] <= TARGET_OVERSHOOT_C
        and t["settle_ratio"] <= TARGET_SETTLE_RATIO
        and t["ready_error_10min"] is not None
        and abs(t["ready_error_10min"]) <= TARGET_READY_ERROR)


def evaluate_plant(truth: Config, believed: Config | None = None, seed: int = 3,
                   setpoint_c: float = 37.0, untuned: bool = True) -> dict[str, Any]:
    """Autotune on the true table ``truth`` with the configuration ``believed`` (default:
    nominal), then warm it up with the untuned and (if usable) the tuned configuration.

    Returns ``{"autotune": {...identified, intervals, problems or error},
    "untuned": {figures} (None unless ``untuned``), "tuned": {figures} or None,
    "targets_met": bool}`` where the figures are those of ``warm_up`` (settle ratio,
    overshoot, ready-in errors at 10, 30 and 60 min)."""
    believed = believed or Config()
    ident, tuned_cfg = identify(truth, believed, seed)
    out: dict[str, Any] = {"autotune": ident}
    # the untuned default: the believed model, with the believed room
    out["untuned"] = warm_up(truth, believed, setpoint_c, seed) if untuned else None
    out["tuned"] = warm_up(truth, tuned_cfg, setpoint_c, seed) if tuned_cfg else None
    out["targets_met"] = targets_met(out["tuned"])
    return out


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v * 100:+.1f} %"


def print_corner(name: str, truth: Config, believed: Config, r: dict[str, Any]) -> None:
    tp = truth.plant
    scale = believed.plant.heater_w / tp.heater_w
    print(f"\n== {name}: true water {tp.water_kg:g} kg, heater {tp.heater_w:g} W, plate "
          f"{tp.plate_to_water_w_per_k:g} W/K, loss {tp.loss_to_room_w_per_k:g} W/K, room "
          f"{tp.room_c:g} °C, sensor lag {truth.sensor.lag_s:g} s (nameplate "
          f"{believed.plant.heater_w:g} W: expect water and loss × {scale:.3f})")
    a = r["autotune"]
    # the fit scales the total capacity (water + plate) by nameplate/true power; the
    # plate's capacity is configured, so the water takes the difference
    cspec = tp.water_specific_heat_j_per_kg_k
    cp = believed.plant.plate_heat_capacity_j_per_k
    expect_kg = ((tp.water_kg * cspec + tp.plate_heat_capacity_j_per_k) * scale - cp) / cspec
    if "fits" in a:
        for f in a["fits"]:
            print(f"  cushion {f['cushion']}: water {f['water_kg']:.2f} kg "
                  f"[{f['water_kg_ci95'][0]:.2f}, {f['water_kg_ci95'][1]:.2f}] "
                  f"(expect {expect_kg:.2f}); loss {f['loss_w_per_k']:.2f} "
                  f"[{f['loss_ci95'][0]:.2f}, {f['loss_ci95'][1]:.2f}] W/K (expect "
                  f"{tp.loss_to_room_w_per_k * scale:.2f}); plate {f['plate_w_per_k']:.1f} "
                  f"[{f['plate_ci95'][0]:.1f}, {f['plate_ci95'][1]:.1f}] W/K (expect "
                  f"{tp.plate_to_water_w_per_k:.1f}, less with a longer true sensor lag); "
                  f"R² {f['r2']:.6f}")
        ci = a.get("room_ci95")
        print(f"  room {a['room_c']:.2f} °C ({a['room_source']}"
              + (f", 95 % [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "") + f"); "
              f"autotune wall {a['wall_s']:.1f} s")
    for p in a.get("problems", []):
        print(f"  REFUSED: {p}")
    for which in ("untuned", "tuned"):
        f = r[which]
        if f is None:
            print(f"  {which:8s} -")
            continue
        print(f"  {which:8s} settle {f['settle_s']:7.0f} s = {f['settle_ratio']:.3f} × "
              f"physical minimum {f['physical_minimum_s']:.0f} s; overshoot "
              f"{f['overshoot_c']:.3f} °C; steady error {f['steady_error_c']:.3f} °C; "
              f"ready-in error "
              + ", ".join(f"{_pct(f[f'ready_error_{m:.0f}min'])} at {m:.0f} min"
                          for m in (x / 60 for x in READY_CHECK_S)))
    print(f"  targets (overshoot <= {TARGET_OVERSHOOT_C} °C, settle <= "
          f"{TARGET_SETTLE_RATIO} × minimum, ready-in within ±{TARGET_READY_ERROR * 100:.0f} "
          f"% at 10 min) with the tuned model: {'met' if r['targets_met'] else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures as JSON to this file")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    believed = Config()
    believed = replace(believed, control=replace(believed.control, heat_on=[True, True]))
    results = {}
    for c in CORNERS:
        truth = c.truth()
        r = evaluate_plant(truth, believed, seed=args.seed)
        results[c.name] = r
        print_corner(c.name, truth, believed, r)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
