"""Our control law (``controller/control.py``): the issue's targets in closed loop on the
simulated plant, and its parts in isolation.

The closed-loop figures are of the *true* water temperature (the plant's state, not the
sensors), the worse of the two cushions; the targets are the issue's: settle within
±0.2 °C in at most 1.10 × the physical minimum warm-up, overshoot at most 0.2 °C, mean
steady-state error at most 0.1 °C over the 30 min before the client lies down, and back
within ±0.2 °C less than 600 s after a client lies down.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import peers
from controller.control import CushionController, SlopeEstimator
from hydrotherm.config import Config


@dataclass
class Run:
    cfg: Config
    scenario: peers.Scenario
    trace: peers.Trace
    raw_outputs: list[float]  # what the law asked for, before the bench clamps it

    @property
    def physical_minimum_s(self) -> float:
        return self.scenario.physical_minimum_s(self.cfg)


def _with_client(cfg: Config, w_per_k: float) -> Config:
    return replace(cfg, plant=replace(cfg.plant, client_w_per_k=w_per_k))


def _scenario(name: str) -> tuple[Config, peers.Scenario]:
    cfg = Config()
    if name == "reference":
        return cfg, peers.REFERENCE
    if name == "room 15 C":
        return cfg, peers.scenario(cfg, name, 37.0, 15.0, 15.0)
    if name == "setpoint 30":
        return cfg, peers.scenario(cfg, name, 30.0, 21.0, 20.0)
    if name == "setpoint 40":
        return cfg, peers.scenario(cfg, name, 40.0, 21.0, 20.0)
    if name == "client 10 W/K":
        return _with_client(cfg, 10.0), replace(peers.REFERENCE, name=name)
    raise KeyError(name)


SCENARIOS = ("reference", "room 15 C", "setpoint 30", "setpoint 40", "client 10 W/K")


@functools.cache
def run(name: str) -> Run:
    """One closed-loop run of our law per scenario, shared by the tests below."""
    cfg, sc = _scenario(name)
    law = peers.ours(cfg, sc.setpoint_c)
    raw: list[float] = []

    def decide(cushion: int, t: float, measured: float | None, applied: float) -> float:
        out = law(cushion, t, measured, applied)
        raw.append(out)
        return out

    return Run(cfg, sc, peers.run_scenario(cfg, sc, decide), raw)


# --- the targets, closed loop ----------------------------------------------------


@pytest.mark.parametrize("name", SCENARIOS)
def test_settles_within_110_percent_of_physical_minimum(name: str) -> None:
    r = run(name)
    settle = r.trace.settle_s()
    limit = peers.TARGET_SETTLE_RATIO * r.physical_minimum_s
    assert settle <= limit, (f"{name}: settled at {settle:.0f} s, limit {limit:.0f} s "
                             f"(physical minimum {r.physical_minimum_s:.0f} s)")


@pytest.mark.parametrize("name", SCENARIOS)
def test_overshoot_at_most_0_2_c(name: str) -> None:
    over = run(name).trace.overshoot_c()
    assert over <= peers.TARGET_OVERSHOOT_C, f"{name}: overshoot {over:.3f} °C"


@pytest.mark.parametrize("name", SCENARIOS)
def test_steady_state_error_within_0_1_c(name: str) -> None:
    tr = run(name).trace
    err = tr.steady_error_c()
    assert err <= peers.TARGET_STEADY_ERROR_C, f"{name}: mean |error| {err:.4f} °C"
    # and not just on average: the hold stays inside the band the issue calls "at setpoint"
    assert tr.steady_max_error_c() <= peers.BAND_C, f"{name}: {tr.steady_max_error_c():.3f}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_client_recovery_under_600_s(name: str) -> None:
    tr = run(name).trace
    rec = tr.client_recovery_s()
    assert rec < peers.TARGET_RECOVERY_S, (
        f"{name}: recovery {rec} s, largest deviation {tr.client_max_deviation_c():.3f} °C")


@pytest.mark.parametrize("name", SCENARIOS)
def test_closed_loop_output_always_within_0_and_1(name: str) -> None:
    raw = run(name).raw_outputs
    assert raw, "the law was never asked"
    assert all(0.0 <= o <= 1.0 for o in raw), (min(raw), max(raw))
    # it used the whole range: full power while warming up, little once holding
    assert max(raw) == 1.0
    assert min(raw) < 0.5


def test_reference_warm_up_is_real() -> None:
    """Guards the bench itself: the reference run starts cold, reaches the setpoint near
    the physical minimum (not at t=0) and the client event happens inside the run."""
    r = run("reference")
    tr = r.trace
    assert tr.water_c[0][0] == pytest.approx(20.0)
    assert 0.9 * r.physical_minimum_s < tr.settle_s() < math.inf
    assert tr.t_s[-1] == pytest.approx(peers.REFERENCE.duration_s)
    assert tr.client_on_at_s is not None and tr.client_on_at_s < tr.t_s[-1]
    # heat went in: at least what warming both cushions' water by 17 K takes
    water_heat_wh = 2 * 25.0 * 4186.0 * 17.0 / 3600.0
    assert tr.energy_wh > water_heat_wh


# --- the law in isolation ----------------------------------------------------------------


def _law() -> CushionController:
    cfg = Config()
    return CushionController(cfg.control, cfg.plant, cfg.sensor)


def test_integral_frozen_while_disabled() -> None:
    law = _law()
    t = 0.0
    # near the setpoint and enabled: the integral moves
    for _ in range(300):
        t += 1.0
        law.step(t, 36.8, 0.3, 37.0, True, 36.8)
    held = law.integral_w
    assert held != 0.0
    # disabled, with a large error in either direction and a changing reading
    for k in range(600):
        t += 1.0
        out = law.step(t, 36.7 + 0.001 * k, 0.0, 37.0, False, 36.8)
        assert out.output == 0.0
        assert out.integral_w == held
        assert law.integral_w == held
    # enabled again: it moves again
    for _ in range(10):
        t += 1.0
        law.step(t, 36.8, 0.3, 37.0, True, 36.8)
    assert law.integral_w != held


def test_disabled_gives_zero_output() -> None:
    on, off = _law(), _law()
    for k in range(30):
        t = float(k)
        a = on.step(t, 25.0, 1.0, 37.0, True, 25.0)
        b = off.step(t, 25.0, 1.0, 37.0, False, 25.0)
        assert a.output == 1.0  # cold water, enabled: full power...
        assert b.output == 0.0  # ...and the same state disabled: nothing
        assert b.water_c is not None  # the estimates still run while disabled


def test_no_measurement_gives_zero_output() -> None:
    law = _law()
    for k in range(30):
        assert law.step(float(k), 25.0, 1.0, 37.0, True, 25.0).output == 1.0
    out = law.step(30.0, None, 1.0, 37.0, True, 25.0)
    assert out.output == 0.0
    assert out.water_c is None and out.plate_c is None
    assert law.step(31.0, None, 0.0, 37.0, True, None).output == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.one_of(st.none(), st.floats(0.0, 60.0)),  # measured
    st.floats(0.0, 1.0),  # applied
    st.floats(30.0, 40.0),  # setpoint
    st.booleans(),  # enabled
    st.floats(0.05, 5.0),  # dt
    st.one_of(st.none(), st.floats(0.0, 60.0)),  # other cushion
), min_size=1, max_size=80))
def test_output_within_0_and_1_whatever_the_inputs(steps: list[tuple]) -> None:
    law = _law()
    t = 0.0
    for measured, applied, sp, enabled, dt, other in steps:
        t += dt
        out = law.step(t, measured, applied, sp, enabled, other)
        assert 0.0 <= out.output <= 1.0
        assert math.isfinite(out.output)
        if not enabled or measured is None:
            assert out.output == 0.0
        lim = law.cfg.integral_limit_w
        assert -lim <= out.integral_w <= lim


# --- the slope estimator -----------------------------------------------------------------


def test_slope_of_a_line_is_exact() -> None:
    est = SlopeEstimator(60.0)
    assert est.slope == 0.0  # nothing yet
    for k in range(2):
        est.add(1000.0 + 0.2 * k, 20.0 + 0.004 * k)
    assert est.slope == 0.0  # two points are not enough
    for k in range(2, 1000):
        est.add(1000.0 + 0.2 * k, 20.0 + 0.004 * k)  # 0.02 °C/s
        assert est.slope == pytest.approx(0.02, rel=1e-6)
    assert est.span_s == pytest.approx(60.0, abs=0.2 + 1e-9)


def test_slope_forgets_outside_its_window() -> None:
    est = SlopeEstimator(30.0)
    v = 30.0
    for k in range(100):
        est.add(float(k), v)
        v += 0.01
    for k in range(100, 200):
        est.add(float(k), v)
        v -= 0.005
    assert est.slope == pytest.approx(-0.005, rel=1e-6)
    est.clear()
    assert est.slope == 0.0 and est.span_s == 0.0


def test_slope_robust_to_sensor_noise() -> None:
    """0.03 °C rms noise on a 0.003 °C/s rise, sampled at 1 Hz, 60 s window: the fit stays
    within 0.0015 °C/s of the truth everywhere (the expected scatter is ~0.0002), where a
    two-sample difference would scatter by ~0.04 °C/s."""
    rng = random.Random(3)
    est = SlopeEstimator(60.0)
    worst = 0.0
    for k in range(3600):
        est.add(float(k), 25.0 + 0.003 * k + rng.gauss(0.0, 0.03))
        if k >= 60:
            worst = max(worst, abs(est.slope - 0.003))
    assert worst < 0.0015


def test_the_figures_tell_a_worse_law_apart() -> None:
    """The bench can fail a law: the plain thermostat on the reference run overshoots by
    more than 0.2 °C and never stays within ±0.2 °C."""
    cfg = Config()
    tr = peers.run_scenario(cfg, peers.REFERENCE, peers.thermostat_peer(37.0))
    assert tr.overshoot_c() > peers.TARGET_OVERSHOOT_C
    assert tr.settle_s() == math.inf
    assert tr.client_recovery_s() == math.inf
