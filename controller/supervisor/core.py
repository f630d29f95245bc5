"""``Supervisor``: the data path that feeds the rules, the gate, and the reset.

Per report it classifies each sensor (a broken one loses its histories), accumulates the
1 Hz means, feeds the plate model the output the board *reports it applied*, keeps the
heater-off period, and calls the rules' ``on_report``; once a second it closes the
histories and calls their ``on_second``; ``check()`` calls ``on_time``.  Everything a
rule needs is in ``SupervisorState``; everything it decides goes through the latches.
Outputs reach the link only through ``gate()``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from firmware_bridge.link import BoardReading, LinkEvent
from firmware_bridge.thermistor import SensorStatus
from hydrotherm.clock import Clock
from hydrotherm.config import CUSHIONS, PlantConfig, PlausibleConfig, SafetyConfig

from .alarm import HighTemperatureAlarm
from .events import REACTIONS, Alarm, Reaction, ResetResult, SupervisorEvent, Trip
from .history import DECIMATION_S, CushionState, SensorTrack
from .identification import set_identifying
from .latch import Latches, affects
from .rules import RULES, BoardFault, OverTemperature, PlateDry, Rule, SensorBroken
from .rules.board_fault import RESET_BIT
from .state import SupervisorState

#: The plausible envelope and the capacity check run every this many seconds (their
#: windows are minutes long; the per-second rules compare with what they left).
ENVELOPE_EVERY = 5

_OK = SensorStatus.OK
R = TypeVar("R", bound=Rule)


class Supervisor(SupervisorState):
    """Latching safety trips and the high-temperature alarm; see the package docstring.

    Thread-safe: telemetry may arrive in one thread while a person resets from another.
    Listeners (``on_event``) run outside the lock, after the state they report has been
    latched; an exception from a listener propagates to the caller (it is a bug), and
    undelivered events are delivered on the next call.
    """

    def __init__(self, cfg: SafetyConfig, clock: Clock,
                 on_event: Callable[[SupervisorEvent], None] | None = None, *,
                 plant: PlantConfig, room_estimate_c: float | None = None,
                 plausible: PlausibleConfig | None = None) -> None:
        """``plausible`` (the configuration's ``plausible`` section) is the range of real
        tables the rate rules judge against (``envelope.py``); of ``plant`` only the
        plate's heat capacity, the water's specific heat and the client's neutral
        temperature are used.  ``room_estimate_c`` is accepted for callers of the former
        model-based rules and ignored: the room is whatever the plausible range allows.
        Nothing of the control law is used."""
        self.clock = clock
        self._lock = threading.RLock()
        latches = Latches(self._lock, on_event)
        super().__init__(cfg, plant, plausible or PlausibleConfig(), latches, clock.now())
        #: the supervisor's own log of its events, newest last (bounded)
        self.events = latches.events
        self._prev_faults = 0
        self._connect_pending = False  # the next report is the first of a connection
        self._bucket: int | None = None
        self.rules: tuple[Rule, ...] = tuple(r(self) for r in RULES)
        self._by_reason: dict[str, Rule] = {x: r for r in self.rules for x in r.reasons}
        assert set(self._by_reason) == set(REACTIONS), "every reason needs its one rule"
        self._over_temperature = self._rule(OverTemperature)
        self._sensor_broken = self._rule(SensorBroken)
        self._board_fault = self._rule(BoardFault)
        self._plate_dry = self._rule(PlateDry)
        self._report_rules = tuple(r for r in self.rules if r.overrides("on_report")) + (
            HighTemperatureAlarm(self),)
        self._second_rules = tuple(r for r in self.rules if r.overrides("on_second"))
        self._time_rules = tuple(r for r in self.rules if r.overrides("on_time"))
        self._slow_rules = tuple(r for r in self.rules if r.overrides("on_slow"))
        self._seconds = ENVELOPE_EVERY - 1  # the first closed second refreshes the envelope
        # white-box names the unit tests use
        self._tracks = self.tracks
        self._cushions = self.cushions

    def _rule(self, cls: type[R]) -> R:
        return next(r for r in self.rules if isinstance(r, cls))

    @property
    def _last_reading(self) -> BoardReading | None:
        return self.last_reading

    # --- inputs --------------------------------------------------------------------------

    def observe(self, reading: BoardReading, commanded: Sequence[float],
                setpoints: Sequence[float], heat_on: Sequence[bool]) -> None:
        """One new telemetry report, with what the host commanded (fractions 0..1; only
        quoted in details: every rule judges what the board *applied*), the setpoints and
        heat on/off per cushion.  Rules run on ``clock.now()``; staleness counts from
        ``reading.time`` (when the report arrived).  The same ``BoardReading`` object
        passed again is ignored, so re-observing ``link.latest`` cannot hide a stale
        link nor count one report twice."""
        with self._lock:
            if reading is self.last_reading:
                return
            now = self.clock.now()
            first = self.last_reading is None
            self.last_reading = reading
            self.reports += 1
            self.last_report_at = reading.time
            bucket = int(now // DECIMATION_S)
            if bucket != self._bucket:
                if self._bucket is not None:
                    self._finalize(now)
                self._bucket = bucket
            faults = reading.faults
            prev = self._prev_faults
            self._prev_faults = faults
            if first or self._connect_pending:
                # the first report of a connection: every latched flag is a trip, RESET
                # apart (the board's boot, expected at the first connection)
                self._connect_pending = False
                found = faults & ~RESET_BIT
                if found:
                    self._board_fault.at_connect(found, reading, now, first)
                new = 0 if first else faults & ~prev & RESET_BIT
            else:
                new = faults & ~prev
            if new:
                self._board_fault.on_flags(new, now)
            self._observe_cushions(reading, commanded, setpoints, heat_on, now)
        self.latches.flush()

    def link_event(self, ev: LinkEvent) -> None:
        """``board_fault`` and ``board_reset`` trip ``board_fault``; ``connected`` makes
        the next report the first of a connection (its latched flags are trips, see
        ``rules/board_fault.py``); other kinds are ignored (a lost link is judged by
        ``check()`` from the reports themselves)."""
        if ev.kind in ("connected", "disconnected"):
            with self._lock:
                self._board_fault.on_connect_event(ev, self.clock.now())
                if ev.kind == "connected":
                    self._connect_pending = True
            return
        if ev.kind not in ("board_fault", "board_reset"):
            return
        with self._lock:
            self._board_fault.on_link_event(ev, self.clock.now())
        self.latches.flush()

    def note_previous_run(self, text: str) -> None:
        """What the controller knows about its previous run (when it left its last record,
        whether it stopped cleanly), quoted when flags are found latched at the first
        connection: the board does not say when a flag was raised."""
        with self._lock:
            self._board_fault.previous_run = text

    def restore(self, reason: str, cushion: int | None, detail: str, flags: int = 0) -> None:
        """Latch again a trip that needs a service person and was latched when the
        controller last stopped (the event log says so, ``controller/lockout.py``): a
        restart must not lift a service lockout."""
        if reason not in REACTIONS:
            raise ValueError(f"unknown trip reason {reason!r}")
        with self._lock:
            now = self.clock.now()
            self.latches.add(Trip(reason, cushion, now, detail, flags), self.reports, now)
        self.latches.flush()

    def control_heartbeat(self) -> None:
        """The control loop completed a cycle."""
        with self._lock:
            self.last_heartbeat = self.clock.now()

    def arm(self) -> None:
        """Start judging the control loop (and, if no report has come yet, count the
        telemetry's silence from now); until armed, ``gate`` gives 0 % everywhere."""
        with self._lock:
            now = self.clock.now()
            self.armed = True
            self.last_heartbeat = now
            if self.last_reading is None:
                self.last_report_at = now

    def begin_identification(self, cushions: Sequence[int]) -> None:
        """An autotune drives ``cushions``: wider, still safe bounds for the rules that
        judge against the configured model (``identification.py`` says which and why)."""
        with self._lock:
            set_identifying(self.cushions, cushions, True)

    def end_identification(self) -> None:
        """Back to the normal bounds on every cushion."""
        with self._lock:
            set_identifying(self.cushions, range(CUSHIONS), False)

    @property
    def plate_watch(self) -> tuple[str, ...]:
        """Per cushion, whether ``plate_dry`` judges it, in words (a 1.0 board has no plate
        sensor: "inactive: ...")."""
        with self._lock:
            return tuple(self._plate_dry.status)

    @property
    def identifying(self) -> tuple[int, ...]:
        """The cushions in identification mode."""
        return tuple(c for c, cu in enumerate(self.cushions) if cu.identifying)

    def check(self) -> None:
        """Judge time itself (call often, every poll): ``stale_telemetry`` and
        ``control_stall`` (see their rules)."""
        with self._lock:
            now = self.clock.now()
            for rule in self._time_rules:
                rule.on_time(now)
        self.latches.flush()

    # --- outputs -------------------------------------------------------------------------

    def permitted(self, cushion: int) -> bool:
        """False while a latched trip affects this cushion (its own or table-wide)."""
        with self._lock:
            return not any(affects(k, cushion) for k in self.latches.latched)

    def gate(self, outputs: Sequence[float]) -> tuple[float, float]:
        """The outputs allowed to reach the link: each clamped to 0..1 (NaN counts as
        0), 0 for a cushion that is not permitted, and 0 everywhere until ``arm()``."""
        with self._lock:
            if not self.armed:
                return (0.0, 0.0)
            latched = self.latches.latched
            res = [0.0, 0.0]
            for c in range(CUSHIONS):
                x = outputs[c]
                if x > 0.0 and not any(affects(k, c) for k in latched):
                    res[c] = x if x < 1.0 else 1.0
            return (res[0], res[1])

    @property
    def relay_allowed(self) -> bool:
        """False while a trip whose reaction opens the master relay is latched, or a trip
        that needs a service person (``SERVICE_ONLY``: its cause may be a welded heater
        relay, which only the open master relay stops)."""
        with self._lock:
            return not any(REACTIONS[k[0]] is Reaction.RELAY_OPEN or latch.trip.service
                           for k, latch in self.latches.latched.items())

    @property
    def service_needed(self) -> bool:
        """A latched trip needs a service person (see ``SERVICE_ONLY``)."""
        with self._lock:
            return any(latch.trip.service for latch in self.latches.latched.values())

    @property
    def trips(self) -> list[Trip]:
        """Latched trips, oldest first."""
        with self._lock:
            return [latch.trip for latch in self.latches.latched.values()]

    @property
    def alarms(self) -> list[Alarm]:
        with self._lock:
            return [cu.alarm for cu in self.cushions if cu.alarm is not None]

    # --- reset ---------------------------------------------------------------------------

    def reset(self, actor: str, cushion: int | None = None, *,
              service_reason: str | None = None) -> ResetResult:
        """A person asks to clear the latched trips affecting ``cushion`` (its own and the
        table-wide ones, ``over_temperature``/``rise_while_off`` of either cushion
        included), or all of them when None.  Each clears only if its cause has gone,
        judged on the latest data by its rule's ``cause()`` (the criteria are in each
        rule's module); otherwise it stays, and the result and a ``reset_refused`` event
        say what persists.  When in doubt the heaters stay off.

        A trip that needs a service person (``Trip.service``, from ``SERVICE_ONLY``) is
        refused without ``service_reason``: the service person's statement of what was
        found and done (``hydrotherm service reset --reason``), logged with the reset.
        With it, such a trip is judged like any other.

        Raises ``ValueError`` for an empty ``actor`` or ``service_reason`` or a cushion
        other than 0, 1, None.  ``ok`` is True when nothing was refused (also when nothing
        was latched)."""
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError("a reset needs the name of who asks for it")
        if service_reason is not None and (not isinstance(service_reason, str)
                                           or not service_reason.strip()):
            raise ValueError("a service reset needs a reason: what was found and done")
        if cushion is not None and cushion not in range(CUSHIONS):
            raise ValueError(f"cushion must be 0, 1 or None, got {cushion!r}")
        cleared: list[Trip] = []
        refused: list[tuple[Trip, str]] = []
        latches = self.latches
        with self._lock:
            now = self.clock.now()
            keys = [k for k in latches.latched if cushion is None or affects(k, cushion)]
            for key in keys:
                latch = latches.latched[key]
                trip = latch.trip
                rule = self._by_reason[trip.reason]
                service = trip.service
                if service and service_reason is None:
                    why: str | None = (f"only a service person may reset this: {service} "
                                       "(hydrotherm service reset on the controller's machine)")
                    note = ""
                elif rule.needs_reading and self.last_reading is None:
                    why = "no telemetry report yet to judge it on"
                    note = ""
                else:
                    why, note = rule.cause(latch, now)
                if why is None and service_reason is not None:
                    note = f"service reset: {service_reason.strip()}; {note}"
                if why is None:
                    del latches.latched[key]
                    if trip.cushion is not None:
                        rule.after_reset(trip)
                    cleared.append(trip)
                    latches.emit("trip_reset", now, trip.cushion, trip.reason, actor, note)
                else:
                    refused.append((trip, why))
                    latches.emit("reset_refused", now, trip.cushion, trip.reason, actor, why)
        latches.flush()
        return ResetResult(not refused, cleared, refused)

    # --- the data path: per report -------------------------------------------------------

    def _observe_cushions(self, reading: BoardReading, commanded: Sequence[float],
                          setpoints: Sequence[float], heat_on: Sequence[bool],
                          now: float) -> None:
        """Per cushion: classify the sensors, accumulate the 1 Hz means, feed the plate
        model and the heater-off period, then the rules' ``on_report``.  (One loop for
        both cushions, with the lookups hoisted: this runs 5 times a second per table.)"""
        over = self._over_temperature
        limit = over.limit_c
        broken = self._sensor_broken
        report_rules = self._report_rules
        cushions = self.cushions
        all_tracks = self.tracks
        for c in range(CUSHIONS):
            cr = reading.cushions[c]
            cu = cushions[c]
            tracks = all_tracks[c]
            pr = cr.primary
            rr = cr.redundant
            vp = pr.celsius if pr.status is _OK else None
            vr = rr.celsius if rr.status is _OK else None
            # primary
            if vp is None:
                tr = tracks[0]
                if not tr.empty:
                    tr.clear()
                broken.on_sensor(c, 0, pr.status, pr.counts, now)
            else:
                if vp > limit:
                    over.on_sensor(c, 0, vp, now)
                tr = tracks[0]
                tr.acc_v += vp
                tr.acc_t += now
                tr.acc_n += 1
            # redundant
            if vr is None:
                tr = tracks[1]
                if not tr.empty:
                    tr.clear()
                broken.on_sensor(c, 1, rr.status, rr.counts, now)
            else:
                if vr > limit:
                    over.on_sensor(c, 1, vr, now)
                tr = tracks[1]
                tr.acc_v += vr
                tr.acc_t += now
                tr.acc_n += 1
            # the water: mean of the intact sensors
            if vp is not None:
                water = vp if vr is None else 0.5 * (vp + vr)
            else:
                water = vr
            applied = cr.applied
            cu.commanded = commanded[c]
            # the plate model's heat input: each reported output held until the next report
            t0 = cu.rep_t
            if t0 is None:
                cu.q_fast = cu.q_slow = applied  # first sight: as if settled there
            elif now > t0:
                cu.heat_s += cu.rep_applied * (now - t0)
                cu.span_s += now - t0
            cu.rep_t = now
            cu.rep_applied = applied
            # the heater-off period (rise_while_off): any heating ends it
            if applied > 0.0:
                cu.bucket_off = False
                if not cu.off_empty:
                    tracks[0].offmin.clear()
                    tracks[1].offmin.clear()
                    cu.off_empty = True
            sp = setpoints[c]
            on = heat_on[c]
            for rule in report_rules:
                rule.on_report(c, cu, vp, vr, water, applied, sp, on, now)

    # --- the data path: once a second ----------------------------------------------------

    def _envelope(self, c: int, cu: CushionState, water: float | None, other: float | None,
                  closed: list[tuple[SensorTrack, float, float]], now: float) -> None:
        """Every ``ENVELOPE_EVERY`` seconds: advance the plausible envelope (``envelope.py``)
        over the seconds since the last time (the plate filters exactly for the mean
        output; the surroundings' gain and the slowest working rate as held over them:
        windows of minutes, so a few seconds' steps cost nothing) and refresh the
        limits the per-second rules compare with."""
        env = self.env
        env.update(cu)
        dt = now - cu.env_t if cu.env_t is not None else 0.0
        cu.env_t = now
        if water is None:
            return
        gain = env.gain_hi(water, other)
        if gain > 0.0:
            cu.gain_k += gain / env.cw_min * dt
        cu.lo_rate = env.rate_lo(cu, water, other)
        cu.lo_k += cu.lo_rate * dt
        t = closed[0][1]
        lo = cu.lo_hist
        lo.append((t, cu.lo_k))
        start = t - self.cfg.no_rise_window_s
        while len(lo) >= 2 and lo[1][0] <= start:
            lo.popleft()
        cu.limit = env.limit_c_per_min(water, other)

    def _finalize(self, now: float) -> None:
        """Close the second: each sensor's mean of the second, the plausible envelope
        (``envelope.py``) on the cushions' means, the histories, then the windowed
        rules."""
        cfg = self.cfg
        closed: list[list[tuple[SensorTrack, float, float]]] = [[], []]
        means: list[float | None] = [None, None]
        for c in range(CUSHIONS):
            got = closed[c]
            v_sum = 0.0
            for tr in self.tracks[c]:
                n = tr.acc_n
                if not n:
                    continue
                v = tr.acc_v / n
                t = tr.acc_t / n
                tr.acc_v = tr.acc_t = 0.0
                tr.acc_n = 0
                tr.last_t = t
                tr.last_v = v
                got.append((tr, t, v))
                v_sum += v
            if got:
                means[c] = v_sum / len(got)
        self._seconds += 1
        slow = self._seconds >= ENVELOPE_EVERY
        if slow:
            self._seconds = 0
        for c in range(CUSHIONS):
            cu = self.cushions[c]
            water = means[c]
            if slow:
                self._envelope(c, cu, water, means[1 - c], closed[c], now)
            off = cu.bucket_off
            # what the plate's stored heat may still add: judged now (a leak trip of this
            # second changes it from "into a full cushion" to "the plate's whole excess")
            stored = (self.env.stored_k(cu, ("rise_too_fast", c) in self.latches)
                      if off and closed[c] else 0.0)
            for tr, t, v in closed[c]:
                tr.push_rate(t, v)
                hist = tr.hist
                hist.append((t, v))
                start = t - cfg.no_rise_window_s
                while len(hist) >= 2 and hist[1][0] <= start:
                    hist.popleft()
                if off:
                    # ascending in what the water may reach from each moment on
                    key = v + stored - cu.gain_k
                    om = tr.offmin
                    while om and om[-1][2] >= key:
                        om.pop()
                    om.append((t, v, key))
                    start = t - cfg.rise_while_off_window_s
                    while om[0][0] < start:
                        om.popleft()
                    cu.off_empty = False
            cu.bucket_off = True
            if slow:
                for rule in self._slow_rules:
                    rule.on_slow(c, cu, now)
            for rule in self._second_rules:
                rule.on_second(c, cu, now)
