"""Home Assistant MQTT discovery for one table (keys as in HA's MQTT integration docs).

Per cushion: a climate entity (current and target temperature, heat/off), a problem
binary sensor for trips, and sensors for the output and the warm-up estimate.  The
climate and the sensors are available only while the controller is online *and* its board
link is healthy (``availability_mode: all``), so Home Assistant shows "unavailable"
instead of a stale number; the problem sensor needs only the controller online.
"""

from __future__ import annotations

from typing import Any

from hydrotherm.config import CUSHIONS, ControlConfig, MqttConfig

from .topics import OFFLINE, ONLINE, Topics


def _device(cfg: MqttConfig, firmware: str | None) -> dict[str, Any]:
    dev: dict[str, Any] = {"identifiers": [f"hydrotherm_{cfg.table_id}"],
                           "name": f"Hydrotherm {cfg.table_id}",
                           "manufacturer": "Hydrotherm open-source project",
                           "model": "heated water-cushion table"}
    if firmware:
        dev["sw_version"] = firmware
    return dev


def discovery_messages(cfg: MqttConfig, control: ControlConfig,
                       firmware: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, payload) for every entity of this table."""
    t = Topics(cfg.prefix, cfg.table_id)
    node = f"hydrotherm_{cfg.table_id}"
    device = _device(cfg, firmware)
    both = {"availability": [{"topic": t.status, "payload_available": ONLINE,
                              "payload_not_available": OFFLINE},
                             {"topic": t.readings, "payload_available": ONLINE,
                              "payload_not_available": OFFLINE}],
            "availability_mode": "all"}
    controller_only = {"availability_topic": t.status, "payload_available": ONLINE,
                       "payload_not_available": OFFLINE}
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(CUSHIONS):
        name = ("upper body", "lower body")[i] if CUSHIONS == 2 else f"cushion {i}"
        uid = f"{node}_c{i}"
        out.append((f"{cfg.discovery_prefix}/climate/{node}/cushion{i}/config", {
            "name": f"Cushion {i} ({name})",
            "unique_id": f"{uid}_climate",
            "current_temperature_topic": t.value(i, "water_c"),
            "temperature_state_topic": t.value(i, "setpoint_c"),
            "temperature_command_topic": t.value_set(i, "setpoint_c"),
            "mode_state_topic": t.value(i, "mode"),
            "mode_command_topic": t.value_set(i, "mode"),
            "action_topic": t.value(i, "action"),
            "modes": ["heat", "off"],
            "min_temp": control.setpoint_min_c,
            "max_temp": control.setpoint_max_c,
            "temp_step": 0.5,
            "precision": 0.1,
            "temperature_unit": "C",
            "device": device,
            **both,
        }))
        out.append((f"{cfg.discovery_prefix}/binary_sensor/{node}/cushion{i}_trip/config", {
            "name": f"Cushion {i} safety trip",
            "unique_id": f"{uid}_trip",
            "state_topic": t.value(i, "problem"),
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "problem",
            "device": device,
            **controller_only,
        }))
        out.append((f"{cfg.discovery_prefix}/sensor/{node}/cushion{i}_output/config", {
            "name": f"Cushion {i} heater output",
            "unique_id": f"{uid}_output",
            "state_topic": t.value(i, "output_pct"),
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "device": device,
            **both,
        }))
        out.append((f"{cfg.discovery_prefix}/sensor/{node}/cushion{i}_ready/config", {
            "name": f"Cushion {i} ready in",
            "unique_id": f"{uid}_ready",
            "state_topic": t.value(i, "ready_in_min"),
            "unit_of_measurement": "min",
            "device_class": "duration",
            "device": device,
            **both,
        }))
    return out
