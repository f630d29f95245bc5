"""The analysis: the record resampled, lag-compensated, and the two-capacity model fitted
by ``scipy.optimize.least_squares`` on numpy arrays, with a confidence interval for every
identified number, the room temperature included when nobody measured it.

Why scipy rather than a hand-written solver: the fit is the one place where a wrong
number silently becomes a wrong model; a well-kept trust-region solver with bounds, and
a covariance from the SVD of its Jacobian, leaves nothing of ours to get subtly wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import expm
from scipy.optimize import least_squares

from hydrotherm.config import CUSHIONS, Config

from .configuration import combine_fits
from .results import AutotuneError, AutotuneResult, AutotuneSettings, CushionFit, Estimate, Record


@dataclass
class _Series:
    """A cushion's record on a uniform grid of ``dt`` seconds from ``t0``."""

    t0: float
    dt: float
    water: list[float]  # lag-compensated, mean over each bin
    power: list[float]  # W, mean over each bin
    other: list[float]  # the other cushion's compensated water


def _uniform(t: list[float], v: list[float | None], t0: float, dt: float, n: int) -> list[float]:
    """Means of ``v`` in bins ``[t0 + k dt, t0 + (k+1) dt)``; empty bins interpolated."""
    sums = [0.0] * n
    counts = [0] * n
    for ti, vi in zip(t, v, strict=True):
        if vi is None:
            continue
        k = int((ti - t0) // dt)
        if 0 <= k < n:
            sums[k] += vi
            counts[k] += 1
    out: list[float | None] = [sums[k] / counts[k] if counts[k] else None for k in range(n)]
    known = [k for k in range(n) if out[k] is not None]
    if not known:
        raise AutotuneError("no valid readings were recorded")
    first, last = known[0], known[-1]
    prev = first
    for k in range(n):
        if out[k] is not None:
            if k - prev > 1:
                a, b = out[prev], out[k]
                for j in range(prev + 1, k):
                    out[j] = a + (b - a) * (j - prev) / (k - prev)  # type: ignore[operator]
            prev = k
    for k in range(first):
        out[k] = out[first]
    for k in range(last + 1, n):
        out[k] = out[last]
    return out  # type: ignore[return-value]


def _centred_slopes(v: list[float], dt: float, half: int) -> list[float]:
    """Least-squares slope of ``v`` over ±``half`` samples around each one (shorter at the
    ends), O(n) with prefix sums.  Offline, so centred: no lag, unlike a live estimate."""
    n = len(v)
    pv = [0.0] * (n + 1)
    pkv = [0.0] * (n + 1)
    for k in range(n):
        pv[k + 1] = pv[k] + v[k]
        pkv[k + 1] = pkv[k] + k * v[k]
    out = []
    for k in range(n):
        lo, hi = max(0, k - half), min(n, k + half + 1)
        m = hi - lo
        if m < 3:
            out.append(0.0)
            continue
        sk = (lo + hi - 1) * m / 2.0
        skk = _sum_sq(hi - 1) - _sum_sq(lo - 1)
        sv = pv[hi] - pv[lo]
        skv = pkv[hi] - pkv[lo]
        den = m * skk - sk * sk
        out.append((m * skv - sk * sv) / den / dt if den > 0 else 0.0)
    return out


def _sum_sq(k: int) -> float:
    """0² + 1² + ... + k² (0 for k < 0)."""
    return k * (k + 1) * (2 * k + 1) / 6.0 if k > 0 else 0.0


def _compensated(rec: Record, c: int, t0: float, n: int, lag_s: float,
                 window_s: float) -> list[float]:
    """1 s means of cushion ``c``'s sensor mean, corrected for the sensor lag."""
    raw = _uniform(rec.t, rec.water[c], t0, 1.0, n)
    slopes = _centred_slopes(raw, 1.0, max(1, int(round(window_s / 2.0))))
    return [r + lag_s * s for r, s in zip(raw, slopes, strict=True)]


def _bin(v: list[float], m: int) -> list[float]:
    return [sum(v[k:k + m]) / len(v[k:k + m]) for k in range(0, len(v) - m + 1, m)]


def _slope(t: list[float], v: list[float]) -> float:
    n = len(t)
    if n < 3:
        return 0.0
    mt = sum(t) / n
    mv = sum(v) / n
    den = sum((x - mt) ** 2 for x in t)
    return sum((x - mt) * (y - mv) for x, y in zip(t, v, strict=True)) / den if den else 0.0


@dataclass(frozen=True)
class _Known:
    cp: float
    k: float
    room: float | None  # None: the room is a fitted parameter


def _discrete(cw: float, cp: float, h: float, ua: float, k: float,
              dt: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact discretisation over ``dt`` of the 2-state model with inputs held:
    ``x' = A x + u`` with ``x = (T_p, T_w)``; returns ``(E, M)`` with
    ``x[k+1] = E x[k] + M u[k]`` (one matrix exponential of the augmented system, so
    equal eigenvalues need no special case)."""
    a = np.array([[-h / cp, h / cp], [h / cw, -(h + ua + k) / cw]])
    aug = np.zeros((4, 4))
    aug[:2, :2] = a * dt
    aug[:2, 2:] = np.eye(2) * dt
    e = expm(aug)
    return e[:2, :2], e[:2, 2:]


def _predict(theta: Sequence[float], s: _Series, known: _Known) -> np.ndarray:
    """The model's bin-mean water temperatures for parameters
    ``(ln C_w, UA, ln τ_p, T_w0, T_p0 − T_w0[, T_room])``, inputs held over each bin."""
    ln_cw, ua, ln_tau, tw, d0 = theta[:5]
    room = known.room if known.room is not None else theta[5]
    cw = math.exp(ln_cw)
    cp = known.cp
    h = cp / math.exp(ln_tau)
    k = known.k
    e, m = _discrete(cw, cp, h, ua, k, s.dt)
    e00, e01, e10, e11 = float(e[0, 0]), float(e[0, 1]), float(e[1, 0]), float(e[1, 1])
    m00, m01, m10, m11 = float(m[0, 0]), float(m[0, 1]), float(m[1, 0]), float(m[1, 1])
    tp = tw + d0
    base = ua * room / cw
    kc = k / cw
    out = np.empty(len(s.power))
    # a plain float recursion: ~1000 steps, faster than numpy's per-call overhead
    for i, (p, o) in enumerate(zip(s.power, s.other, strict=True)):
        u0 = p / cp
        u1 = base + kc * o
        ntp = e00 * tp + e01 * tw + m00 * u0 + m01 * u1
        ntw = e10 * tp + e11 * tw + m10 * u0 + m11 * u1
        out[i] = 0.5 * (tw + ntw)
        tp, tw = ntp, ntw
    return out


@dataclass
class _FitOut:
    theta: np.ndarray
    residuals: np.ndarray
    cov: np.ndarray | None  # unscaled: (JᵀJ)⁻¹
    iterations: int
    at_bound: tuple[bool, ...]


def _least_squares(resid: Callable[[np.ndarray], np.ndarray], x0: Sequence[float],
                   lo: Sequence[float], hi: Sequence[float]) -> _FitOut:
    """``scipy.optimize.least_squares`` (trust-region reflective, within the bounds) and
    the unscaled covariance ``(JᵀJ)⁻¹`` from the SVD of the final Jacobian (the
    pseudo-inverse: a parameter the data cannot see shows as an infinite-looking
    variance rather than an exception)."""
    lo_a = np.asarray(lo, dtype=float)
    hi_a = np.asarray(hi, dtype=float)
    x0_a = np.clip(np.asarray(x0, dtype=float), lo_a + 1e-9 * (hi_a - lo_a),
                   hi_a - 1e-9 * (hi_a - lo_a))
    sol = least_squares(resid, x0_a, bounds=(lo_a, hi_a), method="trf", x_scale="jac",
                        xtol=1e-10, ftol=1e-12, gtol=1e-10, max_nfev=400)
    jac = sol.jac
    _, sv, vt = np.linalg.svd(jac, full_matrices=False)
    cov: np.ndarray | None
    if sv.size == 0 or sv[0] <= 0 or sv[-1] <= sv[0] * 1e-12:
        cov = None
    else:
        cov = (vt.T / sv ** 2) @ vt
    span = hi_a - lo_a
    at_bound = tuple(bool(v) for v in (np.minimum(sol.x - lo_a, hi_a - sol.x) < 1e-6 * span))
    return _FitOut(sol.x, sol.fun, cov, int(sol.nfev), at_bound)


def _window(v: list[float], t0: float, a: float, b: float) -> tuple[list[float], list[float]]:
    """(times, values) of a 1 s series between a and b seconds (absolute clock)."""
    lo = max(0, int(math.ceil(a - t0)))
    hi = min(len(v), int(b - t0))
    ts = [t0 + k + 0.5 for k in range(lo, hi)]
    return ts, v[lo:hi]


def analyse(rec: Record, t0: float, heat_start: float, heat_end: float,
            heat_stopped_at: Sequence[float | None], cushions: Sequence[int], cfg: Config,
            room_c: float | None, settings: AutotuneSettings,
            heater_w: float | None = None, *, room_source: str | None = None,
            room_note: str = "") -> AutotuneResult:
    """Fit each driven cushion's record and derive the configuration changes.

    ``room_c``: the room temperature as measured by someone (``--room-c``), or None to
    identify it with the rest (``room_source``: where a known room came from, "given" or
    "measured" by the board; ``room_note`` says how, for the report).  ``heater_w``: a
    measured heater power, or None for the nameplate (``plant.heater_w``); see the
    package docstring for why it cannot come from temperatures alone."""
    if len(rec.t) < 10:
        raise AutotuneError("too few reports were recorded")
    plant = cfg.plant
    c_spec = plant.water_specific_heat_j_per_kg_k
    cp = plant.plate_heat_capacity_j_per_k
    heater = plant.heater_w if heater_w is None else float(heater_w)
    lag = cfg.sensor.lag_s
    n1 = int((rec.t[-1] - t0) // 1.0) + 1
    comp = [_compensated(rec, c, t0, n1, lag, cfg.control.slope_window_s)
            for c in range(CUSHIONS)]
    applied = [_uniform(rec.t, list(rec.applied[c]), t0, 1.0, n1) for c in range(CUSHIONS)]
    m = max(1, int(round(settings.fit_bin_s)))
    known = _Known(cp, plant.coupling_w_per_k, room_c)
    tau_cfg = cp / plant.plate_to_water_w_per_k
    fits = []
    for c in cushions:
        fits.append(_fit_cushion(c, comp, applied, m, t0, heat_start, heat_end,
                                 heat_stopped_at[c] or heat_end, known, heater, c_spec,
                                 tau_cfg, plant.water_kg * c_spec,
                                 plant.loss_to_room_w_per_k, cfg.control.slope_window_s,
                                 cfg.control.room_estimate_c))
    return combine_fits(fits, cfg, room_c, settings, rec.t[-1] - t0, heater,
                        "measured" if heater_w is not None else "nameplate",
                        room_source=room_source, room_note=room_note)


def _fit_cushion(c: int, comp: list[list[float]], applied: list[list[float]], m: int,
                 t0: float, heat_start: float, heat_end: float, stopped: float,
                 known: _Known, heater: float, c_spec: float, tau_cfg: float,
                 cw_cfg: float, ua_cfg: float, window_s: float,
                 room_guess: float) -> CushionFit:
    w1 = comp[c]
    o1 = comp[1 - c]
    series = _Series(t0, float(m), _bin(w1, m), [heater * a for a in _bin(applied[c], m)],
                     _bin(o1, m))
    n = len(series.water)
    if n < 20:
        raise AutotuneError(f"cushion {c}: the record is too short to fit")
    warnings: list[str] = []
    # --- the closed-form look: hold drift, late heating slope, late cooling slope ---
    settle = max(120.0, 5.0 * tau_cfg)
    hold_t, hold_v = _window(w1, t0, t0 + 60.0, heat_start)
    hold_rate = _slope(hold_t, hold_v)
    heated = stopped - heat_start
    a = max(heat_start + settle, stopped - max(600.0, 0.5 * heated))
    heat_t, heat_v = _window(w1, t0, min(a, stopped - 60.0), stopped)
    heat_rate = _slope(heat_t, heat_v)
    heat_at = sum(heat_v) / len(heat_v) if heat_v else math.nan
    end = t0 + len(w1) - 1
    cool_from = min(stopped + settle, end - 120.0)
    cool_t, cool_v = _window(w1, t0, cool_from, end)
    cool_rate = _slope(cool_t, cool_v)
    cool_at = sum(cool_v) / len(cool_v) if cool_v else math.nan
    # initial guess: UA/C from the cooling, C from the heating (coupling ignored here)
    room0 = known.room if known.room is not None else room_guess
    ctot0 = cw_cfg + known.cp
    ua0 = ua_cfg
    dt_cool = cool_at - room0
    if abs(dt_cool) > 1.0 and cool_rate < 0:
        a_loss = -cool_rate / dt_cool
        net = heat_rate + a_loss * (heat_at - room0)
        if net > 0:
            ctot0 = heater / net
            ua0 = a_loss * ctot0
    cw0 = max(ctot0 - known.cp, 0.2 * cw_cfg)
    theta0 = [math.log(cw0), min(max(0.05, ua0), 150.0), math.log(tau_cfg), series.water[0],
              0.0]
    lo = [math.log(1e3), 0.0, math.log(2.0), -50.0, -60.0]
    hi = [math.log(2e6), 200.0, math.log(5000.0), 150.0, 60.0]
    if known.room is None:
        theta0.append(min(max(room0, -9.0), 49.0))
        lo.append(-10.0)
        hi.append(50.0)
    half = int(math.ceil(window_s / 2.0 / m))
    lo_k, hi_k = half, n - half  # the compensation is one-sided at the ends: left out
    data = np.asarray(series.water[lo_k:hi_k])

    def resid(theta: np.ndarray) -> np.ndarray:
        return _predict(theta, series, known)[lo_k:hi_k] - data

    out = _least_squares(resid, theta0, lo, hi)
    r = out.residuals
    npts = int(r.size)
    sse = float(r @ r)
    sst = float(((data - data.mean()) ** 2).sum())
    r2 = 1.0 - sse / sst if sst > 0 else 0.0
    rms = math.sqrt(sse / npts)
    # 1σ from the covariance, inflated for correlated residuals (lag-1 autocorrelation)
    rho = float(r[:-1] @ r[1:]) / sse if npts > 2 and sse > 0 else 0.0
    rho = min(0.98, max(0.0, rho))
    inflate = math.sqrt((1.0 + rho) / (1.0 - rho))
    s2 = sse / max(1, npts - len(out.theta))
    if out.cov is not None:
        sig = [math.sqrt(max(0.0, float(out.cov[i, i]) * s2)) * inflate
               for i in range(len(out.theta))]
    else:
        sig = [math.inf] * len(out.theta)
        warnings.append("the fit's covariance is singular: uncertainties unknown")
    ln_cw, ua, ln_tau = float(out.theta[0]), float(out.theta[1]), float(out.theta[2])
    cw = math.exp(ln_cw)
    tau = math.exp(ln_tau)
    h = known.cp / tau
    cw_est = Estimate(cw, cw * sig[0])
    tau_est = Estimate(tau, tau * sig[2])
    room_est = (Estimate(float(out.theta[5]), sig[5]) if known.room is None
                else None)
    room_used = known.room if known.room is not None else float(out.theta[5])
    peak = max(series.water)
    start = series.water[0]
    if heated < 600.0:
        warnings.append(f"cushion {c} was heated only {heated:.0f} s")
    if abs(cool_at - room_used) < 2.0:
        warnings.append(f"cushion {c} cooled within {abs(cool_at - room_used):.1f} K of the "
                        "room: the loss to the room is poorly determined")
    names = ["water capacity", "loss to the room", "plate time constant",
             "initial water temperature", "initial plate excess", "room temperature"]
    at_bound = tuple(names[i] for i, b in enumerate(out.at_bound) if b)
    if r2 < 0.999 or rms > 0.05:
        warnings.append(f"cushion {c}: the model fits the record poorly "
                        f"(R² {r2:.5f}, rms {rms:.3f} °C)")
    return CushionFit(
        cushion=c, water_capacity_j_per_k=cw_est,
        water_kg=Estimate(cw / c_spec, cw_est.sigma / c_spec),
        loss_to_room_w_per_k=Estimate(ua, sig[1]),
        plate_time_constant_s=tau_est,
        plate_to_water_w_per_k=Estimate(h, h * sig[2]),
        r2=r2, residual_rms_c=rms, residual_max_c=float(np.abs(r).max()), points=npts,
        iterations=out.iterations, start_c=start, peak_c=peak, heated_s=heated,
        hold_rate_c_per_min=60.0 * hold_rate, heat_rate_c_per_min=60.0 * heat_rate,
        heat_rate_at_c=heat_at, cool_rate_c_per_min=60.0 * cool_rate, cool_rate_at_c=cool_at,
        warnings=tuple(warnings), room_c=room_est, at_bound=at_bound)
