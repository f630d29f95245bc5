"""``rise_too_fast`` (reference: "more than 1.0 °C/min (an empty or leaking cushion, a dry
plate)", that cushion off), two ways, judged on every sensor whose rate is known (30 s
least-squares slope of its 1 Hz means):

* every such rate above ``rise_too_fast_c_per_min`` (the table's absolute limit);
* every such rate above the plausible limit without a break for
  ``rise_too_fast_model_confirm_s``: faster than any *full* cushion of the plausible range
  can rise -- the strongest heater (360 W) at full power into the lightest cushion (15 kg)
  with every gain the surroundings can give -- times ``rise_too_fast_model_ratio`` (1.1)
  plus ``rise_too_fast_model_margin_c_per_min`` (0.1): about 0.48 °C/min for water above
  30 °C.  The cushion holds less water than any real table is filled with: it leaks.
  (See ``controller/supervisor/envelope.py``.)

Why not against the model's cushion any more: the former limit (1.5 × what the model's
25 kg / 300 W plate explained) was met by a legitimate 15 kg cushion with a 360 W heater
at full power -- a false trip every morning on a lightly filled table.  The limit does not
follow the applied output either: a welded relay heats at full power whatever the board
reports, and must trip ``rise_while_off`` (master relay open), not this (cushion off).

What it costs: a leak is seen once the cushion holds less than about
``P / (c × limit)`` of water -- 7 kg with a 240 W heater, 11 kg with 360 W.  The
detection bound on the plausible range, and the burst-leak limit, are in
docs/safety.md.  Rates are judged per sensor and the cushion trips only when every intact
sensor with enough history agrees: a step in *one* sensor (drift, a sensor dropping out of
the mean) is not the water rising.
"""

from __future__ import annotations

from ..events import Trip
from ..history import RATE_WINDOW_S, CushionState, fmt_rates
from ..latch import Latch
from .base import Cause, Rule, rate_cause

#: Both plate filters this close to the output: the plate has settled (about four of
#: the slowest plate's time constants after a step, ~6 min).
_SETTLED = 0.02
_SETTLE_TAUS = 4.0

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
        plausible = cu.limit
        if plausible is None or slowest <= plausible:
            cu.fast_since = None
            return
        if cu.fast_since is None:
            cu.fast_since = now
        if now - cu.fast_since >= cfg.rise_too_fast_model_confirm_s:
            st.trip("rise_too_fast", c,
                    f"cushion {c} water rising faster than any full cushion can: leaking or "
                    f"empty cushion? ({fmt_rates(rates)} °C/min over {RATE_WINDOW_S:g} s "
                    f"for {now - cu.fast_since:.0f} s; the strongest plausible heater into "
                    f"the lightest plausible cushion allows {plausible:.2f} °C/min)", now)

    def on_slow(self, c: int, cu: CushionState, now: float) -> None:
        if ("rise_too_fast", c) not in self.st.latches:
            self._capacity(c, cu, now)

    def _capacity(self, c: int, cu: CushionState, now: float) -> None:
        """The cushion's own reference: at a steady output of at least
        ``leak_min_output``, once both plate filters have settled there, the rate over
        ``leak_slope_window_s`` is the reference; while the output stays within
        ``leak_output_band`` of it, a rate above ``leak_ratio`` × the reference +
        ``leak_margin_c_per_min`` + what a client getting on or off and the other cushion
        can change is a cushion holding less water than it did (see the module doc)."""
        cfg = self.cfg
        u = cu.u
        if abs(u - cu.run_u) > cfg.leak_output_band:
            cu.run_u = u
            cu.run_since = now
        if cu.ref_u is not None and abs(u - cu.ref_u) > cfg.leak_output_band:
            cu.ref_u = cu.ref_rate = cu.leak_since = None
        if u < cfg.leak_min_output:
            cu.ref_u = cu.ref_rate = cu.leak_since = None
            return
        st = self.st
        win = cfg.leak_slope_window_s
        if cu.ref_u is None:
            # settled: the output steady for four of the slowest plate's time constants
            # (the first report's "as if settled" is no evidence), and the sensor's lag
            env = st.env
            if (now - cu.run_since >= _SETTLE_TAUS * env.tau_slow + env.lag_max_s
                    and abs(cu.q_slow - u) <= _SETTLED):
                cu.ref_u = u
                cu.ref_at = now
            return
        tracks = st.tracks[c]
        rates = []
        for s, tr in enumerate(tracks):
            r = tr.long_slope(win)
            if r is not None:
                rates.append((s, r * 60.0))
        if cu.ref_rate is None:
            if now - cu.ref_at >= win and rates:
                cu.ref_rate = max(r for _, r in rates)
            return
        if not rates:
            cu.leak_since = None
            return
        env = st.env
        water = sum(tr.last_v for tr in tracks if tr.hist) / max(
            1, sum(1 for tr in tracks if tr.hist))
        other = [tr.last_v for tr in st.tracks[1 - c] if tr.hist]
        swing_w = env.g_max * abs(water - env.neutral_c)
        if other:
            swing_w += env.k_max * abs(other[0] - water)
        lim = (cfg.leak_ratio * max(cu.ref_rate, 0.0) + cfg.leak_margin_c_per_min
               + swing_w / env.cw_min * 60.0)
        slowest = min(r for _, r in rates)
        if slowest <= lim:
            cu.leak_since = None
            return
        if cu.leak_since is None:
            cu.leak_since = now
        if now - cu.leak_since >= cfg.rise_too_fast_model_confirm_s:
            st.trip("rise_too_fast", c,
                    f"cushion {c} water rising faster than it did at the same output: "
                    f"leaking cushion? ({fmt_rates(rates)} °C/min over {win:g} s at "
                    f"{u * 100:.0f} %; {cu.ref_rate:.3f} °C/min when the plate settled "
                    f"there, limit {lim:.3f} °C/min)", now)

    def cause(self, latch: Latch, now: float) -> Cause:
        """Every known sensor rate at most ``rise_too_fast_c_per_min`` and at most the
        plausible limit."""
        c = latch.trip.cushion
        assert c is not None
        lim = self.cfg.rise_too_fast_c_per_min
        plausible = self.st.cushions[c].limit
        if plausible is not None:
            lim = min(lim, plausible)
        return rate_cause(self.st, c, lim)

    def after_reset(self, trip: Trip) -> None:
        cu = self.st.cushions[trip.cushion]  # type: ignore[index]
        cu.fast_since = cu.ref_u = cu.ref_rate = cu.leak_since = None
