"""The warm-up estimate ("ready in"): how long until the water is in the ready band, from
what the table actually does, not only from what the configuration says it is.

Why its own estimator: the old estimate was an energy balance on the configured model
(``C_w``, ``UA``, the room estimate, the nameplate heater).  On a real table every one of
those is off (water 15–35 kg, heater 240–360 W, loss 2–6 W/K, room 12–30 °C), and the
estimate with them — worse, a ready-by schedule would stand on it.

What it does: at full power the water follows, once the plate has settled (a few plate
time constants after the power went full), ``dT/dt = α − β T`` with
``α = (P + UA·T_room)/C`` and ``β = UA/C`` (``C`` = water + plate).  Every
``bin_s`` (30 s) of uninterrupted full power, the rise of the bin-mean temperature over
the bin is one observation of ``α − β T``; a Bayesian linear regression (a recursive
least squares with a prior: two numbers and a 2×2 matrix, no history kept) starts from
the configured model's ``α₀``, ``β₀`` (after ``hydrotherm autotune`` those are the
identified table, room included) and moves to what the table does.  The level of the
rate (``α − β T`` at the present temperature) is learnt within minutes; its slope
``β`` (how much the loss grows on the way) only as the water warms, so until then it
leans on the prior — the reason an autotuned configuration gives a better early estimate
than the nominal one.  The remaining time at full power to ``T_target`` is then
``ln((α − βT)/(α − βT_target)) / β`` (``(T_target − T)/α'`` when β ≈ 0), and ``inf``
when the heater cannot get there (``α − β·T_target ≤ 0``).

Cost on the control loop's hot path: a few additions per cycle; the regression update
(a handful of multiplications) once per bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WarmupPrior:
    """The configured model at full power: ``α₀`` (K/s), ``β₀`` (1/s) and how sure we are
    of each (1σ)."""

    alpha: float
    beta: float
    alpha_sigma: float
    beta_sigma: float

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

    __slots__ = ("prior", "bin_s", "settle_s", "noise_c", "_full_since", "_bin_t0",
                 "_bin_sum", "_bin_n", "_prev_mean", "_prev_t", "_p", "_x", "samples")

    def __init__(self, prior: WarmupPrior, bin_s: float = 30.0, settle_s: float = 300.0,
                 noise_c: float = 0.005) -> None:
        """``settle_s``: full power for this long before a bin counts (the plate's own
        warm-up, a few plate time constants, and the sensor lag).  ``noise_c``: the
        noise of a bin-mean temperature (sets how much one bin moves the estimate)."""
        self.prior = prior
        self.bin_s = bin_s
        self.settle_s = settle_s
        self.noise_c = noise_c
        self.samples = 0
        self._full_since: float | None = None
        self._bin_t0: float | None = None
        self._bin_sum = 0.0
        self._bin_n = 0
        self._prev_mean: float | None = None
        self._prev_t = 0.0
        # the posterior of (α, β): mean and covariance (information form would do too)
        self._x = [prior.alpha, prior.beta]
        self._p = [[prior.alpha_sigma ** 2, 0.0], [0.0, prior.beta_sigma ** 2]]

    @property
    def alpha(self) -> float:
        return self._x[0]

    @property
    def beta(self) -> float:
        return self._x[1]

    def reset_run(self) -> None:
        """The full-power run was broken (power below full, no reading): the next bins
        wait for the plate to settle again.  What was learnt is kept."""
        self._full_since = None
        self._bin_t0 = None
        self._bin_sum = 0.0
        self._bin_n = 0
        self._prev_mean = None

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
            if self._prev_mean is not None and mid_t > self._prev_t:
                rate = (mean - self._prev_mean) / (mid_t - self._prev_t)
                self._update(rate, 0.5 * (mean + self._prev_mean), mid_t - self._prev_t)
            self._prev_mean = mean
            self._prev_t = mid_t
            self._bin_t0 = t
            self._bin_sum = 0.0
            self._bin_n = 0
        self._bin_sum += water_c
        self._bin_n += 1

    def _update(self, rate: float, temp_c: float, dt: float) -> None:
        """One observation ``rate = α − β·temp`` (a Kalman/RLS step, 2 states)."""
        h0, h1 = 1.0, -temp_c
        p = self._p
        ph0 = p[0][0] * h0 + p[0][1] * h1
        ph1 = p[1][0] * h0 + p[1][1] * h1
        r = 2.0 * (self.noise_c / dt) ** 2  # two bin means differenced
        s = h0 * ph0 + h1 * ph1 + r
        k0, k1 = ph0 / s, ph1 / s
        err = rate - (self._x[0] * h0 + self._x[1] * h1)
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
        a, b = self._x
        b = max(b, 0.0)  # the loss cannot be negative
        r_now = a - b * water_c
        r_end = a - b * target_c
        if r_end <= 0.0 or r_now <= 0.0:
            return math.inf
        if b * (target_c - water_c) < 1e-6 * r_now:
            return (target_c - water_c) / r_now
        return math.log(r_now / r_end) / b
