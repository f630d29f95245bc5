"""The safety rules, one module each (see ``base.Rule`` for the interface).

To add a rule: write a ``Rule`` subclass in its own module here, add it to ``RULES`` (the
order is the order rules are judged in, which is the order of their events when several
fire in the same instant), give each of its ``reasons`` a reaction in
``controller/supervisor/events.py`` ``REACTIONS``, decide whether a therapist may reset it
(if its cause cannot be shown to have gone while the master relay is open, add it to
``SERVICE_ONLY`` there), and a row in ``tests/test_supervisor_unit.py``.
"""

from __future__ import annotations

from .base import Cause, Rule
from .board_fault import BoardFault
from .control_stall import ControlStall
from .no_rise import NoRise
from .over_temperature import OverTemperature
from .plate_dry import PlateDry
from .rise_too_fast import RiseTooFast
from .rise_while_off import RiseWhileOff
from .sensor_broken import SensorBroken
from .sensor_disagree import SensorDisagree
from .stale_telemetry import StaleTelemetry

#: Every rule, in the order they are judged.
RULES: tuple[type[Rule], ...] = (OverTemperature, SensorBroken, SensorDisagree, RiseTooFast,
                                 RiseWhileOff, NoRise, StaleTelemetry, ControlStall,
                                 BoardFault, PlateDry)

__all__ = ["RULES", "BoardFault", "Cause", "ControlStall", "NoRise", "OverTemperature",
           "PlateDry", "RiseTooFast", "RiseWhileOff", "Rule", "SensorBroken", "SensorDisagree",
           "StaleTelemetry"]
