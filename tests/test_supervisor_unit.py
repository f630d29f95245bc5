"""The safety supervisor on synthetic telemetry: every row of the "Safety limits" table.

Readings are built as the link builds them (``Thermistor.read`` of ADC counts, a raw
``protocol.Telemetry``), on a ``SimClock`` at 5 Hz.  The last section drives the readings
from the simulator's thermal plant, to check the limits against the physics they guard.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.supervisor import (
    NO_CUSHION,
    RATE_WINDOW_S,
    REACTIONS,
    SERVICE_ONLY_FLAGS,
    TABLE_WIDE,
    Reaction,
    Supervisor,
    SupervisorEvent,
)
from firmware_bridge import protocol as p
from firmware_bridge.link import BoardReading, CushionReading, LinkEvent
from firmware_bridge.thermistor import SensorReading, SensorStatus, Thermistor
from hydrotherm.clock import SimClock
from hydrotherm.config import ControlConfig, PlantConfig, SafetyConfig, SensorConfig
from sim.plant import Plant

THERM = Thermistor(SensorConfig())
DT = 0.2  # telemetry period
SAFE = SafetyConfig()
PLANT = PlantConfig()
ROOM_ESTIMATE_C = ControlConfig().room_estimate_c
#: the plausible and the capacity-drop checks of ``rise_too_fast`` out of the way, for
#: tests of other rules whose synthetic steps no heater could make
ABSOLUTE_ONLY = SafetyConfig(rise_too_fast_model_ratio=100.0, leak_ratio=10.0,
                             leak_margin_c_per_min=5.0)

Temp = float | str | SensorReading
Temps = Sequence[Sequence[Temp]]  # per cushion (primary, redundant)


def sensor(v: Temp) -> SensorReading:
    """What the link makes of a sensor at ``v`` °C ("open"/"short": a broken sensor)."""
    if isinstance(v, SensorReading):
        return v
    if v == "open":
        return THERM.read(THERM.full)
    if v == "short":
        return THERM.read(0)
    return THERM.read(THERM.counts_at(float(v)))


def exact(v: float) -> SensorReading:
    """A reading of exactly ``v`` °C, without ADC quantisation (for boundary tests)."""
    return SensorReading(THERM.counts_at(v), SensorStatus.OK, v)


def both(v: Temp) -> tuple[tuple[Temp, Temp], tuple[Temp, Temp]]:
    return ((v, v), (v, v))


AT_37 = both(37.0)


def make_reading(now: float, uptime_ms: int, temps: Temps, applied: Sequence[float],
                 faults: int = 0, relay: bool = True) -> BoardReading:
    sens = [(sensor(a), sensor(b)) for a, b in temps]
    permille = (round(applied[0] * 1000), round(applied[1] * 1000))
    adc = (sens[0][0].counts, sens[0][1].counts, sens[1][0].counts, sens[1][1].counts)
    raw = p.Telemetry(uptime_ms, adc, permille, int(p.Input.RELAY_CLOSED) if relay else 0,
                      faults)
    cushions = (CushionReading(sens[0][0], sens[0][1], permille[0] / 1000.0, False),
                CushionReading(sens[1][0], sens[1][1], permille[1] / 1000.0, False))
    return BoardReading(now, uptime_ms, cushions, relay, faults, raw)


class Rig:
    """A supervisor on a SimClock, fed one report per ``DT`` like the controller does."""

    def __init__(self, cfg: SafetyConfig | None = None, arm: bool = True,
                 start: float = 1000.0, seed: int = 0) -> None:
        self.cfg = cfg or SafetyConfig()
        self.clock = SimClock(start)
        self.events: list[SupervisorEvent] = []
        self.sup = Supervisor(self.cfg, self.clock, self.events.append, plant=PLANT)
        self.rng = random.Random(seed)
        self.uptime_ms = 5000
        if arm:
            self.sup.arm()

    def feed(self, temps: Temps = AT_37, applied: Sequence[float] = (0.2, 0.2), *,
             faults: int = 0, dt: float = DT, setpoints: Sequence[float] = (37.0, 37.0),
             heat_on: Sequence[bool] = (True, True), commanded: Sequence[float] | None = None,
             noise: float = 0.0, heartbeat: bool = True) -> BoardReading:
        self.clock.advance(dt)
        self.uptime_ms += round(dt * 1000)
        if noise:
            gauss = self.rng.gauss
            temps = [[v + gauss(0.0, noise) if isinstance(v, int | float) else v for v in pair]
                     for pair in temps]
        r = make_reading(self.clock.now(), self.uptime_ms, temps, applied, faults)
        self.sup.observe(r, applied if commanded is None else commanded, setpoints, heat_on)
        if heartbeat:
            self.sup.control_heartbeat()
        self.sup.check()
        return r

    def run(self, seconds: float, temps: Temps | Callable[[float], Temps],
            applied: Sequence[float] | Callable[[float], Sequence[float]] = (0.2, 0.2), *,
            until: str | None = None, **kw: Any) -> float | None:
        """Feed ``seconds`` of reports (``temps``/``applied`` may be functions of the time
        since the run began).  With ``until``: stop when that reason latches and return
        when, from the run's start; None if it never did."""
        start = self.clock.now()
        for _ in range(round(seconds / DT)):
            el = self.clock.now() + DT - start
            tt = temps(el) if callable(temps) else temps
            aa = applied(el) if callable(applied) else applied
            self.feed(tt, aa, **kw)
            if until is not None and self.has(until):
                return self.clock.now() - start
        return None

    def reasons(self) -> list[tuple[str, int | None]]:
        return [(t.reason, t.cushion) for t in self.sup.trips]

    def has(self, reason: str, cushion: int | None | str = "any") -> bool:
        return any(t.reason == reason and (cushion == "any" or t.cushion == cushion)
                   for t in self.sup.trips)

    def kinds(self, kind: str) -> list[SupervisorEvent]:
        return [e for e in self.events if e.kind == kind]


def ramp(c0: Callable[[float], float], c1: Callable[[float], float] | float = 37.0
         ) -> Callable[[float], Temps]:
    """Temperatures as functions of time: both sensors of each cushion read the same."""
    def temps(t: float) -> Temps:
        a = c0(t)
        b = c1(t) if callable(c1) else c1
        return ((a, a), (b, b))
    return temps


# --- the table itself -----------------------------------------------------------------------


def test_reactions_and_table_wide_reasons_follow_the_reference_table() -> None:
    assert REACTIONS == {
        "over_temperature": Reaction.RELAY_OPEN, "sensor_open": Reaction.CUSHION_OFF,
        "sensor_short": Reaction.CUSHION_OFF, "sensor_disagree": Reaction.CUSHION_OFF,
        "no_rise": Reaction.CUSHION_OFF, "rise_too_fast": Reaction.CUSHION_OFF,
        "rise_while_off": Reaction.RELAY_OPEN, "stale_telemetry": Reaction.ALL_OFF,
        "board_fault": Reaction.ALL_OFF, "control_stall": Reaction.ALL_OFF,
        "plate_dry": Reaction.CUSHION_OFF}
    assert TABLE_WIDE == {"over_temperature", "rise_while_off", "stale_telemetry",
                          "board_fault", "control_stall"}
    assert NO_CUSHION < TABLE_WIDE


# --- over_temperature -----------------------------------------------------------------------


def test_over_temperature_trips_on_the_first_report_above_the_limit() -> None:
    rig = Rig(ABSOLUTE_ONLY)  # the steps below are faster than any heater could make them
    rig.run(10, ((40.9, 40.9), (40.0, 40.0)))
    rig.feed(((exact(41.0), exact(40.95)), (40.0, 40.0)))  # at the limit is not above it
    assert rig.sup.trips == []
    rig.feed(((40.9, exact(41.01)), (40.0, 40.0)))
    [trip] = rig.sup.trips
    assert (trip.reason, trip.cushion, trip.at) == ("over_temperature", 0, rig.clock.now())
    assert "redundant" in trip.detail and "41.01" in trip.detail
    # table-wide, relay open
    assert not rig.sup.relay_allowed
    assert not rig.sup.permitted(0) and not rig.sup.permitted(1)
    assert rig.sup.gate((0.5, 0.7)) == (0.0, 0.0)
    # latched: the water cooling does not clear it, and it is reported once
    rig.run(30, ((41.05, 41.05), (40.0, 40.0)))
    rig.run(30, ((38.0, 38.0), (40.0, 40.0)))
    assert rig.reasons() == [("over_temperature", 0)]
    assert [e.reason for e in rig.kinds("trip")] == ["over_temperature"]


def test_over_temperature_on_one_cushion_blocks_both_and_resets_on_its_sensors() -> None:
    rig = Rig()
    rig.run(2, both(40.0))
    rig.feed(((40.0, 40.0), (41.2, 40.9)))
    assert rig.reasons() == [("over_temperature", 1)]
    assert rig.sup.gate((0.3, 0.3)) == (0.0, 0.0)
    rig.run(5, ((37.0, 37.0), (40.6, 40.4)))  # 40.6 is not 0.5 below 41.0
    res = rig.sup.reset("nurse", cushion=0)  # cushion 0 asks; cushion 1's trip blocks it
    assert not res.ok and res.cleared == []
    [(trip, why)] = res.refused
    assert trip.reason == "over_temperature" and "primary" in why and "40.5" in why
    rig.run(5, ((37.0, 37.0), (40.4, 40.3)))
    res = rig.sup.reset("nurse", cushion=0)
    assert res.ok and [t.reason for t in res.cleared] == ["over_temperature"]
    assert rig.sup.trips == [] and rig.sup.relay_allowed
    assert rig.sup.gate((0.3, 0.4)) == (0.3, 0.4)
    refused, done = rig.kinds("reset_refused"), rig.kinds("trip_reset")
    assert [(e.actor, e.reason, e.cushion) for e in refused + done] == [
        ("nurse", "over_temperature", 1), ("nurse", "over_temperature", 1)]


def test_over_temperature_reset_ignores_a_broken_sensor_but_needs_an_intact_one() -> None:
    rig = Rig()
    rig.feed(((41.3, 41.2), (37.0, 37.0)))
    rig.feed((("open", "open"), (37.0, 37.0)))
    res = rig.sup.reset("tech", 0)
    assert "over_temperature" in [t.reason for t, _ in res.refused]
    assert any("no intact sensor" in why for _, why in res.refused)
    rig.feed((("open", 39.0), (37.0, 37.0)))
    res = rig.sup.reset("tech", 0)
    assert [t.reason for t in res.cleared] == ["over_temperature"]
    assert [t.reason for t, _ in res.refused] == ["sensor_open"]


@settings(max_examples=40, deadline=None)
@given(v=st.floats(40.6, 41.4), which=st.integers(0, 3))
def test_over_temperature_iff_one_sensor_reads_above_the_limit(v: float, which: int) -> None:
    rig = Rig()
    rig.feed(both(40.2))
    temps: list[list[Temp]] = [[40.2, 40.2], [40.2, 40.2]]
    temps[which // 2][which % 2] = v
    r = rig.feed(temps)
    cr = r.cushions[which // 2]
    read = (cr.primary, cr.redundant)[which % 2].celsius
    assert read is not None
    assert rig.has("over_temperature", which // 2) == (read > SAFE.over_temperature_c)
    assert rig.has("over_temperature", 1 - which // 2) is False


# --- high_temperature alarm -----------------------------------------------------------------


def test_high_temperature_alarm_above_setpoint_plus_margin_with_hysteresis() -> None:
    rig = Rig()
    rig.run(5, ((37.95, 37.95), (37.0, 37.0)))  # setpoint 37 + 1.0: not above
    assert rig.sup.alarms == []
    rig.feed(((38.05, 38.05), (37.0, 37.0)))
    [alarm] = rig.sup.alarms
    assert (alarm.name, alarm.cushion, alarm.since) == ("high_temperature", 0, rig.clock.now())
    assert "setpoint" in alarm.detail
    rig.run(10, ((37.85, 37.85), (37.0, 37.0)))  # within the 0.2 °C hysteresis: stays
    assert rig.sup.alarms == [alarm]
    rig.feed(((37.75, 37.75), (37.0, 37.0)))  # below 38.0 - 0.2
    assert rig.sup.alarms == []
    assert [(e.kind, e.cushion, e.reason) for e in rig.events] == [
        ("alarm", 0, "high_temperature"), ("alarm_cleared", 0, "high_temperature")]
    assert rig.sup.trips == []  # a warning, not a trip


def test_high_temperature_alarm_absolute_level_and_heat_off() -> None:
    rig = Rig()
    sp40 = (40.0, 40.0)
    rig.run(5, ((40.45, 40.45), (37.0, 37.0)), setpoints=sp40)  # 40 + 1 > 40.5: 40.5 rules
    assert rig.sup.alarms == []
    rig.feed(((40.55, 40.55), (37.0, 37.0)), setpoints=sp40)
    assert [a.cushion for a in rig.sup.alarms] == [0] and "40.5" in rig.sup.alarms[0].detail
    rig.feed(((40.35, 40.35), (37.0, 37.0)), setpoints=sp40)
    assert rig.sup.alarms != []
    rig.feed(((40.25, 40.25), (37.0, 37.0)), setpoints=sp40)
    assert rig.sup.alarms == []
    # with the heat off the setpoint is no target: only the absolute level counts
    rig.run(5, ((37.0, 37.0), (39.5, 39.5)), heat_on=(True, False))
    assert rig.sup.alarms == []
    rig.feed(((37.0, 37.0), (40.6, 40.6)), heat_on=(True, False))
    assert [a.cushion for a in rig.sup.alarms] == [1]


# --- sensor_open / sensor_short -------------------------------------------------------------


@pytest.mark.parametrize("fault", ["open", "short"])
@pytest.mark.parametrize("which", [0, 1])
def test_broken_sensor_trips_its_cushion_at_the_first_report(fault: str, which: int) -> None:
    rig = Rig()
    rig.run(5, both(37.0))
    pair: list[Temp] = [37.0, 37.0]
    pair[which] = fault
    rig.feed(((37.0, 37.0), pair))
    [trip] = rig.sup.trips
    assert (trip.reason, trip.cushion) == (f"sensor_{fault}", 1)
    assert ("primary", "redundant")[which] in trip.detail and fault in trip.detail
    assert rig.sup.permitted(0) and not rig.sup.permitted(1)
    assert rig.sup.gate((0.4, 0.9)) == (0.4, 0.0)
    assert rig.sup.relay_allowed
    res = rig.sup.reset("nurse", cushion=1)
    assert not res.ok and res.refused[0][0] == trip and fault in res.refused[0][1]
    rig.feed(both(37.0))  # repaired: still latched until a person resets it
    assert rig.sup.trips == [trip]
    res = rig.sup.reset("nurse", cushion=1)
    assert res.ok and res.cleared == [trip]
    assert [(e.kind, e.actor) for e in rig.events] == [
        ("trip", None), ("reset_refused", "nurse"), ("trip_reset", "nurse")]


def test_broken_sensor_reset_waits_for_every_sensor_it_involved() -> None:
    rig = Rig()
    rig.feed((("open", 37.0), (37.0, 37.0)))
    rig.feed((("open", "open"), (37.0, 37.0)))  # the same trip: not raised again
    assert rig.reasons() == [("sensor_open", 0)] and len(rig.kinds("trip")) == 1
    rig.feed(((37.0, "open"), (37.0, 37.0)))
    res = rig.sup.reset("nurse", 0)
    assert not res.ok and "redundant open" in res.refused[0][1]
    rig.feed(both(37.0))
    assert rig.sup.reset("nurse", 0).ok


def test_sensor_out_of_range_is_a_broken_sensor() -> None:
    rig = Rig()
    rig.feed(((37.0, 61.0), (-1.0, 37.0)))  # the link classifies 0..60 °C
    assert sorted(rig.reasons()) == [("sensor_open", 1), ("sensor_short", 0)]


def test_a_sensor_dropping_out_of_the_mean_is_not_a_rise() -> None:
    """The mean of the intact sensors jumps when one breaks; rates are judged per sensor."""
    rig = Rig(seed=4)
    warm = ramp(lambda t: 36.0 + 0.17 * t / 60)
    rig.run(60, lambda t: ((warm(t)[0][0] - 0.45, warm(t)[0][0] + 0.45), (37.0, 37.0)),
            applied=(1.0, 0.2), noise=0.03)
    rig.run(120, lambda t: (("open", warm(60 + t)[0][0] + 0.45), (37.0, 37.0)),
            applied=(1.0, 0.2), noise=0.03)
    assert rig.reasons() == [("sensor_open", 0)]


# --- sensor_disagree ------------------------------------------------------------------------


def test_sensor_disagree_after_5_s_continuously_apart() -> None:
    rig = Rig()
    rig.run(5, both(37.0))
    t = rig.run(10, ((38.2, 37.0), (37.0, 37.0)), until="sensor_disagree")
    assert t is not None and SAFE.sensor_disagree_s < t <= SAFE.sensor_disagree_s + 2 * DT
    [trip] = rig.sup.trips
    assert trip.cushion == 0 and "1.2" in trip.detail
    assert rig.sup.permitted(1) and not rig.sup.permitted(0)
    res = rig.sup.reset("nurse", 0)
    assert not res.ok and "apart" in res.refused[0][1]
    rig.feed(((37.6, 37.0), (37.0, 37.0)))
    assert rig.sup.reset("nurse", 0).ok and rig.sup.trips == []


def test_sensor_disagree_not_just_under_the_limit_nor_when_interrupted() -> None:
    rig = Rig(seed=2)
    rig.run(60, ((exact(37.9), exact(37.0)), (37.0, 37.0)))
    rig.run(60, ((37.9, 37.0), (37.0, 37.0)), noise=0.03)
    for _ in range(5):  # 4.8 s apart, one report within the limit, again
        rig.run(4.8, ((38.2, 37.0), (37.0, 37.0)))
        rig.feed(((37.5, 37.0), (37.0, 37.0)))
    assert rig.sup.trips == []


def test_sensor_disagree_reset_needs_both_sensors_reading() -> None:
    rig = Rig()
    rig.run(6, ((37.0, 39.0), (37.0, 37.0)))
    rig.feed(((37.0, "open"), (37.0, 37.0)))
    res = rig.sup.reset("nurse")
    assert {t.reason for t, _ in res.refused} == {"sensor_disagree", "sensor_open"}
    assert any("both sensors" in why for _, why in res.refused)


# --- no_rise --------------------------------------------------------------------------------


def test_no_rise_after_the_window_at_high_output_below_setpoint() -> None:
    rig = Rig(seed=1)
    w = SAFE.no_rise_window_s
    # 0.1 °C in the window at 80 %: less than a 240 W heater gives the heaviest cushion at
    # 30 °C in a 12 °C room through 6 W/K (~0.33 °C), so less than any working heater
    temps = ramp(lambda t: 30.0 + 0.1 * t / w, lambda t: 30.0 + 0.17 * t / 60)
    t = rig.run(w + 60, temps, applied=(SAFE.no_rise_min_output, 1.0), until="no_rise",
                noise=0.03)
    assert t is not None and w <= t <= w + 3
    [trip] = rig.sup.trips
    assert trip.cushion == 0 and "heater or relay" in trip.detail
    assert rig.sup.permitted(1) and not rig.sup.permitted(0) and rig.sup.relay_allowed
    # a reset is accepted (it can only be judged by heating again) and says so
    res = rig.sup.reset("nurse", 0)
    assert res.ok and res.cleared == [trip]
    assert "heating again" in rig.kinds("trip_reset")[0].detail
    # judged afresh: another full window before it trips again
    t1 = t + 10.0
    held = 30.0 + 0.1 * t / w  # where the weak heater got to: it stays there
    again = ramp(lambda t: held, lambda t: 30.0 + 0.17 * (t1 + t) / 60)
    assert rig.run(w - 5, again, applied=(1.0, 1.0), until="no_rise") is None
    t1 += w - 5
    assert rig.run(20, again, applied=(1.0, 1.0), until="no_rise") is not None
    assert rig.reasons() == [("no_rise", 0)]


def test_no_rise_not_when_rising_enough_or_output_lower_or_at_setpoint() -> None:
    w = SAFE.no_rise_window_s
    rig = Rig(seed=3)
    rig.run(w + 120, ramp(lambda t: 30.0 + 0.6 * t / w), applied=(1.0, 1.0), noise=0.03)
    assert rig.sup.trips == []
    rig = Rig()
    rig.run(w + 120, both(30.0), applied=(0.79, 0.79))
    assert rig.sup.trips == []
    rig = Rig()
    rig.run(w + 120, both(37.05), applied=(1.0, 1.0))  # not below the setpoint
    assert rig.sup.trips == []
    rig = Rig()  # reaching the setpoint once restarts the window
    rig.run(w / 2, both(36.9), applied=(1.0, 1.0))
    rig.feed(both(37.05), applied=(1.0, 1.0))
    rig.run(w / 2 + 60, both(36.9), applied=(1.0, 1.0))
    assert rig.sup.trips == []


# --- rise_too_fast --------------------------------------------------------------------------


def test_rise_too_fast_within_a_minute_and_reset_once_it_stops() -> None:
    rig = Rig(seed=5)
    normal = 0.17  # °C/min at full power
    rig.run(120, ramp(lambda t: 30.0 + normal * t / 60), applied=(1.0, 1.0), noise=0.03)
    w0 = 30.0 + normal * 2
    t = rig.run(90, ramp(lambda t: w0 + 1.5 * t / 60, lambda t: w0 + normal * t / 60),
                applied=(1.0, 1.0), until="rise_too_fast", noise=0.03)
    assert t is not None and t <= 45.0
    [trip] = rig.sup.trips
    assert trip.cushion == 0 and "primary" in trip.detail and "redundant" in trip.detail
    assert rig.sup.permitted(1) and not rig.sup.permitted(0) and rig.sup.relay_allowed
    w1 = w0 + 1.5 * t / 60
    other = w0 + normal * t / 60  # cushion 1 keeps warming normally
    rig.run(10, ramp(lambda t: w1 + 1.5 * t / 60, lambda t: other + normal * t / 60),
            applied=(0.0, 1.0), noise=0.03)
    res = rig.sup.reset("nurse", 0)
    assert not res.ok and "rising" in res.refused[0][1]
    rig.run(RATE_WINDOW_S + 5, ((w1 + 0.25, w1 + 0.25), (other, other)), applied=(0.0, 1.0),
            noise=0.03)
    res = rig.sup.reset("nurse", 0)
    assert res.ok and res.cleared == [trip]
    rig.run(60, ((w1 + 0.25, w1 + 0.25), (other, other)), applied=(1.0, 1.0), noise=0.03)
    assert rig.sup.trips == []


def test_rise_too_fast_reset_refused_while_the_rate_is_unknown() -> None:
    rig = Rig()
    rig.run(60, ramp(lambda t: 30.0 + 2.0 * t / 60), applied=(1.0, 0.2), until="rise_too_fast")
    rig.feed((("open", "open"), (37.0, 37.0)))  # the histories go with the sensors
    rig.run(5, both(32.0))
    res = rig.sup.reset("nurse", 0)
    assert [t.reason for t in res.cleared] == ["sensor_open"]
    [(trip, why)] = res.refused
    assert trip.reason == "rise_too_fast" and "not known yet" in why


@settings(max_examples=20, deadline=None)
@given(rate=st.floats(-1.0, 0.8), sigma=st.floats(0.0, 0.03), seed=st.integers(0, 2**30))
def test_a_rise_slower_than_the_limit_never_trips(rate: float, sigma: float, seed: int) -> None:
    """The absolute limit alone: up to 0.8 °C/min at 50 % is more than the plate model
    allows a full cushion (``test_model_*`` below), so the model rule is out of the way."""
    rig = Rig(ABSOLUTE_ONLY, seed=seed)
    rig.run(240, ramp(lambda t: 32.0 + rate * t / 60, lambda t: 32.0 + rate * t / 60),
            applied=(0.5, 0.5), noise=sigma)
    assert rig.sup.trips == []


@settings(max_examples=20, deadline=None)
@given(rate=st.floats(1.2, 4.0), sigma=st.floats(0.0, 0.03), seed=st.integers(0, 2**30))
def test_a_rise_faster_than_the_limit_trips_within_a_minute(rate: float, sigma: float,
                                                            seed: int) -> None:
    rig = Rig(seed=seed)
    rig.run(30, both(32.0), applied=(0.5, 0.5), noise=sigma)
    t = rig.run(60, ramp(lambda t: 32.0 + rate * t / 60, 32.0), applied=(0.5, 0.5),
                until="rise_too_fast", noise=sigma)
    assert t is not None and t <= 45.0
    assert rig.reasons() == [("rise_too_fast", 0)]


# --- rise_too_fast: the plate model (a leak) ------------------------------------------------

#: the full heater's rate into a full cushion (°C/min) and the water's normal rate at full
#: power at 37 °C in the estimated room (the plate settled at full power)
FULL_RATE = PLANT.heater_w / (PLANT.water_kg * PLANT.water_specific_heat_j_per_kg_k) * 60
NORMAL = (PLANT.heater_w - PLANT.loss_to_room_w_per_k * (37.0 - ROOM_ESTIMATE_C)) / (
    PLANT.water_kg * PLANT.water_specific_heat_j_per_kg_k) * 60


def _warm(rig: Rig, seconds: float, w0: float, applied: float = 1.0) -> float:
    """Both cushions rising at the normal full-power rate (the plate settled): the water
    at the end."""
    rig.run(seconds, ramp(lambda t: w0 + NORMAL * t / 60, lambda t: w0 + NORMAL * t / 60),
            applied=(applied, applied), noise=0.03)
    return w0 + NORMAL * seconds / 60


#: rise_too_fast's plausible limit at 37 °C (both cushions alike): 1.1 x the strongest
#: plausible heater (360 W) into the lightest plausible cushion (15 kg), less the least
#: loss (2 W/K to a 30 °C room), + 0.1 °C/min
PLAUSIBLE_37 = (SAFE.rise_too_fast_model_ratio * (360.0 - 2.0 * 7.0) / (15.0 * 4186.0) * 60
                + SAFE.rise_too_fast_model_margin_c_per_min)


def test_plausible_limit_numbers() -> None:
    """The limit does not depend on the model's cushion nor on the output (a welded relay
    heats at full power whatever the board reports): 0.46 °C/min at 37 °C, heating or
    not."""
    rig = Rig(seed=21)
    _warm(rig, 400, 36.7)
    cu = rig.sup._cushions[0]
    assert 0.45 < PLAUSIBLE_37 < 0.48
    assert cu.limit == pytest.approx(PLAUSIBLE_37, abs=0.01)
    rig.run(600, both(37.0), applied=(0.0, 0.0), noise=0.03)
    assert cu.limit == pytest.approx(PLAUSIBLE_37, abs=0.003)
    assert rig.sup.trips == []


def test_plausible_trips_a_rise_no_full_cushion_can_make() -> None:
    """At full power the water rises at 0.6 °C/min: faster than 360 W can heat 15 kg,
    below the absolute limit.  It trips that cushion within ~45 s (30 s rate window,
    5 s confirmation), saying why."""
    rig = Rig(seed=22)
    w = _warm(rig, 300, 35.0)
    t = rig.run(120, ramp(lambda t: w + 0.6 * t / 60, lambda t: w + NORMAL * t / 60),
                applied=(1.0, 1.0), until="rise_too_fast", noise=0.03)
    assert t is not None and t <= 45.0
    [trip] = rig.sup.trips
    assert (trip.reason, trip.cushion) == ("rise_too_fast", 0)
    assert "faster than any full cushion can: leaking or empty cushion?" in trip.detail
    assert rig.sup.permitted(1) and not rig.sup.permitted(0) and rig.sup.relay_allowed


def test_plausible_never_trips_a_light_cushion_with_a_strong_heater() -> None:
    """A rate just under the limit at full power (a 15 kg cushion, 360 W: what the former
    model rule took for a leak), held for minutes, trips nothing."""
    rig = Rig(seed=23)
    w = _warm(rig, 300, 35.0)
    lim = PLAUSIBLE_37 - 0.05
    rig.run(300, ramp(lambda t: w + lim * t / 60, lambda t: w + NORMAL * t / 60),
            applied=(1.0, 1.0), noise=0.03)
    assert rig.sup.trips == []


def test_capacity_drop_at_a_steady_output_trips() -> None:
    """At full power, the plate settled, the water near 35.5 °C rising at the normal
    rate: the rate then grows by 60 % (the cushion lost 38 % of its water) and trips
    ``rise_too_fast`` against the cushion's own reference, long before the plausible
    limit.  (On colder water the limit also allows what a client getting on or off can
    change: up to 10 W/K × the distance from 35.5 °C.)"""
    rig = Rig(seed=26)
    w = _warm(rig, 600, 34.0)
    assert rig.sup._cushions[0].ref_rate == pytest.approx(NORMAL, abs=0.02)
    t = rig.run(300, ramp(lambda t: w + 1.6 * NORMAL * t / 60,
                          lambda t: w + NORMAL * t / 60),
                applied=(1.0, 1.0), until="rise_too_fast", noise=0.03)
    assert t is not None and t <= 90.0
    [trip] = rig.sup.trips
    assert trip.cushion == 0 and "faster than it did at the same output" in trip.detail


def test_capacity_reference_needs_a_settled_plate_and_a_steady_output() -> None:
    """No reference before the plate has settled (the first report's output is no
    evidence), and none kept when the output moves away: a rate growing while the output
    changes is not judged against it."""
    rig = Rig(seed=27)
    _warm(rig, 300, 30.0)
    assert rig.sup._cushions[0].ref_rate is None
    w = _warm(rig, 300, 30.0 + NORMAL * 5)
    assert rig.sup._cushions[0].ref_rate is not None
    rig.run(120, ramp(lambda t: w + 1.6 * NORMAL * t / 60, lambda t: w + NORMAL * t / 60),
            applied=(0.6, 1.0), noise=0.03)
    assert rig.sup._cushions[0].ref_rate is None and not rig.has("rise_too_fast")


def test_model_needs_every_intact_sensor() -> None:
    """One sensor rising fast while its partner rises normally is not the water."""
    rig = Rig(seed=24)
    w = _warm(rig, 300, 35.0)
    rig.run(90, lambda t: ((w + 0.6 * t / 60, w + NORMAL * t / 60),
                           (w + NORMAL * t / 60, w + NORMAL * t / 60)),
            applied=(1.0, 1.0), noise=0.03)
    assert not rig.has("rise_too_fast")


def test_plausible_trip_resets_once_the_rate_is_within_the_limit() -> None:
    rig = Rig(seed=25)
    w = _warm(rig, 300, 35.0)
    t = rig.run(120, ramp(lambda t: w + 0.6 * t / 60, lambda t: w + NORMAL * t / 60),
                applied=(1.0, 1.0), until="rise_too_fast", noise=0.03)
    assert t is not None
    w1 = w + 0.6 * t / 60
    w2 = w + NORMAL * t / 60
    # cushion 0 off; its water still rises at 0.55 °C/min (the plate's heat, little water):
    # above the plausible limit, though below the absolute 1.0 °C/min
    rig.run(60, ramp(lambda t: w1 + 0.55 * t / 60, lambda t: w2 + NORMAL * t / 60),
            applied=(0.0, 1.0), noise=0.03)
    res = rig.sup.reset("nurse", 0)
    assert not res.ok and "rising faster than" in res.refused[0][1]
    w1 += 0.55
    rig.run(60, ramp(lambda t: w1, lambda t: w2 + NORMAL * (60 + t) / 60),
            applied=(0.0, 1.0), noise=0.03)
    res = rig.sup.reset("nurse", 0)
    assert res.ok and [x.reason for x in res.cleared] == ["rise_too_fast"]


# --- rise_while_off -------------------------------------------------------------------------


def test_rise_while_off_opens_the_relay() -> None:
    rig = Rig(seed=6)
    rig.run(60, both(36.0), applied=(0.0, 0.0), noise=0.03)
    t = rig.run(400, ramp(lambda t: 36.0, lambda t: 36.0 + 0.2 * t / 60), applied=(0.0, 0.0),
                commanded=(0.0, 0.0), until="rise_while_off", noise=0.03)
    # 0.5 °C at 0.2 °C/min is 150 s; plus the 1 s decimation and noise
    assert t is not None and 125 <= t <= 165
    [trip] = rig.sup.trips
    assert trip.cushion == 1 and "welded" in trip.detail
    assert not rig.sup.relay_allowed
    assert not rig.sup.permitted(0) and rig.sup.gate((1.0, 1.0)) == (0.0, 0.0)
    # still rising: refused; flat: accepted, and not tripped again on the old evidence
    w1 = 36.0 + 0.2 * t / 60
    rig.run(20, ramp(lambda t: 36.0, lambda t: w1 + 0.2 * t / 60), applied=(0.0, 0.0),
            noise=0.03)
    # a therapist may never reset a welded relay: with the relay open nothing shows it
    # has been repaired (service lockout); a service person's reset is judged on the data
    res = rig.sup.reset("therapist")
    assert not res.ok and "only a service person" in res.refused[0][1]
    res = rig.sup.reset("tech", service_reason="SSR replaced")
    assert not res.ok and "rising" in res.refused[0][1]
    rig.run(60, ((36.0, 36.0), (w1 + 0.07, w1 + 0.07)), applied=(0.0, 0.0), noise=0.03)
    assert not rig.sup.reset("therapist").ok and not rig.sup.relay_allowed
    res = rig.sup.reset("tech", service_reason="SSR replaced")
    assert res.ok and res.cleared == [trip] and rig.sup.relay_allowed
    [ev] = rig.kinds("trip_reset")
    assert ev.actor == "tech" and "service reset: SSR replaced" in ev.detail
    rig.run(400, ((36.0, 36.0), (w1 + 0.07, w1 + 0.07)), applied=(0.0, 0.0), noise=0.03)
    assert rig.sup.trips == []


def test_rise_while_off_boundary_and_not_while_heating() -> None:
    def rise(by: float) -> Callable[[float], Temps]:
        # over 4 min: about what a welded 300 W heater does to a full cushion
        return ramp(lambda t: 36.0 + by * min(t, 240) / 240, 36.0)

    rig = Rig()
    rig.run(30, both(36.0), applied=(0.0, 0.0))
    rig.run(260, rise(0.45), applied=(0.0, 0.0))
    assert rig.sup.trips == []
    rig = Rig()
    rig.run(30, both(36.0), applied=(0.0, 0.0))
    assert rig.run(260, rise(0.55), applied=(0.0, 0.0), until="rise_while_off") is not None
    assert rig.reasons() == [("rise_while_off", 0)]
    rig = Rig()  # the heater at 1 %: not "off"
    rig.run(400, ramp(lambda t: 36.0 + 0.2 * t / 60, 36.0), applied=(0.01, 0.01))
    assert rig.sup.trips == []


def test_rise_while_off_ignores_the_heater_plates_stored_heat() -> None:
    """After full power stops the plate (up to ~10 K above the water, ~2 kJ/K) still
    heats the water by ~0.2 °C with a ~67 s time constant."""
    rig = Rig(seed=7)
    rig.run(600, ramp(lambda t: 33.0 + 0.17 * t / 60), applied=(1.0, 1.0), noise=0.03)
    w = 33.0 + 0.17 * 10

    def after(t: float) -> float:
        return w + 0.2 * (1.0 - math.exp(-t / 67.0)) - 0.02 * t / 60

    rig.run(900, ramp(after, after), applied=(0.0, 0.0), noise=0.03)
    assert rig.sup.trips == []


# --- stale_telemetry ------------------------------------------------------------------------


def test_no_stale_trip_before_the_first_report_then_it_counts() -> None:
    """A link that never delivered cannot go stale (nothing heats without reports); once a
    report has arrived, silence trips as usual."""
    rig = Rig(arm=False)
    for _ in range(50):
        rig.clock.advance(0.1)
        rig.sup.check()
    assert rig.sup.trips == []
    rig.feed()
    rig.clock.advance(0.95)
    rig.sup.check()
    assert rig.sup.trips == []
    rig.clock.advance(0.1)
    rig.sup.check()
    assert rig.reasons() == [("stale_telemetry", None)]


def test_stale_telemetry_after_the_last_report_and_its_reset() -> None:
    rig = Rig()
    rig.run(10, both(37.0))
    r = rig.sup._last_reading
    assert r is not None
    rig.clock.advance(SAFE.stale_telemetry_s)
    rig.sup.check()
    assert rig.sup.trips == []
    rig.sup.observe(r, (0.2, 0.2), (37.0, 37.0), (True, True))  # the same report again
    rig.clock.advance(0.02)
    rig.sup.check()
    [trip] = rig.sup.trips
    assert trip.reason == "stale_telemetry" and trip.cushion is None
    assert "1.02" in trip.detail
    assert rig.sup.gate((0.5, 0.5)) == (0.0, 0.0) and rig.sup.relay_allowed
    res = rig.sup.reset("nurse", cushion=1)  # table-wide: any cushion's reset considers it
    assert not res.ok and "no telemetry" in res.refused[0][1]
    rig.feed(both(37.0))
    assert rig.sup.reset("nurse", cushion=1).ok and rig.sup.trips == []


def test_staleness_counts_from_when_the_report_arrived() -> None:
    rig = Rig()
    rig.feed()
    late = make_reading(rig.clock.now() - 0.9, rig.uptime_ms + 200, both(37.0), (0.2, 0.2))
    rig.sup.observe(late, (0.2, 0.2), (37.0, 37.0), (True, True))  # observed 0.9 s late
    rig.clock.advance(0.15)
    rig.sup.check()
    assert rig.reasons() == [("stale_telemetry", None)]


def test_the_same_report_observed_again_counts_once() -> None:
    rig = Rig()
    r = rig.feed(((39.0, 37.0), (37.0, 37.0)))  # 2 °C apart, but only one report
    for _ in range(40):
        rig.clock.advance(DT)
        rig.sup.observe(r, (0.2, 0.2), (37.0, 37.0), (True, True))
        rig.sup.control_heartbeat()
    assert rig.sup.trips == []
    rig.sup.check()
    assert rig.reasons() == [("stale_telemetry", None)]


# --- control_stall --------------------------------------------------------------------------


def test_control_stall_only_once_armed() -> None:
    rig = Rig(arm=False)
    rig.run(20, both(37.0), heartbeat=False)
    assert rig.sup.trips == []
    assert rig.sup.gate((0.5, 0.5)) == (0.0, 0.0)  # not armed: nothing reaches the board
    rig.sup.arm()
    assert rig.sup.gate((0.5, 0.5)) == (0.5, 0.5)
    rig.run(SAFE.control_stall_s - DT, both(37.0), heartbeat=False)
    assert rig.sup.trips == []
    t = rig.run(1, both(37.0), heartbeat=False, until="control_stall")
    assert t is not None and t <= 2 * DT + 1e-9
    assert rig.sup.trips[0].cushion is None and "no control cycle" in rig.sup.trips[0].detail
    assert rig.sup.gate((0.5, 0.5)) == (0.0, 0.0)
    res = rig.sup.reset("nurse")
    assert not res.ok and "still no control cycle" in res.refused[0][1]
    rig.feed(both(37.0))  # with a heartbeat
    assert rig.sup.reset("nurse").ok


def test_heartbeats_keep_the_stall_away() -> None:
    rig = Rig()
    for _ in range(30):
        rig.run(2.8, both(37.0), heartbeat=False)
        rig.sup.control_heartbeat()
    assert rig.sup.trips == []


# --- board_fault ----------------------------------------------------------------------------


def test_board_fault_from_link_events() -> None:
    rig = Rig()
    rig.feed()
    for kind in ("connected", "disconnected", "stale", "command_failed", "command_refused",
                 "handshake_failed", "incompatible"):
        rig.sup.link_event(LinkEvent(kind, rig.clock.now(), "whatever"))
    assert rig.sup.trips == []
    rig.sup.link_event(LinkEvent("board_fault", rig.clock.now(), "deadman_0",
                                 {"raised": 0x01, "active": 0x01}))
    [trip] = rig.sup.trips
    assert (trip.reason, trip.cushion) == ("board_fault", None)
    assert "deadman_0" in trip.detail and trip.service is None
    assert rig.sup.gate((0.5, 0.5)) == (0.0, 0.0) and rig.sup.relay_allowed
    # the cut-out that follows makes it a trip for a service person; the relay stays open
    rig.sup.link_event(LinkEvent("board_fault", rig.clock.now(), "cutout_1",
                                 {"raised": 0x80, "active": 0x81}))
    [trip] = rig.sup.trips
    assert "deadman_0" in trip.detail and "cutout_1" in trip.detail
    assert trip.service and "cut-out" in trip.service and not rig.sup.relay_allowed
    res = rig.sup.reset("nurse", service_reason="plate refilled")
    assert not res.ok and "no telemetry report since" in res.refused[0][1]
    flags = int(p.Fault.DEADMAN_0 | p.Fault.CUTOUT_1)
    rig.feed(faults=flags)
    res = rig.sup.reset("nurse", service_reason="plate refilled")
    assert not res.ok and "deadman_0" in res.refused[0][1]
    rig.feed(faults=0)
    res = rig.sup.reset("nurse")
    assert not res.ok and "only a service person" in res.refused[0][1]
    assert rig.sup.reset("tech", service_reason="plate refilled").ok and rig.sup.trips == []
    with pytest.raises(ValueError, match="reason"):
        rig.sup.reset("tech", service_reason="  ")
    rig.sup.link_event(LinkEvent("board_reset", rig.clock.now(), "board uptime went back"))
    assert "unexpected reset" in rig.sup.trips[0].detail


def test_board_fault_from_the_flags_in_telemetry() -> None:
    rig = Rig()
    rig.feed(faults=int(p.Fault.RESET))  # the first report: the board's past, cleared at start
    rig.run(2, both(37.0), faults=int(p.Fault.RESET))
    assert rig.sup.trips == []
    rig.run(2, both(37.0))
    rig.feed(faults=int(p.Fault.LIMIT_HOT_1))
    [trip] = rig.sup.trips
    assert trip.reason == "board_fault" and "limit_hot_1" in trip.detail
    rig.run(1, both(37.0), faults=int(p.Fault.LIMIT_HOT_1 | p.Fault.DEADMAN_0))
    # latched once; the dead-man that followed adds to it (a second trip event says so)
    assert len(rig.kinds("trip")) == 2 and "deadman_0" in rig.kinds("trip")[1].detail
    assert rig.sup.trips[0].flags == int(p.Fault.LIMIT_HOT_1 | p.Fault.DEADMAN_0)
    rig.feed()
    assert rig.sup.trips[0].service and not rig.sup.relay_allowed  # the board's hot limit
    res = rig.sup.reset("nurse")
    assert not res.ok and "only a service person" in res.refused[0][1]
    assert rig.sup.reset("tech", service_reason="checked the SSRs").ok
    rig.feed(faults=int(p.Fault.RESET))  # the board rebooted
    assert "unexpected reset" in rig.sup.trips[0].detail


@pytest.mark.parametrize("flag", ["DEADMAN_0", "DEADMAN_1", "LIMIT_HOT_0", "LIMIT_HOT_1",
                                  "LIMIT_SENSOR_0", "LIMIT_SENSOR_1", "CUTOUT_0", "CUTOUT_1"])
def test_a_flag_latched_at_the_first_report_is_a_trip(flag: str) -> None:
    """Issue 9: a controller restarted against a board whose dead-man fired (or any other
    flag latched) must not show a table that cannot heat as heating."""
    rig = Rig()
    rig.sup.note_previous_run("The previous controller run ended without a clean stop.")
    bit = int(p.Fault[flag])
    rig.uptime_ms = 125_000
    rig.feed(faults=bit | int(p.Fault.RESET))
    [trip] = rig.sup.trips
    assert (trip.reason, trip.cushion, trip.flags) == ("board_fault", None, bit)
    assert f"{flag}:" in trip.detail and "when the controller connected" in trip.detail
    assert "running for 2.1 min" in trip.detail and "without a clean stop" in trip.detail
    assert rig.sup.gate((1.0, 1.0)) == (0.0, 0.0)
    service = flag.startswith(("LIMIT_HOT", "CUTOUT"))
    assert (trip.service is not None) is service and rig.sup.relay_allowed is not service
    rig.run(1, AT_37, faults=bit)  # still latched: no second trip
    assert len(rig.kinds("trip")) == 1
    assert not rig.sup.reset("therapist").ok
    rig.feed()  # the board cleared it
    assert rig.sup.reset("therapist").ok is not service
    assert rig.sup.reset("tech", service_reason="checked").ok and rig.sup.trips == []


@settings(max_examples=80, deadline=None)
@given(first=st.integers(0, 0x1FF), later=st.integers(0, 0x1FF),
       reconnect=st.booleans())
def test_latched_flags_are_trips_whenever_seen(first: int, later: int, reconnect: bool) -> None:
    """Property: a flag other than RESET in the first report of a connection trips; so
    does any flag that appears later; a service-only flag among them keeps the relay open
    and only a service reset clears the trip; nothing else trips."""
    rig = Rig()
    rig.feed(faults=first)
    assert bool(rig.sup.trips) == bool(first & ~int(p.Fault.RESET))
    if reconnect:
        rig.sup.link_event(LinkEvent("disconnected", rig.clock.now(), "port error"))
        rig.sup.link_event(LinkEvent("connected", rig.clock.now(), "serial 1"))
    rig.feed(faults=later)
    reset_bit = int(p.Fault.RESET)
    # RESET trips only when it appears after the first report (an unexpected restart)
    expect = bool((first | later) & ~reset_bit) or bool(later & ~first & reset_bit)
    assert bool(rig.sup.trips) == expect
    service = bool((first | later) & SERVICE_ONLY_FLAGS)
    assert rig.sup.service_needed is service and rig.sup.relay_allowed is not service
    rig.feed()  # the board's flags cleared
    if service:
        assert not rig.sup.reset("therapist").ok
    assert rig.sup.reset("tech", service_reason="inspected").ok and rig.sup.trips == []


def test_the_boot_reset_alone_is_expected_at_the_first_connection_only() -> None:
    rig = Rig()
    rig.run(1, AT_37, faults=int(p.Fault.RESET))
    assert rig.sup.trips == []
    rig.run(1, AT_37)
    rig.sup.link_event(LinkEvent("disconnected", rig.clock.now(), "port error"))
    rig.clock.advance(12.0)
    rig.sup.link_event(LinkEvent("connected", rig.clock.now(), "serial 1"))
    rig.feed(faults=int(p.Fault.RESET))  # a later connection: the board restarted meanwhile
    assert "unexpected reset" in rig.sup.trips[0].detail


def test_flags_found_at_a_reconnection_say_how_long_the_link_was_down() -> None:
    rig = Rig()
    rig.run(2, AT_37)
    rig.sup.link_event(LinkEvent("disconnected", rig.clock.now(), "port error"))
    rig.clock.advance(20.0)
    rig.sup.link_event(LinkEvent("connected", rig.clock.now(), "serial 1"))
    deadman = int(p.Fault.DEADMAN_0 | p.Fault.DEADMAN_1)
    rig.feed(faults=deadman)
    [trip] = rig.sup.trips
    assert "DEADMAN_0, DEADMAN_1: the board switched heaters 0 and 1 off" in trip.detail
    assert "down for 20 s before this connection" in trip.detail


def test_a_restored_service_lockout_stays_until_a_service_reset() -> None:
    rig = Rig()
    rig.sup.restore("rise_while_off", 1, "carried over: welded relay?")
    [trip] = rig.sup.trips
    assert trip.service and not rig.sup.relay_allowed
    assert rig.kinds("trip")[0].service == trip.service  # logged again, as a lockout
    rig.run(40, AT_37, applied=(0.0, 0.0))
    assert not rig.sup.reset("therapist").ok
    assert rig.sup.reset("tech", service_reason="SSR replaced").ok
    with pytest.raises(ValueError):
        rig.sup.restore("no_such_reason", None, "x")


# --- gate, reset, listeners -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(outs=st.tuples(st.floats(allow_nan=True, allow_infinity=True),
                      st.floats(allow_nan=True, allow_infinity=True)),
       broken=st.sampled_from([None, 0, 1, "hot"]))
def test_gate_only_ever_reduces(outs: tuple[float, float], broken: int | str | None) -> None:
    rig = Rig()
    temps: list[list[Temp]] = [[37.0, 37.0], [37.0, 37.0]]
    if broken == "hot":
        temps[0][0] = 41.5
    elif broken is not None:
        temps[int(broken)][1] = "open"
    rig.feed(temps)
    got = rig.sup.gate(outs)
    for c in (0, 1):
        want = min(max(outs[c], 0.0), 1.0) if outs[c] == outs[c] else 0.0
        assert 0.0 <= got[c] <= 1.0
        assert got[c] == (want if rig.sup.permitted(c) else 0.0)
    assert rig.sup.permitted(0) == (broken is None or broken == 1)
    assert rig.sup.permitted(1) == (broken is None or broken == 0)


def test_reset_arguments_and_scope() -> None:
    rig = Rig()
    for actor in ("", "   "):
        with pytest.raises(ValueError):
            rig.sup.reset(actor)
    with pytest.raises(ValueError):
        rig.sup.reset("nurse", cushion=2)
    assert rig.sup.reset("nurse").ok  # nothing latched: nothing to refuse
    rig.feed((("open", 37.0), (37.0, "short")))
    rig.sup.link_event(LinkEvent("board_fault", rig.clock.now(), "deadman_1"))
    rig.feed(both(37.0))
    res = rig.sup.reset("nurse", cushion=0)  # its own and the table-wide ones
    assert sorted(t.reason for t in res.cleared) == ["board_fault", "sensor_open"]
    assert rig.reasons() == [("sensor_short", 1)]
    assert rig.sup.permitted(0) and not rig.sup.permitted(1)
    res = rig.sup.reset("nurse")
    assert res.ok and rig.sup.trips == []


def test_trips_are_latched_before_a_failing_listener_hears_of_them() -> None:
    clock = SimClock(0.0)
    heard: list[str] = []

    def listener(ev: SupervisorEvent) -> None:
        heard.append(ev.reason)
        raise RuntimeError("listener bug")

    sup = Supervisor(SafetyConfig(), clock, listener, plant=PLANT,
                     room_estimate_c=ROOM_ESTIMATE_C)
    sup.arm()
    clock.advance(DT)
    with pytest.raises(RuntimeError):
        sup.observe(make_reading(clock.now(), 100, ((41.5, "open"), (37.0, 37.0)), (0, 0)),
                    (0, 0), (37, 37), (True, True))
    assert {t.reason for t in sup.trips} == {"over_temperature", "sensor_open"}
    assert not sup.relay_allowed and sup.gate((1.0, 1.0)) == (0.0, 0.0)
    assert len(heard) == 1
    with pytest.raises(RuntimeError):
        sup.check()  # the undelivered event comes next
    assert len(heard) == 2
    assert [e.kind for e in sup.events] == ["trip", "trip", "alarm"]


def test_trips_listed_oldest_first() -> None:
    rig = Rig()
    rig.feed(((37.0, 37.0), ("open", 37.0)))
    rig.feed(((37.0, 37.0), ("open", "short")))
    rig.feed(((41.2, 37.0), ("open", "short")))
    assert rig.reasons() == [("sensor_open", 1), ("sensor_short", 1), ("over_temperature", 0)]
    times = [t.at for t in rig.sup.trips]
    assert times == sorted(times)


# --- normal use raises nothing; cost ---------------------------------------------------------


def test_a_normal_warm_up_and_hold_raises_nothing_and_stays_bounded() -> None:
    """15 -> 37 °C at full power (0.17 °C/min, the plate's 67 s lag at the start), then
    holding at 25 % with noise, for 2.5 h of reports."""
    rig = Rig(seed=11)
    rate = 0.17 / 60
    tau = 67.0
    t_end = (37.0 - 15.0) / rate + tau

    def water(t: float) -> float:
        if t >= t_end:
            return 37.0
        return min(37.0, 15.0 + rate * (t - tau * (1.0 - math.exp(-t / tau))))

    def out(t: float) -> tuple[float, float]:
        return (1.0, 1.0) if water(t) < 37.0 else (0.25, 0.25)

    rig.run(t_end + 1800, ramp(water, water), applied=out, noise=0.03)
    assert rig.sup.trips == [] and rig.sup.alarms == [] and rig.events == []
    for tracks in rig.sup._tracks:
        for tr in tracks:
            assert len(tr.hist) <= SAFE.no_rise_window_s + 5
            assert len(tr.offmin) <= SAFE.rise_while_off_window_s + 5
            assert len(tr.rate) <= RATE_WINDOW_S + 5


def test_observe_is_cheap() -> None:
    rig = Rig(seed=12)
    rng = random.Random(1)
    readings = [make_reading(0.0, i, ((37 + rng.gauss(0, .03), 37 + rng.gauss(0, .03)),
                                      (36 + rng.gauss(0, .03), 36 + rng.gauss(0, .03))),
                             (0.3, 0.0)) for i in range(1000)]
    sup, clock = rig.sup, rig.clock
    args = ((0.3, 0.0), (37.0, 37.0), (True, True))
    n = 20_000
    t0 = time.perf_counter()
    for i in range(n):
        clock.advance(DT)
        sup.observe(readings[i % 1000], *args)
    per_call_us = (time.perf_counter() - t0) / n * 1e6
    print(f"observe: {per_call_us:.1f} µs per call")
    assert per_call_us < 150.0  # generous: the budget is ~20 µs on a desktop
    assert sup.trips == []


# --- against the simulator's thermal plant ---------------------------------------------------


class PlantRig(Rig):
    """Readings from ``sim.plant.Plant`` (lag, noise, quantisation, injected faults); the
    outputs pass through ``gate`` and the relay follows ``relay_allowed``."""

    def __init__(self, initial: tuple[float, float] = (30.0, 30.0), seed: int = 3,
                 cfg: SafetyConfig | None = None, **plant: Any) -> None:
        super().__init__(cfg, seed=seed)
        cfg = PlantConfig(initial_water_c=list(initial), **plant)
        self.plant = Plant(cfg, SensorConfig(), random.Random(seed))
        self.relay = True
        self.last: BoardReading | None = None

    def water(self, c: int) -> float:
        assert self.last is not None
        cr = self.last.cushions[c]
        vals = [s.celsius for s in (cr.primary, cr.redundant) if s.celsius is not None]
        return sum(vals) / len(vals) if vals else 0.0

    def step(self, wanted: Sequence[float], setpoints: Sequence[float] = (37.0, 37.0)) -> None:
        drive = self.sup.gate(wanted)
        self.relay = self.relay and self.sup.relay_allowed
        self.plant.step(DT, drive, self.relay)
        temps = [[THERM.read(self.plant.sensor_counts(c, s)) for s in (0, 1)] for c in (0, 1)]
        applied = drive if self.relay else (0.0, 0.0)
        self.last = self.feed(temps, applied, setpoints=setpoints, commanded=drive)

    def thermostat(self, seconds: float, on: list[bool], sp: float = 37.0,
                   until: str | None = None) -> float | None:
        """The peer thermostat: on below sp - 0.3, off above sp + 0.3."""
        start = self.clock.now()
        for _ in range(round(seconds / DT)):
            if self.last is not None:
                for c in (0, 1):
                    w = self.water(c)
                    on[c] = True if w < sp - 0.3 else False if w > sp + 0.3 else on[c]
            self.step([1.0 if x else 0.0 for x in on], (sp, sp))
            if until is not None and self.has(until):
                return self.clock.now() - start
        return None


def test_plant_thermostat_warm_up_and_session_raise_nothing() -> None:
    rig = PlantRig((30.0, 31.0))
    on = [True, True]
    rig.thermostat(3600, on)
    rig.plant.set_client(0, True)
    rig.plant.set_client(1, True)
    rig.thermostat(3600, on)
    assert 36.5 < rig.plant.water_c[0] < 37.6
    assert rig.sup.trips == [] and rig.events == []


def test_plant_welded_relay_trips_rise_while_off_and_relay_open_stops_it() -> None:
    rig = PlantRig((36.0, 36.0))
    rig.plant.faults[1].heater_stuck_on = True
    t = None
    for i in range(round(600 / DT)):
        rig.step((0.0, 0.0), (35.0, 35.0))
        if rig.has("rise_while_off"):
            t = i * DT
            break
    # the plate's stored heat is allowed first (up to 0.55 °C after full power into the
    # lightest plausible cushion): 0.5 + that at the heater's ~0.16 °C/min here
    assert t is not None and t < 480
    assert rig.reasons() == [("rise_while_off", 1)]
    assert not rig.sup.relay_allowed and rig.plant.water_c[1] < 37.0
    for _ in range(round(600 / DT)):  # relay open: the plate's heat fades, then it is flat
        rig.step((0.0, 0.0), (35.0, 35.0))
    # the relay is still welded, but with the master relay open the water is flat: a
    # reset judged on the data alone would pass, so a therapist's is refused (service
    # lockout) and only a service person's, with a reason, is judged
    res = rig.sup.reset("therapist")
    assert not res.ok and "welded" in res.refused[0][1] and not rig.sup.relay_allowed
    assert rig.sup.reset("tech", service_reason="SSR replaced").ok
    assert rig.plant.water_c[1] < 37.0


@pytest.mark.parametrize("heating", [0.0, 1.0])
def test_plant_drifting_sensor_is_disagreement_not_a_rise(heating: float) -> None:
    rig = PlantRig((33.0, 33.0))
    for _ in range(round(120 / DT)):
        rig.step((heating, heating))
    rig.plant.faults[0].sensor_offset_c[0] = 2.0  # the primary steps 2 °C up
    for _ in range(round(400 / DT)):
        rig.step((heating, heating))
    assert rig.reasons() == [("sensor_disagree", 0)]
    trip_at = rig.kinds("trip")[0].time
    assert trip_at <= rig.clock.now() - 400 + SAFE.sensor_disagree_s + 2 * DT


def test_plant_dead_heater_trips_no_rise_on_its_cushion_only() -> None:
    rig = PlantRig((30.0, 30.0))
    rig.plant.faults[0].heater_dead = True
    t = rig.thermostat(900, [True, True], until="no_rise")
    assert t is not None and SAFE.no_rise_window_s <= t <= SAFE.no_rise_window_s + 3
    assert rig.reasons() == [("no_rise", 0)]


def leak_session(kg_per_min: float, initial: float, *, leak_at: float = 60.0, sp: float = 40.0,
                 after: float = 900.0, cfg: SafetyConfig | None = None,
                 **plant: Any) -> tuple[PlantRig, float | None, float]:
    """Both cushions heated by the peer thermostat at ``sp`` (full power up to sp - 0.3:
    the hardest heating there is, the plate ~10 K above the water), cushion 0 leaking
    ``kg_per_min`` from ``leak_at`` until empty and ``after`` seconds more.  Returns the
    rig, when ``rise_too_fast`` tripped cushion 0 (from the leak's start; None: never) and
    the highest true water of cushion 0 (the bag's temperature once it is empty).

    The plate stays wetted to the last drop (``wetted_below_kg = 0``, sim/plant.py):
    the pessimistic contact for the water (all the plate's stored heat reaches the last
    water, and the water's rate shows the leak the most), the one the water-rate rules
    must hold on without a plate sensor."""
    plant = {"wetted_below_kg": 0.0, **plant}
    rig = PlantRig((initial, initial), cfg=cfg, **plant)
    on = [True, True]
    rig.thermostat(leak_at, on, sp)
    rig.plant.faults[0].leak_kg_per_min = kg_per_min
    peak = rig.plant.water_c[0]
    tripped = None
    for i in range(round((PLANT.water_kg / kg_per_min * 60 + after) / DT)):
        rig.thermostat(DT, on, sp)
        peak = max(peak, rig.plant.water_c[0])
        if tripped is None and rig.has("rise_too_fast", 0):
            tripped = (i + 1) * DT
    assert rig.plant.water_kg[0] == 0.0
    return rig, tripped, peak


@pytest.mark.parametrize("kg_per_min,initial,room", [
    (1.0, 36.0, 21.0),  # the reproducer's warm-up (36 -> 40 °C), as in the scenario tests
    (2.0, 36.0, 21.0),
    (5.0, 36.0, 21.0),
    (3.0, 38.5, 28.0),  # late in the warm-up, the plate at its hottest, a warm room
    (20.0, 30.0, 21.0),  # a burst: safe only while the plate is below ~43 °C (see below)
])
def test_plant_leak_while_heating_hard_trips_before_the_water_reaches_41(
        kg_per_min: float, initial: float, room: float) -> None:
    """``rise_too_fast`` (the plausible limit: ~9 kg left of a 300 W cushion; or the
    cushion's own reference once its plate has settled at a steady output) catches the
    leak while enough water is left to take the plate's stored heat: the water, and the
    bag once drained, stay below 41 °C.  The trip is the only one: the plate's leftover
    heat afterwards is not a welded relay.  A 20 kg/min burst drains the cushion before
    any rate shows; it is safe only because the plate is still cool (~40 °C) when it
    begins (see the xfail below for the same burst from 36 °C water)."""
    rig, tripped, peak = leak_session(kg_per_min, initial, room_c=room)
    assert tripped is not None
    assert peak < SAFE.over_temperature_c
    [trip] = rig.sup.trips
    assert (trip.reason, trip.cushion) == ("rise_too_fast", 0)
    assert rig.sup.relay_allowed and rig.sup.permitted(1)
    assert rig.plant.water_c[1] > initial + 1.0  # the other cushion kept heating


def test_plant_leak_with_the_absolute_limit_alone_overheats() -> None:
    """What the model rule fixes: with only the 1.0 °C/min limit the same 5 kg/min leak
    trips late, and the plate's heat lifts the little water left above 41 °C."""
    _, tripped, peak = leak_session(5.0, 36.0, cfg=ABSOLUTE_ONLY, after=300.0)
    assert tripped is not None and tripped > 250.0
    assert peak > SAFE.over_temperature_c


@pytest.mark.xfail(strict=True, reason=(
    "physics limit, not a supervisor bug: a 20 kg/min burst drains the cushion in 75 s, "
    "less than the rate window, the sensor lag and the rise the leak needs to show; the "
    "empty bag settles near the plate, ~10 K above the water at full power"))
def test_plant_burst_from_warm_water_at_full_power() -> None:
    _, _, peak = leak_session(20.0, 36.0, after=300.0)
    assert peak < SAFE.over_temperature_c


@pytest.mark.xfail(strict=True, reason=(
    "documented limit (docs/safety.md, rise_too_fast): an on/off law cycling at a 40 °C "
    "setpoint never holds a steady output, so the cushion's own reference never forms; "
    "the plausible limit alone sees a 300 W cushion leak only below ~9 kg, and the "
    "thermostat's own 0.3 °C overshoot with the plate's heat into the last water lifts "
    "the drained bag to ~41.2 °C.  Our control law holds a steady full output while "
    "heating (the grid benchmark's leaks)"))
def test_plant_slow_leak_under_a_thermostat_at_40_in_a_warm_room() -> None:
    _, _, peak = leak_session(2.0, 38.5, room_c=28.0)
    assert peak < SAFE.over_temperature_c


def _steps(rig: PlantRig, pattern: Sequence[tuple[float, float]]) -> None:
    for seconds, out in pattern:
        for _ in range(round(seconds / DT)):
            rig.step((out, out))


@pytest.mark.parametrize("case", ["room15", "room28", "strong_heater_short_water"])
def test_plant_model_no_false_trip_on_warm_ups_steps_and_clients(case: str) -> None:
    """The supervisor's model is the configuration's (300 W, 25 kg, room estimate 21 °C);
    the plant differs: a 15 °C room (cushions starting at 15 °C, a 10 W/K client on the
    cold water while it heats), a 28 °C room, or a heater 20 % above its rating with a
    cushion filled 20 % short.  Power steps 0 -> 100 % and 100 -> 0 % at several
    temperatures, a warm-up to 37 °C and holding with the thermostat, a client lying down
    and getting up: nothing trips."""
    plant: dict[str, Any] = {
        "room15": {"room_c": 15.0, "client_w_per_k": 10.0},
        "room28": {"room_c": 28.0},
        "strong_heater_short_water": {"heater_w": 360.0, "water_kg": 20.0},
    }[case]
    start = {"room15": 15.0, "room28": 28.0, "strong_heater_short_water": 30.0}[case]
    rig = PlantRig((start, start), seed=31, **plant)
    _steps(rig, [(300, 0.0), (600, 1.0)])
    rig.plant.set_client(0, True)  # on cold water, with the heater full on
    _steps(rig, [(600, 1.0)])
    rig.plant.set_client(0, False)
    _steps(rig, [(300, 0.0), (120, 1.0), (120, 0.0), (60, 1.0), (600, 0.0), (900, 1.0),
                 (60, 0.0)])
    on = [True, True]
    rig.thermostat(4 * 3600, on)  # up to 37 °C and holding
    rig.plant.set_client(1, True)
    rig.thermostat(1200, on)
    rig.plant.set_client(1, False)
    rig.thermostat(600, on)
    assert 36.5 < rig.plant.water_c[0] < 37.6
    assert rig.sup.trips == [], rig.sup.trips


def test_plant_cold_cushion_client_and_no_heat_is_no_leak() -> None:
    """15 °C water in a 15 °C room, heat off, a 10 W/K client for half an hour: the water
    warms at ~0.1 °C/min with the board at 0 %, below the model rule's floor.  (It does
    trip ``rise_while_off``: that rule's known limit, stated in its docstring.)"""
    rig = PlantRig((15.0, 15.0), seed=32, room_c=15.0, client_w_per_k=10.0)
    _steps(rig, [(120, 0.0)])
    rig.plant.set_client(0, True)
    rig.plant.set_client(1, True)
    _steps(rig, [(1800, 0.0)])
    rig.plant.set_client(0, False)
    rig.plant.set_client(1, False)
    _steps(rig, [(600, 0.0)])
    assert rig.plant.water_c[0] > 16.5
    assert not rig.has("rise_too_fast")


def test_plant_welded_relay_after_full_power_is_not_taken_for_a_leak() -> None:
    """The relay welds as the output drops from full power to 0 %: the water keeps rising
    at the heater's rate, below the model's floor, so the welded relay is what trips
    (master relay open), as before the model rule."""
    rig = PlantRig((33.0, 33.0), seed=33)
    _steps(rig, [(900, 1.0)])
    rig.plant.faults[1].heater_stuck_on = True
    t = None
    for i in range(round(600 / DT)):
        rig.step((0.0, 0.0))
        if rig.sup.trips:
            t = i * DT
            break
    # the plate's stored heat is allowed first (up to 0.55 °C after full power into the
    # lightest plausible cushion): 0.5 + that at the heater's ~0.16 °C/min here
    assert t is not None and t < 480
    assert rig.reasons() == [("rise_while_off", 1)]
