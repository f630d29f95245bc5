"""Whole mornings on the whole stack, in-process on the simulated clock (hours in
seconds): the shipped schedule scenarios meet ``schedule_met``, a table heavier than its
model (built through the Python API: the controller's model stays 25 kg) is ready on time
on its first morning, and the JSON result carries the ``schedule`` records."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.scenario import ScenarioError, _Run, load_scenario, parse_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "sim" / "scenarios"


@pytest.mark.parametrize("name", ["schedule_cold_room", "schedule_warm_room",
                                  "schedule_uneven"])
def test_shipped_schedule_scenarios_are_met(name: str) -> None:
    res = run_scenario(load_scenario(SCENARIOS / f"{name}.toml"))
    assert res.passed, res.summary()
    out = res.to_json(trace=False)["schedule"]
    assert out, "no schedule records"
    for r in out:
        assert set(r) >= {"cushion", "ready_at_s", "heat_start_s", "ready_s", "late_s"}
        assert r["late_s"] == 0.0
        assert r["ready_at_s"] - 1200 <= r["ready_s"] <= r["ready_at_s"] + 60
        assert r["heat_start_s"] is not None and r["heat_start_s"] < r["ready_s"]


def test_a_table_heavier_than_its_model_is_ready_on_its_first_morning() -> None:
    sc = load_scenario(SCENARIOS / "schedule_cold_room.toml")
    run = _Run(sc, None)
    run.plant.water_kg = [35.0, 32.0]  # the truth; the controller's model says 25 kg
    res = run.run()
    assert res.passed, res.summary()
    # it learned the cushions are heavier: their own full-power rise (heater per
    # capacity, ``LearnedWarmup.learn_rates``) is slower than the model's
    learned = run.schedule.learned.cushions
    model_rate = 300.0 / (25.0 * 4186.0 + run.cfg.plant.plate_heat_capacity_j_per_k)
    assert learned[0].heat_rate is not None and learned[1].heat_rate is not None
    assert learned[0].heat_rate < model_rate / 1.15 and learned[1].heat_rate < model_rate / 1.1


def test_a_late_morning_fails_the_verdict_and_says_why() -> None:
    """Too little time for the warm-up: heating starts at once, the run reports it late."""
    text = (SCENARIOS / "schedule_warm_room.toml").read_text()
    text = text.replace('ready_at = "08:00"', 'ready_at = "06:20"').replace(
        "initial_water_c = [30.0, 30.0]", "initial_water_c = [25.0, 25.0]").replace(
        "duration_s = 9000", "duration_s = 7200")
    res = run_scenario(parse_scenario(text))
    assert not res.passed
    fails = [f for f in res.failures if f.expect == "schedule_met"]
    assert fails and "late for" in fails[0].reason
    rec = res.to_json(trace=False)["schedule"][0]
    assert rec["late_s"] > 60 and rec["heat_start_s"] < 30
    assert res.log_kinds.get("schedule_late", 0) >= 1


@pytest.mark.parametrize("bad, words", [
    ('[[schedule]]\nready_at = "08:45"\nsetpoint_c = 37.0\n', "needs start_at"),
    ('start_at = "2026-12-07 5am"\n', "not a local date-time"),
    ('start_at = "2026-12-07T05:00:00"\n[[schedule]]\nready_at = "8.45"\nsetpoint_c = 37.0\n',
     "HH:MM"),
    ('start_at = "2026-12-07T05:00:00"\n[[schedule]]\nready_at = "08:45"\nsetpoint_c = 37.0\n'
     'days = ["monday"]\n', "not a day"),
    ('[expect]\nschedule_met = true\n', "needs [[schedule]]"),
])
def test_bad_schedule_files_are_refused_with_the_line(bad: str, words: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(words)):
        parse_scenario("duration_s = 3600\n" + bad)
