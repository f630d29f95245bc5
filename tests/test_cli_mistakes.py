"""A person's mistakes at the command line: one line naming the problem, exit status 2.

Run on the installed console script in real processes, with real files, directories and
(missing) ports.  An unwritable directory is made with chmod; as root, whom permissions do
not stop, the command runs without the two capabilities that let root ignore them
(``setpriv``), so that chmod binds it too.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("hydrotherm") or str(Path(sys.executable).parent / "hydrotherm")
#: Root ignores file permissions through two capabilities; without them chmod binds root too.
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def run(*args: str, obey_permissions: bool = False,
        timeout: float = 30) -> subprocess.CompletedProcess:
    cmd = [EXE, *args]
    if obey_permissions and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("setpriv (util-linux) is needed to test permissions as root")
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        cmd = NO_DAC + cmd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HYDROTHERM_CONFIG": ""})


def one_line_refusal(res: subprocess.CompletedProcess) -> str:
    """The command failed with status 2 and exactly one line on stderr, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr and "Error:" not in res.stderr.split(": ", 1)[0]
    assert lines[0].startswith("hydrotherm: ")
    return lines[0]


def test_config_that_is_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "latin1.toml"
    f.write_bytes("# température de l'eau\n[plant]\nroom_c = 20.0\n".encode("latin-1"))
    line = one_line_refusal(run("--config", str(f), "config", "show"))
    assert str(f) in line and "UTF-8" in line and "0xe9" in line


def test_config_that_is_utf16(tmp_path: Path) -> None:
    f = tmp_path / "utf16.toml"
    f.write_text("[plant]\nroom_c = 20.0\n", encoding="utf-16")
    assert "UTF-8" in one_line_refusal(run("--config", str(f), "config", "show"))


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    line = one_line_refusal(run("--config", str(tmp_path), "config", "show"))
    assert str(tmp_path) in line and "is a directory" in line


def test_config_from_environment_that_is_a_directory(tmp_path: Path) -> None:
    res = subprocess.run([EXE, "config", "show"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "HYDROTHERM_CONFIG": str(tmp_path)})
    assert "is a directory" in one_line_refusal(res)


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "data"
    f.write_text("not a directory")
    line = one_line_refusal(run("run", "--port", "/dev/null", "--no-mqtt", "--data-dir",
                                str(f), "--duration", "1"))
    assert str(f) in line and "not a directory" in line


def test_data_dir_below_a_file(tmp_path: Path) -> None:
    f = tmp_path / "data"
    f.write_text("not a directory")
    line = one_line_refusal(run("run", "--port", "/dev/null", "--no-mqtt", "--data-dir",
                                str(f / "log"), "--duration", "1"))
    assert "cannot create the data directory" in line and str(f / "log") in line


def test_data_dir_that_cannot_be_written(tmp_path: Path) -> None:
    data = tmp_path / "readonly"
    data.mkdir()
    data.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP
               | stat.S_IROTH | stat.S_IXOTH)
    res = run("run", "--port", "/dev/null", "--no-mqtt", "--data-dir", str(data),
              "--duration", "1", obey_permissions=True)
    line = one_line_refusal(res)
    assert str(data) in line and "not writable" in line
    assert list(data.iterdir()) == []  # the probe file did not stay behind


def test_data_dir_whose_event_log_is_read_only(tmp_path: Path) -> None:
    """The directory is writable but the log file in it is not: SQLite's refusal is
    turned into one sentence naming the file."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "events.sqlite3"
    from controller.eventlog import EventLog

    EventLog(db).close()
    db.chmod(0o444)
    res = run("run", "--port", "/dev/null", "--no-mqtt", "--data-dir", str(data),
              "--duration", "1", obey_permissions=True)
    line = one_line_refusal(res)
    assert str(db) in line


def test_run_on_a_serial_port_that_does_not_exist(tmp_path: Path) -> None:
    port = "/dev/ttyUSB-hydrotherm-missing"
    res = run("run", "--port", port, "--no-mqtt", "--data-dir", str(tmp_path),
              "--duration", "2")
    line = one_line_refusal(res)
    assert f"there is no serial port {port}" in line
    assert "{" not in res.stdout  # no raw event dictionaries


def test_run_on_a_port_that_is_a_directory(tmp_path: Path) -> None:
    line = one_line_refusal(run("run", "--port", str(tmp_path), "--no-mqtt", "--data-dir",
                                str(tmp_path / "data"), "--duration", "2"))
    assert "is a directory, not a serial port" in line


def test_run_on_a_socket_nobody_listens_on(tmp_path: Path) -> None:
    with socket.socket() as s:  # a free loopback port, closed again: connection refused
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    line = one_line_refusal(run("run", "--port", f"socket://127.0.0.1:{free}", "--no-mqtt",
                                "--data-dir", str(tmp_path), "--duration", "2"))
    assert f"socket://127.0.0.1:{free}" in line and "refused" in line.lower()


def test_demo_with_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "data"
    f.write_text("not a directory")
    line = one_line_refusal(run("demo", "--data-dir", str(f), "--duration", "1",
                                "--broker-port", "0", "--dashboard-port", "0",
                                "--dir", str(tmp_path / "pty"), timeout=60))
    assert "cannot create the data directory" in line and str(f) in line


def test_a_retired_key_loads_with_one_warning_line_and_is_not_written_back(
        tmp_path: Path) -> None:
    """An old clinic configuration still carrying an identification-mode key must not stop
    the table: it loads, stderr says the key has no effect, and `config show` (what a
    person would save as the new file) no longer has it."""
    f = tmp_path / "old.toml"
    f.write_text("[safety]\nidentification_rate_scale = 2.0\nstale_telemetry_s = 1.5\n")
    res = run("--config", str(f), "config", "show")
    assert res.returncode == 0, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "safety.identification_rate_scale" in lines[0] and "no effect" in lines[0]
    assert "identification_rate_scale" not in res.stdout
    assert "stale_telemetry_s = 1.5" in res.stdout


def test_a_misspelt_key_is_still_refused(tmp_path: Path) -> None:
    """Retiring keys must not turn the unknown-key check into a warning."""
    f = tmp_path / "typo.toml"
    f.write_text("[safety]\nidentification_rate_scal = 2.0\n")
    line = one_line_refusal(run("--config", str(f), "config", "show"))
    assert "safety.identification_rate_scal" in line and "unknown key" in line
