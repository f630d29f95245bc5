"""A consumer of every table on a broker: the latest state of each, and commands to them.

The dashboard is built on this.  It subscribes to the retained ``status``, ``readings``
and ``state`` topics of every table under a prefix (so it knows the whole clinic the
moment it connects), follows ``events`` and ``result``, and sends commands with a
request id, returning the controller's reply.

Every payload is checked (``fleet_payloads``) before it is believed: a malformed one is
logged and dropped.  A table that has been silent for a while can be forgotten
(``forget``); its retained topics do not bring it back, only a live message does.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from hydrotherm.config import MqttConfig

from .client import BrokerAddress, connect_kwargs, make_client
from .fleet_payloads import (
    PayloadError,
    check_event,
    check_result,
    check_state,
    check_status,
)
from .topics import OFFLINE, ONLINE, Topics, fleet_filters, split

log = logging.getLogger(__name__)

#: a table id is one printable topic level of at most this many characters
MAX_TABLE_ID = 64
#: at most this many tables are tracked (fake ids cannot grow memory without bound)
MAX_TABLES = 1000
#: a dropped payload is logged at most this often per table (a flood must not flood the log)
LOG_EVERY_S = 10.0


@dataclass
class TableView:
    """What a consumer knows of one table."""

    table_id: str
    status: str = "unknown"  # online | offline | unknown (never heard)
    readings: str = "unknown"
    state: dict[str, Any] | None = None
    state_received_at: float | None = None
    state_updates: int = 0
    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=500))
    #: wall time of the last message from a live publisher (not a retained replay)
    last_live_at: float | None = None
    first_seen_at: float = field(default_factory=time.time)
    rejected: int = 0

    def silent_s(self, now: float | None = None) -> float:
        """Seconds since the table last said anything live (since first seen if never)."""
        now = time.time() if now is None else now
        return now - (self.last_live_at if self.last_live_at is not None
                      else self.first_seen_at)

    @property
    def online(self) -> bool:
        return self.status == ONLINE

    def as_dict(self) -> dict[str, Any]:
        return {"table_id": self.table_id, "status": self.status, "readings": self.readings,
                "state": self.state, "state_received_at": self.state_received_at,
                "state_updates": self.state_updates, "last_live_at": self.last_live_at}


class FleetClient:
    """Keeps every table's latest state; thread-safe; listeners hear every change."""

    def __init__(self, cfg: MqttConfig, address: BrokerAddress,
                 client_id: str | None = None) -> None:
        self.cfg = cfg
        self.address = address
        self.prefix = cfg.prefix
        client_id = client_id or f"hydrotherm-view-{uuid.uuid4().hex[:8]}"
        self.client = make_client(cfg, address, client_id)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.tables: dict[str, TableView] = {}
        self.connected = threading.Event()
        self.connected_at: float | None = None  # monotonic time of the latest connection
        self.last_error = ""
        self._lock = threading.RLock()
        self._waiting: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self.listeners: list[Callable[[str, str, Any], None]] = []
        self.messages = 0
        self.rejected = 0
        self._forgotten: set[str] = set()
        self._logged_at: dict[str, float] = {}

    def start(self) -> FleetClient:
        self.client.connect_async(self.address.host, self.address.port,
                                  keepalive=self.cfg.keepalive_s, **connect_kwargs(self.cfg))
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    @property
    def broker_connected(self) -> bool:
        return self.connected.is_set()

    def table(self, table_id: str) -> TableView | None:
        with self._lock:
            return self.tables.get(table_id)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {tid: tv.as_dict() for tid, tv in sorted(self.tables.items())}

    def forget(self, table_id: str) -> bool:
        """Drop a table from the fleet (True if it was known).  Its retained topics do not
        bring it back; the next live message from it does."""
        with self._lock:
            view = self.tables.pop(table_id, None)
            if view is None:
                return False
            self._forgotten.add(table_id)
            if len(self._forgotten) > MAX_TABLES:
                self._forgotten.clear()  # a bounded memory of what was forgotten
        self._notify(table_id, "forgotten", None)
        return True

    def forget_silent(self, older_than_s: float, settle_s: float = 60.0) -> list[str]:
        """Forget every table silent for longer than ``older_than_s``; returns their ids.
        Nothing is forgotten while the broker is away, nor in the first ``settle_s`` after
        a (re)connection (silence then says nothing about a table)."""
        since = self.connected_at
        if not self.broker_connected or since is None or time.monotonic() - since < settle_s:
            return []
        now = time.time()
        with self._lock:
            gone = [tid for tid, v in self.tables.items() if v.silent_s(now) > older_than_s]
        return [tid for tid in gone if self.forget(tid)]

    # --- commands --------------------------------------------------------------------------

    def command(self, table_id: str, name: str, body: dict[str, Any],
                timeout_s: float = 5.0) -> dict[str, Any]:
        """Send a command and wait for the controller's reply.  A missing reply gives
        ``{"ok": False, "error": "no reply ..."}``; nothing here raises for the broker."""
        request_id = uuid.uuid4().hex[:16]
        payload = {**body, "request_id": request_id, "sent_at": time.time()}
        done = threading.Event()
        box: list[dict[str, Any]] = []
        with self._lock:
            self._waiting[request_id] = (done, box)
        try:
            if not self.connected.is_set():
                return {"ok": False, "request_id": request_id,
                        "error": "broker unreachable: command not sent"}
            topic = Topics(self.prefix, table_id).command(name)
            info = self.client.publish(topic, json.dumps(payload), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                return {"ok": False, "request_id": request_id,
                        "error": f"broker refused the publish ({mqtt.error_string(info.rc)})"}
            if not done.wait(timeout_s):
                view = self.table(table_id)
                why = "the table is offline" if view is None or not view.online \
                    else "the controller did not answer"
                return {"ok": False, "request_id": request_id,
                        "error": f"no reply within {timeout_s:.0f} s: {why}"}
            return box[0]
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    # --- paho callbacks --------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        try:
            if reason_code.is_failure:
                self.last_error = f"broker refused the connection: {reason_code}"
                return
            self.last_error = ""
            client.subscribe([(f, 1) for f in fleet_filters(self.prefix)])
            self.connected_at = time.monotonic()
            self.connected.set()
            self._notify("", "broker", ONLINE)
        except Exception:  # noqa: BLE001
            log.exception("on_connect failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self.connected.clear()
        self._notify("", "broker", OFFLINE)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._handle(msg)
        except Exception:  # noqa: BLE001
            log.exception("bad message on %s", msg.topic)

    def _handle(self, msg: mqtt.MQTTMessage) -> None:
        parts = split(self.prefix, msg.topic)
        if parts is None:
            return
        table_id, leaf = parts
        self.messages += 1
        if not table_id or len(table_id) > MAX_TABLE_ID or not table_id.isprintable():
            self._reject(table_id[:MAX_TABLE_ID], leaf, "not a valid table id")
            return
        try:
            value = self._parse(leaf, msg.payload)
        except PayloadError as exc:
            self._reject(table_id, leaf, str(exc))
            return
        with self._lock:
            view = self.tables.get(table_id)
            if view is None:
                if not msg.payload or leaf == "result" or (
                        msg.retain and table_id in self._forgotten):
                    return
                if len(self.tables) >= MAX_TABLES:
                    self._reject(table_id, leaf, f"more than {MAX_TABLES} tables")
                    return
                self._forgotten.discard(table_id)
                view = self.tables[table_id] = TableView(table_id)
            if not msg.retain:
                view.last_live_at = time.time()
            if leaf == "status":
                view.status = value
            elif leaf == "readings":
                view.readings = value
            elif leaf == "state":
                view.state = value
                view.state_received_at = time.time()
                view.state_updates += 1
            elif leaf == "events":
                view.events.append(value)
            elif leaf == "result":
                waiting = self._waiting.get(value["request_id"])
                if waiting is not None:
                    waiting[1].append(value)
                    waiting[0].set()
            else:
                return
        self._notify(table_id, leaf, value)

    @staticmethod
    def _parse(leaf: str, payload: bytes) -> Any:
        if leaf in ("status", "readings"):
            return check_status(payload)
        if leaf == "state":
            return check_state(payload)
        if leaf == "events":
            return check_event(payload)
        if leaf == "result":
            return check_result(payload)
        return None

    def _reject(self, table_id: str, leaf: str, why: str) -> None:
        """Count and log a dropped payload (at most once per LOG_EVERY_S per table)."""
        self.rejected += 1
        with self._lock:
            view = self.tables.get(table_id)
            if view is not None:
                view.rejected += 1
            now = time.monotonic()
            if now - self._logged_at.get(table_id, -LOG_EVERY_S) < LOG_EVERY_S:
                return
            if len(self._logged_at) > MAX_TABLES:
                self._logged_at.clear()
            self._logged_at[table_id] = now
        log.warning("ignored a malformed %s payload for table %r: %s", leaf, table_id, why)

    def _notify(self, table_id: str, leaf: str, value: Any) -> None:
        for fn in list(self.listeners):
            try:
                fn(table_id, leaf, value)
            except Exception:  # noqa: BLE001 - a listener must not break the client
                log.exception("fleet listener failed")
