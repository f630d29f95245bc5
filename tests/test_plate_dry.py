"""``plate_dry`` (issue 14 part 4): plate − water beyond any full cushion at full power
trips that cushion, with words telling the therapist the client should get up; the plant's
contact model that makes an emptying cushion visible on the plate; a 1.0 board leaves the
rule inactive; and the rule on a real pty board (the Python board over a pseudo-terminal,
real time)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from controller.supervisor import REACTIONS, Reaction, Supervisor
from controller.supervisor.rules.plate_dry import INACTIVE_1_0, WATCHING, PlateDry
from dashboard.present import trip_text
from firmware_bridge.link import BoardLink, BoardReading, CushionReading
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock, SimClock
from hydrotherm.config import (
    Config,
    PlantConfig,
    PlausibleConfig,
    SafetyConfig,
    SensorConfig,
    from_mapping,
)
from sim.plant import Plant, wet_contact_w_per_k
from sim.server import SimServer

DT = 0.2
THERM = Thermistor(SensorConfig())
SAFE = SafetyConfig()


class PlateRig:
    """A plant read as a protocol 1.1 board reports it (both water sensors and the plate
    sensor of each cushion, converted by the link's thermistor) into the real
    supervisor; the gate decides what reaches the plant."""

    def __init__(self, initial: float = 36.0, plate: bool = True, **plant: object) -> None:
        self.clock = SimClock()
        self.sup = Supervisor(SAFE, self.clock, plant=PlantConfig(),
                              plausible=PlausibleConfig())
        self.sup.arm()
        self.plant = Plant(PlantConfig(initial_water_c=[initial, initial], **plant),  # type: ignore[arg-type]
                           SensorConfig(), random.Random(5))
        self.plate = plate
        self.peak_water = initial

    def step(self, wanted: tuple[float, float]) -> None:
        drive = self.sup.gate(wanted)
        self.plant.step(DT, drive, self.sup.relay_allowed)
        self.clock.advance(DT)
        read = THERM.read
        cus = []
        for c in (0, 1):
            plate = (THERM.read_rails_only(self.plant.plate_counts(c)) if self.plate
                     else None)
            cus.append(CushionReading(read(self.plant.sensor_counts(c, 0)),
                                      read(self.plant.sensor_counts(c, 1)), drive[c], False,
                                      plate))
        now = self.clock.now()
        self.sup.observe(BoardReading(now, int(now * 1000), (cus[0], cus[1]), True, 0, None),
                         drive, (40.0, 40.0), (True, True))
        self.sup.control_heartbeat()
        self.sup.check()
        self.peak_water = max(self.peak_water, self.plant.water_c[0])

    def run(self, seconds: float, out: float = 1.0) -> None:
        for _ in range(round(seconds / DT)):
            self.step((out, out))

    def rule(self) -> PlateDry:
        return next(r for r in self.sup.rules if isinstance(r, PlateDry))

    def trips(self) -> list[tuple[str, int | None]]:
        return [(t.reason, t.cushion) for t in self.sup.trips]


# --- the plant's contact model ----------------------------------------------------------


def test_contact_is_full_for_every_plausible_cushion_and_falls_below_the_fill_level() -> None:
    assert wet_contact_w_per_k(30.0, 1.5, 15.0, 8.0) == 30.0
    assert wet_contact_w_per_k(30.0, 1.5, 8.0, 8.0) == 30.0
    assert wet_contact_w_per_k(30.0, 1.5, 4.0, 8.0) == pytest.approx(15.75)
    assert wet_contact_w_per_k(30.0, 1.5, 0.0, 8.0) == 1.5


def test_full_cushion_plant_is_unchanged_by_the_contact_model() -> None:
    """A 15 kg cushion (the lightest plausible) at full power for an hour: the same
    temperatures with the contact model as with the plate wetted to the last drop."""
    a = Plant(PlantConfig(water_kg=15.0, initial_water_c=[30.0, 30.0]), SensorConfig(),
              random.Random(1))
    b = Plant(PlantConfig(water_kg=15.0, initial_water_c=[30.0, 30.0], wetted_below_kg=0.0),
              SensorConfig(), random.Random(1))
    for _ in range(1800):
        a.step(2.0, (1.0, 0.5), True)
        b.step(2.0, (1.0, 0.5), True)
    assert a.water_c == b.water_c and a.plate_c == b.plate_c
    assert a.sensor_counts(0, 0) == b.sensor_counts(0, 0)


def test_a_draining_cushion_leaves_its_plate_hot_and_the_books_balance() -> None:
    """Below the fill level the plate's excess over the water grows (its heat no longer
    reaches the water); empty, only the dry plate's 1.5 W/K is left.  With the plate
    wetted to the last drop (the former model) the excess stays at ``P / h``."""
    def drain(wet_kg: float) -> tuple[float, Plant]:
        p = Plant(PlantConfig(initial_water_c=[36.0, 36.0], wetted_below_kg=wet_kg),
                  SensorConfig(), random.Random(2))
        for _ in range(300):
            p.step(1.0, (1.0, 1.0), True)
        p.faults[0].leak_kg_per_min = 5.0
        most = 0.0
        for _ in range(330):
            p.step(1.0, (1.0, 1.0), True)
            most = max(most, p.plate_c[0] - p.water_c[0])
        return most, p

    dry, p = drain(8.0)
    wet, _ = drain(0.0)
    assert p.water_kg[0] < 0.5
    assert wet < 300.0 / 30.0 + 0.5  # the full cushion's P / h
    assert dry > wet + 5.0
    assert p.energy().residual_fraction() < 1e-9


# --- the rule ---------------------------------------------------------------------------


def test_the_limit_is_any_full_plausible_cushion_at_full_power() -> None:
    rig = PlateRig()
    rule = rig.rule()
    assert rule.full_excess_c == pytest.approx(360.0 / 21.0)
    assert rule.limit_c == pytest.approx(SAFE.plate_dry_ratio * 360.0 / 21.0
                                         + SAFE.plate_dry_margin_c)
    assert REACTIONS["plate_dry"] is Reaction.CUSHION_OFF


@pytest.mark.parametrize("kg,heater,h,room", [
    (15.0, 360.0, 21.0, 30.0),  # light, strong, weakest plate: the largest full excess
    (35.0, 240.0, 21.0, 12.0),  # heavy, weak, cold room
    (15.0, 360.0, 39.0, 12.0),
])
def test_no_trip_on_full_cushions_at_full_power(kg: float, heater: float, h: float,
                                                room: float) -> None:
    """Full power from cold, an hour (the plate settles at its largest excess), a client
    getting on the hot cushion and off, power steps: plate_dry watches and does not trip.
    (A 15 kg cushion at 360 W through 21 W/K reaches the 55 °C cut-out as the water nears
    38 °C, whose opening is the board's business: the run stops before.)"""
    rig = PlateRig(initial=20.0, water_kg=kg, heater_w=heater, plate_to_water_w_per_k=h,
                   room_c=room)
    most = 0.0
    for step in range(round(3600 / DT)):
        out = 0.0 if 1800 <= step * DT < 1900 else 1.0
        if step * DT == 2400:
            rig.plant.set_client(0, True)
        rig.step((out, out))
        most = max(most, rig.plant.plate_c[0] - rig.plant.water_c[0])
        if rig.plant.plate_c[0] > 53.0:
            break
    assert rig.trips() == []
    assert rig.rule().status == [WATCHING, WATCHING] and rig.rule().active
    assert rig.sup.plate_watch == (WATCHING, WATCHING)
    assert most <= heater / h + 0.2  # the plate's excess reached its full-power value
    assert most > 0.85 * heater / h


def test_welded_relay_is_not_taken_for_a_dry_plate() -> None:
    """A welded SSR heats at full power while the board reports 0 %: its plate sits like
    any full cushion's at full power, so plate_dry stays quiet (rise_while_off's job)."""
    rig = PlateRig(initial=36.0)
    rig.run(120, 0.2)
    rig.plant.faults[1].heater_stuck_on = True
    for _ in range(round(600 / DT)):
        rig.step((0.0, 0.0))
    assert ("plate_dry", 1) not in rig.trips()
    assert ("rise_while_off", 1) in rig.trips()


def test_burst_leak_trips_plate_dry_and_says_the_client_should_get_up() -> None:
    """The documented burst: 20 kg/min from 36 °C at full power.  The drying plate trips
    cushion 0 (only it: cushion 1 keeps heating), the words tell the therapist to get the
    client up, the water stays below 41 °C, and a reset is refused while the plate is
    still far above the empty bag."""
    rig = PlateRig(initial=36.0)
    rig.run(60)
    rig.plant.faults[0].leak_kg_per_min = 20.0
    start = rig.clock.now()
    tripped = None
    for _ in range(round(300 / DT)):
        rig.step((1.0, 1.0))
        if tripped is None and rig.trips():
            tripped = rig.clock.now() - start
    assert rig.trips() == [("plate_dry", 0)]
    assert tripped is not None and tripped < 120.0
    assert rig.plant.power_w[0] == 0.0 and rig.plant.power_w[1] > 0.0
    assert rig.peak_water < 41.0
    [trip] = rig.sup.trips
    assert "client should get up" in trip.detail and "emptying" in trip.detail
    title, text = trip_text(Config(), "plate_dry")
    assert "get up" in title and "get up" in text and "emptying" in text
    res = rig.sup.reset("therapist", 0)
    assert not res.ok and "above the water" in res.refused[0][1]


def test_refilled_cushion_resets_once_the_plate_reaches_the_water() -> None:
    rig = PlateRig(initial=36.0)
    rig.run(60)
    rig.plant.faults[0].leak_kg_per_min = 20.0
    rig.run(150)
    assert ("plate_dry", 0) in rig.trips()
    rig.plant.faults[0].leak_kg_per_min = 0.0
    rig.plant.water_kg[0] = 25.0  # refilled
    rig.run(600)
    res = rig.sup.reset("therapist", 0)
    assert res.ok and [t.reason for t in res.cleared] == ["plate_dry"]


def test_a_1_0_board_leaves_the_rule_inactive_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    rig = PlateRig(initial=36.0, plate=False)
    with caplog.at_level("INFO"):
        rig.run(60)
    rig.plant.faults[0].leak_kg_per_min = 20.0
    rig.run(30)
    rule = rig.rule()
    assert rule.status == [INACTIVE_1_0, INACTIVE_1_0] and not rule.active
    assert rig.sup.plate_watch == (INACTIVE_1_0, INACTIVE_1_0)
    assert "plate_dry is inactive" in caplog.text and "1.0" in caplog.text
    assert ("plate_dry", 0) not in rig.trips()


def test_a_broken_plate_sensor_is_not_judged() -> None:
    from sim.plant import SensorFault

    rig = PlateRig(initial=36.0)
    rig.plant.faults[0].plate_sensor = SensorFault.OPEN
    rig.run(10)
    assert rig.rule().status[0].startswith("not judged") and rig.rule().status[1] == WATCHING
    assert rig.trips() == []


# --- a real pty board -------------------------------------------------------------------


@pytest.mark.parametrize("minor", [1, 0])
def test_dry_plate_over_a_real_pty_board(tmp_path: Path, minor: int) -> None:
    """The Python board on a pseudo-terminal, in real time, read by the host link: cushion
    0 is emptied with its plate hot (a dry plate); on a 1.1 board the supervisor trips
    plate_dry on cushion 0 alone within a few seconds, on a 1.0 board the rule is
    inactive and says so."""
    cfg = from_mapping({"board": {"protocol_minor": minor}})
    clock = RealClock()
    with SimServer(cfg, clock, tmp_path / "sim", tables=1, seed=3) as server:
        plant = server.tables[0].plant
        with server.lock:
            # empty, the plate hot, the bag (and its sensors) where the dry plate and
            # the room hold it: (1.5 W/K x 54 °C + 3.5 W/K x 21 °C) / 5 W/K
            plant.water_kg[0] = 0.0
            plant.plate_c[0] = plant.sensed_plate_c[0] = 54.0
            bag = (1.5 * 54.0 + 3.5 * 21.0) / 5.0
            plant.water_c[0] = plant.sensed_c[0][0] = plant.sensed_c[0][1] = bag
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url=server.ports[0].path)
        sup = Supervisor(cfg.safety, clock, plant=cfg.plant, plausible=cfg.plausible)
        sup.arm()
        rule = next(r for r in sup.rules if isinstance(r, PlateDry))
        try:
            end = time.monotonic() + 15.0
            while time.monotonic() < end and not sup.trips:
                link.poll()
                if link.latest is not None:
                    sup.observe(link.latest, (0.0, 0.0), (37.0, 37.0), (True, True))
                    sup.control_heartbeat()
                    if minor == 0 and rule.status[0] == INACTIVE_1_0 \
                            and time.monotonic() > end - 9.0:
                        break
                time.sleep(0.01)
        finally:
            link.close()
    if minor == 1:
        assert [(t.reason, t.cushion) for t in sup.trips] == [("plate_dry", 0)]
        assert "client should get up" in sup.trips[0].detail
        assert rule.status == [WATCHING, WATCHING]
    else:
        assert sup.trips == [] and rule.status == [INACTIVE_1_0, INACTIVE_1_0]
