"""``no_rise`` (reference: "less than 0.5 °C rise in 10 min at >= 80 % power below
setpoint", that cushion off): a failed heater or relay.

The board applied at least ``no_rise_min_output`` in every report for
``no_rise_window_s`` with the water (the mean of the intact sensors) below the setpoint in
every report, and every sensor whose 1 Hz history covers the window rose less than the
*least a working heater would have given on any plausible table*: the slowest plausible
rate (the weakest heater at the applied output, through the slowest plate, into the
heaviest cushion, against every loss: 6 W/K to a 12 °C room, a 10 W/K client above
35.5 °C, the other cushion; ``envelope.py``) summed over the window, less the sensor's
largest lag at the present rate, less ``no_rise_margin_c`` (0.1 °C), and never more than
``no_rise_c`` (0.5 °C).

Why: the fixed 0.5 °C cannot be met by a working 240 W heater on a 35 kg cushion at
37 °C in a 12 °C room with a 6 W/K loss (0.3 °C in 10 min at full power; with a client at
40 °C, 0.1 °C): that table tripped every cold morning.  A dead heater lets the water cool
(or warm only by what the room and a client give), which the envelope's least rise
excludes while the output is high.  Where the envelope's least rise is at or below the
margin (a lossy table near 40 °C at 80 %), the rule cannot tell and does not trip; at
full power it always can (docs/safety.md gives the bound).
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
        if cu.run_start is None or now - cu.run_start < w or not cu.lo_hist:
            return
        least = cu.lo_k - cu.lo_hist[0][1]
        if cu.lo_rate > 0.0:
            least -= self.st.env.lag_max_s * cu.lo_rate
        need = min(cfg.no_rise_c, least - cfg.no_rise_margin_c)
        if need <= 0.0:
            return
        rises = []
        for s, tr in enumerate(self.st.tracks[c]):
            hist = tr.hist
            if hist and hist[0][0] <= tr.last_t - w + DECIMATION_S:
                rises.append((s, tr.last_v - hist[0][1]))
        if rises and max(r for _, r in rises) < need:
            self.st.trip("no_rise", c,
                         f"cushion {c} water rose less than {need:.2f} °C in {w:g} s at >= "
                         f"{cfg.no_rise_min_output * 100:.0f} % below the setpoint "
                         f"({fmt_rates(rises)} °C; a working heater on any plausible table "
                         f"gives at least {least:.2f} °C): heater or relay failed?", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Always clears: a failed heater or relay can only be judged by heating again (the
        detail says so), and the window starts afresh."""
        return None, ("cleared without proof: a failed heater or relay can only be "
                      "judged by heating again (no_rise watches the next "
                      f"{self.cfg.no_rise_window_s:g} s at high output)")

    def after_reset(self, trip: Trip) -> None:
        self.st.cushions[trip.cushion].run_start = None  # type: ignore[index]
