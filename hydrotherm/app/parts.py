"""The pieces every command assembles: a link, a controller with its event log, the MQTT
broker and bridge, and the loop that runs a controller until asked to stop.

Each builder turns a failure the user can fix (a port, a broker URL, a log directory)
into a one-line ``UsageError``.
"""

from __future__ import annotations

import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from controller.eventlog import EventLog
from controller.mqtt.accounts import AccountError
from controller.mqtt.bridge import MqttBridge
from controller.mqtt.broker import BrokerError
from controller.mqtt.client import BrokerAddress, BrokerUrlError
from controller.mqtt.setup import BrokerSetup, setup_broker
from controller.runner import ControllerRunner
from controller.schedule import (
    LocalTime,
    ScheduleRunner,
    ScheduleStore,
    SimulatedLocalTime,
    SystemLocalTime,
)
from controller.service import CommandError, Controller
from controller.service_socket import ServiceSocket, ServiceSocketError
from controller.status_line import status_line as format_status_line
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import Clock, RealClock
from hydrotherm.config import Config

from . import preflight
from .errors import UsageError


def install_stop() -> threading.Event:
    """An event set by SIGTERM or SIGINT (Ctrl-C), for loops that stop cleanly."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def make_link(cfg: Config, url: str, clock: Clock) -> BoardLink:
    """The link to the board at ``url``, printing its events."""

    def report(ev: Any) -> None:
        print(f"[link] {ev.kind}: {ev.detail}", flush=True)

    return BoardLink(cfg.link, Thermistor(cfg.sensor), clock, url=url, on_event=report)


def build_controller(cfg: Config, url: str, clock: Clock, log: EventLog | None) -> Controller:
    return Controller(cfg, make_link(cfg, url, clock), clock, log=log)


def attach_schedule(controller: Controller, log: EventLog | None) -> ScheduleRunner:
    """The ready-by schedule, kept in the event log's directory (``schedule.json``,
    ``warmup_learned.json``), on local wall-clock time: the system's for a real-time
    clock; for a faster demo clock, a local time that starts now and runs at its speed."""
    path = getattr(log, "path", None)
    store = ScheduleStore(path.parent if path is not None else None)
    clock = controller.clock
    local: LocalTime = (SystemLocalTime(clock) if isinstance(clock, RealClock)
                        else SimulatedLocalTime(datetime.now().replace(microsecond=0), clock))
    runner = ScheduleRunner(controller, local, store)
    controller.schedule = runner
    return runner


def open_log(cfg: Config, data_dir: str | None) -> EventLog:
    directory = Path(data_dir).expanduser() if data_dir else cfg.data_dir
    try:
        return preflight.open_event_log(directory)
    except preflight.PreflightError as exc:
        raise UsageError(str(exc)) from None


def start_service_socket(controller: Controller, log: EventLog) -> ServiceSocket:
    """``hydrotherm service`` reaches this controller through a 0600 socket in its data
    directory (``controller/service_socket.py``)."""
    try:
        return ServiceSocket(controller, log.path.parent).start()
    except ServiceSocketError as exc:
        raise UsageError(str(exc)) from None


def apply_start_commands(controller: Controller, setpoints: list[float] | None,
                         heat: bool) -> None:
    """``--setpoint`` and ``--heat`` of ``hydrotherm run``, as the actor ``cli``."""
    try:
        for i, sp in enumerate(setpoints or []):
            controller.set_setpoint(i, sp, "cli")
        if heat:
            for i in range(2):
                controller.set_heat(i, True, "cli")
    except CommandError as exc:
        raise UsageError(str(exc)) from None


def status_line(controller: Controller) -> str:
    """One line of a controller's state for the console (the same derived heat state as
    MQTT and the dashboard: ``controller.status_line``)."""
    return format_status_line(controller.snapshot())


def run_controller(controller: Controller, stop: threading.Event, interval_s: float,
                   duration_s: float | None, poll_s: float = 0.005) -> None:
    """Run the controller in its runner thread, printing events and a status line every
    ``interval_s``, until ``stop`` is set or ``duration_s`` has passed."""

    def on_watchdog(why: str) -> None:
        print(f"[watchdog] {why}", flush=True)

    runner = ControllerRunner(controller, poll_s=poll_s, on_watchdog=on_watchdog)
    controller.listeners.append(
        lambda e: e.get("type") == "event" and print(
            f"[event] {e['kind']} cushion={e['cushion']} actor={e['actor']} "
            f"reason={e['reason']} {e['detail']}", flush=True))
    runner.start()
    t_end = time.monotonic() + duration_s if duration_s else None
    try:
        while not stop.wait(interval_s):
            print(status_line(controller), flush=True)
            if t_end and time.monotonic() >= t_end:
                break
    finally:
        runner.stop()


def start_broker(cfg: Config, data_dir: Path, table_ids: list[str]) -> BrokerSetup:
    """The configured broker, or an embedded one started here on this installation's MQTT
    accounts (created on first use, 0600 files in ``data_dir``): a ``BrokerSetup`` giving
    each part its own account (``controller/mqtt/setup.py``)."""
    try:
        setup = setup_broker(cfg.mqtt, data_dir, table_ids)
    except (BrokerError, BrokerUrlError, AccountError) as exc:
        raise UsageError(str(exc)) from None
    if setup.embedded is not None:
        print(f"embedded MQTT broker on {setup.embedded.url} (passwords required)", flush=True)
    line = setup.announce()
    if line:
        print(line, flush=True)
    elif setup.store is not None and setup.embedded is not None:
        print(f"MQTT accounts: {setup.store.credentials_path}", flush=True)
    return setup


def account_address(setup: BrokerSetup, account: str) -> BrokerAddress:
    """The broker address with ``account``'s credentials (a table's or the dashboard's)."""
    try:
        return setup.address_for(account)
    except AccountError as exc:
        raise UsageError(str(exc)) from None


def start_bridge(cfg: Config, controller: Controller, address: BrokerAddress) -> MqttBridge:
    """One controller's MQTT bridge on ``address``."""
    try:
        bridge = MqttBridge(controller, cfg, address).start()
    except (OSError, ValueError) as exc:
        raise UsageError(f"MQTT: {exc}") from None
    print(f"publishing as {cfg.mqtt.prefix}/{cfg.mqtt.table_id} on {address.display()}",
          flush=True)
    return bridge
