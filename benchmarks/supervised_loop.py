"""A control law and the real supervisor on the simulated plant, without the serial link.

``sim.scenario`` runs the whole stack (board emulator, frames, link, controller) and is
the reference; at 100 tables × several runs on a shared two-core machine it is too slow.
The physics-dependent rules (``rise_too_fast``, ``no_rise``, ``rise_while_off``,
``sensor_disagree``, ``over_temperature``) need only what the board reports, so this loop
gives the *real* ``Supervisor`` exactly that, built from the plant's sensors: each
telemetry period the plant steps, both sensors of each cushion are read as ADC counts
and converted with the link's own ``Thermistor``, and a ``BoardReading`` (applied output
= the drive the board applies, relay state) is observed.  Every control period the law
decides, the supervisor's gate and relay decide what reaches the plant.  What it leaves
out is the link (framing, ACKs, the dead-man): a trip acts at the next telemetry period.
Link faults (``stale_telemetry``, ``board_fault``) are not physics: the grid measures them
on the whole stack.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from controller.supervisor import Supervisor, Trip
from firmware_bridge.link import BoardReading, CushionReading
from firmware_bridge.thermistor import SensorStatus, Thermistor
from hydrotherm.clock import SimClock
from hydrotherm.config import CUSHIONS, Config
from sim import faults as sim_faults
from sim.plant import Plant

#: decide(cushion, t, measured_mean_c, applied, other_measured_c) -> output 0..1
Law = Callable[[int, float, float | None, float, float | None], float]

_EPS = 1e-9


@dataclass
class LoopResult:
    trips: list[Trip]
    max_water_c: list[float]
    #: the true water once a second, per cushion (for settling figures)
    t_s: list[float] = field(default_factory=list)
    water_c: list[list[float]] = field(default_factory=lambda: [[], []])


class _Table:
    """Just enough of a simulated table for ``sim.faults.apply`` on plant faults."""

    def __init__(self, plant: Plant) -> None:
        self.plant = plant
        self.board = None


def supervised_loop(cfg: Config, law: Law, duration_s: float, setpoints: tuple[float, float],
                    events: list[tuple[float, str, dict[str, Any]]] = (),  # type: ignore[assignment]
                    seed: int = 1, control_period_s: float = 1.0,
                    stop_on_trip: bool = False, plate_sensor: bool = False) -> LoopResult:
    """Run ``law`` under the real supervisor for ``duration_s``.

    ``events``: (at_s, what, params) in time order; ``what`` is ``client_on`` /
    ``client_off`` (``cushion`` or both) or a plant fault of ``sim.faults`` (applied
    with ``sim.faults.apply``).  ``stop_on_trip``: stop 15 min after the first trip
    (enough for the plate's heat to show in the water).  ``plate_sensor``: report each
    cushion's plate sensor as a protocol 1.1 board does (else a 1.0 board: none)."""
    clock = SimClock()
    plant = Plant(cfg.plant, cfg.sensor, random.Random(seed), cfg.true_plant)
    table = _Table(plant)
    therm = Thermistor(cfg.sensor)
    sup = Supervisor(cfg.safety, clock, plant=cfg.plant, plausible=cfg.plausible)
    sup.arm()
    dt = cfg.board.telemetry_period_s
    drive = [0.0, 0.0]
    requested = [0.0, 0.0]
    applied_sum = [0.0, 0.0]
    applied_n = 0
    measured: list[float | None] = [None, None]
    heat_on = [True, True]
    res = LoopResult([], list(plant.water_c))
    relay = True
    next_control = 0.0
    next_record = 0.0
    stop_at = math.inf
    evs = sorted(events, key=lambda e: e[0])
    k = 0
    steps = math.ceil(duration_s / dt - _EPS)
    read = therm.read
    read_plate = therm.read_rails_only
    counts = plant.sensor_counts
    ok = SensorStatus.OK
    for n in range(steps + 1):
        t = n * dt
        while k < len(evs) and evs[k][0] <= t + _EPS:
            _, what, params = evs[k]
            k += 1
            if what in ("client_on", "client_off"):
                for i in ([params["cushion"]] if "cushion" in params else range(CUSHIONS)):
                    plant.set_client(i, what == "client_on")
            else:
                sim_faults.apply(table, what, params)  # type: ignore[arg-type]
        if t > 0.0:
            plant.step(dt, drive, relay)
            clock.advance(dt)
        cus = []
        for i in range(CUSHIONS):
            a = read(counts(i, 0))
            b = read(counts(i, 1))
            # what the board reports: the drive it applies (it cannot see a dead element
            # or a welded SSR), 0 with the relay open
            app = drive[i] if relay else 0.0
            cus.append(CushionReading(a, b, app, False, read_plate(plant.plate_counts(i))
                                      if plate_sensor else None))
            va = a.celsius if a.status is ok else None
            vb = b.celsius if b.status is ok else None
            measured[i] = (0.5 * (va + vb) if va is not None and vb is not None
                           else va if va is not None else vb)
            applied_sum[i] += app
        applied_n += 1
        reading = BoardReading(t, int(t * 1000), (cus[0], cus[1]), relay, 0, None)  # type: ignore[arg-type]
        sup.observe(reading, requested, setpoints, heat_on)
        sup.check()
        if t >= next_control - _EPS:
            for i in range(CUSHIONS):
                enabled = sup.permitted(i)
                out = law(i, t, measured[i], applied_sum[i] / applied_n, measured[1 - i])
                requested[i] = out if enabled else 0.0
            applied_sum = [0.0, 0.0]
            applied_n = 0
            sup.control_heartbeat()
            next_control += control_period_s
        gated = sup.gate(requested)
        drive = [gated[0], gated[1]]
        relay = sup.relay_allowed
        for i in range(CUSHIONS):
            res.max_water_c[i] = max(res.max_water_c[i], plant.water_c[i])
        if t >= next_record - _EPS:
            res.t_s.append(t)
            for i in range(CUSHIONS):
                res.water_c[i].append(plant.water_c[i])
            next_record += 1.0
        if stop_on_trip and sup.trips and stop_at == math.inf:
            stop_at = t + 900.0
        if t >= stop_at:
            break
    res.trips = sup.trips
    return res


def our_law(cfg: Config, setpoints: tuple[float, float]) -> Law:
    from controller.control import CushionController

    laws = [CushionController(cfg.control, cfg.plant, cfg.sensor) for _ in range(CUSHIONS)]

    def law(i: int, t: float, m: float | None, applied: float, other: float | None) -> float:
        return laws[i].step(t, m, applied, setpoints[i], True, other).output

    return law


def peer_law(decide: Callable[[int, float, float | None, float], float]) -> Law:
    def law(i: int, t: float, m: float | None, applied: float, other: float | None) -> float:
        return decide(i, t, m, applied)

    return law


def with_start(cfg: Config, initial_c: float) -> Config:
    return replace(cfg, plant=replace(cfg.plant, initial_water_c=[initial_c] * CUSHIONS))
