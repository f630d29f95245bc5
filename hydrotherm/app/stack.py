"""A whole table on one machine, in-process, for tests and benchmarks of the dashboard.

``LocalStack`` starts the embedded MQTT broker, a simulated board on a pty (``SimServer``),
the real controller over the real link with its event log, the MQTT bridge, and a
FleetClient for the dashboard: the same pieces ``hydrotherm demo`` runs, in-process, so
a test can inject faults with ``stack.sim.handle(...)`` and read the controller's log.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from controller.eventlog import EventLog
from controller.mqtt.accounts import DASHBOARD, CredentialStore, table_account
from controller.mqtt.bridge import MqttBridge
from controller.mqtt.broker import EmbeddedBroker
from controller.mqtt.client import parse_broker_url
from controller.mqtt.fleet import FleetClient
from controller.runner import ControllerRunner
from controller.service import Controller
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock, ScaledClock
from hydrotherm.config import Config
from sim.server import SimServer


class LocalStack:
    """Broker + simulated board + controller + bridge + fleet view.  ``speed`` > 1 runs
    the simulated plant and the controller on a shared ScaledClock (the ACK timeout is
    widened as ``hydrotherm demo --speed`` does)."""

    def __init__(self, cfg: Config, directory: str | Path, speed: float = 1.0,
                 heat: tuple[bool, bool] = (True, False),
                 extra_tables: tuple[str, ...] = (), broker_acl: bool = True) -> None:
        self.directory = Path(directory)
        # MQTT accounts (the embedded broker refuses anonymous clients): this table's, the
        # dashboard's, and ``extra_tables`` for tests that play other tables
        self.store = CredentialStore(self.directory / "mqtt")
        self.extra_tables = extra_tables
        self.broker_acl = broker_acl  # False: passwords only (tests of a broker without ACLs)
        self.speed = speed
        if speed > 1:
            ack = min(cfg.link.refresh_s / 2, max(cfg.link.ack_timeout_s, 0.003 * speed))
            cfg = replace(cfg, link=replace(cfg.link, ack_timeout_s=ack))
        self.cfg = cfg
        self.heat = heat
        self.clock: Any = ScaledClock(speed) if speed > 1 else RealClock()
        self.broker: EmbeddedBroker | None = None
        self.sim: Any = None
        self.controller: Controller | None = None
        self.runner: ControllerRunner | None = None
        self.bridge: MqttBridge | None = None
        self.fleet: FleetClient | None = None

    @property
    def broker_url(self) -> str:
        """The broker as the dashboard account (credentials in the URL)."""
        return self.url_as(DASHBOARD)

    def url_as(self, user: str) -> str:
        assert self.broker is not None
        return self.broker.url.replace("://", f"://{user}:{self.store.password(user)}@", 1)

    def start(self, timeout_s: float = 20.0) -> LocalStack:
        try:
            store = self.store
            store.ensure([self.cfg.mqtt.table_id, *self.extra_tables])
            self.broker = EmbeddedBroker(port=0, passwd_file=store.passwd_path,
                                         enforce_acl=self.broker_acl).start()
            self.sim = SimServer(self.cfg, self.clock, self.directory / "sim").start()
            link = BoardLink(self.cfg.link, Thermistor(self.cfg.sensor), self.clock,
                             url=self.sim.ports[0].path)
            self.controller = Controller(self.cfg, link, self.clock,
                                         log=EventLog(self.directory / "events.sqlite3"))
            for i, on in enumerate(self.heat):
                if on:
                    self.controller.set_heat(i, True, "test")
            self.runner = ControllerRunner(self.controller,
                                           poll_s=0.001 if self.speed > 1 else 0.005).start()
            address = parse_broker_url(self.broker.url, env={})
            self.bridge = MqttBridge(self.controller, self.cfg, replace(
                address, username=table_account(self.cfg.mqtt.table_id),
                password=store.password(table_account(self.cfg.mqtt.table_id)))).start()
            self.fleet = FleetClient(self.cfg.mqtt, replace(
                address, username=DASHBOARD, password=store.password(DASHBOARD))).start()
            self.wait_for_state(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_for_state(self, timeout_s: float) -> None:
        """Until the fleet view holds a state with healthy readings."""
        assert self.fleet is not None
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            view = self.fleet.table(self.cfg.mqtt.table_id)
            if view is not None and view.online and view.state and \
                    view.state["link"]["healthy"] and \
                    view.state["cushions"][0]["water_c"]["estimate"] is not None:
                return
            time.sleep(0.05)
        raise TimeoutError("the table's state never reached the fleet view")

    def stop(self) -> None:
        for step in (lambda: self.fleet and self.fleet.stop(),
                     lambda: self.bridge and self.bridge.stop(),
                     lambda: self.runner and self.runner.stop(),
                     lambda: self.sim and self.sim.stop(),
                     lambda: self.broker and self.broker.stop()):
            try:
                step()
            except Exception:  # noqa: BLE001 - stop everything we can
                pass

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
