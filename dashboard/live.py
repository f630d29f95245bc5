"""Live updates: FleetClient changes -> one bounded queue per browser -> Server-Sent Events.

The FleetClient calls ``Broadcaster._on_fleet`` from paho's network thread.  That call
must never block: it builds each message once (JSON text), then appends it to every
interested subscriber's queue.  A queue is a bounded deque: when a slow browser falls
behind, the oldest messages are dropped (each ``table`` message is a complete picture,
so the newest one is all a page needs) and the drop is counted.

Each browser's request thread runs ``sse_stream``: it waits on its own queue, writes
whatever arrived, and writes a comment line every ``heartbeat_s`` when nothing did, which
keeps proxies and waitress's channel timeout from closing an idle stream and lets the
server notice a browser that went away (the write fails, the generator is closed, the
subscriber removed).  Every waiting stream holds one server thread, so the number of
streams is capped below the server's thread count, leaving threads for ordinary requests.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from controller.mqtt.fleet import FleetClient
from hydrotherm.config import Config

from .present import present_event, present_table

log = logging.getLogger(__name__)

QUEUE_LEN = 64


class Subscriber:
    """One browser's queue.  ``table_id`` None: every table."""

    def __init__(self, table_id: str | None, maxlen: int = QUEUE_LEN) -> None:
        self.table_id = table_id
        self.queue: deque[str] = deque(maxlen=maxlen)
        self.cond = threading.Condition()
        self.dropped = 0
        self.delivered = 0
        self.closed = False

    def put(self, message: str) -> bool:
        """Never blocks; returns False when an old message had to make room."""
        with self.cond:
            full = len(self.queue) == self.queue.maxlen
            if full:
                self.dropped += 1
            self.queue.append(message)
            self.cond.notify()
        return not full

    def take(self, timeout_s: float) -> list[str]:
        """Everything queued, waiting up to ``timeout_s`` for something (may be [])."""
        with self.cond:
            if not self.queue and not self.closed:
                self.cond.wait(timeout_s)
            items = list(self.queue)
            self.queue.clear()
        self.delivered += len(items)
        return items

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One Server-Sent Event as text (``data`` as one line of JSON)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Broadcaster:
    """Fans the FleetClient's changes out to the live browsers."""

    def __init__(self, cfg: Config, fleet: FleetClient, max_clients: int,
                 queue_len: int = QUEUE_LEN,
                 on_change: Callable[[str, int], None] | None = None) -> None:
        self.cfg = cfg
        self.fleet = fleet
        self.max_clients = max_clients
        self.queue_len = queue_len
        self.on_change = on_change  # (what, amount): "clients" or "dropped", for metrics
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.closed = threading.Event()
        self.published = 0
        fleet.listeners.append(self._on_fleet)

    # --- subscribers -----------------------------------------------------------------------

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subs)

    def subscribe(self, table_id: str | None) -> Subscriber | None:
        """A new queue, or None when the server has no thread to spare for another."""
        with self._lock:
            if self.closed.is_set() or len(self._subs) >= self.max_clients:
                return None
            sub = Subscriber(table_id, self.queue_len)
            self._subs.add(sub)
        self._changed("clients", 1)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            if sub not in self._subs:
                return
            self._subs.discard(sub)
        sub.close()
        self._changed("clients", -1)

    def close(self) -> None:
        """Stop listening and end every stream (server shutdown)."""
        self.closed.set()
        try:
            self.fleet.listeners.remove(self._on_fleet)
        except ValueError:
            pass
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    def _changed(self, what: str, amount: int) -> None:
        if self.on_change is not None:
            try:
                self.on_change(what, amount)
            except Exception:  # noqa: BLE001 - metrics must not break delivery
                log.exception("metrics hook failed")

    # --- messages --------------------------------------------------------------------------

    def table_message(self, table_id: str) -> dict[str, Any]:
        view = self.fleet.table(table_id)
        return present_table(self.cfg, view.as_dict() if view else None,
                             self.fleet.broker_connected, self.fleet.last_error, table_id)

    def initial(self, table_id: str | None) -> list[str]:
        """What a new stream starts with: the broker state and the current picture."""
        out = [sse("broker", {"connected": self.fleet.broker_connected,
                              "error": self.fleet.last_error})]
        ids = [table_id] if table_id is not None else sorted(self.fleet.snapshot())
        for tid in ids:
            out.append(sse("table", self.table_message(tid)))
        return out

    def _on_fleet(self, table_id: str, leaf: str, value: Any) -> None:
        """From paho's thread: build once, queue everywhere, never block."""
        try:
            if leaf == "broker":
                targets: str | None = None
                msgs = [sse("broker", {"connected": value == "online",
                                       "error": self.fleet.last_error}, next(self._ids))]
                # every table's connection banner changes with the broker
                for tid in sorted(self.fleet.snapshot()):
                    msgs.append(sse("table", self.table_message(tid), next(self._ids)))
                self._fan_out(targets, "".join(msgs), per_table=False)
                return
            if leaf in ("status", "readings", "state"):
                msg = sse("table", self.table_message(table_id), next(self._ids))
            elif leaf == "events" and isinstance(value, dict):
                msg = sse("event", {"table_id": table_id,
                                    **present_event(self.cfg, value)}, next(self._ids))
            else:
                return
            self._fan_out(table_id, msg, per_table=True)
        except Exception:  # noqa: BLE001 - never let a bad message reach paho
            log.exception("live update failed for %s/%s", table_id, leaf)

    def _fan_out(self, table_id: str | None, msg: str, per_table: bool) -> None:
        with self._lock:
            subs = list(self._subs)
        self.published += 1
        dropped = 0
        for sub in subs:
            if per_table and sub.table_id is not None and sub.table_id != table_id:
                continue
            if not sub.put(msg):
                dropped += 1
        if dropped:
            self._changed("dropped", dropped)


def sse_stream(broadcaster: Broadcaster, sub: Subscriber, table_id: str | None,
               heartbeat_s: float) -> Iterator[bytes]:
    """The body of one ``text/event-stream`` response."""
    try:
        yield b"retry: 3000\n\n"
        for msg in broadcaster.initial(table_id):
            yield msg.encode()
        while not sub.closed:
            items = sub.take(heartbeat_s)
            if sub.closed:
                break
            if items:
                yield "".join(items).encode()
            else:
                yield b": keep-alive\n\n"
    finally:
        broadcaster.unsubscribe(sub)
