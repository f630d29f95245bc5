"""The MQTT topic tree, in one place for the publisher, the consumer and the docs.

Everything lives under ``<prefix>/<table_id>/`` (``hydrotherm/table0/...``); see
``docs/mqtt.md`` for payloads.  Both sides build topic names only through this module, so
they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

COMMANDS = ("setpoint", "heat", "reset", "schedule")
#: read-only requests answered on the result topic from the controller's event log
QUERIES = ("history", "events")
#: per-cushion single-value topics (retained), for consumers that want one number each
VALUES = ("water_c", "setpoint_c", "heat", "mode", "action", "output_pct", "ready_in_min",
          "trip", "trip_reason", "problem", "alarm", "heat_state", "heat_state_detail",
          "reset_allowed")
ONLINE, OFFLINE = "online", "offline"


@dataclass(frozen=True)
class Topics:
    prefix: str
    table_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.table_id}"

    @property
    def status(self) -> str:
        """``online``/``offline``, retained; the last will says ``offline``."""
        return f"{self.base}/status"

    @property
    def readings(self) -> str:
        """``online`` while the board link is healthy, else ``offline`` (retained)."""
        return f"{self.base}/readings"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def result(self) -> str:
        return f"{self.base}/result"

    @property
    def refusal(self) -> str:
        """The last refused command (JSON, retained), for screens such as Home Assistant
        that send a command and never read the result topic."""
        return f"{self.base}/refusal"

    def command(self, name: str) -> str:
        return f"{self.base}/cmd/{name}"

    @property
    def command_filter(self) -> str:
        return f"{self.base}/cmd/+"

    def value(self, cushion: int, name: str) -> str:
        return f"{self.base}/cushion/{cushion}/{name}"

    def value_set(self, cushion: int, name: str) -> str:
        """Plain-payload command topics for Home Assistant (``setpoint_c``, ``mode``,
        ``reset``)."""
        return f"{self.base}/cushion/{cushion}/{name}/set"

    @property
    def value_set_filter(self) -> str:
        return f"{self.base}/cushion/+/+/set"


def fleet_filters(prefix: str) -> list[str]:
    """What a consumer of every table subscribes to."""
    return [f"{prefix}/+/status", f"{prefix}/+/state", f"{prefix}/+/readings",
            f"{prefix}/+/events", f"{prefix}/+/result"]


def split(prefix: str, topic: str) -> tuple[str, str] | None:
    """``hydrotherm/t1/state`` -> ``("t1", "state")``; None if not ours."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != prefix:
        return None
    return parts[1], "/".join(parts[2:])
