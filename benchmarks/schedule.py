"""Benchmark of the ready-by schedule over a grid of mornings: on time or not, how early
or late, and the energy used, against switching on at a fixed 2 h before.

The grid: room 12, 20, 28 °C × start water 14, 24, 34 °C (``--full``: 12, 16, 20, 24,
28 °C × 14, 19, 24, 29, 34 °C) × five tables across the plausible range (water 15-35 kg,
heater 240-360 W, loss 2-6 W/K; the controller's model stays the nominal 25 kg / 300 W /
3.5 W/K with the configured room estimate 21 °C, as an unconfigured table has).  The
board reads the room (protocol 1.1) and the controller uses it (``controller/room.py``);
``--no-room-sensor`` runs the same grid as a 1.0 board, on the configured 21 °C.  Each
table lives through its mornings in order with one ``ScheduleRunner``, so what it learns
on one morning serves the next (as on a real table, where the mornings differ).  The
schedule: 37.0 °C by 08:45, the run starts at 04:00.  "On time" is the scenario verdict
``schedule_met``: the true water within ±0.2 °C from at the latest 60 s after 08:45, for
10 min (or to 09:00), and not more than 20 min before 08:45.

The loop is light (not the scenario runner, which takes ~15 s per morning): the plant of
``sim.plant`` and the real control law ``controller.control.CushionController`` and the
real ``ScheduleRunner``, stepped each second, the sensors read as the true water plus the
sensor's 10 s lag, the room sensor as the plant's lagged room (no noise, no board, no
link).  The fixed-2-h baseline is the same loop
with heat switched on at 06:45.  Energy is the heater's from 04:00 to 08:45.

Run: ``python -m benchmarks.schedule [--json OUT] [--full] [--no-room-sensor]``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from controller.control import CushionController
from controller.room import RoomEstimate, RoomTracker
from controller.schedule import ScheduleRunner, SimulatedLocalTime, parse_schedule
from firmware_bridge.thermistor import SensorReading, SensorStatus
from hydrotherm.clock import SimClock
from hydrotherm.config import Config, PlantConfig
from sim.plant import Plant, physical_minimum_warmup_s
from sim.scenario.schedule import ready_time

ROOMS = (12.0, 16.0, 20.0, 24.0, 28.0)
WATERS = (14.0, 19.0, 24.0, 29.0, 34.0)
#: (water kg, heater W, loss W/K): light/strong, nominal, heavy/nominal, heavy/weak, lossy
TABLES = ((15.0, 360.0, 2.0), (25.0, 300.0, 3.5), (35.0, 300.0, 3.5), (35.0, 240.0, 4.0),
          (25.0, 270.0, 6.0))
SETPOINT = 37.0
START = datetime(2026, 12, 7, 4, 0)
READY = datetime(2026, 12, 7, 8, 45)
END = datetime(2026, 12, 7, 9, 0)


@dataclass
class _Sensor:
    celsius: float | None
    status: Any = field(default_factory=lambda: type("S", (), {"value": "ok"})())


@dataclass
class _Cushion:
    primary: _Sensor
    redundant: _Sensor
    applied: float


@dataclass
class _Reading:
    cushions: tuple[_Cushion, _Cushion]


@dataclass
class _State:
    setpoint_c: float
    heat_on: bool
    last: Any = None


class LightTable:
    """Just enough of ``Controller`` for the ``ScheduleRunner`` (cushions, commands,
    events, clock, link readings), over the true plant and the real control law."""

    def __init__(self, model: Config, truth: PlantConfig, clock: SimClock,
                 room_sensor: bool = True) -> None:
        """``room_sensor``: the board reads the room (protocol 1.1), as the controller
        would use it (``controller/room.py``); False: a 1.0 board, the configured room."""
        self.cfg = model
        self.room_sensor = room_sensor
        self.room = RoomTracker(model.control.room_estimate_c)
        self.clock = clock
        self.lock = threading.RLock()
        self.plant = Plant(truth, model.sensor, random.Random(1))
        self.laws = [CushionController(model.control, model.plant, model.sensor)
                     for _ in range(2)]
        self.cushions = [_State(SETPOINT, False) for _ in range(2)]
        self.sensed = list(self.plant.water_c)
        self.output = [0.0, 0.0]
        self.energy_j = 0.0
        self.events: list[dict[str, Any]] = []
        self.latest: _Reading | None = None
        self.healthy = True
        self.link = self

    def room_estimate(self) -> RoomEstimate:
        return self.room.estimate(self.clock.now())

    def set_setpoint(self, i: int, v: float, actor: str) -> float:
        self.cushions[i].setpoint_c = v
        return v

    def set_heat(self, i: int, on: bool, actor: str) -> None:
        self.cushions[i].heat_on = on

    def record_event(self, kind: str, **kw: Any) -> None:
        self.events.append({"kind": kind, "t": self.clock.now(), **kw})

    def step(self, runner: ScheduleRunner | None) -> None:
        now = self.clock.advance(1.0)
        lag = self.cfg.sensor.lag_s
        for i in range(2):
            self.sensed[i] += (self.plant.water_c[i] - self.sensed[i]) * (1.0 / (lag + 1.0))
        self.latest = _Reading(tuple(_Cushion(_Sensor(self.sensed[i]), _Sensor(self.sensed[i]),
                                              self.output[i]) for i in range(2)))  # type: ignore[arg-type]
        self.room.observe(now, SensorReading(0, SensorStatus.OK, self.plant.sensed_room_c)
                          if self.room_sensor else None)
        if runner is not None:
            runner.tick(now)
        room = self.room_estimate().celsius
        for i, st in enumerate(self.cushions):
            self.laws[i].set_room(room)
            out = self.laws[i].step(now, self.sensed[i], self.output[i], st.setpoint_c,
                                    st.heat_on, self.sensed[1 - i])
            st.last = out
            self.output[i] = out.output if st.heat_on else 0.0
        self.plant.step(1.0, self.output, True)
        self.energy_j += sum(self.plant.power_w) * 1.0


def one_morning(model: Config, truth: PlantConfig, water: float, room: float,
                runner_state: dict[str, Any] | None, fixed_2h: bool,
                room_sensor: bool = True) -> dict[str, Any]:
    """One morning; ``runner_state``: the learning carried from the last morning."""
    truth = replace(truth, room_c=room, initial_water_c=[water, water])
    clock = SimClock()
    table = LightTable(model, truth, clock, room_sensor)
    runner = None
    if not fixed_2h:
        runner = ScheduleRunner(table, SimulatedLocalTime(START, clock, 0.0),
                                schedule=parse_schedule({"entries": [
                                    {"ready_at": "08:45", "setpoint_c": SETPOINT}]}))
        if runner_state is not None:
            runner.learned.load(runner_state)
    due = (READY - START).total_seconds()
    end = (END - START).total_seconds()
    on_at = due - 7200.0
    ws: list[float] = []
    energy_due = 0.0
    for n in range(int(end)):
        if fixed_2h and abs(clock.now() - on_at) < 0.5:
            for i in range(2):
                table.set_heat(i, True, "bench")
        table.step(runner)
        ws.append(table.plant.water_c[0])
        if n + 1 == int(due):
            energy_due = table.energy_j
    ready = ready_time([float(k + 1) for k in range(len(ws))], ws, SETPOINT)
    late = None if ready is None else ready - due
    on_time = late is not None and -1200.0 <= late <= 60.0
    # could any start from 04:00 make it? (full power from the start, the true table)
    phys = physical_minimum_warmup_s(truth, water, SETPOINT - 0.2, room)
    return {"water": water, "room": room, "ready_s": ready, "late_s": late,
            "on_time": on_time, "possible": phys <= due, "physical_minimum_s": phys,
            "energy_wh": energy_due / 3600.0 / 2,  # per cushion
            "learned": runner.learned.as_dict() if runner is not None else None,
            "late_events": sum(e["kind"] == "schedule_late" for e in table.events)}


def run_grid(full: bool = False, room_sensor: bool = True,
             progress: Any = None) -> dict[str, Any]:
    model = Config()
    rows = []
    rooms = ROOMS if full else ROOMS[::2]
    waters = WATERS if full else WATERS[::2]
    tables = TABLES
    rng = random.Random(7)
    for kg, watts, ua in tables:
        truth = replace(model.plant, water_kg=kg, heater_w=watts, loss_to_room_w_per_k=ua)
        mornings = [(w, r) for r in rooms for w in waters]
        rng.shuffle(mornings)  # a table's mornings come in no particular order
        state = None
        for n, (w, r) in enumerate(mornings):
            t0 = time.perf_counter()
            s = one_morning(model, truth, w, r, state, fixed_2h=False,
                            room_sensor=room_sensor)
            state = s.pop("learned")
            f = one_morning(model, truth, w, r, None, fixed_2h=True, room_sensor=room_sensor)
            f.pop("learned")
            rows.append({"table": {"water_kg": kg, "heater_w": watts, "loss_w_per_k": ua},
                         "morning": n + 1, "schedule": s, "fixed_2h": f,
                         "wall_s": round(time.perf_counter() - t0, 2)})
            if progress is not None:
                progress(f"table {kg:g} kg {watts:g} W {ua:g} W/K, morning {n + 1}/"
                         f"{len(mornings)}: room {r:g} °C, water {w:g} °C, "
                         + ("on time" if s["on_time"] else "never ready"
                            if s["late_s"] is None else f"{s['late_s'] / 60:+.1f} min"))
    return {"rows": rows, "summary": summarise(rows)}


def _dist(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {}
    q = statistics.quantiles(xs, n=20) if len(xs) > 1 else [xs[0]] * 19
    return {"min": min(xs), "p5": q[0], "median": statistics.median(xs), "p95": q[18],
            "max": max(xs)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("schedule", "fixed_2h"):
        runs = [r[key] for r in rows]
        lates = [r["late_s"] / 60 for r in runs if r["late_s"] is not None]
        out[key] = {"mornings": len(runs), "on_time": sum(r["on_time"] for r in runs),
                    "never_ready": sum(r["ready_s"] is None for r in runs),
                    "late_over_1min": sum(r["late_s"] is not None and r["late_s"] > 60
                                          for r in runs),
                    "early_over_20min": sum(r["late_s"] is not None and r["late_s"] < -1200
                                            for r in runs),
                    "ready_minus_due_min": _dist(lates),
                    "energy_wh_per_cushion_total": sum(r["energy_wh"] for r in runs),
                    "possible": sum(r["possible"] for r in runs),
                    "on_time_of_possible": sum(r["on_time"] and r["possible"]
                                               for r in runs)}
    # where 2 h before was enough (warm mornings): what the schedule saves
    both = [r for r in rows if r["fixed_2h"]["late_s"] is not None
            and r["fixed_2h"]["late_s"] <= 60 and r["schedule"]["on_time"]]
    out["fixed_2h_in_time"] = {
        "mornings": len(both),
        "energy_wh_schedule": sum(r["schedule"]["energy_wh"] for r in both),
        "energy_wh_fixed_2h": sum(r["fixed_2h"]["energy_wh"] for r in both)}
    first = [r["schedule"] for r in rows if r["morning"] == 1]
    out["schedule_first_morning_on_time"] = f"{sum(r['on_time'] for r in first)}/{len(first)}"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write every morning's figures here")
    ap.add_argument("--full", action="store_true",
                    help="the 5x5 grid (125 mornings; the default is 3x3, 45 mornings)")
    ap.add_argument("--no-room-sensor", action="store_true",
                    help="a 1.0 board: the controller assumes the configured 21 °C room "
                         "(the default: the board's room sensor, controller/room.py)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print("room: " + ("configured 21 °C (no room sensor)" if args.no_room_sensor
                      else "measured by the board's room sensor"), flush=True)
    res = run_grid(args.full, not args.no_room_sensor,
                   None if args.quiet else lambda m: print(m, flush=True))
    s = res["summary"]
    for key, label in (("schedule", "ready-by schedule"), ("fixed_2h", "fixed 2 h before")):
        x = s[key]
        d = x["ready_minus_due_min"]
        print(f"{label:<20} on time {x['on_time']}/{x['mornings']}  late>1min "
              f"{x['late_over_1min']}  early>20min {x['early_over_20min']}  never "
              f"{x['never_ready']}  energy {x['energy_wh_per_cushion_total'] / 1000:.2f} kWh")
        print(f"{'':<20} possible from 04:00 (the true table's physical minimum): "
              f"{x['possible']}/{x['mornings']}, of them on time {x['on_time_of_possible']}")
        if d:
            print(f"{'':<20} ready - 08:45 (min): min {d['min']:.1f}  p5 {d['p5']:.1f}  "
                  f"median {d['median']:.1f}  p95 {d['p95']:.1f}  max {d['max']:.1f}")
    print(f"first morning of each table on time: {s['schedule_first_morning_on_time']}")
    e_s = s["schedule"]["energy_wh_per_cushion_total"]
    e_f = s["fixed_2h"]["energy_wh_per_cushion_total"]
    print(f"energy, all mornings, schedule vs fixed 2 h: {e_s / e_f * 100:.0f} % "
          f"({(e_s - e_f) / len(res['rows']):+.0f} Wh per cushion and morning; the fixed "
          "start saves energy by not getting there)")
    b = s["fixed_2h_in_time"]
    if b["mornings"]:
        print(f"energy where 2 h before was in time ({b['mornings']} mornings): schedule "
              f"{b['energy_wh_schedule'] / b['mornings']:.0f} Wh vs fixed "
              f"{b['energy_wh_fixed_2h'] / b['mornings']:.0f} Wh per cushion and morning "
              f"({b['energy_wh_schedule'] / b['energy_wh_fixed_2h'] * 100:.0f} %)")
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
