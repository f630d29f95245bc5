"""The safety supervisor: independent of the control law, it can only take power away.

It watches what the board reports (both sensors of each cushion with their status, the
outputs the board actually applies, the relay, the board's fault flags), what the host
commanded, the setpoints, link events and the control loop's heartbeats.  Every rule
below is a row of the "Safety limits" table of ``shared/reference.md``; every limit comes
from ``SafetyConfig``.  A trip **latches**: it stays until ``reset()`` clears it, and
``reset()`` clears a trip only when its cause has gone, judged on the latest data.

Who may reset
-------------
A therapist (the dashboard, MQTT, Home Assistant) may reset any trip whose cause the data
can show to have gone.  Some causes cannot be shown to have gone while the master relay is
open: a welded solid-state relay (``rise_while_off``), the board's own hot-water limit
(``LIMIT_HOT_n``) and a bimetal cut-out (``CUTOUT_n``), both ``board_fault``.  With the relay
open the water stops rising, the flags clear, the cut-out closes as the plate cools, and
a reset judged on that would be accepted and trip again minutes after the heat returned.
These are ``SERVICE_ONLY`` (``events.py``, the one place the set is defined): only a named
service person resets them (``reset(..., service_reason=...)``, reached through
``hydrotherm service reset`` on the controller's machine), the master relay stays open
while one is latched, and a controller restart latches them again from the event log.

Latched board flags
-------------------
A flag the board has latched is a ``board_fault`` trip whenever it is seen, also in the
first report of a connection (a board whose dead-man fired while the controller was
dead has its relay open and cannot heat); only the RESET of the board's boot, at the first
connection, is expected.  See ``rules/board_fault.py``.

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

Real tables are not the model
-----------------------------
The rate rules judge against the whole plausible range of real tables (``[plausible]``:
water 15-35 kg, heater 240-360 W, coupling 21-39 W/K, loss 2-6 W/K, room 12-30 °C, sensor
lag 5-20 s, a client), computed in ``envelope.py``, and ``rise_too_fast`` also against the
cushion's own rate at a settled output (a drop in its heat capacity: a leak).  Each
rule's bound on that range, and the burst-leak limit, are in docs/safety.md.

Where things are
----------------
* ``rules/``: one module per safety rule, each behind ``rules.base.Rule`` (detection hooks
  and the reset criterion ``cause()``), like Klipper's ``verify_heater``; the plausible
  envelope the rate rules judge against is ``envelope.py``; the ``high_temperature``
  alarm is ``alarm.py``;
* ``core.py``: ``Supervisor``, the data path that feeds the rules (one pass per report,
  one per second), the gate and the reset;
* ``history.py``: the 1 Hz per-sensor histories; ``state.py``: what the rules read;
* ``identification.py``: the explicit identification mode (an autotune is running): the
  wider, still safe bounds of three model-based rules, and why;
* ``latch.py``: latching and the event queue; ``events.py``: reasons, reactions, who may
  reset what (``SERVICE_ONLY``), trips, alarms, events (the interface other packages
  quote).

To add a rule, see ``rules/__init__.py``.
"""

from __future__ import annotations

from .core import Supervisor
from .events import (
    NO_CUSHION,
    REACTIONS,
    SERVICE_ONLY,
    SERVICE_ONLY_FLAGS,
    TABLE_WIDE,
    Alarm,
    Reaction,
    ResetResult,
    SupervisorEvent,
    Trip,
    service_why,
)
from .history import (
    DECIMATION_S,
    RATE_MIN_POINTS,
    RATE_MIN_SPAN_S,
    RATE_WINDOW_S,
    SENSOR_NAMES,
)
from .latch import EVENT_LOG_LEN

__all__ = [
    "DECIMATION_S", "EVENT_LOG_LEN", "NO_CUSHION", "RATE_MIN_POINTS", "RATE_MIN_SPAN_S",
    "RATE_WINDOW_S", "REACTIONS", "SENSOR_NAMES", "SERVICE_ONLY", "SERVICE_ONLY_FLAGS",
    "TABLE_WIDE", "Alarm", "Reaction", "ResetResult", "Supervisor", "SupervisorEvent", "Trip",
    "service_why",
]
