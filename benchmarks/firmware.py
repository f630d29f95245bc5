"""Benchmarks for issue 14: the reference firmware, measured as the binary in simavr.

Prints figures; asserts nothing.  Run: ``python -m benchmarks.firmware [--json OUT]``
(builds the firmware with ``make -C firmware`` first; about half a minute).

* **Flash and RAM** from ``avr-size``: flash = .text + .data; static RAM = .data + .bss +
  .noinit.  **Stack**: simavr fills the RAM with a pattern before boot; the deepest the
  stack ever reached is where the pattern stops, read after the load runs below.
* **Main-loop pass**: the firmware raises PB0 while its main loop works and lowers it
  before it sleeps; simavr times every pulse in CPU cycles.  Measured idle, with 5 %
  of the bytes corrupted both ways for 20 s while heating, and with bursts of 71 bytes
  holding 22 false start markers (the receiver's worst case: every candidate completes at
  the last byte), MCU time throughout.
* **Dead-man**: the host stops mid-heating; from the start of the 1 ms step in which
  its last bytes reached the UART (and from the millisecond in which the firmware took
  that refresh) to the step in which the relay and SSR pins are all low, MCU time.
* **Watchdog**: the main loop is made to hang (the CPU sent into an endless loop, the
  interrupts still running) while heating; from then to the outputs released by the
  watchdog reset, MCU time, in 1 ms steps.
* **Simulation speed**: MCU seconds per wall second with the host link and plant in the
  loop (5 ms steps), on this machine.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from firmware_bridge import protocol as p
from hydrotherm.config import Config
from sim.firmware import FirmwareBuild, FirmwareTable, build_firmware
from sim.harness import InProcessHarness


def sizes(build: FirmwareBuild) -> dict[str, int]:
    out = subprocess.run(["avr-size", "-A", str(build.elf)], capture_output=True, text=True,
                         check=True).stdout
    sec = {m[1]: int(m[2]) for m in re.finditer(r"^(\.\w+)\s+(\d+)", out, re.M)}
    return {"flash_bytes": sec[".text"] + sec.get(".data", 0),
            "static_ram_bytes": sec.get(".data", 0) + sec.get(".bss", 0)
            + sec.get(".noinit", 0)}


def harness(build: FirmwareBuild, seed: int = 1, step_s: float = 0.005) -> InProcessHarness:
    def make(cfg: Config, clock: Any, port: Any = None, **kw: Any) -> FirmwareTable:
        return FirmwareTable(cfg, clock, port, elf=build.elf, step_s=step_s, **kw)
    return InProcessHarness(Config(), seed=seed, make_table=make)


def false_markers_burst() -> bytes:
    buf = bytearray(71)
    for k in range(22):
        buf[3 * k:3 * k + 3] = bytes((0xA5, 0x5A, 64 - 3 * k))
    return bytes(buf)


def loop_and_stack(build: FirmwareBuild) -> dict[str, Any]:
    h = harness(build)
    try:
        h.connect()
        h.run(5.0)
        idle = h.table.sim.last.busy_max_cycles
        h.link.set_outputs(0.7, 0.3)
        h.table.inject("serial_noise", error_rate=0.05)
        t0 = time.perf_counter()
        h.run(20.0)
        wall = time.perf_counter() - t0
        h.table.inject("serial_noise", clear=True)
        noisy = h.table.sim.last.busy_max_cycles
        for _ in range(50):
            h.table.pipe.to_board += false_markers_burst()
            h.run(0.1)
        burst = h.table.sim.last.busy_max_cycles
        depth, free = h.table.sim.stack_depth()
        freq = h.table.sim.frequency
        return {"loop_idle_cycles": idle, "loop_noise_cycles": noisy,
                "loop_worst_cycles": burst, "loop_worst_us": burst / freq * 1e6,
                "stack_bytes": depth, "ram_above_static_bytes": free,
                "sim_speed_x_realtime": 20.0 / wall}
    finally:
        h.table.close()


def deadman(build: FirmwareBuild) -> tuple[float, float]:
    """(from the host's last bytes, from the firmware's acceptance of the last refresh)
    to all outputs low, MCU seconds; the second uses the firmware's own millisecond
    count of the refresh (``board.refreshed_ms``)."""
    h = harness(build, seed=4, step_s=0.001)
    table: FirmwareTable = h.table
    try:
        h.connect()
        h.link.set_outputs(1.0, 1.0)
        h.run(5.0)
        while table.sim.last.pins & 0b111:
            h.clock.advance(0.001)
            table.poll()
        assert table.last_rx_mcu_s is not None
        off = table.mcu_time_s
        return off - table.last_rx_mcu_s, off - table.board.state.refreshed_ms / 1000.0
    finally:
        table.close()


def watchdog(build: FirmwareBuild) -> float:
    h = harness(build, seed=5, step_s=0.001)
    table: FirmwareTable = h.table
    try:
        h.connect()
        h.link.set_outputs(1.0, 1.0)
        h.run(3.0)
        start = table.mcu_time_s
        table.board.reset(p.ResetCause.WATCHDOG)
        while table.sim.last.pins & 0b111:
            h.clock.advance(0.001)
            table.poll()
        return table.mcu_time_s - start
    finally:
        table.close()


def run() -> dict[str, Any]:
    build = build_firmware()
    res: dict[str, Any] = sizes(build)
    res.update(loop_and_stack(build))
    res["deadman_s"], res["deadman_from_refresh_s"] = deadman(build)
    res["watchdog_s"] = watchdog(build)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args()
    r = run()
    print(f"flash {r['flash_bytes']} B of 32768 (32256 beside the Nano's optiboot); static "
          f"RAM {r['static_ram_bytes']} B, deepest stack {r['stack_bytes']} B, of 2048")
    print(f"main-loop pass, worst: idle {r['loop_idle_cycles']} cycles; 5 % noise "
          f"{r['loop_noise_cycles']}; false-marker bursts {r['loop_worst_cycles']} cycles "
          f"= {r['loop_worst_us']:.0f} us at 16 MHz")
    print(f"dead-man: outputs off {r['deadman_s']:.4f} s (MCU time) after the host's last "
          f"bytes reached the UART, {r['deadman_from_refresh_s']:.4f} s after the firmware "
          "took the last refresh")
    print(f"watchdog: outputs off {r['watchdog_s']:.3f} s (MCU time) after the main loop hung")
    print(f"simulation: {r['sim_speed_x_realtime']:.1f}x real time with link and plant")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
