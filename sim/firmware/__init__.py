"""The reference firmware (``firmware/``), compiled for the ATmega328P, run in simavr.

``FirmwareTable`` is a drop-in for ``sim.table.SimulatedTable``: the same plant, the same
fault vocabulary, the same ports (in-process pipe or pty), but the board is the binary
that would be flashed, running cycle by cycle in simavr in lock-step with the plant on
the MCU's own simulated time.  ``make_server`` gives ``hydrotherm sim --firmware``.
"""

from .build import FirmwareBuild, FirmwareUnavailable, build_firmware
from .table import FirmwareBoard, FirmwareTable, make_server

__all__ = ["FirmwareBoard", "FirmwareBuild", "FirmwareTable", "FirmwareUnavailable",
           "build_firmware", "make_server"]
