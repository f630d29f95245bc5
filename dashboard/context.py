"""What the views share: the ``Dashboard`` object in ``app.extensions["hydrotherm"]``.

Its own module so that ``app`` (the pages) and ``api`` (the JSON API) both use it without
importing each other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.mqtt.fleet import FleetClient
from hydrotherm.config import Config

from .alerts import AckLog
from .auth import LoginThrottle, UserStore
from .live import Broadcaster
from .metrics import Metrics
from .present import present_table
from .presets import PresetStore
from .sessions import SessionStore
from .timers import SessionTimers

log = logging.getLogger(__name__)

#: A live stream writes a comment line this often when nothing else happens; well below
#: waitress's channel timeout and common proxy idle timeouts.
HEARTBEAT_S = 15.0

#: The demo's fault/client buttons: (name, parameters) -> result (demo mode only).
DemoActions = Callable[[str, dict[str, Any]], dict[str, Any]]

#: how often gone tables are looked for when ``dashboard.forget_gone_tables`` is on
FORGET_CHECK_S = 30.0


@dataclass
class Dashboard:
    """Everything the views share (``app.extensions["hydrotherm"]``)."""

    cfg: Config
    fleet: FleetClient
    users: UserStore
    broadcaster: Broadcaster
    metrics: Metrics
    limiter: LoginThrottle
    sessions: SessionStore
    demo: bool = False
    demo_actions: DemoActions | None = None
    heartbeat_s: float = HEARTBEAT_S
    started: float = field(default_factory=time.time)
    forget_checked: float = 0.0
    #: the therapist's tools and alerts (``tools_api``); set by ``create_app``
    acks: AckLog = field(init=False)
    presets: PresetStore = field(init=False)
    timers: SessionTimers = field(init=False)

    def default_table(self) -> str:
        known = self.fleet.snapshot()
        want = self.cfg.mqtt.table_id
        if want in known or not known:
            return want
        return next(iter(known))

    def presented(self, table_id: str) -> dict[str, Any]:
        view = self.fleet.table(table_id)
        try:
            return present_table(self.cfg, view.as_dict() if view else None,
                                 self.fleet.broker_connected, self.fleet.last_error, table_id)
        except Exception:  # noqa: BLE001 - one odd table must not break a whole page
            log.exception("cannot present table %r", table_id)
            shown = present_table(self.cfg, None, self.fleet.broker_connected,
                                  self.fleet.last_error, table_id)
            shown["problems"].append({"level": "error", "code": "unreadable",
                                      "text": "This table's last message could not be "
                                              "read: its state is unknown."})
            return shown

    @property
    def gone_after_s(self) -> float:
        return self.cfg.dashboard.table_gone_after_min * 60

    def forget_gone(self) -> None:
        """With ``dashboard.forget_gone_tables``: drop tables silent for too long (checked
        at most every FORGET_CHECK_S, from requests)."""
        if not self.cfg.dashboard.forget_gone_tables:
            return
        now = time.monotonic()
        if now - self.forget_checked < FORGET_CHECK_S:
            return
        self.forget_checked = now
        settle = max(60.0, 3 * self.cfg.mqtt.state_interval_s)
        for tid in self.fleet.forget_silent(self.gone_after_s, settle):
            log.info("table %r forgotten: silent for over %.0f min", tid,
                     self.cfg.dashboard.table_gone_after_min)

    def close(self) -> None:
        self.broadcaster.close()
        timers = getattr(self, "timers", None)
        if timers is not None:
            timers.close()
