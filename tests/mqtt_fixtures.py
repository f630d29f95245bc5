"""Fixtures for the MQTT tests: brokers (Debian's Mosquitto, the embedded amqtt broker), a
simulated table publishing over MQTT, and a recording subscriber.

Test modules load this with ``pytest_plugins = ["tests.mqtt_fixtures"]``.  Everything binds
127.0.0.1 and every wait has a bound.

Both brokers run secured, as a user's would: the embedded one as ``hydrotherm run`` starts
it (passwords, the account ACL), Mosquitto with the files ``hydrotherm broker
mosquitto-config`` writes.  ``broker.url`` carries the ``dashboard`` account's credentials
(reads every table, may send commands); ``broker.url_as(user)`` any other account; a table
made by ``table_factory`` logs in as its own ``table-<id>``.  The accounts (for the
table ids in ``TEST_TABLES``) are created once per session, since argon2 is slow on
purpose.  A missing ``mosquitto`` / ``mosquitto_sub`` skips the
tests that need it, naming the Debian package to install; with ``CI=true`` in the
environment it fails them instead, so a CI image without the package cannot go green by
skipping.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.eventlog import EventLog
from controller.mqtt.accounts import (
    CREDENTIALS_FILE,
    DASHBOARD,
    PASSWD_FILE,
    CredentialStore,
    table_account,
)
from controller.mqtt.bridge import MqttBridge
from controller.mqtt.broker import EmbeddedBroker, free_port, wait_for_port
from controller.mqtt.client import BrokerAddress, parse_broker_url
from controller.mqtt.mosquitto import write_config
from controller.mqtt.topics import Topics
from controller.runner import ControllerRunner
from controller.service import Controller
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import Config, from_mapping
from sim.server import SimServer

HOST = "127.0.0.1"

#: test-friendly MQTT settings: a changed state goes out within 0.1 s
FAST_MQTT = {"min_interval_s": 0.1, "state_interval_s": 2.0}

#: table ids that have an account on the test brokers
TEST_TABLES = ("table0", "t1", "t2", "retained", "proc", "flood", "spoof", "elog")

#: (host, port) of a running secured test broker -> its accounts
_ACCOUNTS: dict[tuple[str, int], CredentialStore] = {}
_SESSION_ACCOUNTS: list[Path] = []


def session_accounts() -> Path:
    """One credentials directory (plain + argon2 files) for the whole test session."""
    if not _SESSION_ACCOUNTS:
        d = short_tmpdir()
        CredentialStore(d).ensure(TEST_TABLES)
        _SESSION_ACCOUNTS.append(d)
    return _SESSION_ACCOUNTS[0]


def copy_accounts(directory: Path) -> CredentialStore:
    src = session_accounts()
    directory.mkdir(parents=True, exist_ok=True)
    for name in (CREDENTIALS_FILE, PASSWD_FILE):
        shutil.copy(src / name, directory / name)
    return CredentialStore(directory)


def account_url(host: str, port: int, user: str) -> str:
    """``mqtt://user:password@host:port`` for an account of the secured test broker."""
    store = _ACCOUNTS[(host, port)]
    return f"mqtt://{user}:{store.password(user)}@{host}:{port}"


def password(port: int, user: str, host: str = HOST) -> str:
    """The password of an account on the secured test broker at host:port."""
    return _ACCOUNTS[(host, port)].password(user)


def as_account(url: str, user: str) -> str:
    """The same broker as ``url``, logged in as ``user`` (a secured test broker only)."""
    a = parse_broker_url(url, env={})
    return account_url(a.host, a.port, user)


# --- external programs -------------------------------------------------------------------

def find_program(name: str, package: str) -> str:
    """The path of a Debian-packaged program, or skip (fail under CI=true) naming the
    package that provides it."""
    path = shutil.which(name)
    if path is None:
        for d in ("/usr/sbin", "/usr/bin", "/sbin"):
            cand = Path(d) / name
            if cand.exists() and os.access(cand, os.X_OK):
                path = str(cand)
                break
    if path is None:
        msg = (f"`{name}` not found: install Debian's `{package}` package "
               f"(apt-get install {package})")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def wait_for(cond: Callable[[], Any], timeout_s: float, step_s: float = 0.02) -> bool:
    """Poll ``cond`` until it is true or ``timeout_s`` has passed."""
    end = time.monotonic() + timeout_s
    while True:
        if cond():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step_s)


def short_tmpdir() -> Path:
    """A short directory for ptys and Unix sockets (sun_path is limited to 108 bytes,
    which pytest's tmp_path names can exceed)."""
    return Path(tempfile.mkdtemp(prefix="htmq"))


# --- Mosquitto ------------------------------------------------------------------------------

class Mosquitto:
    """Debian's mosquitto with its own configuration file, on a fixed loopback port."""

    kind = "mosquitto"

    def __init__(self, binary: str, directory: Path,
                 users: dict[str, str] | None = None, secured: bool = False) -> None:
        self.binary = binary
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = free_port(HOST)
        self.users = users
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.dir / "mosquitto.conf"
        self.log_path = self.dir / "mosquitto.log"
        lines = [f"listener {self.port} {HOST}", "persistence false",
                 f"log_dest file {self.log_path}", "log_type error", "log_type warning",
                 "log_type notice"]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, who cannot read tmp
        self.store: CredentialStore | None = None
        if secured:
            # exactly what `hydrotherm broker mosquitto-config` writes, plus test logging
            self.store = copy_accounts(self.dir)
            paths = write_config(self.dir, TEST_TABLES, port=self.port)
            self.conf.write_text(paths["conf"].read_text() + "\n".join(
                ln for ln in lines[1:] if ln != "user root") + "\n")
            return
        if users:
            pw = self.dir / "passwd"
            passwd = find_program("mosquitto_passwd", "mosquitto")
            create = True
            for user, password in users.items():
                subprocess.run([passwd, "-b", *(["-c"] if create else []), str(pw), user,
                                password], check=True, capture_output=True, timeout=10)
                create = False
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        """Secured: as the dashboard account; else without credentials."""
        if self.store is not None:
            return self.url_as(DASHBOARD)
        return f"mqtt://{self.host}:{self.port}"

    def url_as(self, user: str) -> str:
        return account_url(self.host, self.port, user)

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        if self.store is not None:
            _ACCOUNTS[(self.host, self.port)] = self.store
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr \
                    else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}"
                                   f"{self.log_text()}")
            try:
                wait_for_port(self.host, self.port, 0.2)
                return self
            except Exception:  # noqa: BLE001 - keep polling until the deadline
                if time.monotonic() >= end:
                    self.stop()
                    raise RuntimeError(f"mosquitto did not listen on {self.port} in "
                                       f"{timeout_s} s: {self.log_text()}") from None

    def stop(self, timeout_s: float = 10.0) -> None:
        _ACCOUNTS.pop((self.host, self.port), None)
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Embedded:
    """The embedded amqtt broker, with the same face as ``Mosquitto`` for the tests."""

    kind = "embedded"

    def __init__(self) -> None:
        self.dir = short_tmpdir()
        self.store = copy_accounts(self.dir)
        self.broker = EmbeddedBroker(HOST, 0, passwd_file=self.store.passwd_path)

    def start(self) -> Embedded:
        self.broker.start()
        _ACCOUNTS[(HOST, self.broker.port)] = self.store
        return self

    def stop(self) -> None:
        _ACCOUNTS.pop((HOST, self.broker.port), None)
        self.broker.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return self.url_as(DASHBOARD)

    def url_as(self, user: str) -> str:
        return account_url(HOST, self.broker.port, user)

    @property
    def port(self) -> int:
        return self.broker.port

    host = HOST


@pytest.fixture
def mosquitto_factory() -> Iterator[Callable[..., Mosquitto]]:
    """``make(users=None)`` starts a Mosquitto: secured with the project's accounts and ACL
    (``hydrotherm broker mosquitto-config``), or with only a password file for ``users``
    when given; all are stopped at teardown."""
    made: list[Mosquitto] = []
    dirs: list[Path] = []

    def make(users: dict[str, str] | None = None) -> Mosquitto:
        binary = find_program("mosquitto", "mosquitto")
        d = short_tmpdir()
        dirs.append(d)
        m = Mosquitto(binary, d, users, secured=users is None)
        made.append(m)
        return m.start()

    yield make
    for m in made:
        m.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def mosquitto(mosquitto_factory: Callable[..., Mosquitto]) -> Mosquitto:
    return mosquitto_factory()


@pytest.fixture
def embedded_broker() -> Iterator[Embedded]:
    b = Embedded().start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(params=["mosquitto", "embedded"])
def broker(request: pytest.FixtureRequest) -> Mosquitto | Embedded:
    """Each test using this runs once against Mosquitto and once against amqtt."""
    return request.getfixturevalue("mosquitto" if request.param == "mosquitto"
                                   else "embedded_broker")


# --- a recording subscriber ----------------------------------------------------------------

@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    at: float
    properties: Any = None

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """A paho client that records every message on its subscriptions."""

    def __init__(self, url: str, topics: list[str], protocol: int = mqtt.MQTTv311,
                 username: str | None = None, password: str | None = None) -> None:
        addr = parse_broker_url(url, env={})
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        if username is None and addr.username:
            username, password = addr.username, addr.password
        if username:
            self.client.username_pw_set(username, password)
        self.topics = topics
        self.messages: list[Received] = []
        self.cond = threading.Condition()
        self.connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._subscribed = threading.Event()
        self.client.connect(addr.host, addr.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any) -> None:
        if not rc.is_failure:
            if self.topics:
                client.subscribe([(t, 1) for t in self.topics])
            else:
                self._subscribed.set()  # a publisher only
            self.connected.set()

    def _on_subscribe(self, *args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        rec = Received(msg.topic, bytes(msg.payload), bool(msg.retain), msg.qos,
                       time.monotonic(), getattr(msg, "properties", None))
        with self.cond:
            self.messages.append(rec)
            self.cond.notify_all()

    def wait_subscribed(self, timeout_s: float = 5.0) -> Recorder:
        assert self._subscribed.wait(timeout_s), "subscription not acknowledged"
        return self

    def on(self, topic: str) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if m.topic == topic]

    def latest(self, topic: str) -> Received | None:
        got = self.on(topic)
        return got[-1] if got else None

    def wait(self, pred: Callable[[Received], bool], timeout_s: float = 5.0,
             after: int = 0) -> Received | None:
        """The first recorded message (index >= ``after``) matching ``pred``."""
        end = time.monotonic() + timeout_s
        with self.cond:
            while True:
                for m in self.messages[after:]:
                    if pred(m):
                        return m
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def wait_topic(self, topic: str, pred: Callable[[Received], bool] = lambda m: True,
                   timeout_s: float = 5.0, after: int = 0) -> Received | None:
        return self.wait(lambda m: m.topic == topic and pred(m), timeout_s, after)

    def mark(self) -> int:
        with self.cond:
            return len(self.messages)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False,
                properties: Any = None) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain,
                                   properties=properties)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def recorder() -> Iterator[Callable[..., Recorder]]:
    """``rec(url, [topics...], ...)``: a connected, subscribed Recorder, closed at teardown."""
    made: list[Recorder] = []

    def make(url: str, topics: list[str], **kw: Any) -> Recorder:
        r = Recorder(url, topics, **kw)
        made.append(r)
        assert r.connected.wait(5), f"recorder could not connect to {url}"
        return r.wait_subscribed()

    yield make
    for r in made:
        with contextlib.suppress(Exception):
            r.close()


# --- a simulated table on MQTT -------------------------------------------------------------

def table_config(table_id: str = "table0", mqtt_over: dict[str, Any] | None = None,
                 initial_water_c: float = 36.0) -> Config:
    return from_mapping({"plant": {"initial_water_c": initial_water_c},
                         "mqtt": {"table_id": table_id, **FAST_MQTT, **(mqtt_over or {})}})


@dataclass
class Table:
    """SimServer board(s) + Controller + ControllerRunner + MqttBridge, all real-time."""

    cfg: Config
    server: SimServer
    controller: Controller
    runner: ControllerRunner
    bridge: MqttBridge
    log: EventLog
    topics: Topics
    index: int = 0
    owns_server: bool = True
    stopped: bool = field(default=False)
    #: the broker as the dashboard account (read everything, send commands)
    url: str = ""

    def url_as(self, user: str) -> str:
        return as_account(self.url, user)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        try:
            self.bridge.stop()
        finally:
            try:
                self.runner.stop()
            finally:
                if self.owns_server:
                    self.server.stop()

    def sim_status(self) -> dict[str, Any]:
        return self.server.status(self.index)

    def fault(self, name: str, **params: Any) -> dict[str, Any]:
        return self.server.handle({"fault": name, "table": self.index, **params})

    def events(self, kind: str | None = None) -> list[Any]:
        return self.log.events(kinds=[kind] if kind else None)


@pytest.fixture
def sim_servers() -> Iterator[Callable[..., SimServer]]:
    """``sim(tables=1)``: a running SimServer with that many boards, stopped at teardown
    (after the tables that use it: ``table_factory`` depends on this fixture)."""
    made: list[tuple[SimServer, Path]] = []

    def make(tables: int = 1) -> SimServer:
        d = short_tmpdir()
        srv = SimServer(table_config(), RealClock(), d, tables=tables).start()
        made.append((srv, d))
        return srv

    yield make
    for srv, d in made:
        with contextlib.suppress(Exception):
            srv.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def table_factory(sim_servers: Callable[..., SimServer]) -> Iterator[Callable[..., Table]]:
    """``make(url, table_id="table0", mqtt=None, heat=True, server=None, index=0, env=None)``
    starts a simulated table publishing on the broker at ``url`` and waits until its
    board link and its broker connection are up; everything is stopped at teardown.
    ``env`` is where credentials missing from the URL are looked up (default: nowhere,
    so the host's environment cannot leak in)."""
    made: list[Table] = []
    dirs: list[Path] = []

    def make(url: str, table_id: str = "table0", mqtt: dict[str, Any] | None = None,
             heat: bool = True, server: SimServer | None = None, index: int = 0,
             wait_connected: bool = True, env: dict[str, str] | None = None) -> Table:
        cfg = table_config(table_id, mqtt)
        owns = server is None
        if server is None:
            d = short_tmpdir()
            dirs.append(d)
            server = SimServer(cfg, RealClock(), d).start()
        clock = RealClock()
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url=server.ports[index].path)
        log = EventLog(None)
        controller = Controller(cfg, link, clock, log=log)
        if heat:
            controller.set_heat(0, True, "test")
        runner = ControllerRunner(controller).start()
        bridge = MqttBridge(controller, cfg, table_address(url, table_id, env)).start()
        t = Table(cfg, server, controller, runner, bridge, log, bridge.topics, index, owns,
                  url=url)
        made.append(t)
        if wait_connected:
            assert wait_for(lambda: link.connected, 10), f"board link did not connect: " \
                f"{link.error}"
            assert bridge.wait_connected(10), f"bridge did not connect: {bridge.last_error}"
        return t

    yield make
    for t in reversed(made):
        with contextlib.suppress(Exception):
            t.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def table_address(url: str, table_id: str, env: dict[str, str] | None) -> BrokerAddress:
    """A table logs in as its own account on a secured test broker (a URL without
    credentials or with the dashboard's); any other URL is used as it is."""
    a = parse_broker_url(url, env={} if env is None else env)
    store = _ACCOUNTS.get((a.host, a.port))
    if store is not None and a.username in (None, DASHBOARD):
        user = table_account(table_id)
        return BrokerAddress(a.host, a.port, a.tls, user, store.password(user))
    return a


@pytest.fixture
def table(broker: Mosquitto | Embedded, table_factory: Callable[..., Table]) -> Table:
    """One heating table on the parametrized broker."""
    return table_factory(broker.url)
