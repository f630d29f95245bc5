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


def test_heating_rate_and_holding_power_are_learnt() -> None:
    """After an hour at full power on a table unlike the model, the estimator knows how
    much faster than the model it heats (the law's approach scales with it) and which
    share of full power holds 37 °C there (the tail of the estimate stands on it)."""
    prior = WarmupPrior.from_model(300.0, 106650.0, 3.5, 21.0)
    c = 35 * 4186.0 + 2000.0
    alpha, beta = (240.0 + 6.0 * 12.0) / c, 6.0 / c
    est = WarmupEstimator(prior, settle_s=0.0)
    for k in range(3601):
        est.add(float(k), _first_order(alpha, beta, 16.0, float(k)), 1.0)
    # P/C at the model's room, the table's over the model's
    want = (alpha - beta * 21.0) / (prior.alpha - prior.beta * 21.0)
    assert est.heating_rate_ratio(21.0) == pytest.approx(want, rel=0.05)
    assert est.heating_rate_ratio(21.0) < 0.7  # the model is visibly wrong here
    assert est.holding_fraction(37.0, 12.0) == pytest.approx(6.0 * 25.0 / 240.0, rel=0.10)
    fresh = WarmupEstimator(prior)
    assert fresh.heating_rate_ratio(21.0) == 1.0 and fresh.holding_fraction(37.0, 21.0) is None


def test_the_plausible_range_bounds_the_loss() -> None:
    """While the data cannot tell the loss, its slope is bounded by what a plausible table
    rising at the observed rate can lose: higher when the heater may be weak and the room
    cold, and the estimate lies inside."""
    est = WarmupEstimator(WarmupPrior.from_model(300.0, 106650.0, 3.5, 21.0))
    lo, hi = est.beta_range(1.4e-3, 17.0)
    # 2 W/K on 360 W in a 30 °C room ... 6 W/K on 240 W in a 12 °C room
    assert lo == pytest.approx(2.0 * 1.4e-3 / (360.0 + 2.0 * 13.0))
    assert hi == pytest.approx(6.0 * 1.4e-3 / (240.0 - 6.0 * 5.0))
    for k in range(900):  # some data: the posterior's β lies in the range
        est.add(float(k), 17.0 + 1.4e-3 * k, 1.0)
    assert est.samples > 0
    _, b = est.posterior(18.0, 36.5)
    assert lo * 0.5 <= b <= hi * 1.5


#: the corners of the plausible range (benchmarks/corners.py): the untuned controller
#: (nominal model) on each, the ready-in estimate judged 10, 30 and 60 min into heating
UNTUNED_CORNERS = ("nominal", "light/strong, warm room", "light/strong, cold room",
                   "heavy/weak, cold room", "heavy/weak, warm room")


@pytest.mark.parametrize("name", UNTUNED_CORNERS)
def test_ready_in_without_autotune_on_a_corner_plant(name: str) -> None:
    """Issue 10, part 5: without autotune (the configuration nominal, the table a corner
    of the plausible range), after the first 10 minutes of heating the "ready in"
    estimate is within ±10 % of the real remaining time — at 10, 30 and 60 min — on a
    closed loop of the real law on the simulated true table."""
    from dataclasses import replace

    from benchmarks.autotune import warm_up
    from benchmarks.corners import corner
    from hydrotherm.config import Config

    believed = Config()
    believed = replace(believed, control=replace(believed.control, heat_on=[True, True]))
    r = warm_up(corner(name).truth(), believed)
    checked = [k for k in ("ready_error_10min", "ready_error_30min", "ready_error_60min")
               if r[k] is not None]
    assert "ready_error_10min" in checked, r
    for k in checked:
        assert abs(r[k]) <= 0.10, (k, r)
