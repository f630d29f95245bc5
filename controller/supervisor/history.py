"""The per-sensor 1 Hz histories and the per-cushion state the rules judge.

Histories are decimated to 1 Hz (the mean of the ~5 reports in each second, per sensor:
0.013 °C rms) and bounded by time and ``maxlen``, so the per-report work is a few
additions and the windowed work happens once a second in O(1) amortised: running
least-squares sums for the rate, a monotonic deque for the heater-off minimum, a
time-pruned deque for the 10-minute rise.  Plain ``__slots__`` classes, because the
supervisor touches them at every report of every table.
"""

from __future__ import annotations

import math
from collections import deque

from .events import Alarm

#: Decimation period of the windowed histories (one mean per sensor per second).
DECIMATION_S = 1.0
#: Window of the least-squares rate estimate.
RATE_WINDOW_S = 30.0
#: The rate is known once the 1 Hz means span this long ...
RATE_MIN_SPAN_S = 20.0
#: ... and there are at least this many of them.
RATE_MIN_POINTS = 10
#: Slope sums are kept relative to a base time, moved this often (exact recompute).
_REBASE_S = 3600.0

SENSOR_NAMES = ("primary", "redundant")


class SensorTrack:
    """The 1 Hz history of one sensor: the current second's accumulator, the rate
    window with running least-squares sums, the 10-minute history for ``no_rise`` and
    the ascending-minimum deque of the heater-off period for ``rise_while_off``."""

    __slots__ = ("acc_v", "acc_t", "acc_n", "base", "rate", "s_t", "s_v", "s_tt", "s_tv",
                 "hist", "offmin", "last_t", "last_v", "long")

    def __init__(self, hist_len: int, off_len: int) -> None:
        self.acc_v = 0.0
        self.acc_t = 0.0
        self.acc_n = 0
        self.base = 0.0
        self.rate: deque[tuple[float, float]] = deque(
            maxlen=int(RATE_WINDOW_S / DECIMATION_S) + 5)
        self.s_t = self.s_v = self.s_tt = self.s_tv = 0.0
        self.hist: deque[tuple[float, float]] = deque(maxlen=hist_len)
        #: (time, 1 Hz mean, the mean + what stored heat and the surroundings could add
        #: from then on, less their running integral): ascending in the last
        self.offmin: deque[tuple[float, float, float]] = deque(maxlen=off_len)
        self.last_t = math.nan
        self.last_v = math.nan

    def clear(self) -> None:
        self.acc_v = self.acc_t = 0.0
        self.acc_n = 0
        self.rate.clear()
        self.s_t = self.s_v = self.s_tt = self.s_tv = 0.0
        self.hist.clear()
        self.offmin.clear()
        self.last_t = self.last_v = math.nan

    @property
    def empty(self) -> bool:
        return self.acc_n == 0 and not self.hist

    def push_rate(self, t: float, v: float) -> None:
        rate = self.rate
        if not rate or t - self.base > _REBASE_S:
            self._rebase(t)
        x = t - self.base
        rate.append((x, v))
        self.s_t += x
        self.s_v += v
        self.s_tt += x * x
        self.s_tv += x * v
        oldest = x - RATE_WINDOW_S
        while rate[0][0] <= oldest:
            x0, v0 = rate.popleft()
            self.s_t -= x0
            self.s_v -= v0
            self.s_tt -= x0 * x0
            self.s_tv -= x0 * v0

    def _rebase(self, t: float) -> None:
        shift = t - self.base
        self.base = t
        old = list(self.rate)
        self.rate.clear()
        self.s_t = self.s_v = self.s_tt = self.s_tv = 0.0
        for x, v in old:
            x -= shift
            self.rate.append((x, v))
            self.s_t += x
            self.s_v += v
            self.s_tt += x * x
            self.s_tv += x * v

    def long_slope(self, window_s: float) -> float | None:
        """°C per second over the last ``window_s`` of the 1 Hz history (least squares),
        or None while the history is shorter.  O(window): called every few seconds,
        and only while ``rise_too_fast``'s capacity check is armed."""
        hist = self.hist
        n = len(hist)
        if n < 3 or hist[-1][0] - hist[0][0] < window_s:
            return None
        t_end = hist[-1][0]
        st = sv = stt = stv = 0.0
        k = 0
        for i in range(n - 1, -1, -1):
            t, v = hist[i]
            x = t - t_end
            if x < -window_s:
                break
            st += x
            sv += v
            stt += x * x
            stv += x * v
            k += 1
        den = k * stt - st * st
        if k < 3 or den <= 0.0:
            return None
        return (k * stv - st * sv) / den

    def slope(self) -> float | None:
        """°C per second, or None while the window is too short to say."""
        rate = self.rate
        n = len(rate)
        if n < RATE_MIN_POINTS or rate[-1][0] - rate[0][0] < RATE_MIN_SPAN_S:
            return None
        den = n * self.s_tt - self.s_t * self.s_t
        if den <= 0.0:
            return None
        return (n * self.s_tv - self.s_t * self.s_v) / den


class CushionState:
    __slots__ = ("bucket_off", "off_empty", "run_start", "disagree_since", "alarm",
                 "commanded", "q_fast", "q_slow", "rep_t", "rep_applied", "heat_s", "span_s",
                 "fast_since", "limit", "gain_k", "lo_k", "lo_hist", "lo_rate", "u",
                 "ref_u", "ref_at", "ref_rate", "leak_since", "run_u", "run_since", "env_t",
                 "identifying")

    def __init__(self, hist_len: int) -> None:
        self.bucket_off = True  # every report of this second had the heater at 0 %
        self.off_empty = True  # the heater-off histories are empty
        self.run_start: float | None = None  # start of a no_rise run
        self.disagree_since: float | None = None
        self.alarm: Alarm | None = None
        self.commanded = 0.0
        # the plausible envelope (see ``envelope.py``)
        self.q_fast = 0.0  # fraction of full heater power reaching the water, fastest plate
        self.q_slow = 0.0  # ... slowest plate
        self.rep_t: float | None = None  # time of the previous report
        self.rep_applied = 0.0  # the output it reported, held until the next one
        self.heat_s = 0.0  # integral of the applied fraction since the plate update, s
        self.span_s = 0.0  # ... over this long
        self.fast_since: float | None = None  # start of a run above the plausible limit
        self.limit: float | None = None  # rise_too_fast's plausible limit now, °C/min
        #: running integral of the largest gain from the surroundings (K, lightest cushion)
        self.gain_k = 0.0
        #: running integral of the slowest plausible rate with a working heater (K), and
        #: its 1 Hz history over the no_rise window (time, integral)
        self.lo_k = 0.0
        self.lo_hist: deque[tuple[float, float]] = deque(maxlen=hist_len)
        self.lo_rate = 0.0  # the slowest plausible rate now, °C/s
        # the cushion's own reference (``rules/rise_too_fast.py``, capacity drop)
        self.u = 0.0  # mean applied output of the last second
        self.ref_u: float | None = None  # the steady output the reference belongs to
        self.ref_at = 0.0  # when the plate settled at it
        self.ref_rate: float | None = None  # °C/min measured then (highest sensor)
        self.leak_since: float | None = None  # start of a run above the reference
        self.env_t: float | None = None  # when the envelope was last advanced
        self.run_u = -1.0  # the output of the current steady run ...
        self.run_since = 0.0  # ... since when (within ``leak_output_band``)
        #: an identification run (autotune) drives this cushion (``identification.py``)
        self.identifying = False


def fmt_rates(rates: list[tuple[int, float]]) -> str:
    """``primary +0.12, redundant +0.10``: per-sensor figures for a trip's detail."""
    return ", ".join(f"{SENSOR_NAMES[s]} {r:+.2f}" for s, r in rates)
