"""Identification mode: the supervisor knows an autotune is running.

Since the rules judge the whole plausible range of real tables (``envelope.py``,
docs/safety.md) rather than the configured model, an identification run on any plausible
table trips nothing without a fault, and no rule needs wider bounds: the mode is an
explicit, per-cushion marker (reported in the autotune's trip details) that no rule
relaxes anything for.  The ``safety.identification_*`` settings that once widened three
rules are retired: a file that still has them loads with a warning
(``hydrotherm.config.RETIRED_KEYS``).

Why the mode existed: the earlier rules judged the water against the *configured*
model, and the autotune heats, on purpose, a table it does not know yet.  A 15 kg cushion
on a 360 W heater rose 2.0x the nominal model's rate and tripped ``rise_too_fast``; a
35 kg cushion on 240 W with 6 W/K in a 12 °C room rose too little for ``no_rise``; the
plate's stored heat after full power lifted a light cushion more than ``rise_while_off``
allowed.  The plausible-range rules hold on all three (``tests/test_autotune.py``:
``test_a_light_strong_table_needs_no_identification_mode_any_more`` and the corner plants
run end to end without a trip).

What never changes, mode or not: ``over_temperature`` (41 °C), the sensor rules,
``sensor_disagree``, ``stale_telemetry``, ``control_stall``, ``board_fault``, the board's
own 42 °C limit and the cut-out; the autotune itself stops heating 1 K below the highest
setpoint and aborts at 39.5 °C on any sensor.
"""

from __future__ import annotations

from collections.abc import Iterable

from .history import CushionState


def set_identifying(cushions: list[CushionState], which: Iterable[int], on: bool) -> None:
    """Mark ``which`` cushions as being identified (``on``) or not."""
    for c in which:
        cushions[c].identifying = on
