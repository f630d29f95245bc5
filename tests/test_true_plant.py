"""``[true_plant]``: the simulated truth differs from the controller's model, per cushion;
the configuration refuses what it cannot mean, the plant runs it, a scenario reports both."""

from __future__ import annotations

import random

import pytest

from hydrotherm.config import ConfigError, from_mapping, to_toml
from hydrotherm.config import load as load_config
from sim.plant import Plant
from sim.scenario import parse_scenario, run_scenario

pytest_plugins = ["tests.firmware_fixtures"]


def test_numbers_and_pairs_are_per_cushion() -> None:
    cfg = from_mapping({"true_plant": {"water_kg": [15.0, 35.0], "heater_w": 360,
                                       "lag_s": [5.0, 20.0]}})
    tp = cfg.true_plant
    assert tp.overrides["water_kg"] == (15.0, 35.0)
    assert tp.overrides["heater_w"] == (360.0, 360.0)
    assert cfg.plant.water_kg == 25.0  # the model is untouched
    plant = Plant(cfg.plant, cfg.sensor, random.Random(0), tp)
    assert [p.water_kg for p in plant.cushions] == [15.0, 35.0]
    assert [p.heater_w for p in plant.cushions] == [360.0, 360.0]
    assert [s.lag_s for s in plant.sensors] == [5.0, 20.0]


@pytest.mark.parametrize("values,needle", [
    ({"coupling_w_per_k": [1.0, 2.0]}, "true_plant.coupling_w_per_k: one conductance"),
    ({"water_kg": [15.0]}, "true_plant.water_kg: expected one number or a list of 2"),
    ({"water_kg": [15.0, 0.0]}, "true_plant.water_kg[1] = 0.0 is refused"),
    ({"heater_w": "strong"}, "true_plant.heater_w: expected a finite number"),
    ({"initial_water_c": 30.0}, "true_plant.initial_water_c: the starting water"),
    ({"beta_k": 3900.0}, "true_plant.beta_k: unknown key"),
    ({"cutout_open_c": 50.0, "cutout_close_c": 50.0}, "cutout_close_c must be below"),
])
def test_refused_with_the_key(values: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping({"true_plant": values})
    assert needle in str(info.value)


def test_configuration_file_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A tester's config file for ``hydrotherm sim``/``demo``: written and read back."""
    cfg = from_mapping({"true_plant": {"water_kg": [15.0, 35.0], "room_c": 12.0}})
    path = tmp_path / "table.toml"
    path.write_text(to_toml(cfg))
    again = load_config(path)
    assert again.true_plant == cfg.true_plant
    assert "[true_plant]" in path.read_text() and "water_kg = [15.0, 35.0]" in path.read_text()
    assert "[true_plant]" not in to_toml(from_mapping({}))


def test_rebuilt_from_asdict() -> None:
    """The CLI and autotune rebuild a configuration from ``dataclasses.asdict``."""
    import dataclasses

    cfg = from_mapping({"true_plant": {"water_kg": [15.0, 35.0]}})
    assert from_mapping(dataclasses.asdict(cfg)).true_plant == cfg.true_plant
    empty = from_mapping(dataclasses.asdict(from_mapping({}))).true_plant
    assert not empty and empty == type(cfg.true_plant)()


def test_the_simulated_table_runs_the_truth(make_table) -> None:  # type: ignore[no-untyped-def]
    """Same heater into 15 kg and 35 kg, no loss, no coupling: each cushion's heat (its
    own water and plate) is exactly the heater's energy, the light one warms ~35/15
    times as much, and the books balance — on the Python board and on the firmware
    table alike (the firmware table once built its plant from ``[plant]`` alone)."""
    from hydrotherm.clock import SimClock

    cfg = from_mapping({"plant": {"initial_water_c": 30.0, "room_c": 30.0},
                        "true_plant": {"water_kg": [15.0, 35.0],
                                       "loss_to_room_w_per_k": 0.0,
                                       "coupling_w_per_k": 0.0}})
    table = make_table(cfg, SimClock())
    plant = table.plant
    for _ in range(1200):  # the light cushion's plate stays below its 55 °C cut-out
        plant.step(1.0, (1.0, 1.0), True)
    rise = [w - 30.0 for w in plant.water_c]
    for i, kg in enumerate((15.0, 35.0)):
        heat = kg * 4186.0 * rise[i] + 2000.0 * (plant.plate_c[i] - 30.0)
        assert heat == pytest.approx(300.0 * 1200.0, rel=1e-6)
    assert rise[0] / rise[1] == pytest.approx(35.0 / 15.0, rel=0.05)
    assert plant.energy().residual_fraction() < 1e-9


def test_scenario_reports_model_and_truth() -> None:
    sc = parse_scenario("""
duration_s = 30
[plant]
initial_water_c = 36.0
[true_plant]
water_kg = [15.0, 35.0]
heater_w = 240.0
[control]
setpoint_c = 37.0
""", "<test>")
    out = run_scenario(sc).to_json(trace=False)
    assert out["model"]["water_kg"] == 25.0 and out["model"]["heater_w"] == 300.0
    assert [c["water_kg"] for c in out["true_plant"]] == [15.0, 35.0]
    assert [c["heater_w"] for c in out["true_plant"]] == [240.0, 240.0]


def test_scenario_error_names_the_line() -> None:
    text = "duration_s = 30\n[true_plant]\nwater_kg = [15.0, -1.0]\n"
    from sim.scenario import ScenarioError

    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.toml")
    assert info.value.line == 3 and "true_plant.water_kg" in str(info.value)
