"""The controller over the real link and the simulated board, in-process on a SimClock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from controller.eventlog import EventLog
from controller.service import CommandError, Controller
from firmware_bridge import protocol as p
from hydrotherm.config import Config, from_mapping
from sim.harness import InProcessHarness

STEP = 0.2


class Rig:
    """Harness + controller, stepped together."""

    def __init__(self, cfg: Config, heat: bool = True, seed: int = 2) -> None:
        self.h = InProcessHarness(cfg, seed=seed, step_s=STEP)
        self.log = EventLog(None)
        self.c = Controller(cfg, self.h.link, self.h.clock, log=self.log)
        if heat:
            self.c.set_heat(0, True, "test")
            self.c.set_heat(1, True, "test")
        self.c.start()

    @property
    def plant(self):
        return self.h.table.plant

    @property
    def board(self):
        return self.h.table.board

    def run(self, seconds: float, until: Callable[[], bool] | None = None,
            each: Callable[[], None] | None = None) -> bool:
        end = self.h.clock.now() + seconds
        while self.h.clock.now() < end - 1e-9:
            self.h.clock.advance(STEP)
            self.h.table.poll()
            self.c.poll()
            if each is not None:
                each()
            if until is not None and until():
                return True
        return False

    def kinds(self) -> list[str]:
        return [e.kind for e in self.log.events()]


def near_setpoint(**plant: object) -> Config:
    return from_mapping({"plant": {"initial_water_c": 36.0, **plant}})


def test_heats_and_holds_through_the_real_link() -> None:
    rig = Rig(near_setpoint())
    assert rig.run(30.0, until=lambda: rig.plant.power_w[0] > 0), "never heated"
    rig.run(3600.0)
    for i in range(2):
        assert rig.plant.water_c[i] == pytest.approx(37.0, abs=0.1)
    assert not rig.c.supervisor.trips
    snap = rig.c.snapshot()
    assert snap["cushions"][0]["water_c"]["primary"] == pytest.approx(37.0, abs=0.2)
    assert snap["board"]["serial"] == 1 and snap["link"]["healthy"]


def test_tripped_cushion_gets_no_power_while_the_other_heats() -> None:
    rig = Rig(from_mapping({"plant": {"initial_water_c": 30.0}}))
    rig.run(60.0)
    assert rig.plant.power_w == [300.0, 300.0]
    rig.h.table.inject("sensor_open", cushion=0, sensor="primary")

    def never_power_when_tripped() -> None:
        if not rig.c.supervisor.permitted(0):
            # the gate: the link is never asked for power on a tripped cushion
            assert rig.h.link.outputs[0] == 0.0

    rig.run(1.0, each=never_power_when_tripped)
    assert [t.reason for t in rig.c.supervisor.trips] == ["sensor_open"]
    assert rig.board.applied(0) == 0 and rig.plant.power_w[0] == 0.0
    rig.run(60.0, each=never_power_when_tripped)
    assert rig.plant.power_w[1] == 300.0, "the healthy cushion keeps heating"
    assert rig.plant.power_w[0] == 0.0


def test_reset_refused_while_cause_persists_then_accepted() -> None:
    rig = Rig(near_setpoint())
    rig.run(20.0)
    rig.h.table.inject("sensor_short", cushion=1, sensor="redundant")
    rig.run(2.0)
    results = []
    rig.c.request_reset("therapist anna", done=results.append)
    rig.run(2.0)
    assert results and not results[0].ok
    assert "sensor_short" in [t.reason for t, _ in results[0].refused]
    rig.h.table.inject("sensor_short", cushion=1, sensor="redundant", clear=True)
    rig.run(2.0)
    rig.c.request_reset("therapist anna", done=results.append)
    rig.run(2.0)
    assert results[1].ok and not rig.c.supervisor.trips
    rig.run(60.0)
    assert rig.plant.power_w[1] > 0, "heat resumes after an accepted reset"
    resets = rig.log.events(kinds=["trip_reset"])
    assert resets and resets[-1].actor == "therapist anna"
    assert rig.log.events(kinds=["reset_refused"])[0].actor == "therapist anna"


def test_board_reset_trips_and_needs_a_person() -> None:
    rig = Rig(near_setpoint())
    rig.run(30.0)
    rig.h.table.inject("board_reset")
    rig.run(5.0)
    assert "board_fault" in [t.reason for t in rig.c.supervisor.trips]
    assert rig.plant.power_w == [0.0, 0.0]
    rig.run(60.0)
    assert rig.plant.power_w == [0.0, 0.0], "latched: no heat without a reset"
    done = []
    rig.c.request_reset("nurse", done=done.append)
    rig.run(3.0)
    assert done[0].ok, done[0].refused
    assert rig.run(30.0, until=lambda: rig.plant.power_w[0] > 0)


def test_welded_relay_opens_master_relay() -> None:
    rig = Rig(near_setpoint(initial_water_c=37.0))
    rig.run(60.0)
    rig.c.set_heat(0, False, "test")  # cushion 1 keeps heating: the relay stays closed
    rig.h.table.inject("heater_stuck_on", cushion=0)
    rig.run(600.0, until=lambda: bool(rig.c.supervisor.trips))
    assert [t.reason for t in rig.c.supervisor.trips] == ["rise_while_off"]
    rig.run(2.0)
    assert not rig.board.relay_closed and rig.plant.power_w[0] == 0.0
    assert max(rig.plant.water_c) < 41.0


def test_stalled_control_law_trips_and_cuts() -> None:
    rig = Rig(near_setpoint(initial_water_c=30.0))
    rig.run(30.0)
    assert rig.plant.power_w[0] > 0
    rig.c.stall_control(30.0)
    rig.run(10.0)
    assert "control_stall" in [t.reason for t in rig.c.supervisor.trips]
    assert rig.plant.power_w == [0.0, 0.0]


def test_setpoint_and_heat_commands_validated_and_logged() -> None:
    rig = Rig(near_setpoint(), heat=False)
    assert rig.c.set_setpoint(0, 36.55, "anna") == pytest.approx(36.6)
    for bad in (41.0, 29.9, float("nan"), "37", True, None):
        with pytest.raises(CommandError):
            rig.c.set_setpoint(0, bad, "anna")  # type: ignore[arg-type]
    with pytest.raises(CommandError, match="actor"):
        rig.c.set_setpoint(0, 37.0, "")
    with pytest.raises(CommandError, match="cushion"):
        rig.c.set_heat(2, True, "anna")
    assert rig.c.cushions[0].setpoint_c == pytest.approx(36.6)
    refused = rig.log.events(kinds=["command_refused"])
    assert len(refused) == 8
    assert refused[0].actor == "anna" and "outside" in refused[0].reason
    ok = rig.log.events(kinds=["setpoint"])
    assert ok[-1].detail == {"from": 37.0, "to": 36.6} and ok[-1].actor == "anna"


def test_heat_off_means_zero_and_relay_open() -> None:
    rig = Rig(near_setpoint(initial_water_c=30.0))
    rig.run(30.0)
    assert rig.board.relay_closed
    rig.c.set_heat(0, False, "t")
    rig.c.set_heat(1, False, "t")
    rig.run(5.0)
    assert rig.plant.power_w == [0.0, 0.0]
    assert not rig.board.relay_closed


def test_stop_leaves_heaters_off_and_log_closed() -> None:
    rig = Rig(near_setpoint(initial_water_c=30.0))
    rig.run(30.0)
    assert rig.board.applied(0) > 0
    rig.c.stop()
    for _ in range(5):  # the board processes what the link sent on close
        rig.h.clock.advance(STEP)
        rig.h.table.poll()
    assert rig.board.applied(0) == 0 and rig.board.applied(1) == 0
    assert not rig.board.relay_closed
    with pytest.raises(RuntimeError):
        rig.log.events()


def test_link_loss_cuts_heat_and_recovers_without_trip_latching_forever() -> None:
    rig = Rig(near_setpoint(initial_water_c=30.0))
    rig.run(30.0)
    rig.h.table.inject("unplug")
    rig.run(5.0)
    assert "stale_telemetry" in [t.reason for t in rig.c.supervisor.trips]
    assert rig.plant.power_w == [0.0, 0.0]  # the board's dead-man
    assert rig.board.faults & p.Fault.DEADMAN_0
    rig.h.table.inject("replug")
    rig.run(10.0)
    assert rig.plant.power_w == [0.0, 0.0], "latched until a person resets"
    done = []
    rig.c.request_reset("anna", done=done.append)
    rig.run(3.0)
    assert done[0].ok, done[0].refused
    assert rig.run(30.0, until=lambda: rig.plant.power_w[0] > 0)
