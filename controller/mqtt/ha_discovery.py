"""Home Assistant MQTT discovery for one table (keys as in HA's MQTT integration docs).

Per cushion: a climate entity (current and target temperature, heat/off, and
``hvac_action`` from the derived heat state: ``off`` while blocked), a water-temperature
sensor (long-term statistics), sensors for the output and the warm-up estimate, the heat
state and the trip reason as enum sensors, a problem binary sensor for trips, and a reset
button.  Per table: the last refused command.

Availability carries "unavailable", never a value: the climate and the numeric sensors
need the controller online *and* its board link healthy (``availability_mode: all``);
the heat state, trip and refusal entities need only the controller online (a cushion
blocked by a lost link must still say so); the reset button is available only while a
trip a therapist may reset is latched (``cushion/<i>/reset_allowed``).
"""

from __future__ import annotations

from typing import Any

from controller.heat_state import STATES
from controller.supervisor import REACTIONS
from hydrotherm import __version__
from hydrotherm.config import CUSHIONS, ControlConfig, MqttConfig

from .topics import OFFLINE, ONLINE, Topics

#: the trip-reason sensor's values
TRIP_OPTIONS = ["none", *REACTIONS]


def _device(cfg: MqttConfig, firmware: str | None) -> dict[str, Any]:
    dev: dict[str, Any] = {"identifiers": [f"hydrotherm_{cfg.table_id}"],
                           "name": f"Hydrotherm {cfg.table_id}",
                           "manufacturer": "Hydrotherm open-source project",
                           "model": "heated water-cushion table",
                           "sw_version": __version__}
    if firmware:
        dev["hw_version"] = f"board firmware {firmware}"
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
            "temp_step": control.setpoint_step_c,
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
        out.append((f"{cfg.discovery_prefix}/sensor/{node}/cushion{i}_water/config", {
            "name": f"Cushion {i} water temperature",
            "unique_id": f"{uid}_water",
            "state_topic": t.value(i, "water_c"),
            "unit_of_measurement": "°C",
            "device_class": "temperature",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "device": device,
            **both,
        }))
        out.append((f"{cfg.discovery_prefix}/sensor/{node}/cushion{i}_heat_state/config", {
            "name": f"Cushion {i} heat state",
            "unique_id": f"{uid}_heat_state",
            "state_topic": t.value(i, "heat_state"),
            "json_attributes_topic": t.value(i, "heat_state_detail"),
            "device_class": "enum",
            "options": list(STATES),
            "device": device,
            **controller_only,
        }))
        out.append((f"{cfg.discovery_prefix}/sensor/{node}/cushion{i}_trip_reason/config", {
            "name": f"Cushion {i} trip reason",
            "unique_id": f"{uid}_trip_reason",
            "state_topic": t.value(i, "trip_reason"),
            "device_class": "enum",
            "options": TRIP_OPTIONS,
            "device": device,
            **controller_only,
        }))
        out.append((f"{cfg.discovery_prefix}/button/{node}/cushion{i}_reset/config", {
            "name": f"Cushion {i} reset trip",
            "unique_id": f"{uid}_reset",
            "command_topic": t.value_set(i, "reset"),
            "payload_press": "PRESS",
            "device": device,
            "availability": [{"topic": t.status, "payload_available": ONLINE,
                              "payload_not_available": OFFLINE},
                             {"topic": t.value(i, "reset_allowed"), "payload_available": "ON",
                              "payload_not_available": "OFF"}],
            "availability_mode": "all",
        }))
    out.append((f"{cfg.discovery_prefix}/sensor/{node}/last_refusal/config", {
        "name": "Last refused command",
        "unique_id": f"{node}_last_refusal",
        "state_topic": t.refusal,
        "value_template": "{{ value_json.error }}",
        "json_attributes_topic": t.refusal,
        "device": device,
        **controller_only,
    }))
    return out
