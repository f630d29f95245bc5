"""The board's own safety, without help from the host (reference.md, 'The heater board').

Every test runs against both boards: the Python emulator and the compiled firmware in
simavr (``tests/firmware_fixtures.py``)."""

from __future__ import annotations

import pytest

from firmware_bridge import protocol as p
from sim.harness import InProcessHarness

pytest_plugins = ["tests.firmware_fixtures"]


@pytest.fixture
def harness(any_board_harness: InProcessHarness) -> InProcessHarness:
    return any_board_harness


def heat_full(h: InProcessHarness) -> None:
    h.link.set_outputs(1.0, 1.0)
    assert h.run(2.0, until=lambda: h.table.board.applied(0) == 1000)
    h.run(0.5)  # the plant has integrated at least one step at the new drive
    assert h.table.plant.power_w[0] == h.cfg.plant.heater_w


def test_host_silence_drops_heaters_within_deadman(connected: InProcessHarness) -> None:
    h = connected
    heat_full(h)
    h.run(10.0)  # the link keeps refreshing: still on
    assert h.table.board.applied(0) == 1000
    # The host goes silent: nobody polls the link any more.
    board, clock = h.table.board, h.clock
    silent_from = clock.now()
    off_at = None
    while clock.now() - silent_from < 5.0:
        clock.advance(0.05)
        h.table.poll()
        if off_at is None and board.applied(0) == 0 and board.applied(1) == 0:
            off_at = clock.now() - silent_from
    deadman = h.cfg.board.deadman_s
    assert off_at is not None and off_at <= deadman + h.cfg.board.telemetry_period_s + 1e-6
    # refreshed at most refresh_s before silence, so it cannot drop earlier than this
    assert off_at >= deadman - h.cfg.link.refresh_s - 1e-6
    assert board.faults & p.Fault.DEADMAN_0 and board.faults & p.Fault.DEADMAN_1
    assert h.table.plant.power_w == [0.0, 0.0]
    assert not board.relay_closed


def test_board_limit_cuts_channel_above_42(connected: InProcessHarness) -> None:
    h = connected
    heat_full(h)
    h.table.inject("sensor_drift", cushion=1, sensor="redundant", offset_c=30.0)  # reads ~50 °C
    period = h.cfg.board.telemetry_period_s
    t0 = h.now
    assert h.run(5.0, until=lambda: h.table.board.applied(1) == 0)
    took = h.now - t0
    assert took <= (h.cfg.board.limit_samples + 1) * period + 1e-6
    faults = h.table.board.faults
    assert faults & p.Fault.LIMIT_HOT_1
    assert not faults & p.Fault.LIMIT_HOT_0
    # latched: the cause going away does not bring the heat back by itself
    h.table.inject("sensor_drift", cushion=1, sensor="redundant", clear=True)
    h.link.set_outputs(1.0, 1.0)
    h.run(3.0)
    assert h.table.board.applied(1) == 0
    assert h.table.plant.power_w[1] == 0.0


def test_board_limit_on_open_sensor_and_refused_clear_while_present(
        connected: InProcessHarness) -> None:
    h = connected
    heat_full(h)
    h.table.inject("sensor_open", cushion=0, sensor="primary")
    assert h.run(3.0, until=lambda: h.table.board.faults & p.Fault.LIMIT_SENSOR_0)
    assert h.table.board.applied(0) == 0
    h.link.clear_faults()
    h.run(1.0)
    assert h.table.board.faults & p.Fault.LIMIT_SENSOR_0, "cleared while the sensor is open"
    h.table.inject("sensor_open", cushion=0, sensor="primary", clear=True)
    h.run(1.0)
    h.link.clear_faults()
    h.run(1.0)
    assert not h.table.board.faults & p.Fault.LIMIT_SENSOR_0


def test_welded_relay_is_stopped_by_master_relay(connected: InProcessHarness) -> None:
    h = connected
    h.link.set_outputs(0.0, 0.0)
    h.table.inject("heater_stuck_on", cushion=0)
    h.run(1.0)
    plant = h.table.plant
    assert plant.power_w[0] == h.cfg.plant.heater_w, "a welded SSR heats despite 0 % drive"
    h.link.set_relay(False)
    assert h.run(1.0, until=lambda: plant.power_w[0] == 0.0)
    assert not h.table.board.relay_closed


def test_any_board_fault_opens_master_relay(connected: InProcessHarness) -> None:
    h = connected
    h.table.inject("heater_stuck_on", cushion=0)
    h.run(1.0)
    assert h.table.plant.power_w[0] > 0
    h.link.set_outputs(0.0, 0.5)  # the host keeps driving channel 1 ...
    h.table.inject("sensor_short", cushion=1, sensor="primary")  # ... with a broken sensor
    assert h.run(3.0, until=lambda: h.table.plant.power_w[0] == 0.0)
    assert h.table.board.faults & p.Fault.LIMIT_SENSOR_1


def test_broken_sensor_on_idle_channel_does_not_stop_the_other(
        connected: InProcessHarness) -> None:
    """A host that already cut the channel has acted: the board does not escalate a broken
    sensor alone into a relay-opening fault that would stop the healthy cushion too."""
    h = connected
    h.link.set_outputs(0.0, 1.0)
    h.table.inject("sensor_open", cushion=0, sensor="primary")
    h.run(5.0)
    assert not h.table.board.faults & p.Fault.LIMIT_SENSOR_0
    assert h.table.plant.power_w == [0.0, h.cfg.plant.heater_w]


def test_board_reset_flags_and_turns_off(connected: InProcessHarness) -> None:
    h = connected
    heat_full(h)
    events = []
    h.link.add_listener(events.append)
    h.table.inject("board_reset")
    h.run(1.0)
    assert h.table.board.applied(0) == 0 and not h.table.board.relay_closed
    assert h.link.latest.faults & p.Fault.RESET
    assert any(e.kind == "board_reset" for e in events)
    assert h.table.board.reset_cause is p.ResetCause.WATCHDOG


def test_relay_close_refused_while_faulted(harness: InProcessHarness) -> None:
    h = harness
    assert h.run(2.0, until=lambda: h.link.connected)
    events = []
    h.link.add_listener(events.append)
    h.link.set_relay(True)  # RESET from boot is still latched
    h.run(1.0)
    assert not h.table.board.relay_closed
    assert any(e.kind == "command_refused" and "refused" in e.detail for e in events)
