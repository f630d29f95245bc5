"""Fixtures for the compiled board firmware in simavr.

``firmware_build`` runs ``make -C firmware`` once per test session (so the README's test
command builds the firmware).  Without the toolchain or simavr it skips the tests that
need it, naming the Debian packages; with ``CI=true`` it fails them instead.
Test modules load this with ``pytest_plugins = ["tests.firmware_fixtures"]``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hydrotherm.config import Config
from sim.firmware import FirmwareBuild, FirmwareTable, FirmwareUnavailable, build_firmware
from sim.harness import InProcessHarness


@pytest.fixture(scope="session")
def firmware_build() -> FirmwareBuild:
    try:
        return build_firmware()
    except FirmwareUnavailable as exc:
        msg = str(exc)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def firmware_table_factory(build: FirmwareBuild, **kw: Any) -> Callable[..., FirmwareTable]:
    def make(cfg: Config, clock: Any, port: Any = None, **more: Any) -> FirmwareTable:
        return FirmwareTable(cfg, clock, port, elf=build.elf, **{**kw, **more})
    return make


@pytest.fixture
def fw_harness(firmware_build: FirmwareBuild, cfg: Config) -> Iterator[InProcessHarness]:
    """The in-process harness (SimClock, in-process pipe) with the firmware as board."""
    h = InProcessHarness(cfg, seed=1, make_table=firmware_table_factory(firmware_build))
    yield h
    h.table.close()


@pytest.fixture
def fw_connected(fw_harness: InProcessHarness) -> InProcessHarness:
    fw_harness.connect()
    return fw_harness


# --- one test suite, two boards ---------------------------------------------------------

#: The boards a parametrised test runs against: the Python emulator (``sim.board``) and
#: the compiled firmware in simavr (``sim.firmware``).
BOARDS = ["python", "firmware"]


@pytest.fixture(params=BOARDS)
def board_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_table(board_kind: str, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``make_table(cfg, clock, port=None, seed=, serial_number=)`` for the board under
    test; firmware tables it made are closed (their simavr stopped) afterwards."""
    if board_kind == "python":
        from sim.table import SimulatedTable

        yield SimulatedTable
        return
    build: FirmwareBuild = request.getfixturevalue("firmware_build")
    made: list[FirmwareTable] = []
    factory = firmware_table_factory(build)

    def make(*args: Any, **kw: Any) -> FirmwareTable:
        table = factory(*args, **kw)
        made.append(table)
        return table

    yield make
    for table in made:
        table.close()


@pytest.fixture
def any_board_harness(make_table: Callable[..., Any], cfg: Config) -> InProcessHarness:
    """``conftest.harness`` for the board under test (override ``harness`` with it)."""
    return InProcessHarness(cfg, seed=1, make_table=make_table)
