"""Issue 14 part 3: the scenario runner on either board.  Shipped scenarios run on the
Python emulator and on the compiled firmware in simavr, and must pass on both with the
same trips; ``[board] kind`` and ``hydrotherm scenario run --board`` choose the board."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sim.firmware import FirmwareBuild
from sim.scenario import ScenarioError, load_scenario, parse_scenario, run_scenario
from tests.test_firmware import hydrotherm_exe
from tests.test_scenarios import SCENARIOS, SHORT

pytest_plugins = ["tests.firmware_fixtures"]

#: Shipped scenarios that act on the board itself (a broken sensor, a silent line, a
#: reboot), and the plate sensor the board reads (``leak_burst_plate``: the host's
#: ``plate_dry`` on the firmware's plate counts): what can differ between the two boards.
#: Each takes 20-45 s of wall time on the firmware.
ON_BOTH = ["sensor_open", "serial_silence", "board_reset", "leak_burst_plate"]


@pytest.mark.parametrize("name", ON_BOTH)
def test_shipped_scenario_passes_on_both_boards(name: str,
                                                firmware_build: FirmwareBuild) -> None:
    sc = load_scenario(SCENARIOS / f"{name}.toml")
    results = {kind: run_scenario(sc, board=kind, firmware=str(firmware_build.elf))
               if kind == "firmware" else run_scenario(sc, board=kind)
               for kind in ("python", "firmware")}
    for kind, res in results.items():
        assert res.board == kind
        assert res.passed, f"{kind} board:\n" + "\n".join(res.summary())
        assert res.max_water_c <= 41.0
    py, fw = results["python"], results["firmware"]
    assert [(t.reason, t.cushion) for t in py.trips] == [(t.reason, t.cushion)
                                                         for t in fw.trips]
    # the same trip at about the same time: within a second (the dead-man and the line
    # are timed by the MCU's millisecond tick on one board, by the emulator's samples on
    # the other; both within the protocol's bounds)
    for a, b in zip(py.trips, fw.trips, strict=True):
        assert abs(a.at_s - b.at_s) <= 1.0, (a, b)


def test_board_kind_in_the_file() -> None:
    sc = parse_scenario(SHORT + '\n[board]\nkind = "firmware"\ndeadman_s = 2.5\n')
    assert sc.board_kind == "firmware"
    assert sc.config.board.deadman_s == 2.5  # the rest of [board] is configuration
    assert parse_scenario(SHORT).board_kind == "python"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(SHORT + '\n[board]\nkind = "arduino"\n')
    assert err.value.key == "board.kind" and err.value.line == 23
    assert "python, firmware" in err.value.problem


def test_cli_board_flag_runs_the_firmware(tmp_path: Path,
                                          firmware_build: FirmwareBuild) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT)
    out = tmp_path / "res.json"
    proc = subprocess.run([hydrotherm_exe(), "scenario", "run", str(path), "--board",
                           "firmware", "--quiet", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "firmware board" in proc.stdout.splitlines()[0]
    res = json.loads(out.read_text())
    assert res["board"] == "firmware" and res["passed"]
    assert [t["reason"] for t in res["trips"]] == ["sensor_open"]


def test_cli_board_flag_mistakes(tmp_path: Path) -> None:
    path = tmp_path / "short.toml"
    path.write_text(SHORT)
    proc = subprocess.run([hydrotherm_exe(), "scenario", "run", str(path), "--board",
                           "python", "--firmware", str(tmp_path / "x.elf")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --firmware") and len(proc.stderr.splitlines()) == 1
    proc = subprocess.run([hydrotherm_exe(), "scenario", "run", str(path), "--firmware",
                           str(tmp_path / "none.elf")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "no firmware at" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([hydrotherm_exe(), "scenario", "run", str(path), "--board",
                           "arduino"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
