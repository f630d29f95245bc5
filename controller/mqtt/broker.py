"""The embedded default MQTT broker (amqtt, pure Python) for a machine with nothing installed.

It is what ``hydrotherm demo`` and a lone table use when no broker URL is configured. It
binds 127.0.0.1 unless told otherwise (amqtt's own default is 0.0.0.0), refuses anonymous
clients (argon2-hashed passwords from ``controller.mqtt.accounts``), enforces the account
ACL (``controller.mqtt.acl``) and keeps retained messages in memory.  Beyond loopback it
also needs TLS, or it refuses to start: a clinic LAN must not see passwords in clear.  A
clinic with many tables should use Mosquitto or a clustered broker instead (see
docs/mqtt.md).

amqtt needs its own running asyncio loop, so the broker lives in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import threading
import time
from pathlib import Path


class BrokerError(RuntimeError):
    """The embedded broker could not start (port in use, bad address)."""


class EmbeddedBroker:
    """amqtt in a background thread; ``start()`` returns once the port accepts clients."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *,
                 passwd_file: str | Path, prefix: str = "hydrotherm",
                 discovery_prefix: str = "homeassistant", certfile: str = "",
                 keyfile: str = "", enforce_acl: bool = True) -> None:
        """``enforce_acl=False`` leaves out the account ACL (passwords are still required):
        only for tests that show the dashboard defends itself on a broker whose operator
        did not configure topic ACLs; nothing in the product turns it off."""
        self.host = host
        self.enforce_acl = enforce_acl
        self.port = port
        self.passwd_file = Path(passwd_file)
        self.prefix = prefix
        self.discovery_prefix = discovery_prefix
        self.certfile = certfile
        self.keyfile = keyfile
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped = threading.Event()

    @property
    def tls(self) -> bool:
        return bool(self.certfile)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"

    def check_exposure(self) -> None:
        """Beyond loopback, passwords would cross the LAN in clear: TLS or no broker."""
        if not is_loopback(self.host) and not (self.certfile and self.keyfile):
            raise BrokerError(
                f"refusing to open the embedded broker on {self.host}: beyond loopback it "
                "needs TLS (set mqtt.embedded_cert_file and mqtt.embedded_key_file), or "
                "bind 127.0.0.1 (mqtt.embedded_host)")

    def start(self, timeout_s: float = 10.0) -> EmbeddedBroker:
        self.check_exposure()
        if not self.passwd_file.is_file():
            raise BrokerError(f"no MQTT password file at {self.passwd_file}")
        if self.port == 0:
            self.port = free_port(self.host)
        self._check_port_free()
        self._thread = threading.Thread(target=self._run, name="mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise BrokerError(f"embedded broker did not start on {self.host}:{self.port}")
        if self._error is not None:
            raise BrokerError(f"embedded broker failed on {self.host}:{self.port}: "
                              f"{self._error}") from self._error
        return self  # Broker.start() has awaited the listening socket

    def _check_port_free(self) -> None:
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((self.host, self.port))
            except OSError as exc:
                raise BrokerError(f"cannot listen on {self.host}:{self.port}: {exc.strerror} "
                                  "(another broker running? pass --broker-port or --broker)") \
                    from None

    def _run(self) -> None:
        broker_cls = _broker_class()

        # amqtt logs every connection at INFO; keep a demo's terminal readable
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        listener: dict = {"type": "tcp", "bind": f"{self.host}:{self.port}"}
        if self.tls:
            listener.update(ssl=True, certfile=self.certfile, keyfile=self.keyfile)
        config = {
            "listeners": {"default": listener},
            # no AnonymousAuthPlugin: a client without a username gets no vote, so it is
            # refused; the argon2 check runs in a thread (controller.mqtt.auth)
            "plugins": {"controller.mqtt.auth.ThreadedFileAuthPlugin":
                        {"password_file": str(self.passwd_file)},
                        "controller.mqtt.acl.AccountAclPlugin":
                        {"prefix": self.prefix, "discovery_prefix": self.discovery_prefix}},
        }
        if not self.enforce_acl:
            del config["plugins"]["controller.mqtt.acl.AccountAclPlugin"]

        async def boot() -> None:
            self._broker = broker_cls(config)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._broker.shutdown())
            loop.close()
            self._stopped.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout_s)
        self._loop = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _broker_class() -> type:
    """amqtt's Broker with one bug worked around (amqtt 0.12.1, pinned in pyproject).

    On every CONNECT amqtt re-sends retained messages "to a pre-existing session's
    subscriptions", but it loops over the topic filters of *every* client (including ones
    that have disconnected), so a new client gets retained messages it never subscribed
    to: ``mosquitto_sub -t .../readings -C 1`` would print ``.../status``.  Here a
    session only gets the retained messages of its own subscriptions."""
    from amqtt.broker import Broker

    class _Broker(Broker):
        async def _publish_retained_messages_for_subscription(self, subscription, session):
            subs = self._subscriptions.get(subscription[0], ())
            if not any(s.client_id == session.client_id for s, _qos in subs):
                return
            await super()._publish_retained_messages_for_subscription(subscription, session)

    return _Broker


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host``."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Poll until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise BrokerError(f"nothing listens on {host}:{port} after {timeout_s} s") \
                    from None
            time.sleep(0.05)
