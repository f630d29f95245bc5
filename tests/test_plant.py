"""The thermal plant against closed forms, its energy books, sensors and faults."""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.thermistor import Thermistor
from hydrotherm.config import PlantConfig, SensorConfig
from sim.plant import CushionFaults, Plant, SensorFault, physical_minimum_warmup_s


def make(seed: int = 1, sensor: SensorConfig | None = None, **plant: object) -> Plant:
    return Plant(PlantConfig(**plant), sensor or SensorConfig(), random.Random(seed))


def run(pl: Plant, seconds: float, dt: float, drive: tuple[float, float] = (0.0, 0.0),
        relay: bool = True) -> None:
    for _ in range(round(seconds / dt)):
        pl.step(dt, drive, relay)


def closed_form(cfg: PlantConfig, power_w: float, client: bool, tp0: float, tw0: float,
                t: float) -> tuple[float, float]:
    """(plate, water) of one full cushion after ``t`` s, derived here independently.

    With ``a = h/C_p``, ``b = h/C_w``, ``g = UA (+ G_c)``, ``γ = g/C_w`` the deviation
    ``d = x − x_eq`` from the equilibrium obeys ``d' = A d``, ``A = [[−a, a], [b, −(b+γ)]]``.
    Equilibrium: ``T_w,eq = (UA·T_room + G_c·T_n + P)/g`` and ``T_p,eq = T_w,eq + P/h``.
    The eigenvalues solve ``λ² + (a+b+γ)λ + aγ = 0``; the first row of ``(A − λI)v = 0``
    gives the eigenvector ``v = (1, 1 + λ/a)``.  Then ``d(t) = Σ c_k v_k e^{λ_k t}`` with
    ``c_1 + c_2 = d_p(0)`` and ``(c_1 λ_1 + c_2 λ_2)/a = d_w(0) − d_p(0)``.
    """
    cp = cfg.plate_heat_capacity_j_per_k
    cw = cfg.water_kg * cfg.water_specific_heat_j_per_kg_k
    h = cfg.plate_to_water_w_per_k
    gc = cfg.client_w_per_k if client else 0.0
    g = cfg.loss_to_room_w_per_k + gc
    a, b, gam = h / cp, h / cw, g / cw
    tw_eq = (cfg.loss_to_room_w_per_k * cfg.room_c + gc * cfg.client_neutral_c + power_w) / g
    tp_eq = tw_eq + power_w / h
    s = a + b + gam
    root = math.sqrt(s * s - 4 * a * gam)
    l1, l2 = (-s + root) / 2, (-s - root) / 2
    dp, dw = tp0 - tp_eq, tw0 - tw_eq
    c1 = (a * (dw - dp) - l2 * dp) / (l1 - l2)
    c2 = dp - c1
    e1, e2 = math.exp(l1 * t), math.exp(l2 * t)
    return (tp_eq + c1 * e1 + c2 * e2,
            tw_eq + c1 * (1 + l1 / a) * e1 + c2 * (1 + l2 / a) * e2)


CHECKPOINTS = (10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 5400.0, 7200.0)


# --- closed forms -------------------------------------------------------------------


@pytest.mark.parametrize("dt", [0.2, 0.5, 2.0])
def test_heating_at_full_power_matches_closed_form(dt: float) -> None:
    cfg = PlantConfig(room_c=21.0, initial_water_c=[21.0, 21.0])
    pl = Plant(cfg, SensorConfig(), random.Random(0))
    t = 0.0
    for when in CHECKPOINTS:
        run(pl, when - t, dt, (1.0, 1.0))
        t = when
        tp, tw = closed_form(cfg, cfg.heater_w, False, 21.0, 21.0, t)
        for i in (0, 1):
            assert pl.water_c[i] == pytest.approx(tw, abs=0.02), (t, i)
            assert pl.plate_c[i] == pytest.approx(tp, abs=0.02), (t, i)
    assert pl.time_s == pytest.approx(7200.0)
    # The plant is second order: the plate runs well above the water while heating.
    assert pl.plate_c[0] - pl.water_c[0] > 0.8 * cfg.heater_w / cfg.plate_to_water_w_per_k
    # ...and the heating made real progress (the comparison is not trivially near 21 °C).
    assert pl.water_c[0] > 30.0


def test_small_steps_match_closed_form() -> None:
    cfg = PlantConfig(room_c=21.0, initial_water_c=[21.0, 21.0])
    pl = Plant(cfg, SensorConfig(), random.Random(0))
    run(pl, 300.0, 0.01, (1.0, 1.0))
    tp, tw = closed_form(cfg, cfg.heater_w, False, 21.0, 21.0, 300.0)
    assert pl.plate_c[0] == pytest.approx(tp, abs=1e-6)
    assert pl.water_c[1] == pytest.approx(tw, abs=1e-6)


@pytest.mark.parametrize("client", [False, True])
def test_cooling_matches_closed_form(client: bool) -> None:
    cfg = PlantConfig(room_c=18.0, initial_water_c=[37.0, 37.0])
    pl = Plant(cfg, SensorConfig(), random.Random(0))
    pl.plate_c[:] = [45.0, 45.0]  # a plate still hot from heating
    for i in (0, 1):
        pl.set_client(i, client)
    t = 0.0
    for when in CHECKPOINTS:
        run(pl, when - t, 0.5, (0.0, 0.0))
        t = when
        tp, tw = closed_form(cfg, 0.0, client, 45.0, 37.0, t)
        for i in (0, 1):
            assert pl.water_c[i] == pytest.approx(tw, abs=0.02), (t, i)
            assert pl.plate_c[i] == pytest.approx(tp, abs=0.02), (t, i)
    assert pl.water_c[0] < 37.0 - 0.5  # it did cool noticeably


def test_any_dt_gives_the_same_trajectory() -> None:
    results = []
    for dt in (0.01, 0.2, 1.0, 2.0):
        pl = make(initial_water_c=[20.0, 32.0])
        pl.set_client(1, True)
        run(pl, 200.0, dt, (0.8, 0.3))
        results.append(pl.water_c + pl.plate_c)
    for other in results[1:]:
        # Only the coupling is split (Strang) from the rest; its error is tiny.
        assert other == pytest.approx(results[0], abs=1e-5)


def test_step_of_zero_is_nothing_and_negative_is_refused() -> None:
    pl = make()
    before = (list(pl.water_c), list(pl.plate_c), pl.time_s)
    pl.step(0.0, (1.0, 1.0), True)
    pl.step(1e-12, (1.0, 1.0), True)
    assert (pl.water_c, pl.plate_c, pl.time_s) == before
    with pytest.raises(ValueError):
        pl.step(-0.1, (1.0, 1.0), True)


# --- energy -------------------------------------------------------------------------


def test_energy_balance_closes_with_everything_going_on() -> None:
    pl = make(initial_water_c=[20.0, 33.0])
    dts = (0.2, 0.37, 1.0, 2.0, 0.01)
    rng = random.Random(5)
    heater_j = 0.0
    for k in range(3000):
        dt = dts[k % len(dts)]
        if k % 400 == 0:
            pl.set_client(rng.randrange(2), rng.random() < 0.5)
        if k == 1000:
            pl.faults[1].leak_kg_per_min = 0.5
        drive = (rng.random(), 0.2 * rng.random())
        pl.step(dt, drive, True)
        heater_j += (pl.power_w[0] + pl.power_w[1]) * dt
    e = pl.energy()
    assert e.heater_in == pytest.approx(heater_j, rel=1e-9)
    assert e.leak_out > 0.0 and pl.water_kg[1] < 25.0
    assert e.room_loss != 0.0 and e.client_in != 0.0
    # Heat went from the warmer cushion 1 to cushion 0 and the exchange nets to zero.
    assert e.coupling_0_to_1 < 0.0
    assert abs(e.coupling) < 1e-6 * abs(e.coupling_0_to_1)
    assert e.residual_fraction() < 1e-3
    # The integration is exact, so the books close to rounding error.
    assert e.residual_fraction() < 1e-9


def test_energy_residual_detects_an_unbooked_change() -> None:
    pl = make()
    run(pl, 600.0, 0.2, (1.0, 1.0))
    assert pl.energy().residual_fraction() < 1e-9
    pl.water_c[0] += 0.1  # heat from nowhere: 25 kg × 4186 × 0.1 ≈ 10 kJ
    assert pl.energy().residual_fraction() > 1e-3


def test_energy_balance_through_emptying() -> None:
    pl = make(initial_water_c=[30.0, 30.0])
    pl.faults[0].leak_kg_per_min = 3.0
    for k in range(6000):
        pl.step(0.5 if k % 2 else 0.7, (1.0, 0.5), True)
    assert pl.water_kg[0] == 0.0
    e = pl.energy()
    assert e.residual_fraction() < 1e-6


# --- physical minimum ---------------------------------------------------------------


def test_physical_minimum_warmup_matches_the_reference() -> None:
    t = physical_minimum_warmup_s(PlantConfig(), 20.0, 37.0, 21.0)
    assert 6400.0 <= t <= 7000.0


def test_physical_minimum_agrees_with_the_simulation() -> None:
    cfg = PlantConfig(room_c=21.0, initial_water_c=[20.0, 20.0])
    expected = physical_minimum_warmup_s(cfg, 20.0, 37.0, 21.0)
    pl = Plant(cfg, SensorConfig(), random.Random(0))
    while pl.water_c[0] < 37.0:
        pl.step(1.0, (1.0, 1.0), True)
    assert pl.time_s == pytest.approx(expected, abs=1.0)


def test_physical_minimum_edge_cases() -> None:
    cfg = PlantConfig()
    assert physical_minimum_warmup_s(cfg, 37.0, 37.0, 21.0) == 0.0
    # 300 W against 20 W/K of loss reaches at most room + 15 K.
    assert physical_minimum_warmup_s(replace(cfg, loss_to_room_w_per_k=20.0),
                                     20.0, 37.0, 21.0) == math.inf
    # Colder room, longer; bigger heater, shorter.
    base = physical_minimum_warmup_s(cfg, 20.0, 37.0, 21.0)
    assert physical_minimum_warmup_s(cfg, 20.0, 37.0, 15.0) > base
    assert physical_minimum_warmup_s(replace(cfg, heater_w=600.0), 20.0, 37.0, 21.0) < base / 1.8


# --- sensors ------------------------------------------------------------------------


@pytest.mark.parametrize("dt", [0.01, 0.2, 2.0])
def test_sensor_lag_is_first_order(dt: float) -> None:
    lag = 10.0
    pl = make(sensor=SensorConfig(lag_s=lag), loss_to_room_w_per_k=0.0, coupling_w_per_k=0.0,
              initial_water_c=[20.0, 20.0])
    pl.water_c[0] = pl.plate_c[0] = 30.0  # a step of 10 K in the water
    t = 0.0
    for when in (2.0, 10.0, 20.0, 40.0):
        run(pl, when - t, dt)
        t = when
        want = 30.0 - 10.0 * math.exp(-t / lag)
        assert pl.water_c[0] == pytest.approx(30.0, abs=1e-9)
        for s in (0, 1):
            assert pl.sensed_c[0][s] == pytest.approx(want, abs=1e-6), (t, s)
        if when == 10.0:
            assert (pl.sensed_c[0][0] - 20.0) / 10.0 == pytest.approx(1 - math.exp(-1), abs=1e-4)
    assert pl.sensed_c[1] == [20.0, 20.0]  # the other cushion did not move


def test_sensor_lags_a_ramp_by_its_time_constant() -> None:
    pl = make()
    run(pl, 1800.0, 0.2, (1.0, 1.0))
    before = pl.water_c[0]
    run(pl, 1.0, 0.2, (1.0, 1.0))
    rate = pl.water_c[0] - before  # K/s
    assert rate > 1e-3
    lag = SensorConfig().lag_s
    assert pl.sensed_c[0][0] == pytest.approx(pl.water_c[0] - lag * rate, abs=2e-4)


def test_sensor_noise_has_the_configured_rms() -> None:
    therm = Thermistor(SensorConfig())
    for noise, lo, hi in ((0.5, 0.45, 0.55), (0.03, 0.02, 0.045)):
        pl = make(seed=7, sensor=SensorConfig(noise_c=noise))
        pl.sensed_c[0][0] = 37.0
        temps = [therm.celsius_at(pl.sensor_counts(0, 0)) for _ in range(4000)]
        assert lo <= statistics.pstdev(temps) <= hi
        assert statistics.fmean(temps) == pytest.approx(37.0, abs=0.03)


def test_sensor_without_noise_is_exactly_the_conversion() -> None:
    sc = SensorConfig(noise_c=0.0)
    pl = make(sensor=sc)
    pl.sensed_c[1][1] = 36.4
    assert pl.sensor_counts(1, 1) == Thermistor(sc).counts_at(36.4)
    assert len({pl.sensor_counts(1, 1) for _ in range(50)}) == 1


def test_sensor_open_short_and_offset() -> None:
    sc = SensorConfig(noise_c=0.0)
    therm = Thermistor(sc)
    pl = make(sensor=sc, initial_water_c=[30.0, 30.0])
    pl.faults[0].sensor[1] = SensorFault.OPEN
    pl.faults[1].sensor[0] = SensorFault.SHORT
    assert pl.sensor_counts(0, 1) == 4095
    assert pl.sensor_counts(1, 0) == 0
    assert pl.sensor_counts(0, 0) == therm.counts_at(30.0)  # its twin is unaffected
    pl.faults[1].sensor_offset_c[1] = 2.0
    assert pl.sensor_counts(1, 1) == therm.counts_at(32.0)
    assert therm.celsius_at(pl.sensor_counts(1, 1)) == pytest.approx(32.0, abs=0.02)
    pl.faults[1].sensor[0] = SensorFault.NONE
    assert pl.sensor_counts(1, 0) == therm.counts_at(30.0)


def test_open_sensor_is_full_scale_for_other_resolutions() -> None:
    pl = make(sensor=SensorConfig(adc_bits=10))
    pl.faults[0].sensor[0] = SensorFault.OPEN
    assert pl.sensor_counts(0, 0) == 1023


# --- heater path and faults ---------------------------------------------------------


def test_drive_is_clamped_and_the_relay_cuts_power() -> None:
    pl = make()
    pl.step(0.2, (1.7, -0.3), True)
    assert pl.power_w == [300.0, 0.0]
    pl.step(0.2, (0.25, 0.5), True)
    assert pl.power_w == [75.0, 150.0]
    pl.step(0.2, (1.0, 1.0), False)
    assert pl.power_w == [0.0, 0.0]


def test_dead_heater_gives_no_power() -> None:
    pl = make(initial_water_c=[21.0, 21.0], room_c=21.0)
    pl.faults[0].heater_dead = True
    pl.faults[0].heater_stuck_on = True  # an open element beats a welded relay
    run(pl, 600.0, 0.2, (1.0, 1.0))
    assert pl.power_w == [0.0, 300.0]
    assert pl.plate_c[0] < 21.05 and pl.water_c[0] < 21.05
    assert pl.plate_c[1] > 25.0


def test_stuck_heater_heats_at_zero_drive_unless_the_relay_is_open() -> None:
    pl = make(initial_water_c=[21.0, 21.0], room_c=21.0)
    pl.faults[1].heater_stuck_on = True
    run(pl, 600.0, 0.2, (0.0, 0.0), relay=True)
    assert pl.power_w == [0.0, 300.0]
    assert pl.plate_c[1] > 25.0 and pl.plate_c[0] < 21.05
    plate = pl.plate_c[1]
    run(pl, 600.0, 0.2, (0.0, 0.0), relay=False)
    assert pl.power_w == [0.0, 0.0]
    assert pl.plate_c[1] < plate


def test_cutout_opens_at_55_and_recloses_at_45() -> None:
    cfg = PlantConfig()
    dt = 0.5
    cp = cfg.plate_heat_capacity_j_per_k
    overshoot = cfg.heater_w * dt / cp  # the cut-out is sampled once per step
    undershoot = cfg.plate_to_water_w_per_k * (cfg.cutout_close_c - 20.0) * dt / cp
    pl = Plant(cfg, SensorConfig(), random.Random(0))
    pl.faults[0].leak_kg_per_min = 2.0  # empties in 12.5 min while heating
    openings, closings = [], []
    last_plate = pl.plate_c[0]
    for _ in range(round(3 * 3600 / dt)):
        was_open = pl.cutout_open[0]
        pl.step(dt, (1.0, 0.0), True)
        plate = pl.plate_c[0]
        if was_open:
            assert pl.power_w[0] == 0.0
        if pl.cutout_open[0] and not was_open:
            openings.append(plate)
            assert last_plate < cfg.cutout_open_c
        if was_open and not pl.cutout_open[0]:
            closings.append(plate)
            assert last_plate > cfg.cutout_close_c
        if not pl.cutout_open[0]:
            assert plate < cfg.cutout_open_c
        else:
            assert plate > cfg.cutout_close_c
        last_plate = plate
    assert len(openings) >= 2 and len(closings) >= 1
    for p in openings:
        assert cfg.cutout_open_c <= p <= cfg.cutout_open_c + overshoot
    for p in closings:
        assert cfg.cutout_close_c - undershoot <= p <= cfg.cutout_close_c
    assert pl.water_kg[0] == 0.0
    assert pl.cutout_open[1] is False
    assert pl.energy().residual_fraction() < 1e-6


def test_a_nearly_empty_cushion_heats_fast() -> None:
    full = make(initial_water_c=[21.0, 21.0])
    low = make(initial_water_c=[21.0, 21.0])
    low.water_kg[0] = 1.0
    for pl in (full, low):
        run(pl, 600.0, 0.2, (1.0, 0.0))
    assert low.water_c[0] - 21.0 > 5 * (full.water_c[0] - 21.0)
    assert low.plate_c[0] > full.plate_c[0]


def test_leak_reduces_mass_and_stops_at_empty() -> None:
    pl = make()
    pl.faults[1].leak_kg_per_min = 1.5
    run(pl, 600.0, 0.2)
    assert pl.water_kg[1] == pytest.approx(25.0 - 15.0, abs=1e-9)
    assert pl.water_kg[0] == 25.0
    run(pl, 1200.0, 0.2)
    assert pl.water_kg[1] == 0.0
    assert all(math.isfinite(t) for t in pl.water_c + pl.plate_c)


def test_faults_default_to_none() -> None:
    f = CushionFaults()
    assert f.sensor == [SensorFault.NONE, SensorFault.NONE]
    assert f.sensor_offset_c == [0.0, 0.0]
    assert not f.heater_stuck_on and not f.heater_dead and f.leak_kg_per_min == 0.0
    assert SensorFault("open") is SensorFault.OPEN


# --- property -----------------------------------------------------------------------

ACTION = st.tuples(
    st.floats(0.01, 2.0),  # dt
    st.floats(0.0, 1.0), st.floats(0.0, 1.0),  # drives
    st.booleans(), st.booleans(),  # clients
    st.booleans(),  # relay
    st.integers(1, 150),  # steps
)


@settings(max_examples=60, deadline=None)
@given(
    actions=st.lists(ACTION, min_size=1, max_size=15),
    start=st.tuples(st.floats(10.0, 40.0), st.floats(10.0, 40.0)),
    room=st.floats(15.0, 28.0),
    leaks=st.tuples(st.sampled_from([0.0, 0.5, 5.0, 20.0]), st.sampled_from([0.0, 3.0])),
    stuck=st.booleans(),
)
def test_random_operation_stays_physical_and_balanced(actions, start, room, leaks, stuck) -> None:
    cfg = PlantConfig(room_c=room, initial_water_c=list(start))
    pl = Plant(cfg, SensorConfig(), random.Random(3))
    pl.faults[0].leak_kg_per_min, pl.faults[1].leak_kg_per_min = leaks
    pl.faults[1].heater_stuck_on = stuck
    # Nothing can get colder than the coldest of room, start and (if any) client, nor
    # hotter than that or the cut-out plus one step of full power on the plate.
    sources = [room, *start]
    if any(c0 or c1 for _, _, _, c0, c1, _, _ in actions):
        sources.append(cfg.client_neutral_c)
    lo = min(sources) - 1e-6
    hi = max(*sources, cfg.cutout_open_c) + cfg.heater_w * 2.0 / cfg.plate_heat_capacity_j_per_k
    for dt, d0, d1, c0, c1, relay, n in actions:
        pl.set_client(0, c0)
        pl.set_client(1, c1)
        for _ in range(n):
            pl.step(dt, (d0, d1), relay)
        temps = pl.water_c + pl.plate_c + pl.sensed_c[0] + pl.sensed_c[1]
        assert all(math.isfinite(t) for t in temps)
        assert all(lo <= t <= hi for t in temps), (lo, hi, temps)
        assert all(0.0 <= m <= cfg.water_kg for m in pl.water_kg)
        assert pl.energy().residual_fraction() < 1e-3
