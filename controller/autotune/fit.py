"""The analysis: the record resampled, lag-compensated, and the two-capacity model fitted
by Levenberg-Marquardt, with an uncertainty for every identified number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

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


def _f_of_a(a: tuple[float, float, float, float], dt: float,
            fn: Callable[[float], float]) -> tuple[float, float, float, float]:
    """``fn(A)`` for a 2×2 matrix with real distinct eigenvalues (Sylvester's formula)."""
    a00, a01, a10, a11 = a
    half_tr = 0.5 * (a00 + a11)
    det = a00 * a11 - a01 * a10
    disc = math.sqrt(max(half_tr * half_tr - det, 0.0))
    if disc <= 1e-15:
        raise AutotuneError("degenerate model (equal eigenvalues)")
    l1, l2 = half_tr + disc, half_tr - disc
    f1, f2 = fn(l1 * dt), fn(l2 * dt)
    d = l1 - l2
    # fn(A) = (f1 (A − l2 I) − f2 (A − l1 I)) / (l1 − l2)
    return ((f1 * (a00 - l2) - f2 * (a00 - l1)) / d, (f1 - f2) * a01 / d,
            (f1 - f2) * a10 / d, (f1 * (a11 - l2) - f2 * (a11 - l1)) / d)


def _expm1_over(z: float) -> float:
    """(e^z − 1)/z, accurate at 0."""
    return math.expm1(z) / z if abs(z) > 1e-8 else 1.0 + z / 2.0


@dataclass(frozen=True)
class _Known:
    cp: float
    k: float
    room: float


def _predict(theta: Sequence[float], s: _Series, known: _Known) -> list[float]:
    """The model's bin-mean water temperatures for parameters
    ``(ln C_w, UA, ln τ_p, T_w0, T_p0 − T_w0)``, inputs held over each bin (exact)."""
    ln_cw, ua, ln_tau, tw, d0 = theta
    cw = math.exp(ln_cw)
    cp = known.cp
    h = cp / math.exp(ln_tau)
    k = known.k
    a = (-h / cp, h / cp, h / cw, -(h + ua + k) / cw)
    dt = s.dt
    e00, e01, e10, e11 = _f_of_a(a, dt, math.exp)
    m00, m01, m10, m11 = (dt * x for x in _f_of_a(a, dt, _expm1_over))
    tp = tw + d0
    base = ua * known.room / cw
    kc = k / cw
    out = []
    for p, o in zip(s.power, s.other, strict=True):
        u0 = p / cp
        u1 = base + kc * o
        ntp = e00 * tp + e01 * tw + m00 * u0 + m01 * u1
        ntw = e10 * tp + e11 * tw + m10 * u0 + m11 * u1
        out.append(0.5 * (tw + ntw))
        tp, tw = ntp, ntw
    return out


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (small dense systems)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for col in range(n):
        piv = max(range(col, n), key=lambda r: abs(m[r][col]))
        if abs(m[piv][col]) < 1e-300:
            raise ZeroDivisionError("singular")
        m[col], m[piv] = m[piv], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                for j in range(col, n + 1):
                    m[r][j] -= f * m[col][j]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][j] * x[j] for j in range(r + 1, n))) / m[r][r]
    return x


def _inverse(a: list[list[float]]) -> list[list[float]]:
    n = len(a)
    cols = [_solve(a, [1.0 if i == j else 0.0 for i in range(n)]) for j in range(n)]
    return [[cols[j][i] for j in range(n)] for i in range(n)]


@dataclass
class _FitOut:
    theta: list[float]
    residuals: list[float]
    cov: list[list[float]] | None
    iterations: int


def _levenberg_marquardt(resid: Callable[[list[float]], list[float]], x0: list[float],
                         steps: list[float], lo: list[float], hi: list[float],
                         max_iter: int = 80) -> _FitOut:
    """Minimise the sum of squared residuals; forward-difference Jacobian, Marquardt's
    diagonal damping, parameters kept within [lo, hi]."""
    n = len(x0)

    def jacobian(x: list[float], r: list[float]) -> list[list[float]]:
        """Columns d r / d x_j (forward differences, backward at an upper bound)."""
        cols = []
        for j in range(n):
            xj = list(x)
            hj = steps[j] if x[j] + steps[j] <= hi[j] else -steps[j]
            xj[j] += hj
            rj = resid(xj)
            cols.append([(b - a) / hj for a, b in zip(r, rj, strict=True)])
        return cols

    def normal(jac: list[list[float]]) -> list[list[float]]:
        return [[sum(p * q for p, q in zip(jac[i], jac[j], strict=True)) for j in range(n)]
                for i in range(n)]

    x = list(x0)
    r = resid(x)
    sse = sum(v * v for v in r)
    lam = 1e-3
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        jac = jacobian(x, r)
        jtj = normal(jac)
        jtr = [sum(p * q for p, q in zip(jac[i], r, strict=True)) for i in range(n)]
        improved = False
        while lam < 1e12:
            a = [[jtj[i][j] + (lam * jtj[i][i] if i == j else 0.0) for j in range(n)]
                 for i in range(n)]
            for i in range(n):
                a[i][i] += 1e-300
            try:
                dx = _solve(a, [-v for v in jtr])
            except ZeroDivisionError:
                lam *= 10.0
                continue
            xn = [min(hi[i], max(lo[i], x[i] + dx[i])) for i in range(n)]
            rn = resid(xn)
            ssen = sum(v * v for v in rn)
            if ssen < sse:
                small = all(abs(xn[i] - x[i]) < 1e-6 * steps[i] for i in range(n))
                rel = (sse - ssen) / max(sse, 1e-300)
                x, r, sse = xn, rn, ssen
                lam = max(lam / 5.0, 1e-9)
                improved = True
                if small or rel < 1e-10:
                    improved = False  # converged
                break
            lam *= 4.0
        if not improved:
            break
    try:
        cov: list[list[float]] | None = _inverse(normal(jacobian(x, r)))
    except ZeroDivisionError:
        cov = None
    return _FitOut(x, r, cov, it)


def _window(v: list[float], t0: float, a: float, b: float) -> tuple[list[float], list[float]]:
    """(times, values) of a 1 s series between a and b seconds (absolute clock)."""
    lo = max(0, int(math.ceil(a - t0)))
    hi = min(len(v), int(b - t0))
    ts = [t0 + k + 0.5 for k in range(lo, hi)]
    return ts, v[lo:hi]


def analyse(rec: Record, t0: float, heat_start: float, heat_end: float,
            heat_stopped_at: Sequence[float | None], cushions: Sequence[int], cfg: Config,
            room_c: float, settings: AutotuneSettings) -> AutotuneResult:
    """Fit each driven cushion's record and derive the configuration changes."""
    if len(rec.t) < 10:
        raise AutotuneError("too few reports were recorded")
    plant = cfg.plant
    c_spec = plant.water_specific_heat_j_per_kg_k
    cp = plant.plate_heat_capacity_j_per_k
    heater = plant.heater_w
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
                                 plant.loss_to_room_w_per_k, cfg.control.slope_window_s))
    return combine_fits(fits, cfg, room_c, settings, rec.t[-1] - t0)


def _fit_cushion(c: int, comp: list[list[float]], applied: list[list[float]], m: int,
                 t0: float, heat_start: float, heat_end: float, stopped: float,
                 known: _Known, heater: float, c_spec: float, tau_cfg: float,
                 cw_cfg: float, ua_cfg: float, window_s: float) -> CushionFit:
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
    ctot0 = cw_cfg + known.cp
    ua0 = ua_cfg
    dt_cool = cool_at - known.room
    if abs(dt_cool) > 1.0 and cool_rate < 0:
        a_loss = -cool_rate / dt_cool
        net = heat_rate + a_loss * (heat_at - known.room)
        if net > 0:
            ctot0 = heater / net
            ua0 = a_loss * ctot0
    cw0 = max(ctot0 - known.cp, 0.2 * cw_cfg)
    theta0 = [math.log(cw0), max(0.0, ua0), math.log(tau_cfg), series.water[0], 0.0]
    half = int(math.ceil(window_s / 2.0 / m))
    lo_k, hi_k = half, n - half  # the compensation is one-sided at the ends: left out
    data = series.water

    def resid(theta: list[float]) -> list[float]:
        pred = _predict(theta, series, known)
        return [pred[k] - data[k] for k in range(lo_k, hi_k)]

    lo = [math.log(1e3), 0.0, math.log(2.0), -50.0, -60.0]
    hi = [math.log(2e6), 200.0, math.log(5000.0), 150.0, 60.0]
    steps = [1e-4, 1e-3, 1e-4, 1e-4, 1e-4]
    out = _levenberg_marquardt(resid, theta0, steps, lo, hi)
    r = out.residuals
    npts = len(r)
    sse = sum(v * v for v in r)
    part = data[lo_k:hi_k]
    mean = sum(part) / npts
    sst = sum((v - mean) ** 2 for v in part)
    r2 = 1.0 - sse / sst if sst > 0 else 0.0
    rms = math.sqrt(sse / npts)
    # 1σ from the covariance, inflated for correlated residuals (lag-1 autocorrelation)
    rho = 0.0
    if npts > 2 and sse > 0:
        rho = sum(r[k] * r[k + 1] for k in range(npts - 1)) / sse
    rho = min(0.98, max(0.0, rho))
    inflate = math.sqrt((1.0 + rho) / (1.0 - rho))
    s2 = sse / max(1, npts - len(out.theta))
    if out.cov is not None:
        sig = [math.sqrt(max(0.0, out.cov[i][i] * s2)) * inflate for i in range(len(out.theta))]
    else:
        sig = [math.inf] * len(out.theta)
        warnings.append("the fit's covariance is singular: uncertainties unknown")
    ln_cw, ua, ln_tau = out.theta[0], out.theta[1], out.theta[2]
    cw = math.exp(ln_cw)
    tau = math.exp(ln_tau)
    h = known.cp / tau
    cw_est = Estimate(cw, cw * sig[0])
    tau_est = Estimate(tau, tau * sig[2])
    peak = max(series.water)
    start = series.water[0]
    if heated < 600.0:
        warnings.append(f"cushion {c} was heated only {heated:.0f} s")
    if abs(cool_at - known.room) < 2.0:
        warnings.append(f"cushion {c} cooled within {abs(cool_at - known.room):.1f} K of the "
                        "room: the loss to the room is poorly determined")
    for i, label in ((1, "loss to the room"), (2, "plate time constant")):
        if min(abs(out.theta[i] - lo[i]), abs(out.theta[i] - hi[i])) < 1e-9:
            warnings.append(f"cushion {c}: the {label} ended at the fit's bound")
    if r2 < 0.999 or rms > 0.05:
        warnings.append(f"cushion {c}: the model fits the record poorly "
                        f"(R² {r2:.5f}, rms {rms:.3f} °C)")
    return CushionFit(
        cushion=c, water_capacity_j_per_k=cw_est,
        water_kg=Estimate(cw / c_spec, cw_est.sigma / c_spec),
        loss_to_room_w_per_k=Estimate(ua, sig[1]),
        plate_time_constant_s=tau_est,
        plate_to_water_w_per_k=Estimate(h, h * sig[2]),
        r2=r2, residual_rms_c=rms, residual_max_c=max(abs(v) for v in r), points=npts,
        iterations=out.iterations, start_c=start, peak_c=peak, heated_s=heated,
        hold_rate_c_per_min=60.0 * hold_rate, heat_rate_c_per_min=60.0 * heat_rate,
        heat_rate_at_c=heat_at, cool_rate_c_per_min=60.0 * cool_rate, cool_rate_at_c=cool_at,
        warnings=tuple(warnings))


