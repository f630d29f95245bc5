"""The supervisor and the control law on 100 tables whose true physics differ from the model.

Real tables are not the model (reference.md, "Real tables differ from these numbers"): the
controller keeps the configured model (25 kg, 300 W, 30 W/K, 3.5 W/K, 21 °C room, 10 s
lag) while the simulated truth (``[true_plant]``) is one of ``GRID``:

* the 64 corners of water 15/35 kg, heater 240/360 W, plate coupling 21/39 W/K, loss
  2/6 W/K, room 12/30 °C, sensor lag 5/20 s (both cushions alike);
* 36 tables drawn once (seeded) inside the range, each cushion its own water.

Every table gets a client conductance of 10 W/K (the top of the range: the client cools
water above 35.5 °C the most, the worst case for ``no_rise``).

Per table, on the whole stack (``sim.scenario``: controller, supervisor, link, board):

* **session** (no fault), for our law and the two peers (``benchmarks/peers.py``,
  plugged into the same controller in place of our law): 33 → 37 °C, held 15 min after
  1.3 × the table's physical minimum, then a client on both cushions for 15 min.
  Figures: false trips (any trip is false here), settle ratio (settle time / that
  table's own physical minimum, the slower cushion), overshoot.
* **faults** (our law only), each on cushion 0: a leak of 2, 3, 5 and 7 kg/min beginning
  8 min into a full-power warm-up 35 → 40 °C (the plate settled at its hottest); a dead
  heater 2 min into a warm-up 33 → 37 °C (the output high); a welded relay while holding
  37 °C; a sensor drifting 2 °C; the cable pulled (whole stack, first 4 tables only).
  Figures: caught or not, detection time, the highest true water, trips before the fault
  (false).

The "with autotune" and "ready-in error" columns take most of an hour (an autotune per
table): ``--with-autotune`` runs them (``benchmarks/plants_autotune.py``) and saves them to
``benchmarks/results/plants_autotune.json``, which the table rows here (and the report)
print with the date and commit they were computed on.

Run: ``python -m benchmarks.plants [--plants N] [--jobs J] [--json OUT] [--with-autotune
[--stage identify|warm|all]]``.  Two worker
processes at most by default: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import product
from pathlib import Path
from typing import Any

#: Leak rates (kg/min) of the leak runs.
LEAKS_KG_PER_MIN = (2.0, 3.0, 5.0, 7.0)
#: The session: start, setpoint, the client's conductance, the hold before and the client.
START_C = 33.0
SETPOINT_C = 37.0
CLIENT_W_PER_K = 10.0
HOLD_S = 900.0
CLIENT_S = 900.0
#: Detection bounds the fault runs are judged against (docs/safety.md).
DEAD_HEATER_BOUND_S = 900.0
DISAGREE_BOUND_S = 5.0 + 1.0
STALE_BOUND_S = 1.0 + 1.0
LAWS = ("ours", "thermostat", "simple-pid")


@dataclass(frozen=True)
class PlantCase:
    name: str
    water_kg: tuple[float, float]
    heater_w: float
    plate_to_water_w_per_k: float
    loss_to_room_w_per_k: float
    room_c: float
    lag_s: float

    def true_plant_toml(self) -> str:
        return "\n".join([
            "[true_plant]",
            f"water_kg = [{self.water_kg[0]}, {self.water_kg[1]}]",
            f"heater_w = {self.heater_w}",
            f"plate_to_water_w_per_k = {self.plate_to_water_w_per_k}",
            f"loss_to_room_w_per_k = {self.loss_to_room_w_per_k}",
            f"room_c = {self.room_c}",
            f"lag_s = {self.lag_s}",
            f"client_w_per_k = {CLIENT_W_PER_K}",
        ])


def grid() -> list[PlantCase]:
    """The fixed 100 tables (the same every run)."""
    out = []
    for w, p, h, ua, room, lag in product((15.0, 35.0), (240.0, 360.0), (21.0, 39.0),
                                          (2.0, 6.0), (12.0, 30.0), (5.0, 20.0)):
        out.append(PlantCase(f"{w:.0f}kg {p:.0f}W h{h:.0f} ua{ua:.0f} {room:.0f}C lag{lag:.0f}",
                             (w, w), p, h, ua, room, lag))
    rng = random.Random(2026)
    for k in range(36):
        w0, w1 = round(rng.uniform(15, 35), 1), round(rng.uniform(15, 35), 1)
        out.append(PlantCase(f"inner{k:02d} {w0:g}/{w1:g}kg", (w0, w1),
                             round(rng.uniform(240, 360)), round(rng.uniform(21, 39), 1),
                             round(rng.uniform(2, 6), 2), round(rng.uniform(12, 30), 1),
                             round(rng.uniform(5, 20), 1)))
    return out


def _cushion_physics(case: PlantCase, i: int) -> Any:
    from hydrotherm.config import PlantConfig

    return PlantConfig(water_kg=case.water_kg[i], heater_w=case.heater_w,
                       plate_to_water_w_per_k=case.plate_to_water_w_per_k,
                       loss_to_room_w_per_k=case.loss_to_room_w_per_k, room_c=case.room_c)


def physical_minimum_s(case: PlantCase, start_c: float = START_C,
                       setpoint_c: float = SETPOINT_C) -> float:
    """The slower cushion's physical minimum warm-up on this table's truth."""
    from sim.plant import physical_minimum_warmup_s

    return max(physical_minimum_warmup_s(_cushion_physics(case, i), start_c, setpoint_c,
                                         case.room_c) for i in (0, 1))


# --- the runs -----------------------------------------------------------------------------


def _config(case: PlantCase, initial_c: float) -> Any:
    from hydrotherm.config import from_mapping

    return from_mapping({
        "plant": {"initial_water_c": initial_c},
        "true_plant": {"water_kg": list(case.water_kg), "heater_w": case.heater_w,
                       "plate_to_water_w_per_k": case.plate_to_water_w_per_k,
                       "loss_to_room_w_per_k": case.loss_to_room_w_per_k,
                       "room_c": case.room_c, "lag_s": case.lag_s,
                       "client_w_per_k": CLIENT_W_PER_K}})


def _law(law: str, cfg: Any, setpoint_c: float) -> Any:
    from benchmarks import peers
    from benchmarks.supervised_loop import our_law, peer_law

    if law == "thermostat":
        return peer_law(peers.thermostat_peer(setpoint_c))
    if law == "simple-pid":
        # tuned on this table (a relay autotune measures the real table)
        return peer_law(peers.simple_pid_peer(cfg, setpoint_c,
                                              peers.relay_autotune(cfg, setpoint_c)))
    return our_law(cfg, (setpoint_c, setpoint_c))


def _settle(t_s: list[float], water: list[float], sp: float, end_s: float) -> float | None:
    """First time from which the water stays within ±0.2 °C of ``sp`` until ``end_s``."""
    n = sum(1 for t in t_s if t < end_s)
    for k in range(n - 1, -1, -1):
        if abs(water[k] - sp) > 0.2:
            return t_s[k + 1] if k + 1 < n else None
    return 0.0


def session(case: PlantCase, law: str = "ours") -> dict[str, Any]:
    """Warm-up, hold, client; no fault: every trip is a false trip."""
    from benchmarks.supervised_loop import supervised_loop

    phys = physical_minimum_s(case)
    client_at = math.ceil((1.3 * phys + HOLD_S) / 60.0) * 60.0
    cfg = _config(case, START_C)
    t0 = time.perf_counter()
    try:
        decide = _law(law, cfg, SETPOINT_C)
    except RuntimeError as exc:  # the PID peer's relay autotune found too few cycles
        return {"law": law, "failed": str(exc), "false_trips": [], "physical_minimum_s": phys,
                "settle_ratio": None, "overshoot_c": None, "max_water_c": None,
                "wall_s": time.perf_counter() - t0}
    res = supervised_loop(cfg, decide, client_at + CLIENT_S,
                          (SETPOINT_C, SETPOINT_C), [(client_at, "client_on", {})])
    settle = [_settle(res.t_s, res.water_c[i], SETPOINT_C, client_at) for i in (0, 1)]
    over = max(max((w for t, w in zip(res.t_s, res.water_c[i], strict=True) if t < client_at),
                   default=0.0) - SETPOINT_C for i in (0, 1))
    return {"law": law, "false_trips": [f"{t.reason}/{t.cushion}@{t.at:.0f}s"
                                        for t in res.trips],
            "physical_minimum_s": phys,
            "settle_ratio": (None if any(s is None for s in settle)
                             else max(settle) / phys),  # type: ignore[type-var]
            "overshoot_c": max(0.0, over),
            "max_water_c": max(res.max_water_c), "wall_s": time.perf_counter() - t0}


_RELAY_OPEN = ("rise_while_off", "over_temperature")
_FAULTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "heater_dead": ({"cushion": 0}, ("no_rise",)),
    "heater_stuck_on": ({"cushion": 0}, _RELAY_OPEN),
    "sensor_drift": ({"cushion": 0, "sensor": "primary", "offset_c": 2.0},
                     ("sensor_disagree",)),
}


def _fault_run(case: PlantCase, kind: str, leak: float = 0.0) -> dict[str, Any]:
    """One fault on cushion 0 under our law, on the supervised loop."""
    from benchmarks.supervised_loop import supervised_loop

    if kind == "leak":
        # a full-power warm-up 35 -> 40 °C, the leak once the plate is at its hottest
        at, init, sp = 480.0, 35.0, 40.0
        dur = at + 60.0 * max(case.water_kg) / leak + 900.0
        params: dict[str, Any] = {"cushion": 0, "kg_per_min": leak}
        name = "cushion_leak"
        # any trip that switches the leaking cushion off catches the leak: with the plate
        # contact model a draining bag on a weak heater in a cold room cools once its plate
        # dries (``no_rise`` first), and a 1.1 board's plate sensor sees it (``plate_dry``)
        want: tuple[str, ...] = ("rise_too_fast", "rise_while_off", "over_temperature",
                                 "no_rise", "plate_dry")
    elif kind == "heater_dead":
        # during a warm-up 33 -> 37 °C (the output high): the reference's condition
        at, init, sp, dur = 120.0, START_C, SETPOINT_C, 1500.0
        name = kind
        params, want = _FAULTS[kind]
    else:
        at, init, sp = 300.0, SETPOINT_C, SETPOINT_C
        dur = 3600.0 if kind == "heater_stuck_on" else 420.0
        name = kind
        params, want = _FAULTS[kind]
    cfg = _config(case, init)
    res = supervised_loop(cfg, _law("ours", cfg, sp), dur, (sp, sp), [(at, name, params)],
                          stop_on_trip=True)
    before = [t for t in res.trips if t.at < at]
    hit = next((t for t in res.trips if t.at >= at and t.reason in want), None)
    return {"fault": kind if kind != "leak" else f"leak {leak:g} kg/min",
            "false_trips": [f"{t.reason}/{t.cushion}@{t.at:.0f}s" for t in before],
            "caught_by": None if hit is None else hit.reason,
            "detect_s": None if hit is None else hit.at - at,
            "max_water_c": max(res.max_water_c)}


def unplug_run(case: PlantCase) -> dict[str, Any]:
    """The cable pulled while holding 37 °C, on the whole stack (``sim.scenario``)."""
    from sim.scenario import parse_scenario, run_scenario

    text = "\n".join([
        f'name = "{case.name}"', "duration_s = 420", "seed = 1",
        "[plant]", f"initial_water_c = {SETPOINT_C}", case.true_plant_toml(),
        "[control]", f"setpoint_c = {SETPOINT_C}",
        "[[events]]", "at_s = 300", 'do = "unplug"', ""])
    res = run_scenario(parse_scenario(text, "<plants>"))
    hit = next((t for t in res.trips if t.reason == "stale_telemetry"), None)
    return {"fault": "unplug", "false_trips": [f"{t.reason}@{t.at_s:.0f}s" for t in res.trips
                                               if t.at_s < 300.0],
            "caught_by": None if hit is None else hit.reason,
            "detect_s": None if hit is None else hit.at_s - 300.0,
            "max_water_c": res.max_water_c}


#: The whole-stack link fault runs only on the first few tables: it is not physics.
UNPLUG_PLANTS = 4


def faults(case: PlantCase, index: int = 0) -> list[dict[str, Any]]:
    rows = [_fault_run(case, "leak", k) for k in LEAKS_KG_PER_MIN]
    for kind in _FAULTS:
        rows.append(_fault_run(case, kind))
    if index < UNPLUG_PLANTS:
        rows.append(unplug_run(case))
    return rows


def within_bound(row: dict[str, Any]) -> bool:
    """Whether a fault run was caught within its bound (docs/safety.md)."""
    f = row["fault"]
    if row["caught_by"] is None:
        return False
    if f.startswith("leak"):
        return bool(row["max_water_c"] <= 41.0)
    if f == "heater_dead":
        return bool(row["detect_s"] <= DEAD_HEATER_BOUND_S)
    if f == "heater_stuck_on":
        return row["max_water_c"] <= 41.0 and row["caught_by"] == "rise_while_off"
    if f == "sensor_drift":
        return bool(row["detect_s"] <= DISAGREE_BOUND_S)
    return bool(row["detect_s"] <= STALE_BOUND_S)


# --- the grid -----------------------------------------------------------------------------

#: Columns other studies fill: name -> function(case) -> printable value.  Registered by
#: their own modules (``EXTRA_COLUMNS["with autotune"] = fn``); "-" until then.
EXTRA_COLUMNS: dict[str, Callable[[PlantCase], Any] | None] = {
    "with autotune": None, "ready-in error": None}


def _one(job: tuple[int, str]) -> tuple[int, str, Any]:
    k, what = job  # k: the index in the whole grid
    case = grid()[k]
    if what == "faults":
        return k, what, faults(case, k)
    return k, what, session(case, what)


def run_all(n_plants: int = 100, jobs: int = 2, laws: tuple[str, ...] = LAWS,
            with_faults: bool = True, start: int = 0) -> dict[str, Any]:
    cases = grid()[start:start + n_plants]
    work = [(start + k, law) for k in range(len(cases)) for law in laws]
    if with_faults:
        work += [(start + k, "faults") for k in range(len(cases))]
    t0 = time.perf_counter()
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            done = list(pool.imap_unordered(_one, work))
    else:
        done = [_one(j) for j in work]
    per: list[dict[str, Any]] = [{"case": asdict(c), "sessions": {}, "faults": []}
                                 for c in cases]
    for k, what, out in done:
        k -= start
        if what == "faults":
            per[k]["faults"] = out
        else:
            per[k]["sessions"][what] = out
    for k, c in enumerate(cases):
        for name, fn in EXTRA_COLUMNS.items():
            per[k][name] = None if fn is None else fn(c)
    return {"plants": per, "summary": summarise(per), "wall_s": time.perf_counter() - t0}


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def summarise(per: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"plants": len(per), "laws": {}, "faults": {}}
    for law in LAWS:
        rows = [p["sessions"][law] for p in per if law in p["sessions"]]
        if not rows:
            continue
        ratios = [r["settle_ratio"] for r in rows if r["settle_ratio"] is not None]
        out["laws"][law] = {
            "runs": len(rows),
            "false_trips": sum(1 for r in rows if r["false_trips"]),
            "false_trip_list": [
                f"{p['case']['name']}: {', '.join(p['sessions'][law]['false_trips'])}"
                for p in per if p["sessions"].get(law, {}).get("false_trips")],
            "never_settled": len(rows) - len(ratios),
            "settle_ratio_median": _pct(ratios, 0.5), "settle_ratio_max": _pct(ratios, 1.0),
            "overshoot_max_c": max((r["overshoot_c"] for r in rows
                                    if r["overshoot_c"] is not None), default=None),
            "failed": sum(1 for r in rows if r.get("failed")),
        }
    kinds: dict[str, list[dict[str, Any]]] = {}
    for p in per:
        for row in p["faults"]:
            kinds.setdefault(row["fault"], []).append({**row, "plant": p["case"]["name"]})
    for kind, rows in kinds.items():
        det = [r["detect_s"] for r in rows if r["detect_s"] is not None]
        out["faults"][kind] = {
            "runs": len(rows), "caught": sum(r["caught_by"] is not None for r in rows),
            "within_bound": sum(within_bound(r) for r in rows),
            "false_trips": sum(1 for r in rows if r["false_trips"]),
            "detect_s_median": _pct(det, 0.5), "detect_s_max": _pct(det, 1.0),
            "max_water_c": max(r["max_water_c"] for r in rows),
            "misses": [f"{r['plant']}: {r['caught_by']} {r['detect_s']} "
                       f"max {r['max_water_c']:.2f}" for r in rows if not within_bound(r)][:5],
        }
    return out


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def table_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows for ``benchmarks.report``."""
    n = summary["plants"]
    rows = []
    for law, s in summary["laws"].items():
        failed = f" ({s['failed']} not run: {law} could not be tuned)" if s["failed"] else ""
        rows.append((f"{n} plants, {law}: false trips / never settled / settle ratio "
                     "median, max / overshoot max",
                     f"{s['false_trips']} / {s['never_settled']} / "
                     f"{_f(s['settle_ratio_median'], '.3f')}, {_f(s['settle_ratio_max'], '.3f')}"
                     f" / {_f(s['overshoot_max_c'], '.3f')} °C{failed}"))
    for name, fn in EXTRA_COLUMNS.items():
        if fn is None:  # the saved --with-autotune run (benchmarks/plants_autotune.py)
            continue
        rows.append((f"{n} plants, ours {name}", "see below"))
    from benchmarks.plants_autotune import saved_rows

    rows += saved_rows()
    for kind, s in summary["faults"].items():
        rows.append((f"{n} plants, {kind}: caught within bound / false trips / detect "
                     "median, max / max water",
                     f"{s['within_bound']}/{s['runs']} / {s['false_trips']} / "
                     f"{_f(s['detect_s_median'], '.0f')}, {_f(s['detect_s_max'], '.0f')} s / "
                     f"{s['max_water_c']:.2f} °C"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plants", type=int, default=100, help="N tables of the grid ...")
    ap.add_argument("--start", type=int, default=0, help="... from this index")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (shared machine)")
    ap.add_argument("--laws", default=",".join(LAWS), help="comma-separated subset")
    ap.add_argument("--no-faults", action="store_true", help="sessions only")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("--with-autotune", action="store_true",
                    help="the autotune and ready-in columns instead (long: see "
                         "benchmarks/plants_autotune.py); saved to benchmarks/results/")
    ap.add_argument("--stage", choices=("all", "identify", "warm"), default="all",
                    help="with --with-autotune: warm reuses the saved identification")
    ap.add_argument("--warm", default="untuned,tuned",
                    help="with --with-autotune: which warm-ups (the others are kept)")
    ap.add_argument("--results", help="with --with-autotune: the results file (default "
                                      "benchmarks/results/plants_autotune.json)")
    args = ap.parse_args()
    if args.with_autotune:
        from benchmarks import plants_autotune

        at = plants_autotune.run(args.plants, args.jobs, args.stage,
                                 Path(args.results) if args.results
                                 else plants_autotune.RESULTS,
                                 tuple(x for x in args.warm.split(",") if x))
        for name, value in plants_autotune.table_rows(at):
            print(f"| {name} | {value} |")
        plants_autotune.print_details(at)
        return
    res = run_all(args.plants, args.jobs, tuple(x for x in args.laws.split(",") if x),
                  not args.no_faults, args.start)
    for name, value in table_rows(res["summary"]):
        print(f"| {name} | {value} |")
    for law, s in res["summary"]["laws"].items():
        for line in s["false_trip_list"]:
            print(f"  false trip ({law}) {line}")
    for kind, s in res["summary"]["faults"].items():
        for line in s["misses"]:
            print(f"  not within bound ({kind}) {line}")
    print(f"wall {res['wall_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
