"""The link against a board, in-process on a simulated clock.

The tests that take the ``harness`` / ``connected`` fixtures run against both boards: the
Python emulator and the compiled firmware in simavr (``tests/firmware_fixtures.py``); the
ones that reach into the emulator's internals build a Python board themselves."""

from __future__ import annotations

import pytest

from firmware_bridge import protocol as p
from firmware_bridge.link import IncompatibleBoardError, LinkState
from firmware_bridge.thermistor import SensorStatus
from hydrotherm.config import Config
from sim.harness import InProcessHarness

pytest_plugins = ["tests.firmware_fixtures"]


@pytest.fixture
def harness(any_board_harness: InProcessHarness) -> InProcessHarness:
    return any_board_harness


def test_handshake_reads_identity(harness: InProcessHarness) -> None:
    h = harness
    h.wait_connected(2.0)
    ident = h.link.identity
    assert ident.proto_major == p.PROTOCOL_MAJOR
    assert ident.serial == h.cfg.board.serial_number
    assert ident.firmware == h.cfg.board.firmware_version
    assert ident.reset_cause is p.ResetCause.POWER_ON


def test_incompatible_board_is_refused_with_clear_error(cfg: Config) -> None:
    h = InProcessHarness(cfg)
    h.table.board.protocol_version = (2, 3)
    with pytest.raises(IncompatibleBoardError, match=r"protocol 2\.3.*host speaks 1\.x"):
        h.wait_connected(2.0)
    assert h.link.state is LinkState.INCOMPATIBLE
    h.run(10.0)
    assert h.table.board.applied(0) == 0 and not h.table.board.relay_closed


def test_telemetry_rate_and_conversion(connected: InProcessHarness) -> None:
    h = connected
    before = h.link.counters.telemetry
    h.run(10.0)
    rate = (h.link.counters.telemetry - before) / 10.0
    assert rate >= 4.0
    r = h.link.latest
    for i, c in enumerate(r.cushions):
        assert c.primary.status is SensorStatus.OK
        assert c.primary.celsius == pytest.approx(h.table.plant.water_c[i], abs=0.2)


def test_outputs_acknowledged_and_applied(connected: InProcessHarness) -> None:
    h = connected
    h.link.set_outputs(0.25, 0.75)
    assert h.run(1.0, until=lambda: h.link.latest.cushions[1].applied == 0.75)
    assert h.table.board.applied(0) == 250
    assert h.link.counters.timeouts == 0


def test_open_and_short_sensors_recognised(connected: InProcessHarness) -> None:
    h = connected
    h.table.inject("sensor_open", cushion=0, sensor="redundant")
    h.table.inject("sensor_short", cushion=1, sensor="primary")
    h.run(0.5)
    r = h.link.latest
    assert r.cushions[0].redundant.status is SensorStatus.OPEN
    assert r.cushions[0].redundant.celsius is None
    assert r.cushions[1].primary.status is SensorStatus.SHORT
    assert r.cushions[0].primary.status is SensorStatus.OK


def test_recovers_from_serial_noise_with_retransmissions(connected: InProcessHarness) -> None:
    h = connected
    h.table.inject("serial_noise", error_rate=0.01)
    h.link.set_outputs(0.5, 0.5)
    h.run(60.0)
    c = h.link.counters
    assert c.crc_errors > 0 and c.resyncs > 0
    assert c.retransmissions > 0
    assert h.table.board.applied(0) == 500  # the command got through despite the noise
    h.table.inject("serial_noise", clear=True)
    h.run(2.0)
    assert h.link.healthy


def test_silence_reports_stale_then_reconnects(connected: InProcessHarness) -> None:
    h = connected
    events = []
    h.link.add_listener(events.append)
    h.table.inject("serial_silence", duration_s=5.0)
    h.run(1.5)
    assert not h.link.healthy
    assert any(e.kind == "stale" for e in events)
    assert h.run(10.0, until=lambda: h.link.healthy)
    assert h.link.counters.reconnects >= 2


def test_unplug_replug_reconnects_with_backoff(connected: InProcessHarness) -> None:
    h = connected
    events = []
    h.link.add_listener(events.append)
    h.table.inject("unplug")
    h.run(0.5)
    assert h.link.state is LinkState.DISCONNECTED
    assert any(e.kind == "disconnected" for e in events)
    h.run(10.0)  # back-off grows while it stays away
    assert h.link.latest is None and not h.link.healthy
    h.table.inject("replug")
    assert h.run(10.0, until=lambda: h.link.healthy)
    assert [e.kind for e in events].count("connected") == 1


def test_commands_refused_when_not_connected(harness: InProcessHarness) -> None:
    events = []
    harness.link.add_listener(events.append)
    assert harness.link.set_relay(True) is False
    assert events and events[0].kind == "command_failed"


def test_set_outputs_refuses_out_of_range(harness: InProcessHarness) -> None:
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError):
            harness.link.set_outputs(bad, 0.0)


def test_lost_identity_does_not_hang_the_handshake(cfg: Config) -> None:
    h = InProcessHarness(cfg)
    lost = {"n": 0}
    real_write = h.table.board.port.inner.write

    def drop_first_identity(data: bytes) -> None:
        frames = p.FrameParser().feed(data)
        if lost["n"] == 0 and frames and frames[0].type == p.MsgType.IDENTITY:
            lost["n"] += 1
            return
        real_write(data)

    h.table.board.port.inner.write = drop_first_identity
    h.wait_connected(cfg.link.silence_reconnect_s + 5.0)
    assert lost["n"] == 1
    assert h.link.counters.reconnects >= 2
