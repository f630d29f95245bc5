"""``controller.warmup``: the online full-power warm-up estimate (issue 10, part 5)."""

from __future__ import annotations

import math

import pytest

from controller.warmup import WarmupEstimator, WarmupPrior


def _first_order(alpha: float, beta: float, t0_c: float, t: float) -> float:
    """Water temperature after ``t`` s at full power: ``dT/dt = α − β T``."""
    final = alpha / beta
    return final + (t0_c - final) * math.exp(-beta * t)


def _exact_remaining(alpha: float, beta: float, now_c: float, target_c: float) -> float:
    return math.log((alpha - beta * now_c) / (alpha - beta * target_c)) / beta


def test_prior_is_the_configured_model() -> None:
    p = WarmupPrior.from_model(300.0, 106650.0, 3.5, 21.0)
    assert p.alpha == pytest.approx((300.0 + 3.5 * 21.0) / 106650.0)
    assert p.beta == pytest.approx(3.5 / 106650.0)
    est = WarmupEstimator(p)
    # with no data the estimate is the model's own full-power time
    assert est.remaining_s(20.0, 36.8) == pytest.approx(
        _exact_remaining(p.alpha, p.beta, 20.0, 36.8))


def test_learns_a_table_unlike_the_model() -> None:
    """The model says 25 kg, 300 W, 3.5 W/K, 21 °C; the table is 35 kg, 240 W, 6 W/K in a
    12 °C room.  After an hour of full power the estimate has moved from the model's
    (far too short) to within 5 % of the truth."""
    prior = WarmupPrior.from_model(300.0, 106650.0, 3.5, 21.0)
    c = 35 * 4186.0 + 2000.0
    alpha, beta = (240.0 + 6.0 * 12.0) / c, 6.0 / c
    est = WarmupEstimator(prior, settle_s=0.0)
    t = 0.0
    while t <= 3600.0:
        est.add(t, _first_order(alpha, beta, 16.0, t), 1.0)
        t += 1.0
    now = _first_order(alpha, beta, 16.0, 3600.0)
    truth = _exact_remaining(alpha, beta, now, 36.8)
    model = _exact_remaining(prior.alpha, prior.beta, now, 36.8)
    assert abs(model - truth) / truth > 0.3  # the model alone is far off
    assert est.samples > 100
    assert est.remaining_s(now, 36.8) == pytest.approx(truth, rel=0.05)


def test_only_settled_full_power_counts() -> None:
    prior = WarmupPrior.from_model(300.0, 106650.0, 3.5, 21.0)
    est = WarmupEstimator(prior, settle_s=300.0)
    for k in range(1200):  # 20 min at half power: nothing learnt
        est.add(float(k), 20.0 + 0.001 * k, 0.5)
    assert est.samples == 0
    for k in range(1200, 1200 + 299):  # full power, but the plate has not settled yet
        est.add(float(k), 20.0 + 0.001 * k, 1.0)
    assert est.samples == 0
    for k in range(1499, 1499 + 300):
        est.add(float(k), 20.0 + 0.001 * k, 1.0)
    assert est.samples > 0
    before = est.samples
    est.add(1800.0, None, 1.0)  # a lost reading breaks the run: settle again
    for k in range(1801, 1801 + 200):
        est.add(float(k), 20.0 + 0.001 * k, 1.0)
    assert est.samples == before


def test_unreachable_and_reached() -> None:
    # a heater that settles at 30 °C (α/β = 30) never gets to 37
    est = WarmupEstimator(WarmupPrior(30.0 * 1e-5, 1e-5, 1e-5, 1e-6))
    assert est.remaining_s(25.0, 36.8) == math.inf
    assert est.remaining_s(37.0, 36.8) == 0.0
    # no loss: a straight line
    flat = WarmupEstimator(WarmupPrior(1e-3, 0.0, 1e-4, 1e-9))
    assert flat.remaining_s(20.0, 30.0) == pytest.approx(10_000.0)
