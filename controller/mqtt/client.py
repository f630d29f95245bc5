"""Connecting to a broker: URL parsing, credentials, TLS, a paho client set up our way.

Shared by the controller's publisher and by every consumer (the fleet view, the
dashboard), so ``mqtt://``/``mqtts://`` URLs, credentials from the environment and TLS
options mean the same everywhere.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hydrotherm.config import MqttConfig

ENV_USERNAME = "HYDROTHERM_MQTT_USERNAME"
ENV_PASSWORD = "HYDROTHERM_MQTT_PASSWORD"


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message says why."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    def display(self) -> str:
        """The URL without the password, for logs and the terminal."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def parse_broker_url(url: str, env: dict[str, str] | None = None) -> BrokerAddress:
    """``mqtt://user:pass@host:1883`` or ``mqtts://host:8883``; credentials missing from
    the URL come from $HYDROTHERM_MQTT_USERNAME / $HYDROTHERM_MQTT_PASSWORD."""
    env = os.environ if env is None else env
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BrokerUrlError(f"bad broker URL {url!r}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts"):
        raise BrokerUrlError(f"bad broker URL {url!r}: the scheme must be mqtt:// or mqtts://")
    if not parts.hostname:
        raise BrokerUrlError(f"bad broker URL {url!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BrokerUrlError(f"bad broker URL {url!r}: only scheme, credentials, host, port")
    tls = parts.scheme == "mqtts"
    user = unquote(parts.username) if parts.username else env.get(ENV_USERNAME) or None
    password = unquote(parts.password) if parts.password else env.get(ENV_PASSWORD) or None
    return BrokerAddress(parts.hostname, port or (8883 if tls else 1883), tls, user, password)


def make_client(cfg: MqttConfig, address: BrokerAddress, client_id: str) -> mqtt.Client:
    """A paho 2.x client with our protocol, credentials, TLS and back-off applied."""
    proto = mqtt.MQTTv5 if cfg.protocol == "5" else mqtt.MQTTv311
    kwargs = {"client_id": client_id, "protocol": proto}
    if proto == mqtt.MQTTv311:
        kwargs["clean_session"] = True  # a restarted controller must not get old commands
    client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        ctx = ssl.create_default_context(cafile=cfg.ca_file or None)
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None)
        client.tls_set_context(ctx)
    client.reconnect_delay_set(max(1, int(cfg.reconnect_min_s)), int(cfg.reconnect_max_s))
    client.max_queued_messages_set(10000)
    return client


def connect_kwargs(cfg: MqttConfig) -> dict:
    """Extra arguments for ``connect``/``connect_async`` (MQTT 5: a clean start)."""
    if cfg.protocol == "5":
        return {"clean_start": True}
    return {}
