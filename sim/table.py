"""A simulated table: the thermal plant and the heater board on one clock and one port.

What ``hydrotherm sim`` runs (over a pty, in a thread, in real time) and what tests and
scenarios run in-process (over an ``InProcessPipe``, the clock advanced by the caller).
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from hydrotherm.clock import Clock
from hydrotherm.config import Config

from . import faults
from .board import BoardEmulator
from .plant import Plant
from .transport import BoardPort, InProcessPipe


class TableHandles:
    """What a tester (the fault injector, the scenario runner, ``hydrotherm sim``'s
    control socket) holds a simulated table by, whichever board runs it: the Python
    emulator (``SimulatedTable``) or the compiled firmware (``sim.firmware.FirmwareTable``).
    Needs ``self.port`` and ``self.plant``."""

    port: BoardPort
    plant: Plant

    @property
    def pipe(self) -> InProcessPipe:
        assert isinstance(self.port, InProcessPipe), "this table is not on an in-process pipe"
        return self.port

    def inject(self, name: str, clear: bool = False, **params: Any) -> None:
        """Inject a fault by name (see ``sim.faults.FAULTS``); ``clear=True`` removes it."""
        faults.apply(self, name, params, clear=clear)  # type: ignore[arg-type]

    def unplug(self) -> None:
        unplug = getattr(self.port, "unplug", None)
        if unplug is None:
            raise faults.FaultError("this table's port cannot be unplugged")
        unplug()

    def replug(self) -> None:
        replug = getattr(self.port, "replug", None)
        if replug is None:
            raise faults.FaultError("this table's port cannot be replugged")
        replug()

    def set_client(self, cushion: int, on: bool) -> None:
        self.plant.set_client(cushion, on)


class SimulatedTable(TableHandles):
    """Plant + board.  ``port`` defaults to an in-process pipe (``self.pipe``)."""

    def __init__(self, cfg: Config, clock: Clock, port: BoardPort | None = None,
                 seed: int = 0, serial_number: int | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.rng = random.Random(seed)
        self.port = port if port is not None else InProcessPipe()
        self.plant = Plant(cfg.plant, cfg.sensor, random.Random(self.rng.random()),
                           cfg.true_plant)
        board_cfg = cfg.board
        if serial_number is not None:
            board_cfg = replace(board_cfg, serial_number=serial_number)
        self.board = BoardEmulator(board_cfg, cfg.sensor, self.plant, clock, self.port,
                                   random.Random(self.rng.random()))

    def poll(self) -> None:
        self.board.poll()

    def next_due(self) -> float:
        """When ``poll`` has something to do without input from the host."""
        return self.board.next_due()
