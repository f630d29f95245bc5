"""Issue 14 part 4: protocol 1.1 — a plate sensor per cushion, a room sensor, and the
board's own plate limit — on both boards (the Python emulator and the compiled firmware in
simavr), and a 1.1 host with a 1.0 board and a 1.0 host with a 1.1 board."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from firmware_bridge import protocol as p
from firmware_bridge.thermistor import SensorStatus, Thermistor
from hydrotherm.app.monitor import format_reading
from hydrotherm.clock import SimClock
from hydrotherm.config import Config, from_mapping
from sim.harness import InProcessHarness

pytest_plugins = ["tests.firmware_fixtures"]

F = p.Fault


# --- the codec ---------------------------------------------------------------------------


def test_telemetry_1_1_round_trip_and_both_layouts() -> None:
    t11 = p.Telemetry(5, (1, 2, 3, 4), (1000, 0), 1, int(F.LIMIT_PLATE_1), (700, 1500), 2231)
    frame = p.encode(3, t11)
    assert frame[2] == 25
    [got] = p.FrameParser().feed(frame)
    assert got.decode() == t11
    t10 = p.Telemetry(5, (1, 2, 3, 4), (1000, 0), 1, 0)
    [got] = p.FrameParser().feed(p.encode(4, t10))
    assert len(got.payload) == 19 and got.decode() == t10
    assert got.decode().plate is None and got.decode().room is None
    with pytest.raises(p.PayloadLengthError):
        p.Frame(1, int(p.MsgType.TELEMETRY), bytes(22)).decode()
    with pytest.raises(p.ProtocolError):
        p.Telemetry(5, (1, 2, 3, 4), (0, 0), 0, 0, (1, 2)).pack()  # plate without room
    assert p.ALL_FAULTS == 0x07FF
    assert p.fault_names(int(F.LIMIT_PLATE_0)) == ["limit_plate_0"]


def test_plate_and_room_are_classified_by_the_rails_only(cfg: Config) -> None:
    therm = Thermistor(cfg.sensor)
    hot_plate = therm.read_rails_only(therm.counts_at(80.0))
    assert hot_plate.status is SensorStatus.OK and hot_plate.celsius == pytest.approx(80.0, abs=0.1)
    assert therm.read(therm.counts_at(80.0)).status is SensorStatus.SHORT  # not as water
    assert therm.read_rails_only(4095).status is SensorStatus.OPEN
    assert therm.read_rails_only(0).status is SensorStatus.SHORT


# --- both boards -------------------------------------------------------------------------


def test_a_1_1_host_reads_plate_and_room(any_board_harness: InProcessHarness) -> None:
    h = any_board_harness
    h.connect()
    assert h.link.identity.proto_minor == 1
    h.link.set_outputs(1.0, 0.0)
    h.run(120.0)
    plant, r = h.table.plant, h.link.latest
    assert r.raw.plate is not None and r.raw.room is not None
    for i in (0, 1):
        plate = r.cushions[i].plate
        assert plate is not None and plate.status is SensorStatus.OK
        assert plate.celsius == pytest.approx(plant.plate_c[i], abs=0.5)
    assert plant.plate_c[0] > plant.water_c[0] + 5.0  # heating: the plate runs hotter
    assert r.cushions[0].plate.celsius > r.cushions[1].plate.celsius + 5.0
    assert r.room is not None and r.room.celsius == pytest.approx(h.cfg.plant.room_c, abs=0.3)
    line = format_reading(h.link)
    assert f"plate {r.cushions[0].plate.celsius:.2f} °C" in line
    assert f"room {r.room.celsius:.2f} °C" in line


def test_a_1_0_host_gets_the_1_0_layout(make_table: Callable[..., Any]) -> None:
    """Before any HELLO, and after a HELLO with minor 0, a 1.1 board sends the 19 bytes a
    1.0 host knows; a HELLO with minor 1 switches it to 25."""
    clock = SimClock()
    table = make_table(Config(), clock, seed=3)
    port = table.pipe.open()
    parser = p.FrameParser()

    def telemetry_lens(seconds: float) -> set[int]:
        clock.advance(seconds)
        table.poll()
        got = parser.feed(port.read(port.in_waiting) if port.in_waiting else b"")
        return {len(f.payload) for f in got if f.type == p.MsgType.TELEMETRY}

    assert telemetry_lens(1.0) == {19}
    port.write(p.encode(0, p.Hello(1, 0)))
    telemetry_lens(0.3)
    assert telemetry_lens(1.0) == {19}
    port.write(p.encode(1, p.Hello(1, 1)))
    telemetry_lens(0.3)
    assert telemetry_lens(1.0) == {25}
    port.write(p.encode(2, p.Hello(1, 0)))  # a 1.0 host connects after it
    telemetry_lens(0.3)
    assert telemetry_lens(1.0) == {19}


def dry_cushion_cfg() -> Config:
    # the bimetal cut-out set out of the way, so that the board's own limit is seen alone
    return from_mapping({"plant": {"cutout_open_c": 90.0, "cutout_close_c": 80.0,
                                   "initial_water_c": 37.0}})


def test_board_cuts_a_dry_plate_above_the_plate_limit(make_table: Callable[..., Any]) -> None:
    cfg = dry_cushion_cfg()
    h = InProcessHarness(cfg, seed=1, make_table=make_table)
    h.connect()
    h.link.set_outputs(1.0, 1.0)
    assert h.run(2.0, until=lambda: h.table.board.applied(0) == 1000)
    plant = h.table.plant
    plant.water_kg[0] = 0.0  # the cushion has run dry
    plant.plate_c[0] = plant.sensed_plate_c[0] = 55.0
    # the empty bag's water sensors would soon read above 42 °C and LIMIT_HOT_0 would
    # act first: make them read 20 K low, so that the plate limit is seen alone
    for sensor in ("primary", "redundant"):
        h.table.inject("sensor_drift", cushion=0, sensor=sensor, offset_c=-20.0)
    assert h.run(120.0, until=lambda: h.table.board.faults & F.LIMIT_PLATE_0)
    board = h.table.board
    assert board.applied(0) == 0 and not board.relay_closed
    assert not board.faults & F.LIMIT_PLATE_1
    # it acted just above 60 °C: 4 samples of a plate warming ~9 K/min, plus the lag
    assert 60.0 < plant.plate_c[0] < 62.5, plant.plate_c[0]
    h.run(1.0)
    assert h.link.latest.faults & F.LIMIT_PLATE_0
    assert plant.power_w[0] == 0.0
    # latched: refused while the plate is still above the limit
    h.link.clear_faults()
    h.run(1.0)
    assert board.faults & F.LIMIT_PLATE_0
    # the cushion refilled: the plate cools; the flag clears; the channel stays at 0 until
    # the host sets it again
    plant.water_kg[0] = cfg.plant.water_kg
    plant.water_c[0] = 37.0
    for sensor in ("primary", "redundant"):
        h.table.inject("sensor_drift", cushion=0, sensor=sensor, clear=True)
    assert h.run(300.0, until=lambda: plant.sensed_plate_c[0] < 59.0)
    h.run(1.0)
    h.link.clear_faults()
    assert h.run(2.0, until=lambda: not board.faults & F.LIMIT_PLATE_0)


def test_a_plate_sensor_at_a_rail_raises_nothing_on_the_board(
        make_table: Callable[..., Any]) -> None:
    """Broken, never hot (9.7): a shorted plate NTC reads like a red-hot plate."""
    h = InProcessHarness(Config(), seed=1, make_table=make_table)
    h.connect()
    h.link.set_outputs(0.5, 0.5)
    h.table.inject("sensor_short", cushion=1, sensor="plate")
    h.table.inject("sensor_open", cushion=0, sensor="plate")
    h.run(3.0)
    assert h.link.latest.cushions[1].plate.status is SensorStatus.SHORT
    assert h.link.latest.cushions[0].plate.status is SensorStatus.OPEN
    assert h.table.board.faults == 0 and h.table.board.relay_closed
    # a drifting plate sensor that reads above the limit is what the board acts on
    h.table.inject("sensor_short", cushion=1, sensor="plate", clear=True)
    h.table.inject("sensor_drift", cushion=1, sensor="plate", offset_c=40.0)
    assert h.run(3.0, until=lambda: h.table.board.faults & F.LIMIT_PLATE_1)
    assert not h.table.board.faults & F.LIMIT_PLATE_0


# --- a 1.1 host and a 1.0 board ----------------------------------------------------------


def test_a_1_1_host_with_a_1_0_board() -> None:
    cfg = from_mapping({"board": {"protocol_minor": 0}})
    h = InProcessHarness(cfg, seed=1)
    h.connect()
    assert h.link.identity.proto_minor == 0
    h.run(2.0)
    r = h.link.latest
    assert r.raw.plate is None
    assert all(c.plate is None for c in r.cushions) and r.room is None
    assert all(c.primary.celsius is not None for c in r.cushions)
    assert "plate n/a °C" in format_reading(h.link) and "room n/a" in format_reading(h.link)
    # and no plate limit on a board without plate sensors
    h.table.plant.plate_c[0] = 70.0
    h.run(2.0)
    assert not h.table.board.faults & F.LIMIT_PLATE_0
