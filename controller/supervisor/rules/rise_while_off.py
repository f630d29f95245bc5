"""``rise_while_off`` (reference: "more than 0.5 °C in 5 min at 0 %", master relay open:
a welded relay).

While the board applies 0 % without a break, each sensor's latest 1 Hz mean against each
earlier mean of that off period within ``rise_while_off_window_s`` (30 min), beyond what
the water can legitimately gain from then on: the heat still stored in the plate at that
moment (the most any plausible plate holds for the output applied before: 0.55 °C into
the lightest cushion after full power; after a ``rise_too_fast`` trip, when the cushion
may hold almost no water, the plate's whole excess temperature) plus the surroundings'
largest gain since (a client of 10 W/K towards 35.5 °C, a 30 °C room through 6 W/K, the
other cushion, into the lightest cushion; ``envelope.py``).  Every sensor with such
history must exceed ``rise_while_off_c`` (0.5 °C) beyond that.

Why the window grew from 5 to 30 min: a welded 240 W relay on a heavy (35 kg), lossy
(6 W/K) cushion in a 12 °C room warms water at 37 °C by only ~0.04 °C/min, 0.2 °C in
5 min: the old rule never saw it and the water crept to 41 °C.  Over 30 min it rises
1.1 °C.  Why the allowance: the plate of a light cushion with a strong heater and a weak
coupling stores enough heat at full power to lift the water 0.55 °C after it stops -- more
than the old limit -- and a client on cold water warms it with the heater off.
(Known limits: on water well below 35.5 °C a client's allowance hides a welded relay
until the water approaches 35.5 °C, far below 41 °C.  A stuck sensor could hide a welded
relay here; the other sensor then trips ``sensor_disagree``.)
"""

from __future__ import annotations

from ..events import Trip
from ..history import CushionState, fmt_rates
from ..latch import Latch
from .base import Cause, Rule, rate_cause


class RiseWhileOff(Rule):
    reasons = ("rise_while_off",)

    def on_second(self, c: int, cu: CushionState, now: float) -> None:
        if cu.off_empty:
            return
        st = self.st
        rises = []
        span = allow = 0.0
        for s, tr in enumerate(st.tracks[c]):
            if tr.offmin:
                t0, v0, key = tr.offmin[0]
                rises.append((s, tr.last_v - cu.gain_k - key))
                span = max(span, tr.last_t - t0)
                allow = max(allow, key - v0 + cu.gain_k)
        lim = self.cfg.rise_while_off_c
        if rises and min(r for _, r in rises) > lim:
            st.trip("rise_while_off", c,
                    f"cushion {c} water rose more than {lim:g} °C within {span:.0f} s "
                    f"with the heater at 0 %, beyond the {allow:.2f} °C the plate's stored "
                    f"heat and the surroundings can explain ({fmt_rates(rises)} °C; host "
                    f"commands {cu.commanded * 100:.0f} %): welded relay?", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Every known sensor rate at most ``rise_while_off_c`` per
        ``rise_while_off_window_s`` (0.1 °C/min)."""
        c = latch.trip.cushion
        assert c is not None
        cfg = self.cfg
        return rate_cause(self.st, c, cfg.rise_while_off_c * 60.0 / cfg.rise_while_off_window_s)

    def after_reset(self, trip: Trip) -> None:
        c = trip.cushion
        assert c is not None
        for tr in self.st.tracks[c]:
            tr.offmin.clear()
        self.st.cushions[c].off_empty = True
