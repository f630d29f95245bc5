"""Against a real Home Assistant (2024.3.3, the newest for Python 3.11), over MQTT discovery.

Debian's Mosquitto on loopback, a simulated table on a pty with the real controller and
MQTT bridge, and Home Assistant in its own venv (``tests/ha_harness.py``: installed on
first use, about a minute with pip's cache) on a free loopback port: onboarded over its
REST API, the MQTT broker added through the config flow.  Then, as a person with Home
Assistant would see it: the entities and their states, a ``climate.set_temperature``
round trip, an out-of-range setpoint refused by the table and shown in Home Assistant, a
blocked cushion (``hvac_action`` off, heat state ``blocked``, trip reason, the reset
button offered and refused while the cause persists), a pulled cable (unavailable, not a
number) — and no ERROR in Home Assistant's log about any payload.

Runs in the normal test run.  Without network access for the install it skips, naming
the reason; with ``CI=true`` it fails.  ``HYDROTHERM_HA=0`` skips it on purpose.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.mqtt.accounts import HOMEASSISTANT
from tests.ha_harness import HaUnavailable, HomeAssistant, ensure_installed
from tests.mqtt_fixtures import Mosquitto, Table, short_tmpdir, wait_for

pytest_plugins = ["tests.mqtt_fixtures"]

pytestmark = pytest.mark.timeout(900)


def _unavailable(msg: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def ha_installed() -> float:
    if os.environ.get("HYDROTHERM_HA") == "0":
        pytest.skip("HYDROTHERM_HA=0: the Home Assistant check is switched off")
    try:
        return ensure_installed()
    except HaUnavailable as exc:
        _unavailable(f"Home Assistant could not be installed: {exc}")
    raise AssertionError("unreachable")


@pytest.fixture
def home_assistant(ha_installed: float) -> Iterator[HomeAssistant]:
    d = short_tmpdir()
    ha = HomeAssistant(d / "config")
    try:
        try:
            ha.start()
            ha.onboard()
        except HaUnavailable as exc:
            _unavailable(str(exc))
        yield ha
    finally:
        ha.stop()
        keep = Path(__file__).resolve().parent.parent / "artifacts" / "home-assistant.log"
        keep.parent.mkdir(parents=True, exist_ok=True)
        if ha.log_path.exists():
            shutil.copyfile(ha.log_path, keep)
        shutil.rmtree(d, ignore_errors=True)


def entity(states: dict[str, dict[str, Any]], domain: str, name: str) -> dict[str, Any] | None:
    """The entity of ``domain`` whose friendly name ends with ``name``."""
    for eid, s in states.items():
        if eid.startswith(domain + ".") and \
                s["attributes"].get("friendly_name", "").endswith(name):
            return s
    return None


class View:
    """Polls Home Assistant's states until a condition on them holds."""

    def __init__(self, ha: HomeAssistant) -> None:
        self.ha = ha
        self.states: dict[str, dict[str, Any]] = {}

    def get(self, domain: str, name: str) -> dict[str, Any]:
        s = entity(self.states, domain, name)
        assert s is not None, f"no {domain} entity named ...{name}: {sorted(self.states)}"
        return s

    def until(self, cond: Callable[[View], bool], timeout_s: float = 20.0, what: str = ""
              ) -> None:
        end = time.monotonic() + timeout_s
        last: Exception | None = None
        while True:
            self.states = self.ha.states()
            try:
                if cond(self):
                    return
            except AssertionError as exc:
                last = exc
            if time.monotonic() > end:
                raise AssertionError(f"Home Assistant never showed {what}: {last}; states: "
                                     f"{ {k: v['state'] for k, v in self.states.items()} }")
            time.sleep(0.5)


def test_home_assistant_shows_the_table_truthfully(
        home_assistant: HomeAssistant, mosquitto: Mosquitto,
        table_factory: Callable[..., Table]) -> None:
    ha = home_assistant
    table = table_factory(mosquitto.url)
    ha.add_mqtt(mosquitto.host, mosquitto.port, HOMEASSISTANT,
                mosquitto.store.password(HOMEASSISTANT) if mosquitto.store else None)
    v = View(ha)

    # 1. every entity, with the right states
    def ready(v: View) -> bool:
        c0 = v.get("climate", "Cushion 0 (upper body)")
        v.get("climate", "Cushion 1 (lower body)")
        hs = v.get("sensor", "Cushion 0 heat state")
        return c0["state"] == "heat" and c0["attributes"].get("current_temperature") \
            is not None and hs["state"] in ("heating", "ready", "holding")
    v.until(ready, 60, "the table's entities")
    c0 = v.get("climate", "Cushion 0 (upper body)")
    c1 = v.get("climate", "Cushion 1 (lower body)")
    assert c1["state"] == "off" and c1["attributes"]["hvac_action"] == "off"
    a = c0["attributes"]
    assert (a["min_temp"], a["max_temp"], a["target_temp_step"]) == (30, 40, 0.1)
    assert a["temperature"] == 37.0 and a["hvac_action"] in ("heating", "idle")
    assert abs(a["current_temperature"] - 36.0) < 2.0
    for i in (0, 1):
        w = v.get("sensor", f"Cushion {i} water temperature")
        assert 30 < float(w["state"]) < 40
        assert w["attributes"]["device_class"] == "temperature"
        assert w["attributes"]["state_class"] == "measurement"
        assert w["attributes"]["unit_of_measurement"] == "°C"
        assert v.get("sensor", f"Cushion {i} trip reason")["state"] == "none"
        assert v.get("binary_sensor", f"Cushion {i} safety trip")["state"] == "off"
        assert v.get("button", f"Cushion {i} reset trip")["state"] == "unavailable", \
            "no reset offered without a trip"
    assert v.get("sensor", "Cushion 1 heat state")["state"] == "off"
    assert v.get("sensor", "Cushion 1 ready in")["state"] == "unknown"

    # 2. climate.set_temperature round trip
    status, body = ha.call("climate", "set_temperature",
                           {"entity_id": c0["entity_id"], "temperature": 38.4})
    assert status == 200, body
    assert wait_for(lambda: table.controller.cushions[0].setpoint_c == 38.4, 10)
    v.until(lambda v: v.get("climate", "Cushion 0 (upper body)")["attributes"]
            ["temperature"] == 38.4, 10, "the new target temperature")
    assert table.events("setpoint")[-1].actor == "mqtt:homeassistant"

    # 3. out of range: Home Assistant 2024.3 sends it; the table refuses; HA shows why
    ha.call("climate", "set_temperature", {"entity_id": c0["entity_id"], "temperature": 45})
    v.until(lambda v: "outside" in v.get("sensor", "Last refused command")["state"], 10,
            "the refused setpoint")
    assert table.controller.cushions[0].setpoint_c == 38.4
    refusal = v.get("sensor", "Last refused command")
    assert refusal["attributes"]["actor"] == "mqtt:homeassistant"
    assert v.get("climate", "Cushion 0 (upper body)")["attributes"]["temperature"] == 38.4

    # 4. a sensor breaks: blocked, hvac_action off (never idle), reset button offered
    assert table.fault("sensor_open", cushion=0, sensor="primary")["ok"]

    def blocked(v: View) -> bool:
        return (v.get("sensor", "Cushion 0 heat state")["state"] == "blocked"
                and v.get("climate", "Cushion 0 (upper body)")["attributes"]["hvac_action"]
                == "off"
                and v.get("sensor", "Cushion 0 trip reason")["state"] == "sensor_open"
                and v.get("button", "Cushion 0 reset trip")["state"] != "unavailable")
    v.until(blocked, 15, "the blocked cushion")
    hs = v.get("sensor", "Cushion 0 heat state")
    assert hs["attributes"]["blocked_by"] == ["tripped: sensor_open"]
    assert hs["attributes"]["text"].startswith("Cannot heat:")
    assert v.get("binary_sensor", "Cushion 0 safety trip")["state"] == "on"
    assert v.get("sensor", "Cushion 0 ready in")["state"] == "unknown"
    # pressed while the sensor is still open: refused, and Home Assistant shows it
    button = v.get("button", "Cushion 0 reset trip")["entity_id"]
    status, body = ha.call("button", "press", {"entity_id": button})
    assert status == 200, body
    v.until(lambda v: "sensor_open" in v.get("sensor", "Last refused command")["state"], 10,
            "the refused reset")
    # the cause gone: the button clears the trip and disappears again
    assert table.fault("sensor_open", cushion=0, sensor="primary", clear=True)["ok"]
    for _ in range(6):
        ha.call("button", "press", {"entity_id": button})
        if wait_for(lambda: not table.controller.supervisor.trips, 3):
            break
    assert not table.controller.supervisor.trips, "reset from Home Assistant never accepted"
    assert table.events("trip_reset")[-1].actor == "mqtt:homeassistant"
    v.until(lambda v: v.get("button", "Cushion 0 reset trip")["state"] == "unavailable"
            and v.get("sensor", "Cushion 0 heat state")["state"] != "blocked", 15,
            "the cleared trip")

    # 5. the cable is pulled: unavailable, never a number or a parse error
    assert table.fault("unplug")["ok"]
    v.until(lambda v: v.get("climate", "Cushion 0 (upper body)")["state"] == "unavailable"
            and v.get("sensor", "Cushion 0 water temperature")["state"] == "unavailable"
            and v.get("sensor", "Cushion 0 heat state")["state"] == "blocked", 20,
            "the pulled cable")
    assert "link down" in v.get("sensor", "Cushion 0 heat state")["attributes"]["blocked_by"]
    assert table.fault("unplug", clear=True)["ok"]
    v.until(lambda v: v.get("climate", "Cushion 0 (upper body)")["state"] == "heat", 30,
            "the readings coming back")

    # 6. nothing Home Assistant received made it log an error (nor anything else: the
    #    minimal configuration has nothing that could fail on its own)
    time.sleep(1.0)
    errors = [ln for ln in ha.log_lines() if " ERROR " in ln]
    assert errors == [], "\n".join(errors)
    assert not [ln for ln in ha.log_lines() if "Invalid" in ln and "mqtt" in ln]
