"""What the views share: the ``Dashboard`` object in ``app.extensions["hydrotherm"]``.

Its own module so that ``app`` (the pages) and ``api`` (the JSON API) both use it without
importing each other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.mqtt.fleet import FleetClient
from hydrotherm.config import Config

from .auth import LoginLimiter, UserStore
from .live import Broadcaster
from .metrics import Metrics
from .present import present_table

#: A live stream writes a comment line this often when nothing else happens; well below
#: waitress's channel timeout and common proxy idle timeouts.
HEARTBEAT_S = 15.0

#: The demo's fault/client buttons: (name, parameters) -> result (demo mode only).
DemoActions = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass
class Dashboard:
    """Everything the views share (``app.extensions["hydrotherm"]``)."""

    cfg: Config
    fleet: FleetClient
    users: UserStore
    broadcaster: Broadcaster
    metrics: Metrics
    limiter: LoginLimiter
    demo: bool = False
    demo_actions: DemoActions | None = None
    heartbeat_s: float = HEARTBEAT_S
    started: float = field(default_factory=time.time)

    def default_table(self) -> str:
        known = self.fleet.snapshot()
        want = self.cfg.mqtt.table_id
        if want in known or not known:
            return want
        return next(iter(known))

    def presented(self, table_id: str) -> dict[str, Any]:
        view = self.fleet.table(table_id)
        return present_table(self.cfg, view.as_dict() if view else None,
                             self.fleet.broker_connected, self.fleet.last_error, table_id)

    def close(self) -> None:
        self.broadcaster.close()
