"""The one configuration: every number from ``shared/reference.md`` as a checked value.

A TOML file overrides any default.  Loading refuses, before anything starts, an unknown
key, a value of the wrong type, and a value outside its allowed range, with a message
that names the key (``plant.heater_w``).  Limits that protect the client (setpoint
ceiling 40.0 °C, trip at 41.0 °C, board limit 42.0 °C) can be lowered by configuration
but never raised: the ceilings are ``HARD_*`` constants below, with their reasons.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .true_plant import TruePlantConfig
from .true_plant import parse as parse_true_plant

#: IEC 60601-1: an applied part may not exceed 41 °C; UL 1563 caps hot tubs at 40 °C.
HARD_SETPOINT_CEILING_C = 40.0
HARD_OVER_TEMPERATURE_C = 41.0
HARD_BOARD_LIMIT_C = 42.0
#: The board's plate limit (protocol 1.1) may be lowered, never raised: 60 °C is 3 K above
#: the hottest healthy plate (40 °C water, 360 W into 21 W/K; docs/protocol.md 9.7).
HARD_PLATE_LIMIT_C = 60.0
CUSHIONS = 2


class ConfigError(ValueError):
    """A configuration value was refused; the message names the key."""


class RetiredKeyWarning(UserWarning):
    """A configuration key that no longer has an effect was found (and ignored)."""


def _f(default: Any, lo: float | None = None, hi: float | None = None, doc: str = "",
       lo_open: bool = False) -> Any:
    """A field with its allowed range and a one-line explanation."""
    meta = {"lo": lo, "hi": hi, "doc": doc, "lo_open": lo_open}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class PlantConfig:
    """The two cushions as physics (reference.md, 'The table')."""

    water_kg: float = _f(25.0, 0.0, 200.0, "water per cushion", lo_open=True)
    water_specific_heat_j_per_kg_k: float = _f(4186.0, 1.0, 10000.0, "specific heat of water")
    heater_w: float = _f(300.0, 0.0, 2000.0, "heater power per cushion")
    plate_heat_capacity_j_per_k: float = _f(2000.0, 1.0, 100000.0, "heater plate heat capacity")
    plate_to_water_w_per_k: float = _f(30.0, 0.1, 1000.0, "plate-to-water conductance")
    loss_to_room_w_per_k: float = _f(3.5, 0.0, 100.0, "water-to-room loss, covered")
    coupling_w_per_k: float = _f(1.0, 0.0, 100.0, "conductance between the two cushions")
    room_c: float = _f(21.0, -10.0, 45.0, "room temperature")
    initial_water_c: list[float] = _f([20.0, 20.0], 0.0, 60.0, "water temperature at start")
    client_w_per_k: float = _f(6.0, 0.0, 50.0, "client-to-water conductance per cushion")
    client_neutral_c: float = _f(35.5, 20.0, 45.0, "water a client neither warms nor cools")
    cutout_open_c: float = _f(55.0, 40.0, 120.0, "bimetal cut-out opens (plate temperature)")
    cutout_close_c: float = _f(45.0, 20.0, 120.0, "bimetal cut-out recloses (plate temperature)")
    wetted_below_kg: float = _f(
        8.0, 0.0, 200.0, "below this much water the plate is no longer all wetted (sim)")
    dry_plate_w_per_k: float = _f(
        1.5, 0.0, 1000.0, "a dry plate's conductance to the empty bag (sim)")


@dataclass
class SensorConfig:
    """NTC thermistors in a divider, read by a 12-bit ADC (reference.md, 'The heater board')."""

    nominal_ohm: float = _f(10000.0, 1.0, 1e7, "NTC resistance at nominal_c", lo_open=True)
    nominal_c: float = _f(25.0, -50.0, 150.0, "temperature of nominal_ohm")
    beta_k: float = _f(3950.0, 100.0, 20000.0, "Beta constant")
    series_ohm: float = _f(10000.0, 1.0, 1e7, "divider resistor between Vref and the ADC node")
    adc_bits: int = _f(12, 8, 16, "ADC resolution")
    lag_s: float = _f(10.0, 0.0, 600.0, "first-order lag of a sensor in water")
    plate_lag_s: float = _f(2.0, 0.0, 600.0, "first-order lag of a plate sensor (protocol 1.1)")
    room_lag_s: float = _f(60.0, 0.0, 3600.0, "first-order lag of the room sensor (1.1)")
    noise_c: float = _f(0.03, 0.0, 5.0, "sensor noise, rms")
    rail_fraction: float = _f(0.01, 0.0, 0.2, "counts this close to a rail mean open/short")
    valid_min_c: float = _f(0.0, -50.0, 100.0, "readings below are a broken (open) sensor")
    valid_max_c: float = _f(60.0, 0.0, 150.0, "readings above are a broken (shorted) sensor")


@dataclass
class BoardConfig:
    """The heater board's own behaviour, emulated by ``sim`` and relied on by the host."""

    window_s: float = _f(2.0, 0.1, 60.0, "time-proportioning window of the SSRs")
    telemetry_period_s: float = _f(0.2, 0.01, 0.25, "telemetry period (at least 4 Hz)")
    deadman_s: float = _f(3.0, 0.5, 3.0, "a heater setting holds at most this long")
    limit_c: float = _f(42.0, 30.0, HARD_BOARD_LIMIT_C, "board forces a channel off above this")
    limit_samples: int = _f(4, 1, 100, "consecutive samples before the board limit acts")
    plate_limit_c: float = _f(60.0, 40.0, HARD_PLATE_LIMIT_C,
                              "board forces a channel off above this plate temperature (1.1)")
    protocol_minor: int = _f(1, 0, 1, "emulated board's protocol minor version: 0 is a 1.0 "
                                      "board without plate and room sensors")
    serial_number: int = _f(1, 0, 2**32 - 1, "emulated board serial number")
    firmware_version: str = _f("1.1.0", doc="emulated firmware version, major.minor.patch")


@dataclass
class LinkConfig:
    """The host side of the serial link."""

    port: str = _f("", doc="pyserial URL of the board: /dev/ttyUSB0, a pty path, socket://...")
    baudrate: int = _f(115200, 1200, 4_000_000, "serial speed")
    ack_timeout_s: float = _f(0.1, 0.005, 5.0, "retransmit a command not acknowledged by then")
    max_retries: int = _f(3, 0, 20, "retransmissions before a command counts as failed")
    refresh_s: float = _f(0.5, 0.05, 1.0, "re-send heater outputs at least this often")
    stale_s: float = _f(1.0, 0.1, 10.0, "no valid telemetry for this long: link unhealthy")
    silence_reconnect_s: float = _f(3.0, 0.2, 60.0, "board silent this long: reopen the port")
    reconnect_min_s: float = _f(0.1, 0.01, 60.0, "first reconnect back-off")
    reconnect_max_s: float = _f(5.0, 0.01, 600.0, "longest reconnect back-off")


@dataclass
class ControlConfig:
    """Setpoints; the control law's own parameters arrive with the controller."""

    setpoint_c: list[float] = _f([37.0, 37.0], 30.0, HARD_SETPOINT_CEILING_C, "default setpoints")
    setpoint_min_c: float = _f(30.0, 0.0, HARD_SETPOINT_CEILING_C, "lowest setpoint accepted")
    setpoint_max_c: float = _f(40.0, 0.0, HARD_SETPOINT_CEILING_C, "highest setpoint accepted")
    setpoint_step_c: float = _f(0.1, 0.01, 1.0, "setpoint resolution")
    heat_on: list[bool] = _f([False, False], doc="heat on at start (a person switches it on)")
    period_s: float = _f(1.0, 0.1, 2.0, "control cycle period")
    kp_w_per_k: float = _f(800.0, 1.0, 100000.0, "gain on the stored-energy error")
    ti_s: float = _f(900.0, 10.0, 100000.0, "integral time of the disturbance correction")
    integral_band_c: float = _f(0.5, 0.05, 5.0, "integrate only this close to the setpoint")
    integral_limit_w: float = _f(150.0, 0.0, 2000.0, "bound on the integral correction")
    slope_window_s: float = _f(60.0, 5.0, 600.0, "window of the sensor-lag compensation slope")
    room_estimate_c: float = _f(21.0, -10.0, 45.0, "room temperature the model assumes")
    watchdog_s: float = _f(1.5, 0.1, 2.9, "host watchdog: cut heaters if the loop hangs this long")
    history_period_s: float = _f(1.0, 0.1, 60.0, "temperature history resolution")


@dataclass
class SafetyConfig:
    """The supervisor's limits (reference.md, 'Safety limits')."""

    over_temperature_c: float = _f(41.0, 30.0, HARD_OVER_TEMPERATURE_C, "trip: any sensor above")
    high_alarm_margin_c: float = _f(1.0, 0.1, 5.0, "alarm: above setpoint + this")
    high_alarm_c: float = _f(40.5, 30.0, HARD_OVER_TEMPERATURE_C, "alarm: above this")
    alarm_hysteresis_c: float = _f(0.2, 0.0, 2.0, "an alarm clears this far below its level")
    sensor_disagree_c: float = _f(1.0, 0.1, 10.0, "trip: sensors further apart than this")
    sensor_disagree_s: float = _f(5.0, 0.0, 600.0, "... for this long")
    no_rise_c: float = _f(0.5, 0.0, 10.0,
                          "trip: less rise than this at most (and less than a working heater)")
    no_rise_margin_c: float = _f(
        0.1, 0.0, 5.0, "... than the least a plausible working heater gives, less this")
    no_rise_window_s: float = _f(600.0, 10.0, 7200.0, "... over this window")
    no_rise_min_output: float = _f(0.8, 0.0, 1.0, "... at or above this output")
    rise_too_fast_c_per_min: float = _f(1.0, 0.05, 20.0, "trip: water rising faster than this")
    rise_too_fast_model_ratio: float = _f(
        1.1, 1.0, 100.0,
        "trip (leak): rising faster than this x the fastest plausible full cushion")
    rise_too_fast_model_margin_c_per_min: float = _f(
        0.1, 0.0, 20.0, "... plus this (noise of the 30 s rate)")
    rise_too_fast_model_confirm_s: float = _f(
        5.0, 0.0, 120.0, "... and the rise stays that fast for this long")
    leak_ratio: float = _f(
        1.25, 1.0, 10.0, "trip (leak): at a steady output, rising faster than this x the "
        "rate this cushion showed when its plate settled at that output")
    leak_margin_c_per_min: float = _f(0.03, 0.0, 5.0, "... plus this")
    leak_min_output: float = _f(0.5, 0.05, 1.0, "... judged only at or above this output")
    leak_output_band: float = _f(0.05, 0.0, 1.0, "... while the output stays this close")
    leak_slope_window_s: float = _f(60.0, 20.0, 300.0, "... rates over this window")
    plate_dry_ratio: float = _f(
        1.0, 1.0, 10.0, "trip (dry or emptying cushion, protocol 1.1): plate - water above "
        "this x the most any full plausible cushion shows at full heater power")
    plate_dry_margin_c: float = _f(2.0, 0.0, 20.0, "... plus this")
    plate_dry_confirm_s: float = _f(3.0, 0.0, 120.0, "... for this long")
    plate_dry_reset_c: float = _f(
        2.0, 0.1, 20.0, "plate_dry resets only with plate - water at most this (the plate "
        "gives its heat to water again)")
    rise_while_off_c: float = _f(
        0.5, 0.05, 10.0, "trip: rise with heater at 0 % of more than this beyond what the "
        "plate's stored heat and the surroundings can explain")
    rise_while_off_window_s: float = _f(1800.0, 10.0, 7200.0, "... within this window")
    stale_telemetry_s: float = _f(1.0, 0.1, 10.0, "trip: no valid report for this long")
    control_stall_s: float = _f(3.0, 0.1, 60.0, "trip: no control cycle for this long")
    over_temperature_reset_margin_c: float = _f(
        0.5, 0.0, 5.0, "over_temperature resets only with every sensor this far below it")


@dataclass
class PlausibleConfig:
    """What a real table may be, whatever the model says (reference.md, "Real tables
    differ from these numbers"): each a [lowest, highest] pair.  The supervisor judges
    rates and rises against the whole range, so no table in it trips without a fault
    (docs/safety.md)."""

    water_kg: list[float] = _f([15.0, 35.0], 0.1, 200.0, "water per cushion, filled by hand")
    heater_w: list[float] = _f([240.0, 360.0], 1.0, 2000.0, "heater power (mains, ageing)")
    plate_to_water_w_per_k: list[float] = _f([21.0, 39.0], 0.1, 1000.0,
                                             "plate-to-water conductance")
    loss_to_room_w_per_k: list[float] = _f([2.0, 6.0], 0.0, 100.0, "water-to-room loss")
    room_c: list[float] = _f([12.0, 30.0], -10.0, 45.0, "room temperature")
    sensor_lag_s: list[float] = _f([5.0, 20.0], 0.0, 600.0, "first-order lag of a sensor")
    client_w_per_k: list[float] = _f([0.0, 10.0], 0.0, 50.0,
                                     "client-to-water conductance (0: no client)")
    coupling_w_per_k: list[float] = _f([0.0, 2.0], 0.0, 100.0,
                                       "conductance between the two cushions")


@dataclass
class MqttConfig:
    """MQTT: where to publish, who we are, and how commands are judged (docs/mqtt.md)."""

    broker: str = _f("", doc="mqtt://[user:pass@]host[:port] or mqtts://...; empty: embedded")
    embedded_host: str = _f("127.0.0.1", doc="address the embedded broker binds (loopback)")
    embedded_port: int = _f(1883, 0, 65535, "port of the embedded broker (0: any free port)")
    embedded_cert_file: str = _f("", doc="TLS certificate of the embedded broker (needed "
                                         "beyond loopback)")
    embedded_key_file: str = _f("", doc="TLS key of the embedded broker")
    credentials_file: str = _f("", doc="MQTT accounts file (mosquitto-config writes one); "
                                       "empty: <data dir>/mqtt-credentials.toml")
    prefix: str = _f("hydrotherm", doc="first level of every topic")
    table_id: str = _f("table0", doc="this table's id: second level of every topic")
    protocol: str = _f("3.1.1", doc="MQTT protocol version: 3.1.1 or 5")
    ca_file: str = _f("", doc="TLS: CA certificate file (mqtts://)")
    cert_file: str = _f("", doc="TLS: client certificate file")
    key_file: str = _f("", doc="TLS: client key file")
    keepalive_s: int = _f(30, 5, 3600, "MQTT keep-alive")
    reconnect_min_s: float = _f(1.0, 0.1, 60.0, "first reconnect back-off")
    reconnect_max_s: float = _f(30.0, 1.0, 600.0, "longest reconnect back-off")
    state_interval_s: float = _f(5.0, 0.5, 60.0, "publish the state at least this often")
    min_interval_s: float = _f(0.5, 0.05, 10.0, "publish a changed state at most this often")
    command_max_age_s: float = _f(30.0, 1.0, 3600.0, "refuse commands whose sent_at is older")
    command_max_bytes: int = _f(1024, 64, 65536, "refuse larger command payloads")
    command_rate_per_s: float = _f(5.0, 0.1, 1000.0, "commands per second per account "
                                                      "(more are refused; heat-off never)")
    command_burst: int = _f(20, 1, 10000, "commands an account may send at once")
    command_queue: int = _f(64, 1, 10000, "commands waiting for the command thread")
    discovery: bool = _f(True, doc="publish Home Assistant discovery")
    discovery_prefix: str = _f("homeassistant", doc="Home Assistant discovery prefix")


@dataclass
class DashboardConfig:
    """The therapist's web page (served by waitress)."""

    host: str = _f("127.0.0.1", doc="address to listen on (loopback unless you open it)")
    port: int = _f(8080, 0, 65535, "port to listen on")
    threads: int = _f(64, 4, 1024, "server threads: each live browser holds one")
    users_file: str = _f("", doc="login file (hashed passwords); empty: <data dir>/users.toml")
    session_hours: float = _f(12.0, 0.1, 720.0, "a login lasts this long")
    command_timeout_s: float = _f(5.0, 0.5, 60.0, "wait this long for a controller reply")
    connection_limit: int = _f(256, 16, 10000, "open HTTP connections at most (all clients)")
    connections_per_address: int = _f(
        24, 1, 10000, "open HTTP connections at most from one address (trusted proxies "
        "exempt); a browser uses about 6 plus one per open page")
    request_timeout_s: float = _f(10.0, 1.0, 300.0, "a request (headers and body) must "
                                  "arrive within this long from its first byte")
    channel_timeout_s: int = _f(60, 10, 3600, "close a connection idle this long")
    trusted_proxies: str = _f("", doc="comma-separated addresses or networks of reverse "
                              "proxies whose X-Forwarded-For/-Proto are believed; empty: none")
    table_gone_after_min: float = _f(
        60.0, 1.0, 525600.0, "a table silent this long counts as gone and may be removed")
    forget_gone_tables: bool = _f(False, doc="remove gone tables from the fleet automatically")
    standby_setpoint_c: float = _f(32.0, 0.0, 45.0, "setpoint a session timer's 'standby' "
                                   "end action sets on both cushions")


@dataclass
class DataConfig:
    """Where the event log and history live."""

    dir: str = _f("~/.local/share/hydrotherm", doc="data directory")


@dataclass
class Config:
    """The effective configuration: defaults overridden by a TOML file."""

    plant: PlantConfig = field(default_factory=PlantConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    board: BoardConfig = field(default_factory=BoardConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    plausible: PlausibleConfig = field(default_factory=PlausibleConfig)
    #: the simulated truth where it differs from ``plant`` (``hydrotherm/true_plant.py``)
    true_plant: TruePlantConfig = field(default_factory=TruePlantConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    data: DataConfig = field(default_factory=DataConfig)

    @property
    def data_dir(self) -> Path:
        return Path(os.path.expanduser(self.data.dir))


def _check_number(key: str, value: Any, meta: dict[str, Any], want_int: bool) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if want_int and not isinstance(value, int):
        raise ConfigError(f"{key}: expected a whole number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: must be a finite number, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        op = "greater than" if meta.get("lo_open") else "at least"
        raise ConfigError(f"{key} = {value!r} is refused: must be {op} {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key} = {value!r} is refused: must be at most {hi}")
    return value if want_int else float(value)


def _coerce(key: str, f: dataclasses.Field, value: Any) -> Any:
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    meta = dict(f.metadata)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, list):
        if isinstance(default[0], bool):
            if isinstance(value, bool):
                value = [value] * len(default)
            if (not isinstance(value, list) or len(value) != len(default)
                    or not all(isinstance(v, bool) for v in value)):
                raise ConfigError(f"{key}: expected true/false or a list of {len(default)}")
            return list(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value] * len(default)
        if not isinstance(value, list) or len(value) != len(default):
            raise ConfigError(f"{key}: expected one number or a list of {len(default)}")
        return [_check_number(f"{key}[{i}]", v, meta, False) for i, v in enumerate(value)]
    return _check_number(key, value, meta, isinstance(default, int))


#: Keys that once had an effect and now have none, with why: a file that still carries one
#: loads (an old clinic configuration must not stop a table in the morning) and the loader
#: says, once per load, that the key is ignored.  Kept until configuration files written
#: before the change have had a release to lose them.
RETIRED_KEYS: dict[str, str] = {
    f"safety.identification_{k}": (
        "has no effect: the supervisor's rules judge the whole plausible range of tables, "
        "so an autotune run needs no wider bounds (docs/autotune.md); remove it")
    for k in ("rate_scale", "carry_scale", "no_rise_c")
}


def build_section(name: str, cls: type, values: dict[str, Any]) -> Any:
    """Make one section from a mapping, refusing unknown keys and bad values (a retired
    key is dropped with a warning: ``RETIRED_KEYS``)."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        why = RETIRED_KEYS.get(f"{name}.{key}")
        if why is not None:
            warnings.warn(f"{name}.{key} {why}", RetiredKeyWarning, stacklevel=2)
            continue
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
        kwargs[key] = _coerce(f"{name}.{key}", known[key], value)
    return cls(**kwargs)


def _cross_checks(cfg: Config) -> None:
    c = cfg.control
    if c.setpoint_min_c >= c.setpoint_max_c:
        raise ConfigError("control.setpoint_min_c must be below control.setpoint_max_c")
    for i, sp in enumerate(c.setpoint_c):
        if not c.setpoint_min_c <= sp <= c.setpoint_max_c:
            raise ConfigError(f"control.setpoint_c[{i}] = {sp} is outside "
                              f"{c.setpoint_min_c}..{c.setpoint_max_c}")
    if cfg.plant.cutout_close_c >= cfg.plant.cutout_open_c:
        raise ConfigError("plant.cutout_close_c must be below plant.cutout_open_c")
    if cfg.sensor.valid_min_c >= cfg.sensor.valid_max_c:
        raise ConfigError("sensor.valid_min_c must be below sensor.valid_max_c")
    if cfg.link.refresh_s >= cfg.board.deadman_s:
        raise ConfigError("link.refresh_s must be shorter than board.deadman_s")
    if cfg.control.watchdog_s >= cfg.board.deadman_s:
        raise ConfigError("control.watchdog_s must be shorter than board.deadman_s")
    if cfg.link.silence_reconnect_s <= cfg.link.stale_s:
        raise ConfigError("link.silence_reconnect_s must be longer than link.stale_s")
    if cfg.link.reconnect_min_s > cfg.link.reconnect_max_s:
        raise ConfigError("link.reconnect_min_s must not exceed link.reconnect_max_s")
    if cfg.mqtt.protocol not in ("3.1.1", "5"):
        raise ConfigError(f"mqtt.protocol = {cfg.mqtt.protocol!r}: must be \"3.1.1\" or \"5\"")
    for key in ("prefix", "table_id", "discovery_prefix"):
        value = getattr(cfg.mqtt, key)
        if not value or any(ch in value for ch in "/+#\0") or value != value.strip():
            raise ConfigError(f"mqtt.{key} = {value!r}: must be a non-empty topic level "
                              "without / + # or spaces at the ends")
    d = cfg.dashboard
    if d.connection_limit <= d.threads:
        raise ConfigError("dashboard.connection_limit must be above dashboard.threads")
    if d.connections_per_address > d.connection_limit:
        raise ConfigError("dashboard.connections_per_address must not exceed "
                          "dashboard.connection_limit")
    try:
        parse_networks(d.trusted_proxies)
    except ValueError as exc:
        raise ConfigError(f"dashboard.trusted_proxies: {exc}") from None
    for f in dataclasses.fields(cfg.plausible):
        lo, hi = getattr(cfg.plausible, f.name)
        if lo > hi:
            raise ConfigError(f"plausible.{f.name}: the lowest ({lo}) is above the highest "
                              f"({hi})")
    parts = cfg.board.firmware_version.split(".")
    if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ConfigError("board.firmware_version must look like 1.2.3 (each part 0..255)")


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` -> networks; ValueError names a bad entry."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(out)


def from_mapping(data: dict[str, Any]) -> Config:
    """Build a checked configuration from a parsed TOML mapping."""
    sections = {f.name: type(f.default_factory()) for f in dataclasses.fields(Config)}  # type: ignore[misc]
    built = {}
    for name, values in data.items():
        if name not in sections:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: expected a table [{name}]")
        if name == "true_plant":
            over = values.get("overrides")
            if set(values) == {"overrides"} and isinstance(over, dict):
                # ``dataclasses.asdict(cfg)`` of a loaded configuration (the CLI and
                # autotune rebuild the configuration that way): key -> (c0, c1)
                values = {k: list(v) for k, v in over.items()}
            built[name] = parse_true_plant(values, ConfigError, PlantConfig, SensorConfig)
            continue
        built[name] = build_section(name, sections[name], values)
    cfg = Config(**built)
    _cross_checks(cfg)
    return cfg


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the configuration file (or the defaults when ``path`` is None)."""
    if path is None:
        env = os.environ.get("HYDROTHERM_CONFIG")
        path = env if env else None
    if path is None:
        cfg = Config()
        _cross_checks(cfg)
        return cfg
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(unreadable_file(p, exc)) from None
    return from_mapping(data)


def unreadable_file(path: Path, exc: OSError | UnicodeDecodeError) -> str:
    """One line saying why a configuration file could not be read, for a person to fix:
    a directory given instead of a file, a file they may not read, or one that is not
    UTF-8 text (TOML is UTF-8 by definition; a file saved as Latin-1 or UTF-16 is not)."""
    if isinstance(exc, UnicodeDecodeError):
        return (f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}); TOML files must be saved as UTF-8")
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return f"{path} is a directory; --config (or HYDROTHERM_CONFIG) must name a TOML file"
    if isinstance(exc, PermissionError):
        return f"{path}: not allowed to read this configuration file (permission denied)"
    return f"{path}: cannot read the configuration file: {exc.strerror or exc}"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def to_toml(cfg: Config, with_docs: bool = True) -> str:
    """The effective configuration as TOML that ``load`` reads back unchanged."""
    lines: list[str] = []
    for sec in dataclasses.fields(cfg):
        obj = getattr(cfg, sec.name)
        if isinstance(obj, TruePlantConfig):
            if obj:
                lines.append(f"[{sec.name}]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in obj.as_dict().items()]
                lines.append("")
            continue
        lines.append(f"[{sec.name}]")
        for f in dataclasses.fields(obj):
            doc = f.metadata.get("doc", "")
            comment = f"  # {doc}" if with_docs and doc else ""
            lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}{comment}")
        lines.append("")
    return "\n".join(lines)
