"""The simavr host process (``firmware/simhost``): one MCU, stepped in lock-step.

The host prints one answer line per request (protocol at the top of
``firmware/simhost/simhost.c``).  This wrapper turns that into method calls and decodes
the firmware's ``board`` object, which the host reports after every step: that is how
tests see the board's real internal state (what a debugger would), not a model of it.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: ``struct board`` in firmware/src/board.h (the firmware checks this layout at build).
BOARD_STRUCT = struct.Struct("<HHHBBBB7H2B2B2BIH")
#: The MCU's ADC inputs: four water sensors, plate 0, plate 1, room (protocol 1.1).
ADC_INPUTS = 7
#: Where avr-nm puts data memory in the ELF's address space.
_DATA_OFFSET = 0x800000


class SimavrError(RuntimeError):
    """The simavr host refused a request or stopped."""


@dataclass(frozen=True, slots=True)
class BoardState:
    """The firmware's ``board`` object after a step."""

    setting: tuple[int, int]
    faults: int
    relay_closed: bool
    reset_cause: int
    inputs: int
    adc: tuple[int, int, int, int]  # the water sensors
    hot_run: tuple[int, int]
    rail_run: tuple[int, int]
    refreshed_ms: int
    commands_rejected: int
    host_minor: int = 0  # of the last accepted HELLO: the telemetry layout
    plate: tuple[int, int] = (0, 0)  # plate sensor counts (protocol 1.1)
    room: int = 0  # room sensor counts (protocol 1.1)
    plate_run: tuple[int, int] = (0, 0)

    @classmethod
    def decode(cls, raw: bytes) -> BoardState:
        (s0, s1, faults, relay, cause, inputs, host_minor, a0, a1, a2, a3, p0, p1, room,
         h0, h1, r0, r1, q0, q1, refreshed, rejected) = BOARD_STRUCT.unpack(raw)
        return cls((s0, s1), faults, bool(relay), cause, inputs, (a0, a1, a2, a3), (h0, h1),
                   (r0, r1), refreshed, rejected, host_minor, (p0, p1), room, (q0, q1))


@dataclass(frozen=True, slots=True)
class StepResult:
    """What happened during one step; times in MCU cycles."""

    cycle: int
    relay_cycles: int
    ssr_cycles: tuple[int, int]
    heat_cycles: tuple[int, int]  # SSR n and the relay both on
    pins: int
    busy_max_cycles: int
    rx_left: int
    tx: bytes
    state: BoardState


def symbol_address(elf: Path, name: str) -> int:
    """Data-memory address of a global in the ELF (via avr-nm from binutils-avr)."""
    out = subprocess.run(["avr-nm", str(elf)], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) - _DATA_OFFSET
    raise SimavrError(f"{elf} has no symbol {name!r}")


class Simavr:
    """One running ``simhost``.  Not thread-safe: one owner steps it."""

    def __init__(self, simhost: Path, elf: Path, serial_number: int | None = None,
                 seed: int = 0, adc_noise_lsb: float = 0.5) -> None:
        addr = symbol_address(elf, "board")
        cmd = [str(simhost), "--seed", str(seed), "--adc-noise-lsb", str(adc_noise_lsb),
               "--watch", f"{addr}:{BOARD_STRUCT.size}"]
        if serial_number is not None:
            cmd += ["--serial", str(serial_number)]
        cmd.append(str(elf))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1,
                                     start_new_session=True)  # Ctrl-C is for the owner
        ready = self._line().split()
        if len(ready) != 3 or ready[0] != "ready":
            raise SimavrError(f"simhost did not start: {' '.join(ready)!r}")
        self.frequency = int(ready[1])
        self.ramend = int(ready[2])
        self._static_end = symbol_address(elf, "_end")
        self.cycle = 0
        self.last: StepResult | None = None

    def _line(self) -> str:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise SimavrError(f"simhost exited (code {self.proc.poll()})")
        return line.rstrip("\n")

    def _request(self, req: str) -> list[str]:
        if self.proc.stdin is None or self.proc.poll() is not None:
            raise SimavrError("simhost is not running")
        self.proc.stdin.write(req + "\n")
        self.proc.stdin.flush()
        ans = self._line().split()
        if not ans or ans[0] != "ok":
            raise SimavrError(f"simhost: {' '.join(ans)}")
        return ans[1:]

    @property
    def time_us(self) -> float:
        return self.cycle * 1e6 / self.frequency

    def step(self, until_us: int, ratios: Sequence[float], cutout_open: Sequence[bool],
             rx: bytes = b"") -> StepResult:
        """Run the MCU until ``until_us`` µs after power-on; ``ratios`` are the seven
        sensor nodes (ADC0..ADC6: four water sensors, plate 0, plate 1, room) as fractions
        of Vref, ``rx`` bytes go to its UART receiver."""
        if len(ratios) != ADC_INPUTS:
            raise ValueError(f"{len(ratios)} sensor voltages given, the MCU has {ADC_INPUTS}")
        r = " ".join(str(min(1_000_000, max(0, round(x * 1e6)))) for x in ratios)
        c = " ".join("1" if o else "0" for o in cutout_open)
        a = self._request(f"step {until_us} {r} {c} {rx.hex() or '-'}")
        res = StepResult(int(a[0]), int(a[1]), (int(a[2]), int(a[3])), (int(a[4]), int(a[5])),
                         int(a[6]), int(a[7]), int(a[8]),
                         b"" if a[9] == "-" else bytes.fromhex(a[9]),
                         BoardState.decode(bytes.fromhex(a[10])))
        self.cycle = res.cycle
        self.last = res
        return res

    def reset_pin(self) -> None:
        """Pull RESET low and release it (reset cause EXTERNAL)."""
        self._request("reset")

    def power_cycle(self) -> None:
        """Cut and restore the supply (reset cause POWER_ON)."""
        self._request("power")

    def hang(self) -> None:
        """Make the main loop hang; the firmware's watchdog has to reset the MCU."""
        self._request("hang")

    def peek(self, addr: int, length: int) -> bytes:
        return bytes.fromhex(self._request(f"peek {addr} {length}")[0])

    def stack_depth(self) -> tuple[int, int]:
        """(deepest stack use so far, RAM between static data and the top) in bytes: the
        host fills RAM with a pattern before boot; what the stack never touched keeps it."""
        free = self.ramend + 1 - self._static_end
        untouched = int(self._request(f"stack {self._static_end}")[0])
        return free - untouched, free

    def close(self) -> None:
        proc = self.proc
        if proc.poll() is None:
            try:
                if proc.stdin:
                    proc.stdin.write("quit\n")
                    proc.stdin.flush()
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(timeout=2)
        for f in (proc.stdin, proc.stdout):
            if f:
                f.close()
