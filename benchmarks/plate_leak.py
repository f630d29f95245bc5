"""Issue 14 part 4: leaks while heating hard, with and without the plate sensor.

Prints figures; asserts nothing.  Run: ``python -m benchmarks.plate_leak [--json OUT]``
(in-process on the Python board, a few seconds per case).

Each case is a scenario run on the whole stack (controller, supervisor, link, board,
plant): both cushions at the given start temperature, setpoint 40 °C (so the control law
is at full power, the plate ~10 K above the water), cushion 0 leaking ``kg/min`` from
60 s.  It runs twice: on a protocol 1.0 board (no plate sensor: the supervisor's
``rise_too_fast`` and the board's 42 °C water limit) and on a 1.1 board (the same, plus
the board's own plate limit, ``LIMIT_PLATE_0`` above 60 °C, docs/protocol.md 9.7).  The
supervisor does not yet use the plate reading (issue 14 part 4's plate − water rule is
not written): the "with" column is the board's plate limit alone.

Figures per case and board: the highest true water temperature of cushion 0 (once the
cushion is empty, the bag's temperature), the highest true plate temperature, and the time
from the leak's start to the moment cushion 0's heater gets no power for good (the
plant's ``power_w``), with what cut it (the first trip or board flag).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from firmware_bridge.protocol import Fault
from sim.scenario import parse_scenario, run_scenario

#: the board flags that cut cushion 0 on the board's own authority
_BOARD_CUTS = (Fault.LIMIT_PLATE_0, Fault.LIMIT_HOT_0, Fault.CUTOUT_0)

#: (kg/min, start water °C): the burst of the shipped leak cases from warm water, and the
#: 2-7 kg/min leaks of a warm-up.
CASES = [(20.0, 36.0), (7.0, 36.0), (5.0, 36.0), (3.5, 36.0), (2.0, 36.0)]
LEAK_AT_S = 60.0
DURATION_S = 900.0


def scenario_text(kg_per_min: float, start_c: float, minor: int) -> str:
    return f"""
name = "leak {kg_per_min:g} kg/min from {start_c:g} °C, protocol 1.{minor}"
duration_s = {DURATION_S:g}
seed = 1
trace_period_s = 1.0

[plant]
room_c = 21.0
initial_water_c = [{start_c:g}, {start_c:g}]

[board]
protocol_minor = {minor}

[control]
setpoint_c = 40.0

[[events]]
at_s = {LEAK_AT_S:g}
do = "fault"
fault = "cushion_leak"
cushion = 0
kg_per_min = {kg_per_min:g}

[expect]
heater_off_when_tripped = false
"""


def run_case(kg_per_min: float, start_c: float, minor: int) -> dict[str, Any]:
    sc = parse_scenario(scenario_text(kg_per_min, start_c, minor))
    peak = {"water": 0.0, "plate": 0.0}
    last_on: list[float] = [LEAK_AT_S]
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
    causes = sorted([(t.at_s, t.reason) for t in res.trips if t.at_s >= LEAK_AT_S]
                    + [(t, n.lower()) for t, n in flags])
    return {"kg_per_min": kg_per_min, "start_c": start_c, "protocol": f"1.{minor}",
            "max_water_c": round(peak["water"], 2), "max_plate_c": round(peak["plate"], 2),
            "heater_off_s": round(last_on[0] - LEAK_AT_S, 1),
            "first_cut": (f"{causes[0][1]} at {causes[0][0] - LEAK_AT_S:.1f} s"
                          if causes else "none")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the figures as JSON to this file")
    args = ap.parse_args()
    rows = []
    print(f"{'leak':>10} {'from':>6} {'board':>6} {'max water':>10} {'max plate':>10} "
          f"{'heater off':>11}  first cut")
    for kg, start in CASES:
        for minor in (0, 1):
            r = run_case(kg, start, minor)
            rows.append(r)
            print(f"{kg:>6g} kg/min {start:>5g}° {r['protocol']:>6} {r['max_water_c']:>8.2f} °C "
                  f"{r['max_plate_c']:>8.2f} °C {r['heater_off_s']:>9.1f} s  {r['first_cut']}",
                  flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
