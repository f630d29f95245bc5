"""A real Home Assistant for the discovery tests: installed into its own venv, started on a
free loopback port with a minimal configuration, onboarded and connected to a broker over
its REST API.

Why a separate venv: Home Assistant 2024.3.3 (the newest release for Python 3.11) pins
hundreds of packages (among them an older paho-mqtt than the project's); in the project's
own venv it would fight the project's dependencies.  A plain ``pip install`` of it
backtracks for many minutes, so the install uses the constraints file the release ships
inside its own wheel (``homeassistant/package_constraints.txt``) plus ``josepy<2`` (josepy
2 breaks every HTTP request of that release).  The venv lives in ``.cache/ha-venv`` of the
project (git-ignored) and is reused while its marker file names the same version.

``python -m tests.ha_harness`` installs it (if needed) and prints how long that took;
``tests/test_home_assistant.py`` uses ``ensure_installed()`` and ``HomeAssistant``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

HA_VERSION = "2024.3.3"
ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("HYDROTHERM_HA_VENV", ROOT / ".cache" / "ha-venv"))
MARKER = VENV / "hydrotherm-ha-version"
HOST = "127.0.0.1"


class HaUnavailable(RuntimeError):
    """Home Assistant could not be installed or started; the message says why."""


# --- installing ------------------------------------------------------------------------------

def ha_python() -> Path:
    return VENV / "bin" / "python"


def installed() -> bool:
    return MARKER.exists() and MARKER.read_text().strip() == HA_VERSION \
        and ha_python().exists()


def _run(cmd: list[str], timeout_s: float, log: list[str]) -> None:
    log.append("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    log.append(proc.stdout[-4000:] + proc.stderr[-4000:])
    if proc.returncode != 0:
        raise HaUnavailable(f"`{' '.join(cmd[:4])} ...` failed ({proc.returncode}):\n"
                            f"{proc.stderr[-3000:]}")


def ensure_installed(timeout_s: float = 800.0) -> float:
    """Install Home Assistant into ``VENV`` unless it is there already; returns the
    seconds the install took (0 when it was reused).  Raises ``HaUnavailable``."""
    if installed():
        return 0.0
    t0 = time.monotonic()
    log: list[str] = []
    if VENV.exists():
        shutil.rmtree(VENV)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    wheels = VENV.parent / "ha-wheel"
    try:
        _run([sys.executable, "-m", "venv", str(VENV)], 120, log)
        pip = [str(ha_python()), "-m", "pip", "--disable-pip-version-check", "-q"]
        _run([*pip, "install", "--upgrade", "pip"], 300, log)
        shutil.rmtree(wheels, ignore_errors=True)
        _run([*pip, "download", "--no-deps", "-d", str(wheels),
              f"homeassistant=={HA_VERSION}"], 300, log)
        wheel = next(wheels.glob("homeassistant-*.whl"))
        constraints = wheels / "package_constraints.txt"
        with zipfile.ZipFile(wheel) as z:
            constraints.write_bytes(z.read("homeassistant/package_constraints.txt"))
        left = max(60.0, timeout_s - (time.monotonic() - t0))
        _run([*pip, "install", "-c", str(constraints), str(wheel), "josepy<2",
              # what the MQTT integration would pip-install at its first start
              "paho-mqtt==1.6.1"], left, log)
    except (subprocess.TimeoutExpired, StopIteration, KeyError, OSError) as exc:
        raise HaUnavailable(f"installing homeassistant=={HA_VERSION} failed: {exc!r}\n"
                            + "\n".join(log)[-3000:]) from None
    MARKER.write_text(HA_VERSION + "\n")
    return time.monotonic() - t0


# --- running ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


CONFIG = """\
homeassistant:
  name: Hydrotherm test
  latitude: 52.0
  longitude: 5.0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  country: NL
http:
  server_host: {host}
  server_port: {port}
api:
onboarding:
config:
logger:
  default: warning
"""


class HomeAssistant:
    """One Home Assistant process with a fresh configuration directory."""

    def __init__(self, config_dir: Path) -> None:
        self.dir = Path(config_dir)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.log_path = self.dir / "home-assistant.log"

    # --- process ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 300.0) -> HomeAssistant:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "configuration.yaml").write_text(CONFIG.format(host=HOST, port=self.port))
        out = open(self.dir / "stdout.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(ha_python()), "-m", "homeassistant", "--config", str(self.dir),
             "--log-file", str(self.log_path)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._out = out
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise HaUnavailable(f"Home Assistant exited with {self.proc.returncode}:\n"
                                    f"{self.output()[-3000:]}")
            try:
                status, _ = self.request("GET", "/api/onboarding", auth=False, timeout_s=2)
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise HaUnavailable(f"Home Assistant did not answer on {self.url} within "
                            f"{timeout_s:.0f} s:\n{self.output()[-3000:]}")

    def stop(self, timeout_s: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        out = getattr(self, "_out", None)
        if out is not None:
            out.close()

    def output(self) -> str:
        text = ""
        for p in (self.dir / "stdout.log", self.log_path):
            try:
                text += p.read_text(errors="replace")
            except OSError:
                pass
        return text

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    # --- HTTP ------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, auth: bool = True,
                form: dict[str, str] | None = None, timeout_s: float = 30.0
                ) -> tuple[int, Any]:
        headers = {}
        data = None
        if form is not None:
            data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            status = exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def onboard(self, user: str = "tester", password: str = "hydrotherm test 1") -> None:
        """Create the owner over the onboarding API and exchange its code for a token
        (enough for the REST API)."""
        client_id = self.url + "/"
        status, body = self.request("POST", "/api/onboarding/users", auth=False, body={
            "client_id": client_id, "name": "Tester", "username": user,
            "password": password, "language": "en"})
        if status != 200:
            raise HaUnavailable(f"onboarding failed: {status} {body}")
        status, tok = self.request("POST", "/auth/token", auth=False, form={
            "grant_type": "authorization_code", "code": body["auth_code"],
            "client_id": client_id})
        if status != 200:
            raise HaUnavailable(f"token exchange failed: {status} {tok}")
        self.token = tok["access_token"]
        # The later onboarding steps (core_config, analytics) would set up integrations
        # that reach the internet (a weather service, text-to-speech): not needed here.

    def add_mqtt(self, host: str, port: int, username: str | None = None,
                 password: str | None = None) -> dict[str, Any]:
        """The MQTT integration as a config entry, through its config flow (logged in as
        ``username``: the project's ``homeassistant`` account on a secured broker)."""
        status, flow = self.request("POST", "/api/config/config_entries/flow",
                                    body={"handler": "mqtt", "show_advanced_options": False})
        if status != 200:
            raise HaUnavailable(f"MQTT config flow did not start: {status} {flow}")
        status, res = self.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                                   body={"broker": host, "port": port,
                                         **({"username": username, "password": password}
                                            if username else {})},
                                   timeout_s=120)
        if status != 200 or res.get("type") != "create_entry":
            raise HaUnavailable(f"MQTT config flow failed: {status} {res}")
        return res

    def states(self) -> dict[str, dict[str, Any]]:
        status, body = self.request("GET", "/api/states")
        if status != 200:
            raise HaUnavailable(f"GET /api/states: {status} {body}")
        return {s["entity_id"]: s for s in body}

    def call(self, domain: str, service: str, data: dict[str, Any]) -> tuple[int, Any]:
        return self.request("POST", f"/api/services/{domain}/{service}", body=data)


def main() -> int:
    t0 = time.monotonic()
    try:
        took = ensure_installed()
    except HaUnavailable as exc:
        print(f"Home Assistant install failed: {exc}", file=sys.stderr)
        return 1
    if took:
        print(f"installed homeassistant=={HA_VERSION} into {VENV} in {took:.0f} s")
    else:
        print(f"homeassistant=={HA_VERSION} already in {VENV} "
              f"(checked in {time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
