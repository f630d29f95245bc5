"""The ``high_temperature`` alarm (reference: "above setpoint + 1.0 °C, or above 40.5 °C",
a warning, not a trip): it takes no power away, it tells a person to look.

Its level is the lower of the two; the setpoint part counts only while the cushion's heat
is on (with heat off the setpoint is no target).  It clears ``alarm_hysteresis_c`` below
the level, so water hovering at the level does not flap the alarm.  "The water" is the
mean of the cushion's intact sensors.
"""

from __future__ import annotations

from .events import Alarm
from .history import CushionState
from .state import SupervisorState


class HighTemperatureAlarm:
    def __init__(self, st: SupervisorState) -> None:
        self.st = st
        self.cfg = st.cfg

    def on_report(self, c: int, cu: CushionState, vp: float | None, vr: float | None,
                  water: float | None, applied: float, sp: float, heat_on: bool,
                  now: float) -> None:
        if water is None:
            return
        cfg = self.cfg
        level = cfg.high_alarm_c
        relative = False
        if heat_on:
            rel = sp + cfg.high_alarm_margin_c
            if rel < level:
                level = rel
                relative = True
        alarm = cu.alarm
        if alarm is None:
            if water > level:
                # the detail is formatted only here: this runs at every report
                why = (f"above setpoint {sp:g} + {cfg.high_alarm_margin_c:g} °C" if relative
                       else f"above {level:g} °C")
                detail = f"cushion {c} water {water:.2f} °C, {why}"
                cu.alarm = Alarm("high_temperature", c, now, detail)
                self.st.latches.emit("alarm", now, c, "high_temperature", None, detail)
        else:
            clear_below = level - cfg.alarm_hysteresis_c
            if water < clear_below:
                cu.alarm = None
                self.st.latches.emit("alarm_cleared", now, c, "high_temperature", None,
                                     f"cushion {c} water {water:.2f} °C, "
                                     f"below {clear_below:.2f} °C")
