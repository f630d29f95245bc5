"""The safety supervisor: independent of the control law, it can only take power away.

It watches what the board reports (both sensors of each cushion with their status, the
outputs the board actually applies, the relay, the board's fault flags), what the host
commanded, the setpoints, link events and the control loop's heartbeats.  Every rule
below is a row of the "Safety limits" table of ``shared/reference.md``; every limit comes
from ``SafetyConfig``.  A trip **latches**: it stays until ``reset()`` clears it, and
``reset()`` clears a trip only when its cause has gone, judged on the latest data.

Outputs reach the link only through ``gate()``, which zeroes every cushion a latched trip
affects (and everything until ``arm()``); ``relay_allowed`` is False while a trip whose
reaction is "master relay open" is latched.

How the water is judged
-----------------------
* **One reading is enough for level rules** (``over_temperature``, ``sensor_open``,
  ``sensor_short``): the frames are CRC-checked, so the counts are what the ADC measured,
  and the sensor noise (0.03 °C rms) is some thirty times smaller than any margin here.  A
  sensor that reads above 41 °C for one report, or an intermittent connector that reads a
  rail once, is a reason to stop heating, not a glitch to filter: detection is immediate
  (one report, 0.2 s).  The board's own 4-sample filter is a separate, later layer.
* **"The water"** of a cushion (for the ``high_temperature`` alarm and for "below the
  setpoint" in ``no_rise``) is the mean of its sensors that read OK.
* **Rise and rate rules are judged per sensor, and a cushion trips only when every intact
  sensor with enough history agrees** (``rise_too_fast``, ``rise_while_off``,
  ``no_rise``).  Both sensors sit in the same water behind the same lag, so real heating
  shows on both; a step in *one* sensor (a drifting sensor, a sensor dropping out of the
  mean) is not the water rising and must not open the master relay of the whole table.
  A sensor that departs from its partner is ``sensor_disagree``'s business; a sensor that
  breaks is ``sensor_open``/``sensor_short``'s.  (A stuck sensor could hide a welded relay
  from ``rise_while_off``; the other sensor then trips ``sensor_disagree`` and, at 41 °C,
  ``over_temperature`` opens the relay.)
* **Histories are decimated to 1 Hz** (the mean of the ~5 reports in each second, per
  sensor: 0.013 °C rms) and bounded by time and ``maxlen``.  The per-report work is a few
  comparisons; the windowed work happens once a second and is O(1) amortised (running
  sums for the slope, a monotonic deque for the minimum, a time-pruned deque for the
  10-minute rise).  A sensor that stops reading OK loses its histories.
* **Rate** = least-squares slope of a sensor's 1 Hz means over the last ``RATE_WINDOW_S``
  (30 s), valid once they span ``RATE_MIN_SPAN_S`` (20 s).  Its noise is about
  0.02 °C/min against a 1.0 °C/min limit and a 0.17 °C/min full-power warm-up; a sudden
  change of rate shows after about half the window plus the sensor lag (10 s): detection
  of ``rise_too_fast`` comes some 20-35 s after the water's rate crosses the limit.

The plate model (``rise_too_fast`` for a leak; ``rise_while_off`` after one)
-------------------------------------------------------------------------------
A cushion that loses water heats faster for the same heat: at full power the water of a
full cushion rises ~0.15 °C/min, and the absolute 1.0 °C/min is reached only with ~4 kg
left.  By then the plate holds ~20 kJ above the water (2 kJ/K, ~10 K), which lifts what is
left, and the bag once it has drained, above 41 °C.  So the supervisor also judges the rate
against the heat that goes in, from the configuration's physics (``PlantConfig``: water,
specific heat, heater, plate capacity ``C_p``, plate-to-water conductance ``h``, loss
``UA``; the room estimate ``control.room_estimate_c``).  Nothing of the control law is used.

* **Plate**: per cushion, the plate's excess over the water, ``D``, is integrated from the
  output the board *reports it applied* (each report's value held until the next), once a
  second, exactly for the mean power ``P`` of that second: ``D`` relaxes towards ``P / h``
  with the time constant ``C_p / h`` (67 s), the update ``controller/control.py`` makes
  for ``T_p - T_w``.  At the first report it starts settled at the reported output.
* **Explained rate**: ``(h·D - UA·(T_w - T_room)) / C_w``, with ``C_w`` the heat capacity
  of the configured (full) cushion and ``T_w`` the sensors' 1 Hz mean.  The rate the rule
  grants is the highest of these over ``rise_too_fast_model_lookback_s`` (60 s): the
  measured rate (a 30 s slope behind a 10 s lag) shows what the water did 10-40 s ago, so
  a falling power must not lower the limit before the measurement can follow.
* **Limit**: ``rise_too_fast_model_ratio`` (1.5) × the explained rate (at least 0) +
  ``rise_too_fast_model_margin_c_per_min`` (0.1 °C/min), and never below
  ``rise_too_fast_model_floor`` (1.25) × the full heater's rate into a full cushion
  (``heater_w / C_w`` = 0.172 °C/min, so 0.215 °C/min).  At full power that is
  ~0.32 °C/min, 2.2 × the water's normal rate: the cushion holds less than ~45 % of its
  water.  Every sensor whose rate is known must be above the limit without a break for
  ``rise_too_fast_model_confirm_s`` (5 s); then ``rise_too_fast`` trips (that cushion
  off), its detail saying "faster than the model allows: leaking or empty cushion?".
* **What it must not take for a leak** (numbers at the defaults): a client (3-10 W/K
  towards 35.5 °C: at most ~0.03 °C/min on water above 30 °C, 0.12 °C/min on 15 °C
  water); a room 6 K off its estimate (UA × 6 K: 0.01-0.02 °C/min); the other cushion
  (~1 W/K: at most ~0.015 °C/min); a heater 20 % above its rating or a cushion filled 30 %
  short (proportional: the ratio, 1.5, and the margin); sensor noise (0.03 °C rms per
  report; the slope's is ~0.02 °C/min, a fifth of the margin); power steps either way
  (the model follows the power with the plate's own time constant, and the lookback
  covers the measurement's delay); setpoint changes and heat on/off (power steps to the
  model).  The floor is for the two things that heat the water while the board reports
  0 %: a welded relay (at most the full heater, ~0.15 °C/min on a full cushion, which
  ``rise_while_off`` must catch and answer by opening the master relay) and a plate that
  was hot before the supervisor started (a host restart: at most the same, decaying).
* **What it cannot do**: detection comes ~30 s after the water's rate crosses the limit,
  and a leak that drains the cushion within a few minutes while the plate is hot outruns
  it: an empty bag settles near the plate's temperature, and that heat is in the plate
  before the leak begins.  On the simulated plant, warming to 40 °C with the control law
  (96 states each: water 30-39.5 °C, leak after 1-25 min, rooms of 15, 21 and 28 °C):
  at 5 kg/min (a full cushion gone in 5 min) the water never passed 40.4 °C; at 7 kg/min
  it passed 41 °C in 6 states (up to 41.8 °C); at 10 kg/min whenever the leak began with
  the water above ~36.5 °C at full power, at 20 kg/min above ~33.5 °C (the plate then
  above ~43 °C).
* **After a ``rise_too_fast`` trip** the cushion holds an unknown amount of water, and
  the plate's leftover heat can lift it by up to ``D`` (the water cannot get hotter than
  the plate): while that trip is latched, ``rise_while_off`` subtracts the ``D`` of the
  moment its off-period minimum was read, so the leftover heat is not taken for a welded
  relay.  On a cushion without that trip nothing is subtracted (the plate's heat moves a
  full cushion by at most ~0.2 °C): welded-relay detection is exactly as before.
"""

from __future__ import annotations

import enum
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from firmware_bridge import protocol as p
from firmware_bridge.link import BoardReading, CushionReading, LinkEvent
from firmware_bridge.thermistor import SensorStatus
from hydrotherm.clock import Clock
from hydrotherm.config import CUSHIONS, PlantConfig, SafetyConfig

#: Decimation period of the windowed histories (one mean per sensor per second).
DECIMATION_S = 1.0
#: Window of the least-squares rate estimate.
RATE_WINDOW_S = 30.0
#: The rate is known once the 1 Hz means span this long ...
RATE_MIN_SPAN_S = 20.0
#: ... and there are at least this many of them.
RATE_MIN_POINTS = 10
#: Slope sums are kept relative to a base time, moved this often (exact recompute).
_REBASE_S = 3600.0
#: Bound on the supervisor's own event log.
EVENT_LOG_LEN = 1000

SENSOR_NAMES = ("primary", "redundant")
_OK = SensorStatus.OK
_OPEN = SensorStatus.OPEN


class Reaction(enum.Enum):
    CUSHION_OFF = "cushion_off"  # that cushion's heater at 0 %
    ALL_OFF = "all_off"  # both heaters at 0 %
    RELAY_OPEN = "relay_open"  # both heaters at 0 % and the master relay open


#: The reaction of each trip reason (the ``reason`` names are an interface).
REACTIONS: dict[str, Reaction] = {
    "over_temperature": Reaction.RELAY_OPEN,
    "sensor_open": Reaction.CUSHION_OFF,
    "sensor_short": Reaction.CUSHION_OFF,
    "sensor_disagree": Reaction.CUSHION_OFF,
    "no_rise": Reaction.CUSHION_OFF,
    "rise_too_fast": Reaction.CUSHION_OFF,
    "rise_while_off": Reaction.RELAY_OPEN,
    "stale_telemetry": Reaction.ALL_OFF,
    "board_fault": Reaction.ALL_OFF,
    "control_stall": Reaction.ALL_OFF,
}

#: Reasons whose reaction covers the whole table.  ``over_temperature`` and
#: ``rise_while_off`` are detected on a cushion (``Trip.cushion`` says which, and their
#: reset is judged on that cushion's sensors) but switch off both; the others here are
#: not about a cushion at all (``Trip.cushion`` is None).
TABLE_WIDE: frozenset[str] = frozenset(
    r for r, x in REACTIONS.items() if x is not Reaction.CUSHION_OFF)

#: Table-wide reasons that are not detected on a cushion: their trips carry cushion None.
NO_CUSHION: frozenset[str] = frozenset({"stale_telemetry", "board_fault", "control_stall"})


@dataclass(frozen=True)
class Trip:
    reason: str
    cushion: int | None  # None: not about one cushion
    at: float  # clock time it was detected
    detail: str


@dataclass(frozen=True)
class Alarm:
    name: str  # "high_temperature"
    cushion: int
    since: float
    detail: str


@dataclass(frozen=True)
class SupervisorEvent:
    """kind: trip, trip_reset, reset_refused, alarm, alarm_cleared."""

    kind: str
    time: float
    cushion: int | None
    reason: str
    actor: str | None
    detail: str


@dataclass(frozen=True)
class ResetResult:
    ok: bool  # nothing was refused
    cleared: list[Trip]
    refused: list[tuple[Trip, str]]  # the trip, and what keeps its cause alive


@dataclass
class _Latch:
    trip: Trip
    reports_at_trip: int  # reports observed when it latched
    sensors: set[int] = field(default_factory=set)  # sensor indices involved (sensor trips)


class _Track:
    """The 1 Hz history of one sensor: the current second's accumulator, the rate
    window with running least-squares sums, the 10-minute history for ``no_rise`` and
    the ascending-minimum deque of the heater-off period for ``rise_while_off``."""

    __slots__ = ("acc_v", "acc_t", "acc_n", "base", "rate", "s_t", "s_v", "s_tt", "s_tv",
                 "hist", "offmin", "last_t", "last_v")

    def __init__(self, hist_len: int, off_len: int) -> None:
        self.acc_v = 0.0
        self.acc_t = 0.0
        self.acc_n = 0
        self.base = 0.0
        self.rate: deque[tuple[float, float]] = deque(
            maxlen=int(RATE_WINDOW_S / DECIMATION_S) + 5)
        self.s_t = self.s_v = self.s_tt = self.s_tv = 0.0
        self.hist: deque[tuple[float, float]] = deque(maxlen=hist_len)
        #: (time, 1 Hz mean, the plate model's excess then)
        self.offmin: deque[tuple[float, float, float]] = deque(maxlen=off_len)
        self.last_t = math.nan
        self.last_v = math.nan

    def clear(self) -> None:
        self.acc_v = self.acc_t = 0.0
        self.acc_n = 0
        self.rate.clear()
        self.s_t = self.s_v = self.s_tt = self.s_tv = 0.0
        self.hist.clear()
        self.offmin.clear()
        self.last_t = self.last_v = math.nan

    @property
    def empty(self) -> bool:
        return self.acc_n == 0 and not self.hist

    def push_rate(self, t: float, v: float) -> None:
        rate = self.rate
        if not rate or t - self.base > _REBASE_S:
            self._rebase(t)
        x = t - self.base
        rate.append((x, v))
        self.s_t += x
        self.s_v += v
        self.s_tt += x * x
        self.s_tv += x * v
        oldest = x - RATE_WINDOW_S
        while rate[0][0] <= oldest:
            x0, v0 = rate.popleft()
            self.s_t -= x0
            self.s_v -= v0
            self.s_tt -= x0 * x0
            self.s_tv -= x0 * v0

    def _rebase(self, t: float) -> None:
        shift = t - self.base
        self.base = t
        old = list(self.rate)
        self.rate.clear()
        self.s_t = self.s_v = self.s_tt = self.s_tv = 0.0
        for x, v in old:
            x -= shift
            self.rate.append((x, v))
            self.s_t += x
            self.s_v += v
            self.s_tt += x * x
            self.s_tv += x * v

    def slope(self) -> float | None:
        """°C per second, or None while the window is too short to say."""
        rate = self.rate
        n = len(rate)
        if n < RATE_MIN_POINTS or rate[-1][0] - rate[0][0] < RATE_MIN_SPAN_S:
            return None
        den = n * self.s_tt - self.s_t * self.s_t
        if den <= 0.0:
            return None
        return (n * self.s_tv - self.s_t * self.s_v) / den


class _Cushion:
    __slots__ = ("bucket_off", "off_empty", "run_start", "disagree_since", "alarm",
                 "commanded", "plate_k", "rep_t", "rep_applied", "heat_s", "span_s",
                 "model", "fast_since")

    def __init__(self, lookback_len: int) -> None:
        self.bucket_off = True  # every report of this second had the heater at 0 %
        self.off_empty = True  # the heater-off histories are empty
        self.run_start: float | None = None  # start of a no_rise run
        self.disagree_since: float | None = None
        self.alarm: Alarm | None = None
        self.commanded = 0.0
        # the plate model (see "The plate model" in the module docstring)
        self.plate_k = 0.0  # estimated plate temperature minus water, K
        self.rep_t: float | None = None  # time of the previous report
        self.rep_applied = 0.0  # the output it reported, held until the next one
        self.heat_s = 0.0  # integral of the applied fraction since the plate update, s
        self.span_s = 0.0  # ... over this long
        #: descending maxima of the model's water rate (time, °C/s) over the lookback
        self.model: deque[tuple[float, float]] = deque(maxlen=lookback_len)
        self.fast_since: float | None = None  # start of a run above the model's limit


def _fmt_rates(rates: list[tuple[int, float]]) -> str:
    return ", ".join(f"{SENSOR_NAMES[s]} {r:+.2f}" for s, r in rates)


class Supervisor:
    """Latching safety trips and the high-temperature alarm; see the module docstring.

    Thread-safe: telemetry may arrive in one thread while a person resets from another.
    Listeners (``on_event``) run outside the lock, after the state they report has been
    latched; an exception from a listener propagates to the caller (it is a bug), and
    undelivered events are delivered on the next call.
    """

    def __init__(self, cfg: SafetyConfig, clock: Clock,
                 on_event: Callable[[SupervisorEvent], None] | None = None, *,
                 plant: PlantConfig, room_estimate_c: float) -> None:
        """``plant`` and ``room_estimate_c`` (the configuration's ``plant`` section and
        ``control.room_estimate_c``) are the physics of the plate model; nothing of the
        control law is used."""
        self.cfg = cfg
        self.clock = clock
        self._on_event = on_event
        self._lock = threading.RLock()
        self._latched: dict[tuple[str, int | None], _Latch] = {}
        self._pending: deque[SupervisorEvent] = deque()
        #: the supervisor's own log of its events, newest last (bounded)
        self.events: deque[SupervisorEvent] = deque(maxlen=EVENT_LOG_LEN)
        self._armed = False
        now = clock.now()
        self._last_report_at = now  # before any report: from construction (or arm())
        self._last_heartbeat = now
        self._reports = 0
        self._last_reading: BoardReading | None = None
        self._prev_faults = 0
        self._bucket: int | None = None
        hist_len = int(math.ceil(cfg.no_rise_window_s / DECIMATION_S)) + 5
        off_len = int(math.ceil(cfg.rise_while_off_window_s / DECIMATION_S)) + 5
        self._tracks = [[_Track(hist_len, off_len) for _ in range(2)] for _ in range(CUSHIONS)]
        # the plate model: per cushion, C_w dT/dt = h (T_p - T_w) - UA (T_w - T_room)
        self._cw = plant.water_kg * plant.water_specific_heat_j_per_kg_k
        self._h = plant.plate_to_water_w_per_k
        self._ua = plant.loss_to_room_w_per_k
        self._room_c = room_estimate_c
        self._tau_p = plant.plate_heat_capacity_j_per_k / self._h
        self._plate_full_k = plant.heater_w / self._h  # plate excess at full power, settled
        #: the model rule's lowest limit: a multiple of the full heater's rate into a full
        #: cushion, °C/min
        self._model_floor = cfg.rise_too_fast_model_floor * plant.heater_w / self._cw * 60.0
        lookback_len = int(math.ceil(cfg.rise_too_fast_model_lookback_s / DECIMATION_S)) + 5
        self._cushions = [_Cushion(lookback_len) for _ in range(CUSHIONS)]

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
            if reading is self._last_reading:
                return
            now = self.clock.now()
            first = self._last_reading is None
            self._last_reading = reading
            self._reports += 1
            self._last_report_at = reading.time
            bucket = int(now // DECIMATION_S)
            if bucket != self._bucket:
                if self._bucket is not None:
                    self._finalize(now)
                self._bucket = bucket
            faults = reading.faults
            new = faults & ~self._prev_faults
            self._prev_faults = faults
            if new and not first:
                self._board_flags(new, now)
            for c in range(CUSHIONS):
                self._observe_cushion(c, reading.cushions[c], commanded[c], setpoints[c],
                                      heat_on[c], now)
        self._flush()

    def link_event(self, ev: LinkEvent) -> None:
        """``board_fault`` and ``board_reset`` trip ``board_fault``; other kinds are
        ignored (a lost link is judged by ``check()`` from the reports themselves)."""
        if ev.kind not in ("board_fault", "board_reset"):
            return
        with self._lock:
            now = self.clock.now()
            if ev.kind == "board_reset":
                detail = "unexpected reset" + (f": {ev.detail}" if ev.detail else "")
            else:
                detail = f"board fault: {ev.detail or 'unnamed flags'}"
            self._trip("board_fault", None, detail, now)
        self._flush()

    def control_heartbeat(self) -> None:
        """The control loop completed a cycle."""
        with self._lock:
            self._last_heartbeat = self.clock.now()

    def arm(self) -> None:
        """Start judging the control loop (and, if no report has come yet, count the
        telemetry's silence from now); until armed, ``gate`` gives 0 % everywhere."""
        with self._lock:
            now = self.clock.now()
            self._armed = True
            self._last_heartbeat = now
            if self._last_reading is None:
                self._last_report_at = now

    @property
    def armed(self) -> bool:
        return self._armed

    def check(self) -> None:
        """Judge time itself (call often, every poll).

        ``stale_telemetry`` (reference: "no valid report for 1.0 s", all heaters off):
        more than ``stale_telemetry_s`` since the last report arrived (``reading.time``).
        Only a link that has delivered a report can go stale: before the first report
        nothing can heat (the controller zeroes every output while the link is unhealthy
        and the relay has never been closed), and a latched trip would only make a person
        reset a table whose board was plugged in a second after the controller started.
        ``control_stall`` (reference: "no control cycle for 3 s", all heaters off): once
        armed, more than ``control_stall_s`` since the last heartbeat (or ``arm()``).
        """
        with self._lock:
            now = self.clock.now()
            cfg = self.cfg
            age = now - self._last_report_at
            if self._last_reading is not None and age > cfg.stale_telemetry_s:
                self._trip("stale_telemetry", None,
                           f"no telemetry report for {age:.2f} s "
                           f"(limit {cfg.stale_telemetry_s:g} s)", now)
            if self._armed:
                age = now - self._last_heartbeat
                if age > cfg.control_stall_s:
                    self._trip("control_stall", None,
                               f"no control cycle for {age:.2f} s "
                               f"(limit {cfg.control_stall_s:g} s)", now)
        self._flush()

    # --- outputs -------------------------------------------------------------------------

    def permitted(self, cushion: int) -> bool:
        """False while a latched trip affects this cushion (its own or table-wide)."""
        with self._lock:
            return not any(self._affects(k, cushion) for k in self._latched)

    def gate(self, outputs: Sequence[float]) -> tuple[float, float]:
        """The outputs allowed to reach the link: each clamped to 0..1 (NaN counts as
        0), 0 for a cushion that is not permitted, and 0 everywhere until ``arm()``."""
        with self._lock:
            if not self._armed:
                return (0.0, 0.0)
            res = [0.0, 0.0]
            for c in range(CUSHIONS):
                x = outputs[c]
                if x > 0.0 and not any(self._affects(k, c) for k in self._latched):
                    res[c] = x if x < 1.0 else 1.0
            return (res[0], res[1])

    @property
    def relay_allowed(self) -> bool:
        """False while a trip whose reaction opens the master relay is latched."""
        with self._lock:
            return not any(REACTIONS[k[0]] is Reaction.RELAY_OPEN for k in self._latched)

    @property
    def trips(self) -> list[Trip]:
        """Latched trips, oldest first."""
        with self._lock:
            return [latch.trip for latch in self._latched.values()]

    @property
    def alarms(self) -> list[Alarm]:
        with self._lock:
            return [cu.alarm for cu in self._cushions if cu.alarm is not None]

    # --- reset ---------------------------------------------------------------------------

    def reset(self, actor: str, cushion: int | None = None) -> ResetResult:
        """A person asks to clear the latched trips affecting ``cushion`` (its own and the
        table-wide ones, ``over_temperature``/``rise_while_off`` of either cushion
        included), or all of them when None.  Each clears only if its cause has gone,
        judged on the latest data; otherwise it stays, and the result and a
        ``reset_refused`` event say what persists.  The criteria:

        * ``over_temperature``: every intact sensor of that cushion below
          ``over_temperature_c - over_temperature_reset_margin_c`` (41.0 - 0.5), and at
          least one intact sensor (broken ones are their own trips);
        * ``sensor_open`` / ``sensor_short``: every sensor that trip involved reads OK;
        * ``sensor_disagree``: both sensors read OK and within ``sensor_disagree_c``;
        * ``rise_too_fast``: every known sensor rate at most ``rise_too_fast_c_per_min`` and
          at most the plate model's limit (``_model_limit``);
          ``rise_while_off``: at most ``rise_while_off_c`` per ``rise_while_off_window_s``
          (0.1 °C/min).  No known rate (under 20 s of intact readings): refused, saying so;
          when in doubt the heaters stay off, and the person can ask again shortly;
        * ``no_rise``: always clears (a failed heater or relay can only be judged by
          heating again; the event's detail says so) and its window starts afresh;
        * ``stale_telemetry``: a report arrived within ``stale_telemetry_s``;
        * ``board_fault``: a report arrived after the fault and shows no fault flags (the
          controller sends CLEAR_FAULTS first);
        * ``control_stall``: a heartbeat within ``control_stall_s``.

        Raises ``ValueError`` for an empty ``actor`` or a cushion other than 0, 1, None.
        ``ok`` is True when nothing was refused (also when nothing was latched)."""
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError("a reset needs the name of who asks for it")
        if cushion is not None and cushion not in range(CUSHIONS):
            raise ValueError(f"cushion must be 0, 1 or None, got {cushion!r}")
        cleared: list[Trip] = []
        refused: list[tuple[Trip, str]] = []
        with self._lock:
            now = self.clock.now()
            keys = [k for k in self._latched if cushion is None or self._affects(k, cushion)]
            for key in keys:
                latch = self._latched[key]
                trip = latch.trip
                why, note = self._cause(latch, now)
                if why is None:
                    del self._latched[key]
                    self._after_reset(trip)
                    cleared.append(trip)
                    self._emit("trip_reset", now, trip.cushion, trip.reason, actor, note)
                else:
                    refused.append((trip, why))
                    self._emit("reset_refused", now, trip.cushion, trip.reason, actor, why)
        self._flush()
        return ResetResult(not refused, cleared, refused)

    # --- internals: per report -----------------------------------------------------------

    def _observe_cushion(self, c: int, cr: CushionReading, commanded: float, sp: float,
                         heat_on: bool, now: float) -> None:
        cfg = self.cfg
        cu = self._cushions[c]
        tracks = self._tracks[c]
        limit = cfg.over_temperature_c
        pr = cr.primary
        rr = cr.redundant
        vp = pr.celsius if pr.status is _OK else None
        vr = rr.celsius if rr.status is _OK else None
        # primary
        if vp is None:
            self._sensor_broken(c, 0, pr.status, pr.counts, now)
        else:
            if vp > limit:
                self._over_temperature(c, 0, vp, now)
            tr = tracks[0]
            tr.acc_v += vp
            tr.acc_t += now
            tr.acc_n += 1
        # redundant
        if vr is None:
            self._sensor_broken(c, 1, rr.status, rr.counts, now)
        else:
            if vr > limit:
                self._over_temperature(c, 1, vr, now)
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
        cu.commanded = commanded
        # the plate model's heat input: each reported output held until the next report
        t0 = cu.rep_t
        if t0 is None:
            cu.plate_k = applied * self._plate_full_k  # first sight: as if settled there
        elif now > t0:
            cu.heat_s += cu.rep_applied * (now - t0)
            cu.span_s += now - t0
        cu.rep_t = now
        cu.rep_applied = applied
        # rise_while_off: any heating ends the heater-off period
        if applied > 0.0:
            cu.bucket_off = False
            if not cu.off_empty:
                tracks[0].offmin.clear()
                tracks[1].offmin.clear()
                cu.off_empty = True
        # no_rise: the run of reports at high output below the setpoint
        if applied >= cfg.no_rise_min_output and water is not None and water < sp:
            if cu.run_start is None:
                cu.run_start = now
        else:
            cu.run_start = None
        # sensor_disagree
        if vp is not None and vr is not None and abs(vp - vr) > cfg.sensor_disagree_c:
            if cu.disagree_since is None:
                cu.disagree_since = now
            elif now - cu.disagree_since >= cfg.sensor_disagree_s:
                self._trip("sensor_disagree", c,
                           f"primary {vp:.2f} °C and redundant {vr:.2f} °C differ by "
                           f"{abs(vp - vr):.2f} °C, more than {cfg.sensor_disagree_c:g} °C "
                           f"for {now - cu.disagree_since:.1f} s", now)
        else:
            cu.disagree_since = None
        # the high_temperature alarm
        if water is not None:
            self._alarm(c, cu, water, sp, heat_on, now)

    def _sensor_broken(self, c: int, s: int, status: SensorStatus, counts: int,
                       now: float) -> None:
        """``sensor_open`` / ``sensor_short`` (reference: "ADC within 1 % of a rail, or
        reading outside 0-60 °C", that cushion off): the link's classification, at the
        first report.  The sensor's histories are dropped."""
        tr = self._tracks[c][s]
        if not tr.empty:
            tr.clear()
        reason = "sensor_open" if status is _OPEN else "sensor_short"
        self._trip(reason, c, f"{SENSOR_NAMES[s]} sensor of cushion {c} is "
                              f"{status.value} ({counts} counts)", now, sensor=s)

    def _over_temperature(self, c: int, s: int, v: float, now: float) -> None:
        """``over_temperature`` (reference: "any sensor above 41.0 °C", all heaters off
        and master relay open): one report of one intact sensor above
        ``over_temperature_c`` trips at once (see the module docstring)."""
        self._trip("over_temperature", c,
                   f"{SENSOR_NAMES[s]} sensor of cushion {c} reads {v:.2f} °C, above "
                   f"{self.cfg.over_temperature_c:g} °C", now, sensor=s)

    def _alarm(self, c: int, cu: _Cushion, water: float, sp: float, heat_on: bool,
               now: float) -> None:
        """The ``high_temperature`` alarm (reference: "above setpoint + 1.0 °C, or above
        40.5 °C", a warning, not a trip).  Its level is the lower of the two; the
        setpoint part counts only while the cushion's heat is on (with heat off the
        setpoint is no target).  It clears ``alarm_hysteresis_c`` below the level."""
        cfg = self.cfg
        level = cfg.high_alarm_c
        why = f"above {level:g} °C"
        if heat_on:
            rel = sp + cfg.high_alarm_margin_c
            if rel < level:
                level = rel
                why = f"above setpoint {sp:g} + {cfg.high_alarm_margin_c:g} °C"
        alarm = cu.alarm
        if alarm is None:
            if water > level:
                detail = f"cushion {c} water {water:.2f} °C, {why}"
                cu.alarm = Alarm("high_temperature", c, now, detail)
                self._emit("alarm", now, c, "high_temperature", None, detail)
        else:
            clear_below = level - cfg.alarm_hysteresis_c
            if water < clear_below:
                cu.alarm = None
                self._emit("alarm_cleared", now, c, "high_temperature", None,
                           f"cushion {c} water {water:.2f} °C, below {clear_below:.2f} °C")

    def _board_flags(self, new: int, now: float) -> None:
        """``board_fault`` (reference: "dead-man, board-side limit, cut-out, unexpected
        reset", all heaters off) from the telemetry itself: a flag that was clear in the
        previous report and is set now.  (A FAULT message is not retransmitted and may be
        lost; the flags repeat in every report.  The flags of the very first report are
        the board's past, which the controller clears at start.)"""
        names = ", ".join(p.fault_names(new))
        if new & p.Fault.RESET:
            detail = f"unexpected reset (board flags: {names})"
        else:
            detail = f"board fault: {names}"
        self._trip("board_fault", None, detail, now)

    # --- internals: once a second --------------------------------------------------------

    def _finalize(self, now: float) -> None:
        """Close the second: push each sensor's mean into its histories, then judge the
        windowed rules."""
        cfg = self.cfg
        for c in range(CUSHIONS):
            cu = self._cushions[c]
            off = cu.bucket_off
            plate_k = self._update_plate(cu)
            v_sum = t_sum = 0.0
            v_n = 0
            for tr in self._tracks[c]:
                n = tr.acc_n
                if not n:
                    continue
                v = tr.acc_v / n
                t = tr.acc_t / n
                v_sum += v
                t_sum += t
                v_n += 1
                tr.acc_v = tr.acc_t = 0.0
                tr.acc_n = 0
                tr.last_t = t
                tr.last_v = v
                tr.push_rate(t, v)
                hist = tr.hist
                hist.append((t, v))
                start = t - self.cfg.no_rise_window_s
                while len(hist) >= 2 and hist[1][0] <= start:
                    hist.popleft()
                if off:
                    om = tr.offmin
                    while om and om[-1][1] >= v:
                        om.pop()
                    om.append((t, v, plate_k))
                    start = t - self.cfg.rise_while_off_window_s
                    while om[0][0] < start:
                        om.popleft()
                    cu.off_empty = False
            cu.bucket_off = True
            if v_n:
                # the water's rate the plate model allows now, and its maximum over the
                # lookback (a descending deque: O(1) amortised)
                t = t_sum / v_n
                rate = (self._h * plate_k - self._ua * (v_sum / v_n - self._room_c)) / self._cw
                model = cu.model
                while model and model[-1][1] <= rate:
                    model.pop()
                model.append((t, rate))
                start = t - cfg.rise_too_fast_model_lookback_s
                while model[0][0] < start:
                    model.popleft()
            self._rise_too_fast(c, cu, now)
            self._rise_while_off(c, cu, now)
            self._no_rise(c, cu, now)

    def _update_plate(self, cu: _Cushion) -> float:
        """Advance the plate model over the reports of the second just closed: the plate's
        excess over the water relaxes exactly (first order, ``C_p / h``) towards
        ``P / h`` for the mean applied power ``P``; returns the excess, K."""
        span = cu.span_s
        if span > 0.0:
            target = cu.heat_s / span * self._plate_full_k
            cu.plate_k = target + (cu.plate_k - target) * math.exp(-span / self._tau_p)
            cu.heat_s = cu.span_s = 0.0
        return cu.plate_k

    def _rates(self, c: int) -> list[tuple[int, float]]:
        """(sensor, °C/min) of the sensors whose rate is known."""
        out = []
        for s, tr in enumerate(self._tracks[c]):
            r = tr.slope()
            if r is not None:
                out.append((s, r * 60.0))
        return out

    def _model_limit(self, cu: _Cushion) -> tuple[float, float] | None:
        """(the rate the plate model explains, the model rule's limit), °C/min, or None
        before the model has seen a reading.  The explained rate is the highest the model
        gave over ``rise_too_fast_model_lookback_s``; the limit is
        ``rise_too_fast_model_ratio`` times it (at least 0) plus
        ``rise_too_fast_model_margin_c_per_min``, and at least ``rise_too_fast_model_floor``
        times the full heater's rate into a full cushion."""
        if not cu.model:
            return None
        cfg = self.cfg
        explained = cu.model[0][1] * 60.0
        lim = (cfg.rise_too_fast_model_ratio * max(explained, 0.0)
               + cfg.rise_too_fast_model_margin_c_per_min)
        return explained, max(lim, self._model_floor)

    def _rise_too_fast(self, c: int, cu: _Cushion, now: float) -> None:
        """``rise_too_fast`` (reference: "more than 1.0 °C/min (an empty or leaking
        cushion, a dry plate)", that cushion off), two ways, judged on every sensor whose
        rate is known (30 s least-squares slope of its 1 Hz means):

        * every such rate above ``rise_too_fast_c_per_min`` (the table's absolute limit);
        * every such rate above what the plate model allows (``_model_limit``), without a
          break for ``rise_too_fast_model_confirm_s``: the water heats faster than the heat
          going into it can explain for the water the cushion should hold, so it holds
          less (see "The plate model" in the module docstring)."""
        if ("rise_too_fast", c) in self._latched:
            return
        rates = self._rates(c)
        if not rates:
            cu.fast_since = None
            return
        cfg = self.cfg
        slowest = min(r for _, r in rates)
        lim = cfg.rise_too_fast_c_per_min
        if slowest > lim:
            self._trip("rise_too_fast", c,
                       f"cushion {c} water rising faster than {lim:g} °C/min "
                       f"({_fmt_rates(rates)} °C/min over {RATE_WINDOW_S:g} s)", now)
            return
        model = self._model_limit(cu) if slowest > self._model_floor else None
        if model is None or slowest <= model[1]:
            cu.fast_since = None
            return
        if cu.fast_since is None:
            cu.fast_since = now
        if now - cu.fast_since >= cfg.rise_too_fast_model_confirm_s:
            explained, mlim = model
            self._trip("rise_too_fast", c,
                       f"cushion {c} water rising faster than the model allows: leaking or "
                       f"empty cushion? ({_fmt_rates(rates)} °C/min over {RATE_WINDOW_S:g} s "
                       f"for {now - cu.fast_since:.0f} s; the heat going in explains "
                       f"{explained:+.2f} °C/min, the limit is {mlim:.2f} °C/min)", now)

    def _rise_while_off(self, c: int, cu: _Cushion, now: float) -> None:
        """``rise_while_off`` (reference: "more than 0.5 °C in 5 min at 0 %", master relay
        open: a welded relay): while the board applies 0 % without a break, each sensor's
        latest 1 Hz mean minus its lowest over the last ``rise_while_off_window_s`` of that
        off period; every sensor with such history must exceed ``rise_while_off_c``.
        The heater plate's stored heat (at most ~20 kJ into ~105 kJ/K of water, about
        0.2 °C) stays well below the limit in a full cushion.  While a ``rise_too_fast``
        trip of the cushion is latched, it may hold far less water, so each sensor's rise
        is judged beyond the plate model's excess ``D`` at the moment of its minimum (the
        water cannot get hotter than the plate was): the leftover heat of a leak trip is not
        a welded relay.  (Known limits: a client lying on a cold, unheated cushion warms it
        too; at 15 °C water and 10 W/K that approaches 0.5 °C.  A relay welding on a
        cushion already tripped for a leak is seen only beyond that allowance, up to ~10 °C
        after full power; ``over_temperature`` then opens the relay.)"""
        if cu.off_empty:
            return
        lost_water = ("rise_too_fast", c) in self._latched
        rises = []
        span = allow = 0.0
        for s, tr in enumerate(self._tracks[c]):
            if tr.offmin:
                t0, v0, plate_k = tr.offmin[0]
                a = plate_k if lost_water and plate_k > 0.0 else 0.0
                rises.append((s, tr.last_v - v0 - a))
                span = max(span, tr.last_t - t0)
                allow = max(allow, a)
        lim = self.cfg.rise_while_off_c
        if rises and min(r for _, r in rises) > lim:
            why = (f", beyond the {allow:.2f} °C the plate's stored heat can explain"
                   if allow else "")
            self._trip("rise_while_off", c,
                       f"cushion {c} water rose more than {lim:g} °C within {span:.0f} s "
                       f"with the heater at 0 % ({_fmt_rates(rises)} °C{why}; host commands "
                       f"{cu.commanded * 100:.0f} %): welded relay?", now)

    def _no_rise(self, c: int, cu: _Cushion, now: float) -> None:
        """``no_rise`` (reference: "less than 0.5 °C rise in 10 min at >= 80 % power below
        setpoint", that cushion off): the board applied at least ``no_rise_min_output``
        in every report for ``no_rise_window_s`` with the water below the setpoint in
        every report, and every sensor whose 1 Hz history covers the window rose less
        than ``no_rise_c`` over it (latest mean minus the mean a window ago)."""
        cfg = self.cfg
        w = cfg.no_rise_window_s
        if cu.run_start is None or now - cu.run_start < w:
            return
        rises = []
        for s, tr in enumerate(self._tracks[c]):
            hist = tr.hist
            if hist and hist[0][0] <= tr.last_t - w + DECIMATION_S:
                rises.append((s, tr.last_v - hist[0][1]))
        if rises and max(r for _, r in rises) < cfg.no_rise_c:
            self._trip("no_rise", c,
                       f"cushion {c} water rose less than {cfg.no_rise_c:g} °C in {w:g} s "
                       f"at >= {cfg.no_rise_min_output * 100:.0f} % below the setpoint "
                       f"({_fmt_rates(rises)} °C): heater or relay failed?", now)

    # --- internals: latching, reset, events ----------------------------------------------

    @staticmethod
    def _affects(key: tuple[str, int | None], cushion: int) -> bool:
        reason, c = key
        return c is None or c == cushion or reason in TABLE_WIDE

    def _trip(self, reason: str, cushion: int | None, detail: str, now: float,
              sensor: int | None = None) -> None:
        key = (reason, cushion)
        latch = self._latched.get(key)
        if latch is None:
            trip = Trip(reason, cushion, now, detail)
            latch = _Latch(trip, self._reports)
            self._latched[key] = latch
            self._emit("trip", now, cushion, reason, None, detail)
        if sensor is not None:
            latch.sensors.add(sensor)

    def _emit(self, kind: str, now: float, cushion: int | None, reason: str,
              actor: str | None, detail: str) -> None:
        ev = SupervisorEvent(kind, now, cushion, reason, actor, detail)
        self.events.append(ev)
        self._pending.append(ev)

    def _flush(self) -> None:
        fn = self._on_event
        while True:
            with self._lock:
                if not self._pending:
                    return
                ev = self._pending.popleft()
            if fn is not None:
                fn(ev)

    def _latest_sensors(self, c: int) -> list[tuple[int, SensorStatus, float | None]]:
        r = self._last_reading
        assert r is not None
        cr = r.cushions[c]
        return [(0, cr.primary.status, cr.primary.celsius),
                (1, cr.redundant.status, cr.redundant.celsius)]

    def _cause(self, latch: _Latch, now: float) -> tuple[str | None, str]:
        """(None, note) when the trip's cause has gone, else (why it persists, "")."""
        trip = latch.trip
        reason, c = trip.reason, trip.cushion
        cfg = self.cfg
        if reason == "stale_telemetry":
            age = now - self._last_report_at
            if age <= cfg.stale_telemetry_s:
                return None, f"telemetry flowing (last report {age:.2f} s ago)"
            return f"still no telemetry report for {age:.1f} s", ""
        if reason == "control_stall":
            age = now - self._last_heartbeat
            if age <= cfg.control_stall_s:
                return None, f"control loop running (last cycle {age:.2f} s ago)"
            return f"still no control cycle for {age:.1f} s", ""
        if reason == "no_rise":
            return None, ("cleared without proof: a failed heater or relay can only be "
                          "judged by heating again (no_rise watches the next "
                          f"{cfg.no_rise_window_s:g} s at high output)")
        if self._last_reading is None:
            return "no telemetry report yet to judge it on", ""
        if reason == "board_fault":
            if self._reports <= latch.reports_at_trip:
                return "no telemetry report since the fault to judge it on", ""
            flags = self._last_reading.faults
            if flags:
                return (f"the board still reports {', '.join(p.fault_names(flags))} "
                        "(send CLEAR_FAULTS first)"), ""
            return None, "the board reports no fault flags"
        assert c is not None
        sensors = self._latest_sensors(c)
        if reason == "over_temperature":
            below = cfg.over_temperature_c - cfg.over_temperature_reset_margin_c
            ok = [(s, v) for s, st, v in sensors if st is _OK and v is not None]
            if not ok:
                return f"no intact sensor on cushion {c} to confirm the water cooled", ""
            hot = [f"{SENSOR_NAMES[s]} {v:.2f} °C" for s, v in ok if v >= below]
            if hot:
                return (f"cushion {c} still at {', '.join(hot)}, not below {below:.2f} °C"), ""
            return None, f"cushion {c} sensors below {below:.2f} °C"
        if reason in ("sensor_open", "sensor_short"):
            bad = [f"{SENSOR_NAMES[s]} {st.value}" for s, st, _ in sensors
                   if s in latch.sensors and st is not _OK]
            if bad:
                return f"cushion {c}: {', '.join(bad)}", ""
            return None, "sensor reads OK again"
        if reason == "sensor_disagree":
            (_, s0, v0), (_, s1, v1) = sensors
            if v0 is None or v1 is None or s0 is not _OK or s1 is not _OK:
                return f"cushion {c}: both sensors must read OK to compare them", ""
            if abs(v0 - v1) > cfg.sensor_disagree_c:
                return (f"cushion {c} sensors still {abs(v0 - v1):.2f} °C apart "
                        f"(primary {v0:.2f}, redundant {v1:.2f})"), ""
            return None, f"sensors within {abs(v0 - v1):.2f} °C"
        if reason in ("rise_too_fast", "rise_while_off"):
            if reason == "rise_too_fast":
                lim = cfg.rise_too_fast_c_per_min
                model = self._model_limit(self._cushions[c])
                if model is not None:
                    lim = min(lim, model[1])
            else:
                lim = cfg.rise_while_off_c * 60.0 / cfg.rise_while_off_window_s
            rates = self._rates(c)
            if not rates:
                return (f"cushion {c} rise rate not known yet: it needs "
                        f"{RATE_MIN_SPAN_S:g} s of readings from an intact sensor"), ""
            if max(r for _, r in rates) > lim:
                return (f"cushion {c} water still rising faster than {lim:.2g} °C/min "
                        f"({_fmt_rates(rates)} °C/min)"), ""
            return None, f"rise rate {_fmt_rates(rates)} °C/min, at most {lim:.2g}"
        raise AssertionError(f"unknown trip reason {reason!r}")  # pragma: no cover

    def _after_reset(self, trip: Trip) -> None:
        """Judge afresh what the cleared trip was about, so it does not fire again on
        the evidence that raised it."""
        c = trip.cushion
        if c is None:
            return
        cu = self._cushions[c]
        if trip.reason == "rise_while_off":
            for tr in self._tracks[c]:
                tr.offmin.clear()
            cu.off_empty = True
        elif trip.reason == "no_rise":
            cu.run_start = None
        elif trip.reason == "rise_too_fast":
            cu.fast_since = None
        elif trip.reason == "sensor_disagree":
            cu.disagree_since = None
