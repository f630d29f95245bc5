"""The warm-up estimate ("ready in"): how long until the water is in the ready band, from
what the table actually does, not only from what the configuration says it is.

Why its own estimator: the old estimate was an energy balance on the configured model
(``C_w``, ``UA``, the room estimate, the nameplate heater).  On a real table every one of
those is off (water 15–35 kg, heater 240–360 W, loss 2–6 W/K, room 12–30 °C), and the
estimate with them — worse, a ready-by schedule would stand on it.

What it does: at full power the water follows, once the plate has settled (a few plate
time constants after the power went full), ``dT/dt = α − β T`` with
``α = (P + UA·T_room)/C`` and ``β = UA/C`` (``C`` = water + plate).  Every
``bin_s`` (30 s) of uninterrupted full power, the rise of the bin-mean temperature since
the oldest of the last ``span_bins`` bins (up to 5 min) is one observation of
``α − β T``; a recursive least squares (two numbers and a 2×2 matrix, ten bins kept)
learns from the data alone.  The level of the rate (``α − β T`` at the present
temperature) is pinned within minutes; its slope ``β`` (how much the loss grows on the
way) only as the water warms.  Until then ``β`` is told two more things (``posterior``):
the configured model's ``β`` — trusted as far as the model's full-power heating rate
matches the table's, so an autotuned model keeps its say and a wrong one loses it — and
the plausible range of ``β`` for a table rising this fast (any heater, loss and room of
``hydrotherm.config.PlausibleConfig``), whose point leans to the slow end: a ready-by
schedule stands on this estimate, and early is better than late.  The remaining time at
full power to ``T_target`` is then ``ln((α − βT)/(α − βT_target)) / β``
(``(T_target − T)/α'`` when β ≈ 0), and ``inf`` when the heater cannot get there
(``α − β·T_target ≤ 0``).  ``heating_rate_ratio`` and ``holding_fraction`` give the
control law's part of the estimate (the approach to the setpoint) what was learnt.

Without autotune ten minutes of rise cannot tell a heavy cushion on a weak heater in a
cold room with a high loss from one in a warm room with a low loss (docs/autotune.md):
that is the limit of the early estimate, and what the autotune or a measured room adds.

Cost on the control loop's hot path: a few additions per cycle; the regression update
once per bin; the posterior (a 40-step bisection) once per bin and per 0.05 K.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

#: observations before the data count (the first spans are 30, 60, ... s: too short to
#: give the rate's level better than the model; the sixth spans 3 min)
MIN_OBSERVATIONS = 6
#: the data-only regression's β prior (1/s): vague, a hundred times the plausible β
VAGUE_BETA_SIGMA = 1e-2
#: the plausible range's point: 1σ as this share of the range's width
RANGE_SIGMA = 0.35
#: the configured model's β as a relative 1σ when its heating rate is the table's
MODEL_BETA_SIGMA = 0.15
#: ... plus this per unit of |ln(learnt P/C ÷ model P/C)|
MODEL_MISMATCH_GAIN = 1.0


def _time_at(beta: float, rate: float, dt: float) -> float:
    """Seconds to rise ``dt`` at full power starting at ``rate`` with loss slope ``beta``
    (inf when the heater cannot)."""
    x = beta * dt / rate
    if x >= 1.0:
        return math.inf
    if x < 1e-6:
        return dt / rate
    return -math.log1p(-x) / beta


@dataclass(frozen=True, slots=True)
class WarmupPrior:
    """The configured model at full power: ``α₀`` (K/s), ``β₀`` (1/s) and how sure we are
    of each (1σ)."""

    alpha: float
    beta: float
    alpha_sigma: float
    beta_sigma: float
    #: what a real table may be (``hydrotherm.config.PlausibleConfig``'s defaults): the
    #: bounds of the loss's share of the rise when the data cannot tell it yet
    heater_w: tuple[float, float] = (240.0, 360.0)
    loss_w_per_k: tuple[float, float] = (2.0, 6.0)
    room_c: tuple[float, float] = (12.0, 30.0)

    @classmethod
    def from_model(cls, heater_w: float, capacity_j_per_k: float, loss_w_per_k: float,
                   room_c: float, beta_rel_sigma: float = 1.0) -> WarmupPrior:
        """From the configured model.  ``α₀``'s uncertainty is wide (the heater, the water
        and the room all enter it, and the data pin it in minutes); ``β₀``'s is
        ``beta_rel_sigma`` of itself (the data see it only as the water warms)."""
        c = max(capacity_j_per_k, 1.0)
        alpha = (heater_w + loss_w_per_k * room_c) / c
        beta = loss_w_per_k / c
        return cls(alpha, beta, max(abs(alpha), 1e-4), max(beta_rel_sigma * beta, 1e-7))


class WarmupEstimator:
    """Online estimate of the full-power warm-up; ``add`` every control cycle,
    ``remaining_s`` when asked.  Pure computation, no clock of its own."""

    __slots__ = ("prior", "bin_s", "settle_s", "noise_c", "short_margin", "_full_since",
                 "_bin_t0",
                 "_bin_sum", "_bin_n", "_bins", "_prev_temp", "_p", "_x", "samples",
                 "span_bins", "_cache", "_cache_samples")

    def __init__(self, prior: WarmupPrior, bin_s: float = 30.0, settle_s: float = 300.0,
                 noise_c: float = 0.005, short_margin: float = 0.03,
                 span_bins: int = 10) -> None:
        """``settle_s``: full power for this long before a bin counts (the plate's own
        warm-up, a few plate time constants, and the sensor lag).  ``noise_c``: the
        noise of a bin-mean temperature (sets how much one bin moves the estimate).
        ``short_margin``: while neither the data nor the model tell the loss, the
        estimate is at most this much shorter than on the worst plausible table."""
        self.prior = prior
        self.short_margin = short_margin
        self.bin_s = bin_s
        self.settle_s = settle_s
        self.noise_c = noise_c
        self.samples = 0
        self._full_since: float | None = None
        self._bin_t0: float | None = None
        self._bin_sum = 0.0
        self._bin_n = 0
        self.span_bins = span_bins
        self._cache: dict[tuple[int, float], tuple[float, float]] = {}
        self._cache_samples = -1
        # the last bins of this run (time, mean): each new bin is differenced with the
        # oldest, up to ``span_bins`` back — a rise over minutes, not 30 s, sees the
        # curvature (the loss) through the sensor noise ten times sooner
        self._bins: deque[tuple[float, float]] = deque(maxlen=span_bins + 1)
        self._prev_temp = 0.0
        # the posterior of (α, β) from the data alone (a vague prior: the configured
        # model's β enters only in ``beta_estimate``, weighed by how well the model
        # predicts the rise): mean and covariance
        self._x = [prior.alpha, prior.beta]
        self._p = [[prior.alpha_sigma ** 2, 0.0], [0.0, VAGUE_BETA_SIGMA ** 2]]

    @property
    def alpha(self) -> float:
        """``α`` as the estimate uses it (``posterior`` at the latest bin)."""
        return self.posterior(self._prev_temp, self._prev_temp + 10.0)[0]

    @property
    def beta(self) -> float:
        """``β`` as the estimate uses it (``posterior`` at the latest bin)."""
        return self.posterior(self._prev_temp, self._prev_temp + 10.0)[1]

    def model_trust(self) -> float:
        """The configured model's ``β`` as a relative 1σ: ``MODEL_BETA_SIGMA`` when the
        model's full-power heating rate ``P/C`` is the table's (an autotuned model, or
        a table like the nominal), growing with how far the learnt rate is from it — a
        model that gets the heating rate 2× wrong has no say on the loss."""
        mismatch = abs(math.log(self.heating_rate_ratio(0.5 * sum(self.prior.room_c))))
        return MODEL_BETA_SIGMA + MODEL_MISMATCH_GAIN * mismatch

    def beta_range(self, rate: float, temp_c: float) -> tuple[float, float]:
        """The lowest and highest ``β`` of a plausible table that rises at ``rate`` at
        ``temp_c``: ``β = UA·rate/(P − UA·(T − T_room))`` over the plausible heater,
        loss and room."""
        (p_lo, p_hi), (ua_lo, ua_hi), (r_lo, r_hi) = (self.prior.heater_w,
                                                      self.prior.loss_w_per_k,
                                                      self.prior.room_c)
        lo = ua_lo * rate / max(p_hi - ua_lo * (temp_c - r_hi), 1e-9)
        den = p_lo - ua_hi * (temp_c - r_lo)
        hi = ua_hi * rate / den if den > 0.05 * p_lo else 20.0 * ua_hi * rate / p_lo
        return max(lo, 0.0), max(hi, lo)

    def posterior(self, temp_c: float, target_c: float) -> tuple[float, float]:
        """``(α, β)`` for a warm-up from ``temp_c`` to ``target_c``: the data's
        regression, with ``β`` told two more things, each weighed by its precision — the
        configured model's ``β`` (as trusted as ``model_trust``) and the plausible range
        given the rise the table shows (``beta_range``).  The range's point is the ``β``
        that makes the time to ``target_c`` at most ``short_margin`` shorter than on the
        worst plausible table: a ready-by schedule stands on this estimate, and early is
        better than late.  ``α`` follows ``β`` along the regression's correlation, so
        the rate at the present temperature stays what the data say."""
        if self.samples < MIN_OBSERVATIONS:
            return self.prior.alpha, max(self.prior.beta, 0.0)
        # the data change once per bin: 1 Hz callers reuse the answer per 0.05 K
        if self._cache_samples != self.samples:
            self._cache.clear()
            self._cache_samples = self.samples
        key = (round(temp_c * 20.0), target_c)
        value = self._cache.get(key)
        if value is None:
            if len(self._cache) > 64:
                self._cache.clear()
            value = self._cache[key] = self._posterior(temp_c, target_c)
        return value

    def _posterior(self, temp_c: float, target_c: float) -> tuple[float, float]:
        x0, x1 = self._x
        (p00, p01), (_, p11) = self._p
        rate = x0 - x1 * temp_c
        lo, hi = self.beta_range(rate, temp_c)
        dt = max(target_c - temp_c, 0.0)
        if rate <= 0.0 or dt <= 0.0 or hi <= lo:
            point = 0.5 * (lo + hi)
        else:
            want = _time_at(hi, rate, dt) / (1.0 + self.short_margin)
            a, b = lo, hi
            for _ in range(40):
                mid = 0.5 * (a + b)
                if _time_at(mid, rate, dt) < want:
                    a = mid
                else:
                    b = mid
            point = 0.5 * (a + b)
        w_range = 1.0 / max((hi - lo) * RANGE_SIGMA, 1e-9) ** 2
        w_model = 1.0 / max(self.model_trust() * self.prior.beta, 1e-9) ** 2
        mu = (w_range * point + w_model * self.prior.beta) / (w_range + w_model)
        var = 1.0 / (w_range + w_model)
        # a Kalman update of (α, β) by "β = mu ± sqrt(var)"
        s = p11 + var
        beta = x1 + p11 / s * (mu - x1)
        alpha = x0 + p01 / s * (mu - x1)
        beta = min(max(beta, 0.0), 1.5 * hi)
        return alpha, beta

    def heating_rate_ratio(self, room_c: float) -> float:
        """How much faster the table heats at full power than the model says: the learnt
        ``P/C = α − β·T_room`` over the prior's (1 until the data count; bounded to
        1/3–3).  The law's approach to the setpoint is in the model's watts, so its time
        constant on the real table is the model's divided by this."""
        if self.samples < MIN_OBSERVATIONS:
            return 1.0
        # compare the rates at the latest bin's temperature, then add the model's loss
        # back to room (the data's own β is not yet known early on)
        t = self._prev_temp
        prior = self.prior.alpha - self.prior.beta * room_c
        learnt = self._x[0] - self._x[1] * t + self.prior.beta * (t - room_c)
        if prior <= 0.0 or learnt <= 0.0:
            return 1.0
        return min(3.0, max(1.0 / 3.0, learnt / prior))

    def holding_fraction(self, setpoint_c: float, room_c: float) -> float | None:
        """The share of full power that holds ``setpoint_c`` on the table as learnt
        (``β·(T_sp − T_room)/(α − β·T_room)``); None until the data count."""
        if self.samples < MIN_OBSERVATIONS:
            return None
        a, b = self.alpha, self.beta
        full = a - b * room_c
        if full <= 0.0:
            return None
        return min(1.0, max(0.0, b * (setpoint_c - room_c) / full))

    def reset_run(self) -> None:
        """The full-power run was broken (power below full, no reading): the next bins
        wait for the plate to settle again.  What was learnt is kept."""
        self._full_since = None
        self._bin_t0 = None
        self._bin_sum = 0.0
        self._bin_n = 0
        self._bins.clear()

    def add(self, t: float, water_c: float | None, applied: float) -> None:
        """One control cycle: the water estimate and the fraction the board applied."""
        if water_c is None or applied < 0.99:
            if self._full_since is not None:
                self.reset_run()
            return
        if self._full_since is None:
            self._full_since = t
        if t - self._full_since < self.settle_s:
            return
        if self._bin_t0 is None:
            self._bin_t0 = t
        if t - self._bin_t0 >= self.bin_s and self._bin_n:
            mean = self._bin_sum / self._bin_n
            mid_t = self._bin_t0 + 0.5 * (t - self._bin_t0)
            if self._bins and mid_t > self._bins[0][0]:
                t0, m0 = self._bins[0]
                # overlapping spans share bins: count each as half an observation
                self._update((mean - m0) / (mid_t - t0), 0.5 * (mean + m0), mid_t - t0,
                             overlap=2.0 if len(self._bins) > 1 else 1.0)
            self._bins.append((mid_t, mean))
            self._bin_t0 = t
            self._bin_sum = 0.0
            self._bin_n = 0
        self._bin_sum += water_c
        self._bin_n += 1

    def _update(self, rate: float, temp_c: float, dt: float, overlap: float = 1.0) -> None:
        """One observation ``rate = α − β·temp`` (a Kalman/RLS step, 2 states)."""
        h0, h1 = 1.0, -temp_c
        p = self._p
        ph0 = p[0][0] * h0 + p[0][1] * h1
        ph1 = p[1][0] * h0 + p[1][1] * h1
        r = 2.0 * overlap * (self.noise_c / dt) ** 2  # two bin means differenced
        s = h0 * ph0 + h1 * ph1 + r
        k0, k1 = ph0 / s, ph1 / s
        err = rate - (self._x[0] * h0 + self._x[1] * h1)
        self._prev_temp = temp_c
        self._x[0] += k0 * err
        self._x[1] += k1 * err
        self._p = [[p[0][0] - k0 * ph0, p[0][1] - k0 * ph1],
                   [p[1][0] - k1 * ph0, p[1][1] - k1 * ph1]]
        self.samples += 1

    def remaining_s(self, water_c: float, target_c: float) -> float:
        """Seconds at full power from ``water_c`` to ``target_c`` (0 when there; ``inf``
        when the heater cannot get there)."""
        if water_c >= target_c:
            return 0.0
        a, b = self.posterior(water_c, target_c)
        r_now = a - b * water_c
        r_end = r_now - b * (target_c - water_c)
        if r_end <= 0.0 or r_now <= 0.0:
            return math.inf
        if b * (target_c - water_c) < 1e-6 * r_now:
            return (target_c - water_c) / r_now
        return math.log(r_now / r_end) / b
