"""Sleeping until ``next_due`` loses nothing (issue 12 part 7).

The controller's runner now sleeps until the board sends bytes, a command arrives or
``Controller.next_due`` (which includes ``BoardLink.next_due``) says a timer is due; the
simulator polls a board only when its host wrote or ``BoardEmulator.next_due`` is
reached.  These tests drive the link and the board in exactly that way, on a simulated
clock, and check that everything that happens by time alone still happens: telemetry,
retransmissions under noise, the stale report and the reconnect after silence, the
board's dead-man cut.  A timer missing from ``next_due`` leaves its side asleep and the
test fails (no bytes would wake it)."""

from __future__ import annotations

from firmware_bridge import protocol as p
from firmware_bridge.link import LinkState
from hydrotherm.config import Config
from sim.harness import InProcessHarness


class LazyHarness(InProcessHarness):
    """Each side is polled only when bytes wait for it or its ``next_due`` has come."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg, seed=1, step_s=0.01)
        self.steps = self.link_polls = self.board_polls = 0
        self.host_silent = False  # a host that has stopped (hung) polls nothing

    def step(self) -> None:
        self.clock.advance(self.step_s)
        self.steps += 1
        now, pipe = self.clock.now(), self.table.pipe
        if pipe.to_board or now >= self.table.next_due():
            self.table.poll()
            self.board_polls += 1
        if not self.host_silent and (pipe.to_host or now >= self.link.next_due()):
            self.link.poll()
            self.link_polls += 1
            if pipe.to_board:  # the board answers within the step, as a pty would
                self.table.poll()
                self.board_polls += 1


def connected(cfg: Config) -> LazyHarness:
    h = LazyHarness(cfg)
    h.connect()
    return h


def test_telemetry_and_commands_flow_with_far_fewer_polls() -> None:
    h = connected(Config())
    before, steps, polls = h.link.counters.telemetry, h.steps, h.link_polls
    h.link.set_outputs(0.25, 0.75)
    h.run(10.0)
    assert (h.link.counters.telemetry - before) / 10.0 >= 4.0
    assert h.table.board.applied(0) == 250 and h.table.board.applied(1) == 750
    assert h.link.healthy
    # the host slept most steps: telemetry (5/s), ACKs and the refresh (2/s) woke it
    assert h.link_polls - polls < (h.steps - steps) / 4
    # the refresh kept the dead-man from cutting: no fault latched
    assert h.link.latest.faults == 0


def test_retransmissions_under_noise_without_bytes_to_wake_the_host() -> None:
    h = connected(Config())
    h.table.inject("serial_noise", error_rate=0.01)
    h.link.set_outputs(0.5, 0.5)
    h.run(60.0)
    c = h.link.counters
    assert c.crc_errors > 0 and c.retransmissions > 0
    assert h.table.board.applied(0) == 500
    h.table.inject("serial_noise", clear=True)
    h.run(2.0)
    assert h.link.healthy


def test_silence_is_reported_stale_then_reconnected() -> None:
    h = connected(Config())
    events = []
    h.link.add_listener(events.append)
    h.table.inject("serial_silence", duration_s=5.0)
    h.run(1.5)
    assert not h.link.healthy
    assert any(e.kind == "stale" for e in events)
    assert h.run(10.0, until=lambda: h.link.healthy)
    assert h.link.counters.reconnects >= 2


def test_a_board_polled_only_when_due_still_cuts_a_silent_host() -> None:
    cfg = Config()
    h = connected(cfg)
    h.link.set_outputs(0.5, 0.5)
    assert h.run(2.0, until=lambda: h.table.board.applied(0) == 500)
    h.host_silent = True  # the host hangs: no refresh, nothing for the board to read
    h.run(cfg.board.deadman_s + 0.5)
    assert h.table.board.applied(0) == 0 and h.table.board.applied(1) == 0
    assert h.table.board.faults & int(p.Fault.DEADMAN_0)
    assert h.link.state is LinkState.CONNECTED  # (the host never looked)
