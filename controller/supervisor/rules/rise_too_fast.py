"""``rise_too_fast`` (reference: "more than 1.0 °C/min (an empty or leaking cushion, a dry
plate)", that cushion off), two ways, judged on every sensor whose rate is known (30 s
least-squares slope of its 1 Hz means):

* every such rate above ``rise_too_fast_c_per_min`` (the table's absolute limit);
* every such rate above what the plate model allows (``PlateModel.limit``), without a
  break for ``rise_too_fast_model_confirm_s``: the water heats faster than the heat going
  into it can explain for the water the cushion should hold, so it holds less (see
  ``controller/supervisor/plate.py`` for the numbers and what it cannot do).

Rates are judged per sensor and the cushion trips only when every intact sensor with
enough history agrees: a step in *one* sensor (drift, a sensor dropping out of the mean)
is not the water rising.  Detection comes some 20-35 s after the water's rate crosses the
limit (half the 30 s window plus the sensor's 10 s lag).
"""

from __future__ import annotations

from ..events import Trip
from ..history import RATE_WINDOW_S, CushionState, fmt_rates
from ..latch import Latch
from .base import Cause, Rule, rate_cause


class RiseTooFast(Rule):
    reasons = ("rise_too_fast",)

    def on_second(self, c: int, cu: CushionState, now: float) -> None:
        st = self.st
        if ("rise_too_fast", c) in st.latches:
            return
        rates = st.rates(c)
        if not rates:
            cu.fast_since = None
            return
        cfg = self.cfg
        slowest = min(r for _, r in rates)
        lim = cfg.rise_too_fast_c_per_min
        if slowest > lim:
            st.trip("rise_too_fast", c,
                    f"cushion {c} water rising faster than {lim:g} °C/min "
                    f"({fmt_rates(rates)} °C/min over {RATE_WINDOW_S:g} s)", now)
            return
        model = st.plate.limit(cu) if slowest > st.plate.floor else None
        if model is None or slowest <= model[1]:
            cu.fast_since = None
            return
        if cu.fast_since is None:
            cu.fast_since = now
        if now - cu.fast_since >= cfg.rise_too_fast_model_confirm_s:
            explained, mlim = model
            st.trip("rise_too_fast", c,
                    f"cushion {c} water rising faster than the model allows: leaking or "
                    f"empty cushion? ({fmt_rates(rates)} °C/min over {RATE_WINDOW_S:g} s "
                    f"for {now - cu.fast_since:.0f} s; the heat going in explains "
                    f"{explained:+.2f} °C/min, the limit is {mlim:.2f} °C/min)", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Every known sensor rate at most ``rise_too_fast_c_per_min`` and at most the
        plate model's limit."""
        c = latch.trip.cushion
        assert c is not None
        lim = self.cfg.rise_too_fast_c_per_min
        model = self.st.plate.limit(self.st.cushions[c])
        if model is not None:
            lim = min(lim, model[1])
        return rate_cause(self.st, c, lim)

    def after_reset(self, trip: Trip) -> None:
        self.st.cushions[trip.cushion].fast_since = None  # type: ignore[index]
