"""A simulated table whose board is the compiled firmware running in simavr.

The plant (``sim.plant``) is the same as with the Python board; what connects it to the
MCU is physical: each sensor's divider voltage (the same ``Thermistor`` equations as the
Python board, plus the fault states: open → Vref, short → 0 V, drift → an offset in
°C) goes to an ADC pin, the plate's bimetal switch to a cut-out input, and the time the
SSR and relay pins were high drives the heaters.  The serial line is the UART, carried
to the same ports as the Python board's (pty or in-process pipe), through the same
``NoisyPort`` for ``serial_noise`` and ``serial_silence``.

Time: ``poll()`` runs the MCU up to ``clock.now()`` in steps of ``step_s`` (default
5 ms) of its own clock, stepping the plant with what the pins did in each step.  With a
``SimClock`` that is as fast as the machine allows; with a ``RealClock`` (``hydrotherm
sim --firmware``) the MCU keeps pace with the wall clock.
"""

from __future__ import annotations

import functools
import random
import sys
from pathlib import Path
from typing import Any

from firmware_bridge import protocol as p
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import Clock
from hydrotherm.config import Config

from .. import faults
from ..plant import Plant, SensorFault
from ..table import TableHandles
from ..transport import BoardPort, InProcessPipe, NoisyPort
from .build import FirmwareBuild, build_firmware, locate
from .harness import BoardState, Simavr, SimavrError


class FirmwareBoard:
    """The board as the rest of the simulator sees it (the same attributes as
    ``sim.board.BoardEmulator`` that faults, the server and tests use), read from the
    firmware's own ``board`` object after every step."""

    def __init__(self, table: FirmwareTable) -> None:
        self._table = table

    @property
    def state(self) -> BoardState:
        last = self._table.sim.last
        assert last is not None
        return last.state

    def applied(self, ch: int) -> int:
        """Permille actually driven (the firmware's setting while its relay is closed)."""
        s = self.state
        return s.setting[ch] if s.relay_closed else 0

    @property
    def relay_closed(self) -> bool:
        return self.state.relay_closed

    @property
    def faults(self) -> int:
        return self.state.faults

    @property
    def reset_cause(self) -> p.ResetCause:
        return p.ResetCause(self.state.reset_cause)

    @property
    def last_adc(self) -> tuple[int, int, int, int]:
        return self.state.adc

    @property
    def last_plate(self) -> tuple[int, int]:
        return self.state.plate

    @property
    def last_room(self) -> int:
        return self.state.room

    has_plate = True  # the reference firmware is a protocol 1.1 board

    @property
    def output_set_at(self) -> list[float]:
        """Clock time of the last SET_OUTPUTS the firmware accepted (its dead-man
        refresh), for both channels, as ``BoardEmulator.output_set_at``."""
        t = self._table.refreshed_at
        return [t, t]

    @property
    def commands_rejected(self) -> int:
        """Commands answered with another status than OK (retransmissions not again)."""
        return self.state.commands_rejected

    # --- fault injection hooks, as the Python board has them ---------------------------

    def set_serial_noise(self, error_rate: float) -> None:
        self._table.noisy.error_rate = error_rate

    def silence(self, duration_s: float) -> None:
        self._table.noisy.silent_until = self._table.clock.now() + duration_s

    def reset(self, cause: p.ResetCause = p.ResetCause.WATCHDOG) -> None:
        """Make the MCU restart the physical way for ``cause``: WATCHDOG hangs its main
        loop (the watchdog must notice), EXTERNAL pulses the reset pin, POWER_ON cuts
        the supply.  Brown-out and software resets cannot be caused from outside."""
        self._table.reset_mcu(cause)


class FirmwareTable(TableHandles):
    """Plant + firmware board on one clock and one port (``SimulatedTable``'s shape)."""

    def __init__(self, cfg: Config, clock: Clock, port: BoardPort | None = None,
                 seed: int = 0, serial_number: int | None = None,
                 elf: str | Path | None = None, step_s: float = 0.005,
                 adc_noise_lsb: float = 0.5) -> None:
        self.cfg = cfg
        self.clock = clock
        self.rng = random.Random(seed)
        self.port = port if port is not None else InProcessPipe()
        self.plant = Plant(cfg.plant, cfg.sensor, random.Random(self.rng.random()),
                           cfg.true_plant)
        self.noisy = NoisyPort(self.port, random.Random(self.rng.random()))
        self._noise_rng = random.Random(self.rng.random())
        self.build: FirmwareBuild = locate(elf) if elf is not None else build_firmware()
        serial = cfg.board.serial_number if serial_number is None else serial_number
        self.sim = Simavr(self.build.simhost, self.build.elf, serial, seed, adc_noise_lsb)
        self.board = FirmwareBoard(self)
        self._therm = Thermistor(cfg.sensor)
        self._rs = cfg.sensor.series_ohm
        self._noise_c = cfg.sensor.noise_c
        self._step_cycles = max(1, round(step_s * self.sim.frequency))
        self._t0 = clock.now()
        self._rx = bytearray()
        #: why the simulator stopped, if it did (the board then is silent, like one
        #: without power; the host sees that as a dead link)
        self.error: str | None = None
        #: MCU time (s) at the start of the last step that carried host bytes to the UART
        self.last_rx_mcu_s: float | None = None
        #: clock time at the end of the step in which the firmware last accepted a
        #: SET_OUTPUTS (its ``refreshed_ms`` changed; a reboot's 0 is not a refresh)
        self.refreshed_at = clock.now()
        self._refreshed_ms = 0
        self.sim.step(0, self._ratios(), self.plant.cutout_open)  # reads the state

    # --- what SimulatedTable offers ---------------------------------------------------

    def close(self) -> None:
        self.sim.close()

    # --- the MCU and the world around it ----------------------------------------------

    @property
    def mcu_time_s(self) -> float:
        """The MCU's own clock: seconds since it was powered."""
        return self.sim.cycle / self.sim.frequency

    def _ratio(self, celsius: float) -> float:
        if self._noise_c > 0.0:
            celsius += self._noise_rng.gauss(0.0, self._noise_c)
        r = self._therm.resistance_at(celsius)
        return r / (r + self._rs)

    def _ratios(self) -> list[float]:
        """Each sensor's divider node as a fraction of Vref: R / (R + Rs); the four water
        sensors, then the two plate sensors and the room sensor (protocol 1.1)."""
        plant = self.plant
        out = []
        for c in (0, 1):
            f = plant.faults[c]
            for s in (0, 1):
                state = f.sensor[s]
                if state is SensorFault.OPEN:
                    out.append(1.0)
                elif state is SensorFault.SHORT:
                    out.append(0.0)
                else:
                    t = plant.sensed_c[c][s] + f.sensor_offset_c[s]
                    if self._noise_c > 0.0:
                        t += self._noise_rng.gauss(0.0, self._noise_c)
                    r = self._therm.resistance_at(t)
                    out.append(r / (r + self._rs))
        for c in (0, 1):
            f = plant.faults[c]
            if f.plate_sensor is SensorFault.OPEN:
                out.append(1.0)
            elif f.plate_sensor is SensorFault.SHORT:
                out.append(0.0)
            else:
                out.append(self._ratio(plant.sensed_plate_c[c] + f.plate_offset_c))
        out.append(self._ratio(plant.sensed_room_c))
        return out

    def poll(self) -> None:
        """Run MCU and plant up to the clock's now; carry the bytes both ways."""
        if self.error is not None:
            return
        try:
            self._run_until_now()
        except SimavrError as exc:
            self.error = str(exc)
            print(f"firmware board stopped: {exc}", file=sys.stderr, flush=True)

    def _run_until_now(self) -> None:
        now = self.clock.now()
        self.noisy.now = now
        data = self.noisy.read_available()
        if data:
            self._rx += data
        sim = self.sim
        freq = sim.frequency
        target = round((now - self._t0) * freq)
        while sim.cycle < target:
            start = sim.cycle
            until = min(start + self._step_cycles, target)
            if self._rx:
                self.last_rx_mcu_s = start / freq
            res = sim.step(until * 1_000_000 // freq, self._ratios(), self.plant.cutout_open,
                           bytes(self._rx))
            self._rx.clear()
            dt = res.cycle - start
            refreshed = res.state.refreshed_ms
            if refreshed != self._refreshed_ms:
                self._refreshed_ms = refreshed
                if refreshed:
                    self.refreshed_at = self._t0 + res.cycle / freq
            if dt <= 0:
                break  # until rounded down to the cycle we are at
            relay = res.relay_cycles * 2 >= dt
            self.plant.step(dt / freq, (res.heat_cycles[0] / dt, res.heat_cycles[1] / dt),
                            relay)
            if res.tx:
                self.noisy.now = self._t0 + res.cycle / freq
                self.noisy.write(res.tx)
        self.noisy.now = now

    def reset_mcu(self, cause: p.ResetCause) -> None:
        if cause is p.ResetCause.WATCHDOG:
            self.sim.hang()
        elif cause is p.ResetCause.EXTERNAL:
            self.sim.reset_pin()
        elif cause is p.ResetCause.POWER_ON:
            self.sim.power_cycle()
        else:
            raise faults.FaultError(f"a {cause.name.lower()} reset cannot be caused from "
                                    "outside the firmware")
        self._rx.clear()


def make_server(cfg: Config, elf: str | Path, clock: Clock | None = None,
                directory: Path | None = None, tables: int = 1, seed: int = 0) -> Any:
    """``hydrotherm sim --firmware ELF``: tables on ptys, each board the firmware in
    simavr, in real time (``sim.server.SimServer`` with ``FirmwareTable``)."""
    from ..server import SimServer

    build = locate(elf)  # a clear error now rather than in the server's thread
    return SimServer(cfg, clock, directory, tables=tables, seed=seed,
                     make_table=functools.partial(FirmwareTable, elf=build.elf))
