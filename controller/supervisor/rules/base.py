"""The one interface every safety rule implements.

Like a Klipper ``verify_heater`` check, a rule is a small class with one job: it watches
for one condition (one or two trip ``reasons``, each a row of the "Safety limits" table)
and says, when a person asks for a reset, whether the cause has gone.  The supervisor's
data path calls the hooks a rule overrides, at the moment its evidence is ready:

* ``on_report``: every telemetry report, per cushion (levels, runs, "since" timers);
* ``on_second``: once a second, per cushion, after the 1 Hz histories were updated
  (rates and windows);
* ``on_time``: every ``check()`` (silence: a report or a heartbeat that did not come).

Level rules on a single sensor reading (``over_temperature``, ``sensor_open`` /
``sensor_short``) are judged inline by the data path on the rule's own limit and call the
rule's ``on_sensor`` only when it fires: they run for every sensor of every report, and a
call per sensor would be most of the supervisor's cost.
"""

from __future__ import annotations

from typing import ClassVar

from firmware_bridge.thermistor import SensorStatus

from ..events import Trip
from ..history import RATE_MIN_SPAN_S, CushionState, fmt_rates
from ..latch import Latch
from ..state import SupervisorState

SENSOR_OK = SensorStatus.OK

#: A rule's answer to a reset: (None, note) when the cause has gone, else (why, "").
Cause = tuple[str | None, str]


class Rule:
    #: the trip reasons this rule raises (keys of ``REACTIONS``)
    reasons: ClassVar[tuple[str, ...]] = ()
    #: False for rules whose reset is judged without a report (silence, ``no_rise``)
    needs_reading: ClassVar[bool] = True

    def __init__(self, st: SupervisorState) -> None:
        self.st = st
        self.cfg = st.cfg

    @classmethod
    def overrides(cls, hook: str) -> bool:
        return getattr(cls, hook) is not getattr(Rule, hook)

    def on_report(self, c: int, cu: CushionState, vp: float | None, vr: float | None,
                  water: float | None, applied: float, sp: float, heat_on: bool,
                  now: float) -> None:
        """One report on cushion ``c``: intact sensors' °C (None: not OK), their mean, the
        output the board applied (0..1), the setpoint and heat on/off."""

    def on_second(self, c: int, cu: CushionState, now: float) -> None:
        """A second closed on cushion ``c``; its histories include it."""

    def on_slow(self, c: int, cu: CushionState, now: float) -> None:
        """Every few seconds (``core.ENVELOPE_EVERY``), per cushion, after the plausible
        envelope was advanced."""

    def on_time(self, now: float) -> None:
        """Judge silence."""

    def cause(self, latch: Latch, now: float) -> Cause:
        """Whether the latched trip's cause has gone, on the latest data."""
        raise NotImplementedError

    def after_reset(self, trip: Trip) -> None:
        """Judge afresh what the cleared trip was about, so it does not fire again on
        the evidence that raised it."""


def rate_cause(st: SupervisorState, c: int, lim: float) -> Cause:
    """The reset of the rate rules: every known sensor rate of cushion ``c`` at most
    ``lim`` °C/min; no known rate is a refusal (when in doubt the heaters stay off)."""
    rates = st.rates(c)
    if not rates:
        return (f"cushion {c} rise rate not known yet: it needs "
                f"{RATE_MIN_SPAN_S:g} s of readings from an intact sensor"), ""
    if max(r for _, r in rates) > lim:
        return (f"cushion {c} water still rising faster than {lim:.2g} °C/min "
                f"({fmt_rates(rates)} °C/min)"), ""
    return None, f"rise rate {fmt_rates(rates)} °C/min, at most {lim:.2g}"
