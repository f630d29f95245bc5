"""Issue 14 part 4: leaks while heating hard, with and without the plate sensor.

Prints figures; asserts nothing.  Run: ``python -m benchmarks.plate_leak [--json OUT]
[--quick]`` (in-process on the Python board, whole stack: controller, supervisor, link,
board, plant; a second or two per run).

Cases, each on cushion 0 of a table (``TABLES``: the nominal table and corners of the
plausible range, the light / 360 W / 21 W/K one first among them: the most heat stored in
the plate, the worst leaks of the 100-plant grid):

* **burst as shipped** (``leak_burst_plate.toml``): 36 °C water, setpoint 40 °C (full
  power), 20 kg/min from 60 s (the plate still settling);
* **hot plate**: 35 °C water, setpoint 40 °C (full power), the leak at 300 s, the plate
  settled at its hottest: 20, 7, 5, 3 and 2 kg/min.

Each runs on three boards:

* ``1.1``: a protocol 1.1 board, its plate sensors read by the supervisor's ``plate_dry``
  rule (and the board's own plate limit, ``LIMIT_PLATE_0`` above 60 °C);
* ``1.0``: no plate sensor (``plate_dry`` inactive): ``rise_too_fast``, the board's 42 °C
  water limit and the bimetal cut-out (55 °C plate, a ``board_fault``);
* ``1.0 wet``: the same on the former plant, the plate wetted to the last drop
  (``wetted_below_kg = 0``): the pessimistic contact for the water, which no plate sensor
  could see (for comparison with the figures before the contact model).

Figures: the highest true water of cushion 0 (once empty, the bag's temperature), the
highest true plate, the time from the leak's start until cushion 0's heater gets no power
for good (the plant's ``power_w``), and what cut it first (a trip or a board flag).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from firmware_bridge.protocol import Fault
from sim.scenario import parse_scenario, run_scenario

#: the board flags that cut cushion 0 on the board's own authority
_BOARD_CUTS = (Fault.LIMIT_PLATE_0, Fault.LIMIT_HOT_0, Fault.CUTOUT_0)

#: name -> [true_plant] (both cushions alike); {} is the nominal table (25 kg, 300 W, 30 W/K)
TABLES: dict[str, dict[str, float]] = {
    "nominal 25kg 300W h30": {},
    "15kg 360W h21 ua2 30C lag20": {"water_kg": 15.0, "heater_w": 360.0,
                                    "plate_to_water_w_per_k": 21.0,
                                    "loss_to_room_w_per_k": 2.0, "room_c": 30.0,
                                    "lag_s": 20.0},
    "15kg 360W h21 ua6 12C lag5": {"water_kg": 15.0, "heater_w": 360.0,
                                   "plate_to_water_w_per_k": 21.0,
                                   "loss_to_room_w_per_k": 6.0, "room_c": 12.0, "lag_s": 5.0},
    "15kg 240W h21 ua2 30C lag20": {"water_kg": 15.0, "heater_w": 240.0,
                                    "plate_to_water_w_per_k": 21.0,
                                    "loss_to_room_w_per_k": 2.0, "room_c": 30.0,
                                    "lag_s": 20.0},
    "15kg 360W h39 ua2 30C lag20": {"water_kg": 15.0, "heater_w": 360.0,
                                    "plate_to_water_w_per_k": 39.0,
                                    "loss_to_room_w_per_k": 2.0, "room_c": 30.0,
                                    "lag_s": 20.0},
    "35kg 240W h39 ua6 12C lag5": {"water_kg": 35.0, "heater_w": 240.0,
                                   "plate_to_water_w_per_k": 39.0,
                                   "loss_to_room_w_per_k": 6.0, "room_c": 12.0, "lag_s": 5.0},
}

#: (label, kg/min, start water °C, leak at s)
CASES = [("burst as shipped", 20.0, 36.0, 60.0)] + [
    ("hot plate", kg, 35.0, 300.0) for kg in (20.0, 7.0, 5.0, 3.0, 2.0)]
#: (label, protocol minor, plate wetted to the last drop)
BOARDS = [("1.1", 1, False), ("1.0", 0, False), ("1.0 wet", 0, True)]
AFTER_EMPTY_S = 600.0


def scenario_text(table: str, kg_per_min: float, start_c: float, leak_at: float, minor: int,
                  wet: bool) -> str:
    truth = dict(TABLES[table])
    if wet:
        truth["wetted_below_kg"] = 0.0
    water = truth.get("water_kg", 25.0)
    duration = leak_at + water / kg_per_min * 60.0 + AFTER_EMPTY_S
    lines = [f'name = "{table}: leak {kg_per_min:g} kg/min from {start_c:g} °C, 1.{minor}"',
             f"duration_s = {duration:.0f}", "seed = 1", "trace_period_s = 1.0",
             "[plant]", "room_c = 21.0", f"initial_water_c = [{start_c:g}, {start_c:g}]",
             "[board]", f"protocol_minor = {minor}"]
    if truth:
        lines += ["[true_plant]"] + [f"{k} = {v}" for k, v in truth.items()]
    lines += ["[control]", "setpoint_c = 40.0",
              "[[events]]", f"at_s = {leak_at:g}", 'do = "fault"', 'fault = "cushion_leak"',
              "cushion = 0", f"kg_per_min = {kg_per_min:g}",
              "[expect]", "heater_off_when_tripped = false", ""]
    return "\n".join(lines)


def run_case(table: str, kg_per_min: float, start_c: float, leak_at: float, minor: int,
             wet: bool) -> dict[str, Any]:
    sc = parse_scenario(scenario_text(table, kg_per_min, start_c, leak_at, minor, wet))
    peak = {"water": 0.0, "plate": 0.0}
    last_on: list[float] = [leak_at]
    flags: list[tuple[float, str]] = []

    def watch(run: Any) -> None:
        plant = run.plant
        peak["water"] = max(peak["water"], plant.water_c[0])
        peak["plate"] = max(peak["plate"], plant.plate_c[0])
        if plant.power_w[0] > 0.0:
            last_on[0] = run.now
        faults = run.board.faults
        for flag in _BOARD_CUTS:
            name = str(flag.name)
            if faults & flag and name not in [n for _, n in flags]:
                flags.append((run.now, name))

    res = run_scenario(sc, on_step=watch)
    before = [f"{t.reason}@{t.at_s:.0f}s" for t in res.trips if t.at_s < leak_at]
    causes = sorted([(t.at_s, t.reason) for t in res.trips if t.at_s >= leak_at]
                    + [(t, n.lower()) for t, n in flags if t >= leak_at])
    return {"table": table, "kg_per_min": kg_per_min, "start_c": start_c, "leak_at_s": leak_at,
            "board": f"1.{minor}" + (" wet" if wet else ""),
            "max_water_c": round(peak["water"], 2), "max_plate_c": round(peak["plate"], 2),
            "heater_off_s": round(last_on[0] - leak_at, 1),
            "first_cut": (f"{causes[0][1]} at {causes[0][0] - leak_at:.1f} s"
                          if causes else "none"),
            "trips_before_leak": before}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--json", help="write the figures as JSON to this file")
    ap.add_argument("--quick", action="store_true",
                    help="the nominal table and the 15 kg / 360 W / 21 W/K corner only")
    args = ap.parse_args()
    tables = list(TABLES)[:2] if args.quick else list(TABLES)
    rows = []
    print(f"{'table':<28} {'case':<17} {'leak':>10} {'board':>8} {'max water':>10} "
          f"{'max plate':>10} {'heater off':>11}  first cut")
    for table in tables:
        for label, kg, start, at in CASES:
            for board, minor, wet in BOARDS:
                r = run_case(table, kg, start, at, minor, wet)
                rows.append(r)
                extra = f"  (before the leak: {', '.join(r['trips_before_leak'])})" \
                    if r["trips_before_leak"] else ""
                print(f"{table:<28} {label:<17} {kg:>4g} kg/min {board:>8} "
                      f"{r['max_water_c']:>7.2f} °C {r['max_plate_c']:>7.2f} °C "
                      f"{r['heater_off_s']:>9.1f} s  {r['first_cut']}{extra}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
