"""The run: the real controller, supervisor, event log and link against the simulated
board and plant, one process, one simulated clock (see the package docstring for how time
advances).

This is a test-harness composition: it is the one place under ``sim/`` that builds the
controller, because a scenario judges the whole stack in-process.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

from hydrotherm.config import (
    CUSHIONS,
    Config,
)

from .result import (
    AlarmRecord,
    CushionFigures,
    RefusalRecord,
    ResetRecord,
    Result,
    Trace,
    TripRecord,
    rounded,
)
from .schema import DEFAULT_ACTOR, EPS, SETTLE_BAND_C, Event, Scenario
from .verdict import check_expectations

# --- the run ----------------------------------------------------------------------------


def gate_grace_s(cfg: Config) -> float:
    """How long a heater may still deliver power after its cushion trips.

    The trip is judged on a telemetry report and the gate zeroes the output in the same
    poll; the link sends SET_OUTPUTS (or SET_RELAY) at once, unless another command is
    awaiting its ACK, which arrives with the board's next answer: within one telemetry
    period in the stepped simulation (the link retransmits after ``ack_timeout_s`` if it
    does not).  Hence one telemetry period + the ACK timeout (0.3 s by default).  The
    plant's ``power_w`` is the mean over an integration step (one telemetry period), so
    the grace is compared with the *start* of the step: a step that began before
    trip + grace may still show power, one that began later must not."""
    return cfg.board.telemetry_period_s + cfg.link.ack_timeout_s


def heater_allowed_after_trip(cfg: Config, trip_at_s: float, interval_start_s: float,
                              last_setting_s: float, step_s: float) -> bool:
    """The rule the runner (and the safety property test) holds every trip to.

    A heater whose cushion a latched trip switches off may still show power (the plant's
    ``power_w``, the mean over an integration step starting at ``interval_start_s``) only

    * within ``gate_grace_s`` of the trip: the gate reaching the board; or
    * on the board's own authority, when the host could not reach it: the board has
      accepted no SET_OUTPUTS since the trip (``last_setting_s``, the latest it had
      accepted when that step began, is not after the trip) and that last setting is
      still within the board's dead-man period (``board.deadman_s``; the board drops it
      at its first sample after that, hence one more step).  This is what a lost link
      (``stale_telemetry``: unplugged, silent, or too noisy a line) looks like: only the
      dead-man can stop a heater the host cannot reach.

    Anything else is a heater on while tripped: a failure of the gate or the link."""
    if interval_start_s < trip_at_s + gate_grace_s(cfg) - EPS:
        return True
    return (last_setting_s <= trip_at_s + EPS
            and interval_start_s < last_setting_s + cfg.board.deadman_s + step_s - EPS)


def _table_factory(kind: str, firmware: str | None) -> Callable[..., Any]:
    """The simulated table for ``[board] kind``: the Python board, or the compiled
    firmware in simavr (``firmware``: its ELF; default: built with ``make -C firmware``,
    which raises ``sim.firmware.FirmwareUnavailable`` saying what is missing)."""
    if kind == "python":
        from sim.table import SimulatedTable

        return SimulatedTable
    import functools

    from sim.firmware import FirmwareTable, build_firmware

    elf = firmware if firmware is not None else build_firmware().elf
    # 50 ms steps of MCU time: the runner itself steps 0.2 s, and the shorter default
    # (5 ms) only costs wall time here (about twice as much)
    return functools.partial(FirmwareTable, elf=elf, step_s=0.05)


class _Run:
    def __init__(self, sc: Scenario, progress: Callable[[str], None] | None,
                 on_step: Callable[[Any], None] | None = None,
                 firmware: str | None = None) -> None:
        from controller.eventlog import EventLog
        from controller.service import Controller
        from sim.harness import InProcessHarness

        self.sc = sc
        self.cfg = cfg = sc.config
        self.progress = progress
        self.on_step = on_step
        self.now = 0.0
        self.step = cfg.board.telemetry_period_s
        self.grace = gate_grace_s(cfg)
        self.h = InProcessHarness(cfg, seed=sc.seed, step_s=self.step,
                                  make_table=_table_factory(sc.board_kind, firmware))
        self.clock = self.h.clock
        self.table = self.h.table
        self.plant = self.table.plant
        self.board = self.table.board
        self.log = EventLog(None)
        self.c = Controller(cfg, self.h.link, self.clock, log=self.log, wall=self.clock.now)
        self.controller = self.c
        self.link = self.h.link
        self.c.listeners.append(self._on_controller_event)
        self.schedule = None
        if sc.schedule is not None:
            from controller.schedule import ScheduleRunner, SimulatedLocalTime

            self.schedule = ScheduleRunner(self.c, SimulatedLocalTime(sc.start_at, self.clock),
                                           schedule=sc.schedule)
            self.c.schedule = self.schedule
        self.trips: list[TripRecord] = []
        self.open_trips: dict[tuple[str, int | None], TripRecord] = {}
        self.alarms: list[AlarmRecord] = []
        self.open_alarms: dict[int, AlarmRecord] = {}
        self.resets: list[ResetRecord] = []
        self.refusals: list[RefusalRecord] = []
        self.applied_events: list[dict[str, Any]] = []
        self.faults_so_far: list[Event] = []
        self.trace = Trace()
        self.max_water = list(self.plant.water_c)
        self.off_since: list[float | None] = [None, None]
        self.last_setting = list(self.board.output_set_at)  # as the next step begins
        self.step_start_setting = self.last_setting  # as the step just done began
        self.energy_wh = [0.0, 0.0]
        self._heater_in = self.plant.energy().heater_in
        # 1 s record of the true water for the settling figures
        self.sec_t: list[float] = []
        self.sec_w: list[list[float]] = [[], []]
        self.window_end: list[float | None] = [None, None]
        self.initial_setpoint = list(self.c.cushions[i].setpoint_c for i in range(CUSHIONS))
        self.initial_heat = list(self.c.cushions[i].heat_on for i in range(CUSHIONS))

    # -- controller events --

    def _on_controller_event(self, msg: dict[str, Any]) -> None:
        if msg.get("type") != "event":
            return
        kind = msg.get("kind")
        now = self.clock.now()
        cushion = msg.get("cushion")
        reason = msg.get("reason") or ""
        detail = (msg.get("detail") or {}).get("detail", "")
        if kind == "trip":
            from controller.supervisor import REACTIONS, Reaction

            affects = ((cushion,) if REACTIONS[reason] is Reaction.CUSHION_OFF
                       and cushion is not None else tuple(range(CUSHIONS)))
            rec = TripRecord(now, cushion, reason, str(detail), affects,
                             self._attribute(cushion))
            self.trips.append(rec)
            self.open_trips[(reason, cushion)] = rec
        elif kind == "trip_reset":
            rec = self.open_trips.pop((reason, cushion), None)
            if rec is not None:
                rec.cleared_at_s = now
        elif kind == "alarm" and cushion is not None:
            a = AlarmRecord(now, cushion, reason, str(detail))
            self.alarms.append(a)
            self.open_alarms[cushion] = a
        elif kind == "alarm_cleared" and cushion is not None:
            a = self.open_alarms.pop(cushion, None)
            if a is not None:
                a.cleared_at_s = now

    def _attribute(self, cushion: int | None) -> Event | None:
        """The fault a trip is attributed to: the latest injected fault (``replug`` and
        ``clear_fault`` excluded) concerning the trip's cushion -- a fault without a
        cushion concerns both, and a trip without a cushion is concerned by any fault."""
        for ev in reversed(self.faults_so_far):
            if cushion is None or ev.cushion is None or ev.cushion == cushion:
                return ev
        return None

    # -- events --

    def _apply(self, ev: Event) -> None:
        now = self.clock.now()
        c = self.c
        rec: dict[str, Any] = {"at_s": rounded(now), "do": ev.do, "line": ev.line}
        if ev.fault is not None:
            rec["fault"] = ev.fault
        if ev.cushion is not None:
            rec["cushion"] = ev.cushion
        if ev.params:
            rec["params"] = {k: v for k, v in ev.params.items() if k != "cushion"}
        if ev.value is not None:
            rec["value"] = ev.value
        self.applied_events.append(rec)
        cushions = range(CUSHIONS) if ev.cushion is None else (ev.cushion,)
        if ev.do in ("fault", "clear_fault"):
            clear = ev.do == "clear_fault"
            if ev.fault == "host_stall":
                c.stall_control(0.0 if clear else ev.params["duration_s"])
            else:
                self.table.inject(ev.fault, clear=clear, **ev.params)  # type: ignore[arg-type]
            if ev.is_disturbance:
                self.faults_so_far.append(dataclasses.replace(ev, at_s=now))
        elif ev.do in ("setpoint", "heat"):
            from controller.service import CommandError

            for i in cushions:
                st = c.cushions[i]
                before = (st.setpoint_c, st.heat_on)
                try:
                    if ev.do == "setpoint":
                        c.set_setpoint(i, ev.value, ev.actor)
                    else:
                        c.set_heat(i, ev.value, ev.actor)
                except CommandError as exc:
                    self.refusals.append(RefusalRecord(
                        now, ev.do, i, ev.value, str(exc),
                        unchanged=(st.setpoint_c, st.heat_on) == before))
                    rec["refused"] = str(exc)
                    continue
                if (st.setpoint_c, st.heat_on) != before:
                    self._end_window(i, now)
        elif ev.do in ("client_on", "client_off"):
            for i in cushions:
                self.table.set_client(i, ev.do == "client_on")
                self._end_window(i, now)
        elif ev.do == "reset":
            rr = ResetRecord(now, ev.cushion, ev.actor)
            self.resets.append(rr)

            def done(result: Any, rr: ResetRecord = rr) -> None:
                rr.done_at_s = self.clock.now()
                rr.ok = bool(result.ok)
                rr.cleared = [t.reason for t in result.cleared]
                rr.refused = [{"reason": t.reason, "cushion": t.cushion, "why": why}
                              for t, why in result.refused]

            c.request_reset(ev.actor, ev.cushion, done, service_reason=ev.service_reason)

    def _end_window(self, cushion: int, now: float) -> None:
        if self.window_end[cushion] is None:
            self.window_end[cushion] = now

    # -- every step --

    def _observe(self, now: float) -> None:
        plant = self.plant
        water = plant.water_c
        power = plant.power_w
        mx = self.max_water
        self.step_start_setting = self.last_setting
        for i in (0, 1):
            if water[i] > mx[i]:
                mx[i] = water[i]
        heater_in = plant.energy().heater_in if (power[0] or power[1]) else self._heater_in
        d = heater_in - self._heater_in
        if d > 0.0:
            tot = power[0] + power[1]
            for i in (0, 1):
                self.energy_wh[i] += d * (power[i] / tot if tot > 0 else 0.5) / 3600.0
            self._heater_in = heater_in
        # Heater off: the board applies 0 % and the plant got no power over the step
        # that just ended (so it has been off since that step began).
        board = self.board
        off_since = self.off_since
        for i in (0, 1):
            if board.applied(i) == 0 and power[i] == 0.0:
                if off_since[i] is None:
                    off_since[i] = max(0.0, now - self.step)
            else:
                off_since[i] = None
        if self.open_trips:
            for rec in self.open_trips.values():
                since = [off_since[i] for i in rec.affects]
                if all(x is not None for x in since):
                    if rec.heater_off_at_s is None:
                        # off already before the trip: counts from the fault (or the trip)
                        floor = rec.fault.at_s if rec.fault is not None else rec.at_s
                        rec.heater_off_at_s = max(floor, *since)  # type: ignore[type-var]
                else:
                    rec.heater_off_at_s = None
                    if not self._allowed(rec, now):
                        rec.on_while_tripped_s += self.step
                        if rec.first_on_while_tripped_s is None:
                            rec.first_on_while_tripped_s = now
        # what the board had accepted when the next step begins
        self.last_setting = list(board.output_set_at)
        if now >= len(self.sec_t) - EPS:
            self.sec_t.append(now)
            self.sec_w[0].append(water[0])
            self.sec_w[1].append(water[1])

    def _allowed(self, rec: TripRecord, now: float) -> bool:
        """May the affected heaters still deliver power at the step that ended ``now``
        although ``rec`` is latched?  See ``heater_allowed_after_trip``."""
        return heater_allowed_after_trip(
            self.cfg, rec.at_s, now - self.step,
            max(self.step_start_setting[i] for i in rec.affects), self.step)

    def _sample_trace(self, now: float) -> None:
        from controller.service import water_mean

        tr = self.trace
        link = self.h.link
        reading = link.latest if link.healthy else None
        tr.t_s.append(now)
        for i in (0, 1):
            tr.water_c[i].append(self.plant.water_c[i])
            tr.measured_c[i].append(water_mean(reading, i) if reading else None)
            tr.setpoint_c[i].append(self.c.cushions[i].setpoint_c)
            tr.applied[i].append(self.board.applied(i) / 1000.0)
            tr.power_w[i].append(self.plant.power_w[i])
        tr.relay_closed.append(bool(self.board.relay_closed))

    def run(self) -> Result:
        wall0 = time.perf_counter()
        sc = self.sc
        c, table, link, clock = self.c, self.table, self.h.link, self.clock
        for i in range(CUSHIONS):
            self.c.set_heat(i, self.initial_heat[i], DEFAULT_ACTOR)
        c.start()
        events = list(sc.events)
        k = 0
        next_trace = 0.0
        next_progress = 0.1
        duration = sc.duration_s
        step = self.step
        n_steps = max(1, math.ceil(duration / step - 1e-9))
        while k < len(events) and events[k].at_s <= EPS:
            self._apply(events[k])
            k += 1
        self._observe(0.0)
        self._sample_trace(0.0)
        next_trace = sc.trace_period_s
        for n in range(1, n_steps + 1):
            clock.advance(step)
            table.poll()
            c.poll()
            link.poll()
            table.poll()
            now = self.now = clock.now()
            self._observe(now)
            if self.on_step is not None:
                self.on_step(self)
            if now >= next_trace - EPS:
                self._sample_trace(now)
                next_trace += sc.trace_period_s
            while k < len(events) and events[k].at_s <= now + EPS:
                self._apply(events[k])
                k += 1
            if self.progress is not None and n / n_steps >= next_progress - 1e-9:
                next_progress += 0.1
                self._report(now, n / n_steps)
        end = clock.now()
        if self.trace.t_s and self.trace.t_s[-1] < end - EPS:
            self._sample_trace(end)
        result = self._result(end)
        result.wall_s = time.perf_counter() - wall0
        self.log.close()
        close = getattr(table, "close", None)
        if close is not None:
            close()  # the firmware's simavr process
        return result

    def _report(self, now: float, frac: float) -> None:
        w = self.plant.water_c
        trips = ", ".join(sorted({t.reason for t in self.open_trips.values()})) or "none"
        self.progress(f"{frac * 100:3.0f}%  t = {now:7.0f} s  water {w[0]:.2f} / {w[1]:.2f} °C"  # type: ignore[misc]
                      f"  latched trips: {trips}")

    def _result(self, end: float) -> Result:
        from controller.eventlog import EventLog

        assert isinstance(self.log, EventLog)
        kinds: dict[str, int] = {}
        logged = self.log.events(kinds=["command_refused"])
        for ev in self.log.events():
            kinds[ev.kind] = kinds.get(ev.kind, 0) + 1
        for r in self.refusals:
            r.logged = any(abs(e.time - r.at_s) < EPS and e.cushion == r.cushion
                           and (e.detail or {}).get("command") == r.do for e in logged)
        figures = []
        for i in range(CUSHIONS):
            st = self.c.cushions[i]
            settle, over = self._settling(i)
            figures.append(CushionFigures(
                max_water_c=self.max_water[i], final_water_c=self.plant.water_c[i],
                settle_s=settle, overshoot_c=over, energy_wh=self.energy_wh[i],
                setpoint_c=st.setpoint_c, heat_on=st.heat_on))
        res = Result(name=self.sc.name, path=self.sc.path, duration_s=self.sc.duration_s,
                     seed=self.sc.seed, step_s=self.step, grace_s=self.grace,
                     cushions=figures, trips=self.trips, alarms=self.alarms,
                     resets=self.resets, refusals=self.refusals, events=self.applied_events,
                     log_kinds=kinds, trace=self.trace, board=self.sc.board_kind)
        if self.schedule is not None:
            from .schedule import measure

            res.schedule = measure(self.sc.start_at, self.sc.schedule, self.sc.duration_s,
                                   self.sec_t, self.sec_w, self.schedule.records())
        res.model, res.true_plant = physics_record(self.cfg, self.plant)
        res.room = self.controller.room_estimate().as_dict()
        res.failures = check_expectations(self.sc, res)
        return res

    def _settling(self, i: int) -> tuple[float | None, float | None]:
        """(settle_s, overshoot_c) of cushion i in its settling window (module doc);
        (None, None) when its heat was off at the start."""
        if not self.initial_heat[i]:
            return None, None
        sp = self.initial_setpoint[i]
        end = self.window_end[i]
        ts = self.sec_t
        ws = self.sec_w[i]
        n = len(ts) if end is None else sum(1 for t in ts if t < end - EPS)
        if n == 0:
            return None, None
        settle: float | None = 0.0
        for k in range(n - 1, -1, -1):
            if abs(ws[k] - sp) > SETTLE_BAND_C:
                settle = ts[k + 1] if k + 1 < n else None
                break
        over = max(0.0, max(ws[:n]) - sp)
        return settle, over


#: Keys of the physics record: the plant's, and the sensor's lag and noise.
_SENSOR_PHYSICS = ("lag_s", "noise_c")


def physics_record(cfg: Config, plant: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the controller's model, the truth of each cushion) as JSON-ready dicts: the model
    is ``[plant]`` with the sensor's lag and noise and the configured room (the
    controller's fallback when the board has no room sensor: the result's ``room``);
    the truth is what the simulated plant ran (``[true_plant]`` over ``[plant]``)."""
    def one(p: Any, s: Any) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(p).items() if k != "initial_water_c"}
        d.update({k: getattr(s, k) for k in _SENSOR_PHYSICS})
        return d

    model = one(cfg.plant, cfg.sensor)
    model["room_estimate_c"] = cfg.control.room_estimate_c
    truth = [one(p, s) for p, s in zip(plant.cushions, plant.sensors, strict=True)]
    return model, truth


def run_scenario(scenario: Scenario, progress: Callable[[str], None] | None = None, *,
                 on_step: Callable[[Any], None] | None = None, board: str | None = None,
                 firmware: str | None = None) -> Result:
    """Run a checked scenario on the whole stack in-process; see the module docstring.

    ``on_step(run)``, if given, is called after every step with the running ``_Run``
    (``now``, ``plant``, ``board``, ``controller``, ``link``, ``trips``): what property
    tests use to watch things the result does not keep.  ``board`` (``python`` or
    ``firmware``) overrides the file's ``[board] kind``; ``firmware`` is the ELF to run
    (default: ``make -C firmware``'s)."""
    if board is not None and board != scenario.board_kind:
        scenario = dataclasses.replace(scenario, board_kind=board)
    return _Run(scenario, progress, on_step, firmware).run()


