"""The ``plate_dry`` rule on the 100-plant grid: no false trip, and the leaks.

Prints figures; asserts nothing.  Run: ``python -m benchmarks.plate_grid [--plants N]
[--jobs J] [--what sessions,leaks,welded] [--json OUT]``.

``benchmarks.plants`` runs its grid on the supervised loop without a plate sensor (a
protocol 1.0 board, ``plate_dry`` inactive).  This module runs the same tables
(``plants.grid()``) and the same runs on the same loop with each cushion's plate sensor
reported as a 1.1 board does (``supervised_loop(..., plate_sensor=True)``):

* **sessions** (no fault: any trip is false): our law, 33 → 37 °C, held, a 10 W/K
  client on both cushions -- ``plants.session`` with the plate sensor;
* **leaks** of 2, 3, 5, 7 kg/min 8 min into a full-power warm-up 35 → 40 °C, with and
  without the plate sensor (without: ``plants``' own leak runs, on the plant as it is
  now, with the contact model);
* **welded**: a welded SSR while holding 37 °C, with the plate sensor: it must be
  ``rise_while_off`` (master relay open), and ``plate_dry`` must not take it for a dry
  plate.

It reads ``benchmarks.plants`` and does not change it.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from benchmarks import plants
from benchmarks.supervised_loop import supervised_loop

LEAK_AT_S = 480.0


def session(k: int) -> dict[str, Any]:
    case = plants.grid()[k]
    phys = plants.physical_minimum_s(case)
    client_at = math.ceil((1.3 * phys + plants.HOLD_S) / 60.0) * 60.0
    cfg = plants._config(case, plants.START_C)
    res = supervised_loop(cfg, plants._law("ours", cfg, plants.SETPOINT_C),
                          client_at + plants.CLIENT_S, (plants.SETPOINT_C,) * 2,
                          [(client_at, "client_on", {})], plate_sensor=True)
    return {"plant": case.name, "false_trips": [f"{t.reason}/{t.cushion}@{t.at:.0f}s"
                                                for t in res.trips]}


def leak(k: int, kg: float, plate: bool) -> dict[str, Any]:
    case = plants.grid()[k]
    cfg = plants._config(case, 35.0)
    dur = LEAK_AT_S + 60.0 * max(case.water_kg) / kg + 900.0
    res = supervised_loop(cfg, plants._law("ours", cfg, 40.0), dur, (40.0, 40.0),
                          [(LEAK_AT_S, "cushion_leak", {"cushion": 0, "kg_per_min": kg})],
                          stop_on_trip=True, plate_sensor=plate)
    before = [f"{t.reason}/{t.cushion}@{t.at:.0f}s" for t in res.trips if t.at < LEAK_AT_S]
    hit = next((t for t in res.trips if t.at >= LEAK_AT_S), None)
    return {"plant": case.name, "kg_per_min": kg, "plate": plate, "false_trips": before,
            "caught_by": None if hit is None else hit.reason,
            "detect_s": None if hit is None else round(hit.at - LEAK_AT_S, 1),
            "max_water_c": round(max(res.max_water_c), 3)}


def welded(k: int) -> dict[str, Any]:
    case = plants.grid()[k]
    cfg = plants._config(case, 37.0)
    res = supervised_loop(cfg, plants._law("ours", cfg, 37.0), 3600.0, (37.0, 37.0),
                          [(300.0, "heater_stuck_on", {"cushion": 0})], stop_on_trip=True,
                          plate_sensor=True)
    return {"plant": case.name, "trips": [f"{t.reason}/{t.cushion}@{t.at:.0f}s"
                                          for t in res.trips],
            "max_water_c": round(max(res.max_water_c), 3)}


def _one(job: tuple[str, int, float, bool]) -> tuple[str, dict[str, Any]]:
    what, k, kg, plate = job
    if what == "sessions":
        return what, session(k)
    if what == "welded":
        return what, welded(k)
    return what, leak(k, kg, plate)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--plants", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--what", default="sessions,leaks,welded")
    ap.add_argument("--json")
    args = ap.parse_args()
    what = args.what.split(",")
    jobs: list[tuple[str, int, float, bool]] = []
    for k in range(args.plants):
        if "sessions" in what:
            jobs.append(("sessions", k, 0.0, True))
        if "leaks" in what:
            jobs += [("leaks", k, kg, p) for kg in plants.LEAKS_KG_PER_MIN for p in (False, True)]
        if "welded" in what:
            jobs.append(("welded", k, 0.0, True))
    t0 = time.perf_counter()
    if args.jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            out = pool.map(_one, jobs, chunksize=1)
    else:
        out = [_one(j) for j in jobs]
    rows: dict[str, list[dict[str, Any]]] = {}
    for w, r in out:
        rows.setdefault(w, []).append(r)
    print(f"{len(jobs)} runs in {time.perf_counter() - t0:.0f} s")
    if "sessions" in rows:
        false = [r for r in rows["sessions"] if r["false_trips"]]
        print(f"sessions with the plate sensor (no fault): {len(rows['sessions'])} tables, "
              f"false trips on {len(false)}" + "".join(
                  f"\n  {r['plant']}: {', '.join(r['false_trips'])}" for r in false))
    if "welded" in rows:
        bad = [r for r in rows["welded"] if any(t.startswith("plate_dry") for t in r["trips"])
               or not r["trips"] or not r["trips"][0].startswith("rise_while_off")]
        print(f"welded SSR with the plate sensor: {len(rows['welded'])} tables, not a clean "
              f"rise_while_off on {len(bad)}; highest water "
              f"{max(r['max_water_c'] for r in rows['welded']):.2f} °C"
              + "".join(f"\n  {r['plant']}: {r['trips']}" for r in bad))
    if "leaks" in rows:
        print(f"{'leak':>10} {'plate':>6} {'runs':>5} {'> 41 °C':>8} {'max water':>10} "
              f"{'detect median/max':>18}  caught by")
        for kg in plants.LEAKS_KG_PER_MIN:
            for p in (False, True):
                rs = [r for r in rows["leaks"] if r["kg_per_min"] == kg and r["plate"] == p]
                if not rs:
                    continue
                over = [r for r in rs if r["max_water_c"] > 41.0]
                det = sorted(r["detect_s"] for r in rs if r["detect_s"] is not None)
                by: dict[str, int] = {}
                for r in rs:
                    by[str(r["caught_by"])] = by.get(str(r["caught_by"]), 0) + 1
                med = det[len(det) // 2] if det else math.nan
                print(f"{kg:>4g} kg/min {'with' if p else 'no':>6} {len(rs):>5} "
                      f"{len(over):>8} {max(r['max_water_c'] for r in rs):>7.2f} °C "
                      f"{med:>8.0f} / {det[-1] if det else math.nan:>5.0f} s  "
                      + ", ".join(f"{k} {v}" for k, v in sorted(by.items())), flush=True)
        false = [r for r in rows["leaks"] if r["false_trips"]]
        print(f"trips before a leak (false): {len(false)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
