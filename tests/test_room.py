"""The room the controller uses (``controller/room.py``): the board's room sensor where it
has one (protocol 1.1), the configured ``control.room_estimate_c`` otherwise — and it says
which.  A 12 °C clinic with the configured 21 °C: with the room sensor the control law's
feed-forward, its warm-up prior and the schedule use ~12 °C (and a schedule scenario is
met); on a 1.0 board the configured room is used and reported as configured."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from controller.control import CushionController
from controller.room import RoomTracker
from controller.schedule import ScheduleRunner, SimulatedLocalTime, parse_schedule
from controller.service import Controller
from controller.warmup import WarmupPrior
from firmware_bridge.thermistor import SensorReading, SensorStatus
from hydrotherm.config import Config, from_mapping
from sim.harness import InProcessHarness
from sim.scenario import load_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "sim" / "scenarios"
STEP = 0.2


def ok(c: float) -> SensorReading:
    return SensorReading(2000, SensorStatus.OK, c)


# --- the tracker ----------------------------------------------------------------------------


def test_a_1_0_board_falls_back_to_the_configured_room_and_says_so() -> None:
    t = RoomTracker(21.0)
    est = t.estimate(0.0)
    assert (est.source, est.celsius) == ("configured", 21.0)
    assert est.reason == "no reading from the board yet"
    t.observe(0.2, None)
    est = t.estimate(0.2)
    assert not est.measured and est.celsius == 21.0
    assert est.text == "room: configured 21 °C (no room sensor: a protocol 1.0 board)"
    assert est.as_dict()["source"] == "configured"


def test_the_measured_room_is_filtered_and_starts_at_the_first_reading() -> None:
    t = RoomTracker(21.0, tau_s=300.0)
    t.observe(0.0, ok(12.0))
    est = t.estimate(0.0)
    assert est.measured and est.celsius == 12.0 and est.reason == ""
    assert est.text == "room: measured 12.0 °C"
    # a door opened: 20 °C for 60 s moves the average by 8·(1 − e^(−60/300)) ≈ 1.45 K
    for k in range(1, 301):
        t.observe(k * 0.2, ok(20.0))
    assert t.estimate(60.0).celsius == pytest.approx(12.0 + 8.0 * 0.1813, abs=0.02)


@pytest.mark.parametrize("reading, words", [
    (SensorReading(4095, SensorStatus.OPEN, None), "room sensor open"),
    (SensorReading(0, SensorStatus.SHORT, None), "room sensor short"),
    (ok(80.0), "room sensor reads 80.0 °C, not a room temperature"),
])
def test_a_broken_or_implausible_room_sensor_falls_back_at_once(reading: SensorReading,
                                                                words: str) -> None:
    t = RoomTracker(21.0)
    t.observe(0.0, ok(12.0))
    t.observe(0.2, reading)
    est = t.estimate(0.2)
    assert not est.measured and est.celsius == 21.0 and est.reason == words
    assert f"room: configured 21 °C ({words})" == est.text
    t.observe(0.4, ok(13.0))  # back: starts afresh from the reading
    assert t.estimate(0.4).measured and t.estimate(0.4).celsius == 13.0


def test_a_stale_room_reading_falls_back() -> None:
    t = RoomTracker(21.0, stale_s=30.0)
    t.observe(0.0, ok(12.0))
    assert t.estimate(30.0).measured
    est = t.estimate(31.0)
    assert not est.measured and est.reason == "no room reading for 31 s"


# --- the control law ------------------------------------------------------------------------


def test_the_feed_forward_and_the_warmup_prior_follow_the_room() -> None:
    cfg = Config()
    law = CushionController(cfg.control, cfg.plant, cfg.sensor)
    ua = cfg.plant.loss_to_room_w_per_k
    assert law.holding_power(37.0, None) == pytest.approx(ua * (37.0 - 21.0))
    law.set_room(12.0)
    assert law.holding_power(37.0, None) == pytest.approx(ua * (37.0 - 12.0))
    cap = cfg.plant.water_kg * cfg.plant.water_specific_heat_j_per_kg_k \
        + cfg.plant.plate_heat_capacity_j_per_k
    want = WarmupPrior.from_model(cfg.plant.heater_w, cap, ua, 12.0)
    assert law.warmup.prior.alpha == pytest.approx(want.alpha)


# --- on the whole stack: a 12 °C room, the configuration left at 21 °C -----------------------


def _cold(minor: int) -> Config:
    cfg = from_mapping({"plant": {"room_c": 12.0, "initial_water_c": [12.0, 12.0]},
                        "board": {"protocol_minor": minor}})
    assert cfg.control.room_estimate_c == 21.0
    return cfg


def _run(cfg: Config, seconds: float) -> tuple[InProcessHarness, Controller, ScheduleRunner]:
    h = InProcessHarness(cfg, seed=3, step_s=STEP)
    c = Controller(cfg, h.link, h.clock)
    runner = ScheduleRunner(c, SimulatedLocalTime(datetime(2026, 12, 7, 4, 0), h.clock, 0.0),
                            schedule=parse_schedule({"entries": [
                                {"ready_at": "08:45", "setpoint_c": 37.0}]}))
    c.schedule = runner
    c.start()
    h.run(seconds, each_step=c.poll)
    return h, c, runner


def test_with_the_room_sensor_the_law_and_the_schedule_use_the_measured_room() -> None:
    h, c, runner = _run(_cold(1), 30.0)
    est = c.room_estimate()
    assert est.measured and est.celsius == pytest.approx(12.0, abs=0.3)
    ua = c.cfg.plant.loss_to_room_w_per_k
    for law in c.laws:
        assert law.room_c == pytest.approx(12.0, abs=0.3)
        assert law.holding_power(37.0, None) == pytest.approx(ua * 25.0, abs=1.5)
    assert runner._room() == pytest.approx(12.0, abs=0.3)
    snap = c.snapshot()
    assert snap["room"]["source"] == "measured" and snap["room"]["reason"] is None
    assert snap["room"]["text"].startswith("room: measured 1")
    why = runner.status()["cushions"][0]["why"]
    assert "room: measured 1" in why, why
    # the schedule's warm-up is the cold room's, not the configured 21 °C one
    base = runner.learned.base_warmup_s
    assert runner._predict(0, runner.tracks[0], 12.0) == pytest.approx(
        base(0, 12.0, 37.0, est.celsius), rel=1e-6)
    assert base(0, 12.0, 37.0, 12.0) > 1.1 * base(0, 12.0, 37.0, 21.0)


def test_a_1_0_board_uses_the_configured_room_and_reports_it() -> None:
    h, c, runner = _run(_cold(0), 30.0)
    assert h.link.identity.proto_minor == 0 and h.link.latest.room is None
    est = c.room_estimate()
    assert not est.measured and est.celsius == 21.0
    assert all(law.room_c == 21.0 for law in c.laws)
    assert runner._room() == 21.0
    snap = c.snapshot()
    assert snap["room"] == {"celsius": 21.0, "source": "configured",
                            "reason": "no room sensor: a protocol 1.0 board",
                            "text": "room: configured 21 °C (no room sensor: a protocol 1.0 "
                                    "board)"}
    assert "room: configured 21 °C (no room sensor" in runner.status()["cushions"][0]["why"]


def test_a_room_sensor_reading_no_room_falls_back_on_the_whole_stack() -> None:
    """A room sensor mounted against the heater reads 60 °C: not a room; the configured
    value is used and the reason shown."""
    h, c, _ = _run(_cold(1), 5.0)
    assert c.room_estimate().measured
    plant = h.table.plant
    plant._room = plant.sensed_room_c = 60.0
    h.run(2.0, each_step=c.poll)
    est = c.room_estimate()
    assert not est.measured and "not a room temperature" in est.reason
    assert all(law.room_c == 21.0 for law in c.laws)


def test_shipped_cold_room_scenario_with_the_room_sensor_is_met() -> None:
    sc = load_scenario(SCENARIOS / "schedule_cold_room_sensor.toml")
    res = run_scenario(sc)
    assert res.passed, "\n".join(res.summary())
    out = res.to_json(trace=False)
    assert out["model"]["room_estimate_c"] == 21.0
    assert out["room"]["source"] == "measured"
    assert out["room"]["celsius"] == pytest.approx(12.0, abs=0.3)
    assert len(out["schedule"]) == 2
    for r in out["schedule"]:
        assert r["ready_at_s"] - 1200 <= r["ready_s"] <= r["ready_at_s"] + 60

