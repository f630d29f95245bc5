"""A simulated table and a host link in one process, on one ``SimClock``.

Tests, benchmarks and (from issue 3) the scenario runner use this to run the real board
and link code thousands of times faster than real time: the clock is advanced in small
steps and everything is polled after each step, exactly as the real-time threads would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from firmware_bridge.link import BoardLink, IncompatibleBoardError, LinkState
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import SimClock
from hydrotherm.config import Config

from .table import SimulatedTable


class InProcessHarness:
    """Clock, simulated table and link, wired through an in-process pipe."""

    def __init__(self, cfg: Config | None = None, seed: int = 0, step_s: float = 0.05,
                 make_table: Callable[..., Any] = SimulatedTable) -> None:
        """``make_table(cfg, clock, seed=)`` builds the table: the Python board by default,
        ``sim.firmware.FirmwareTable`` (on an in-process pipe) for the real firmware."""
        self.cfg = cfg or Config()
        self.clock = SimClock()
        self.table = make_table(self.cfg, self.clock, seed=seed)
        self.link = BoardLink(self.cfg.link, Thermistor(self.cfg.sensor), self.clock,
                              url="inprocess://table", opener=self.table.pipe.open)
        self.step_s = step_s

    @property
    def now(self) -> float:
        return self.clock.now()

    def step(self) -> None:
        self.clock.advance(self.step_s)
        self.table.poll()
        self.link.poll()
        self.table.poll()  # answer what the link just sent within the same step

    def run(self, seconds: float, each_step: Callable[[], object] | None = None,
            until: Callable[[], bool] | None = None) -> bool:
        """Advance ``seconds`` of simulated time; stop early (returning True) when
        ``until()`` becomes true."""
        end = self.clock.now() + seconds
        while self.clock.now() < end - 1e-9:
            self.step()
            if each_step is not None:
                each_step()
            if until is not None and until():
                return True
        return False

    def wait_connected(self, timeout_s: float = 5.0) -> None:
        """Run until the handshake is done; raise as ``BoardLink.wait_connected`` does."""
        self.run(timeout_s, until=lambda: self.link.state in (LinkState.CONNECTED,
                                                              LinkState.INCOMPATIBLE))
        if self.link.state is LinkState.INCOMPATIBLE:
            raise IncompatibleBoardError(self.link.error)
        if not self.link.connected:
            raise TimeoutError(f"link did not connect: {self.link.error}")

    def connect(self, timeout_s: float = 5.0) -> None:
        """Handshake, clear the boot RESET flag and close the master relay."""
        self.wait_connected(timeout_s)
        self.link.clear_faults()
        self.link.set_relay(True)
        if not self.run(timeout_s, until=lambda: self.link.latest is not None
                        and self.link.latest.relay_closed):
            raise TimeoutError("relay did not close")
