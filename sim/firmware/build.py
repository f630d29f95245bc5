"""Find, or build with ``make -C firmware``, the firmware ELF and the simavr host."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: The repository's firmware directory (this file is sim/firmware/build.py).
FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
ELF_NAME = "hydrotherm-board.elf"
TOOLS = ("make", "avr-gcc", "avr-objcopy", "avr-size", "avr-nm", "cc")


class FirmwareUnavailable(RuntimeError):
    """The firmware or its simulator cannot be built or found; the message says why."""


@dataclass(frozen=True)
class FirmwareBuild:
    elf: Path
    simhost: Path


def missing_tools() -> list[str]:
    """Build tools not on PATH (Debian: gcc-avr, avr-libc, binutils-avr, make, gcc)."""
    return [t for t in TOOLS if shutil.which(t) is None]


def build_firmware(directory: Path = FIRMWARE_DIR, timeout_s: float = 300.0) -> FirmwareBuild:
    """Run ``make -C firmware`` (a no-op when up to date) and return the outputs."""
    missing = missing_tools()
    if missing:
        raise FirmwareUnavailable(
            f"cannot build the firmware: {', '.join(missing)} not found (Debian: apt-get "
            "install gcc-avr avr-libc binutils-avr simavr libsimavr-dev make gcc)")
    proc = subprocess.run(["make", "-C", str(directory)], capture_output=True, text=True,
                          timeout=timeout_s, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise FirmwareUnavailable("make -C firmware failed (the simulator host needs "
                                  "Debian's simavr and libsimavr-dev): " + " | ".join(tail))
    return locate(directory / "build" / ELF_NAME)


def locate(elf: str | Path) -> FirmwareBuild:
    """The ELF given and the simavr host built next to the default one."""
    elf = Path(elf)
    if not elf.is_file():
        raise FirmwareUnavailable(f"no firmware at {elf} (build it with `make -C firmware`)")
    simhost = FIRMWARE_DIR / "build" / "simhost"
    if not simhost.is_file():
        local = elf.parent / "simhost"
        if local.is_file():
            simhost = local
        else:
            raise FirmwareUnavailable(f"no simavr host at {simhost} (build it with "
                                      "`make -C firmware`; it needs libsimavr-dev)")
    return FirmwareBuild(elf, simhost)
