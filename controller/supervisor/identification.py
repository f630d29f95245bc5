"""Identification mode: the supervisor knows an autotune is running.

Since the rules judge the whole plausible range of real tables (``envelope.py``,
docs/safety.md) rather than the configured model, an identification run on any plausible
table trips nothing without a fault, and no rule needs wider bounds: the mode is now an
explicit marker (reported with the cushions it covers) that no rule relaxes anything for.
The ``safety.identification_*`` settings are kept for configuration files written before
this change and have no effect.  The history below is why the mode was introduced.

Identification mode: the supervisor's wider, still safe bounds while an autotune runs.

Why a mode at all: the autotune heats a cushion it does not know yet at full power and
then switches it off, on purpose, to see what the table is.  Three rules judge the water
against the *configured* model, and a table at the edge of the plausible range
(``shared/reference.md``: 15–35 kg, 240–360 W, 21–39 W/K, 2–6 W/K, 12–30 °C) is not that
model — exactly the table an autotune is run on:

* ``rise_too_fast`` (the plate model): 15 kg on a 360 W heater rises 2.0× the nominal
  model's rate (0.34 °C/min against a 0.34 °C/min limit: measured, it tripped).  While
  identifying, the model's limits are multiplied by ``identification_rate_scale`` (2.0);
  the absolute ``rise_too_fast_c_per_min`` (1.0 °C/min) is unchanged.
* ``no_rise``: 35 kg on a 240 W heater with 6 W/K in a 12 °C room rises only ~0.4 °C per
  10 min near 35 °C.  While identifying, the trip level is ``identification_no_rise_c``
  (0.1 °C): a dead heater or an open relay (the water then falls) is still caught.
* ``rise_while_off``: after full power the plate's stored heat lifts a light cushion on a
  weakly coupled plate by up to ~0.55 °C (2 kJ/K × 17 K into 65 kJ/K), more than the
  0.5 °C limit.  While identifying, the rise is judged beyond
  ``identification_carry_scale`` (3) × the configured model's carry-over at the moment
  of the off-period minimum; that allowance decays with the plate (67 s), so a welded
  relay (the full heater, ~0.17 °C/min) still trips within minutes.

What never changes: ``over_temperature`` (41 °C), the sensor rules, ``sensor_disagree``,
``stale_telemetry``, ``control_stall``, ``board_fault``, the board's own 42 °C limit and
the cut-out.  The autotune itself stops heating 1 K below the highest setpoint (judged for
the worst plausible carry-over) and aborts at 39.5 °C on any sensor.  The mode is
explicit (``Supervisor.begin_identification`` / ``end_identification``), per cushion,
reported in every trip detail's context by the autotune, and ends with the experiment
(done or aborted): the control loop never runs in it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .history import CushionState


def set_identifying(cushions: list[CushionState], which: Iterable[int], on: bool) -> None:
    """Mark ``which`` cushions as being identified (``on``) or not."""
    for c in which:
        cushions[c].identifying = on
