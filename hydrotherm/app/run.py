"""``hydrotherm run``: one table's controller on a real board, with its event log and
(unless ``--no-mqtt``) its MQTT bridge, on the configured or an embedded broker."""

from __future__ import annotations

from pathlib import Path

from controller.mqtt.accounts import table_account
from hydrotherm.clock import RealClock
from hydrotherm.config import Config

from . import preflight
from .errors import UsageError
from .parts import (
    account_address,
    apply_start_commands,
    attach_schedule,
    build_controller,
    install_stop,
    open_log,
    run_controller,
    start_bridge,
    start_broker,
    start_service_socket,
)


def run_table(cfg: Config, url: str, *, data_dir: str | None, setpoints: list[float] | None,
              heat: bool, mqtt: bool, interval_s: float, duration_s: float | None) -> int:
    try:
        preflight.check_board_port(url)
        log = open_log(cfg, data_dir)
        controller = build_controller(cfg, url, RealClock(), log)
        attach_schedule(controller, log)
        preflight.first_open(controller.link)
    except preflight.PreflightError as exc:
        raise UsageError(str(exc)) from None
    apply_start_commands(controller, setpoints, heat)
    bridge = embedded = None
    if mqtt:
        setup = start_broker(cfg, Path(data_dir).expanduser() if data_dir else cfg.data_dir,
                             [cfg.mqtt.table_id])
        embedded = setup.embedded
        try:
            bridge = start_bridge(cfg, controller,
                                  account_address(setup, table_account(cfg.mqtt.table_id)))
        except UsageError:
            if embedded is not None:
                embedded.stop()
            raise
    stop = install_stop()
    service = None
    try:
        service = start_service_socket(controller, log)
        run_controller(controller, stop, interval_s, duration_s)
    finally:
        if service is not None:
            service.stop()
        if bridge is not None:
            bridge.stop()
        if embedded is not None:
            embedded.stop()
    print("stopped: heaters off, event log closed", flush=True)
    return 0
