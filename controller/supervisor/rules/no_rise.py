"""``no_rise`` (reference: "less than 0.5 °C rise in 10 min at >= 80 % power below
setpoint", that cushion off): a failed heater or relay.

The board applied at least ``no_rise_min_output`` in every report for
``no_rise_window_s`` with the water (the mean of the intact sensors) below the setpoint in
every report, and every sensor whose 1 Hz history covers the window rose less than
``no_rise_c`` over it (latest mean minus the mean a window ago).
"""

from __future__ import annotations

from ..events import Trip
from ..history import DECIMATION_S, CushionState, fmt_rates
from ..latch import Latch
from .base import Cause, Rule


class NoRise(Rule):
    reasons = ("no_rise",)
    needs_reading = False

    def on_report(self, c: int, cu: CushionState, vp: float | None, vr: float | None,
                  water: float | None, applied: float, sp: float, heat_on: bool,
                  now: float) -> None:
        """The run of reports at high output below the setpoint."""
        if applied >= self.cfg.no_rise_min_output and water is not None and water < sp:
            if cu.run_start is None:
                cu.run_start = now
        else:
            cu.run_start = None

    def on_second(self, c: int, cu: CushionState, now: float) -> None:
        cfg = self.cfg
        w = cfg.no_rise_window_s
        if cu.run_start is None or now - cu.run_start < w:
            return
        rises = []
        for s, tr in enumerate(self.st.tracks[c]):
            hist = tr.hist
            if hist and hist[0][0] <= tr.last_t - w + DECIMATION_S:
                rises.append((s, tr.last_v - hist[0][1]))
        lim = cfg.identification_no_rise_c if cu.identifying else cfg.no_rise_c
        if rises and max(r for _, r in rises) < lim:
            self.st.trip("no_rise", c,
                         f"cushion {c} water rose less than {lim:g} °C in {w:g} s "
                         f"at >= {cfg.no_rise_min_output * 100:.0f} % below the setpoint "
                         f"({fmt_rates(rises)} °C): heater or relay failed?", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Always clears: a failed heater or relay can only be judged by heating again (the
        detail says so), and the window starts afresh."""
        return None, ("cleared without proof: a failed heater or relay can only be "
                      "judged by heating again (no_rise watches the next "
                      f"{self.cfg.no_rise_window_s:g} s at high output)")

    def after_reset(self, trip: Trip) -> None:
        self.st.cushions[trip.cushion].run_start = None  # type: ignore[index]
