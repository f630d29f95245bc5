"""Slow clients must not exhaust the server: a per-address cap and a request deadline.

waitress bounds the total (``connection_limit``: beyond it, new connections wait in the
listen backlog) and closes connections idle between requests (``channel_timeout``).  It
has no cap per client address, and its idle timer is reset by every byte, so a
"slowloris" client sending one header byte every few seconds holds its connection for
ever; 140 of them used to fill the connection limit and take the dashboard down.  This
module adds, as a waitress channel class:

* a cap on the open connections of one address (``dashboard.connections_per_address``):
  a connection over the cap gets an immediate ``503`` and is closed.  Trusted reverse
  proxies are exempt (every browser behind one shares its address); the proxy is the
  place to limit its own clients;
* a deadline for each request to arrive complete, headers and body
  (``dashboard.request_timeout_s``), counted from its first byte, or from the connection's
  opening for its first request; a connection that misses it is closed.

The asyncore loop asks every channel ``readable()`` at least once a second
(``asyncore_loop_timeout``), which is where the deadline is checked; all of this runs on
the loop's own thread, so the per-address counts need no lock.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from waitress.channel import HTTPChannel

from .proxy import Network, is_trusted

OVER_CAP_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n"
                     b"Content-Type: text/plain; charset=utf-8\r\nRetry-After: 5\r\n"
                     b"Content-Length: 53\r\n\r\n"
                     b"Too many open connections from your address: retry.\n")


class ConnectionGuard:
    """The limits and the per-address counts one server shares among its channels."""

    def __init__(self, per_address: int, request_timeout_s: float,
                 exempt: Iterable[Network] = ()) -> None:
        self.per_address = per_address
        self.request_timeout_s = request_timeout_s
        self.exempt = tuple(exempt)
        self.open: Counter[str] = Counter()
        self.refused = 0  # connections turned away over the per-address cap
        self.timed_out = 0  # connections closed for missing the request deadline

    def admit(self, address: str) -> bool:
        if is_trusted(address, self.exempt):
            self.open[address] += 1
            return True
        if self.open[address] >= self.per_address:
            self.refused += 1
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


class GuardedChannel(HTTPChannel):
    """waitress's HTTP channel with the guard's cap and deadline (see the module)."""

    guard: ConnectionGuard  # set on the subclass made by ``guarded_channel``

    def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:
        super().__init__(server, sock, addr, adj, map)
        self.address = str(addr[0]) if isinstance(addr, tuple) and addr else str(addr)
        self.admitted = self.guard.admit(self.address)
        #: when the request now arriving began (None: not waiting for one)
        self.request_since: float | None = self.creation_time
        if not self.admitted:
            self.request_since = None
            with self.outbuf_lock:
                self.outbufs[-1].append(OVER_CAP_RESPONSE)
                self.total_outbufs_len += len(OVER_CAP_RESPONSE)
            self.close_when_flushed = True

    def received(self, data: bytes) -> bool:
        started = self.request_since if self.request_since is not None else time.time()
        out = bool(super().received(data))
        partial = self.request is not None and not self.request.completed
        self.request_since = started if partial else None
        return out

    def readable(self) -> bool:
        since = self.request_since
        if since is not None and not self.will_close \
                and time.time() - since > self.guard.request_timeout_s:
            self.guard.timed_out += 1
            self.request_since = None
            self.will_close = True  # writable() is now true: the loop closes it
        return bool(super().readable())

    def del_channel(self, map: Any = None) -> None:
        if self.admitted:
            self.admitted = False
            self.guard.release(self.address)
        super().del_channel(map)


def guarded_channel(guard: ConnectionGuard) -> type[GuardedChannel]:
    """A channel class bound to ``guard`` (one per server)."""
    return type("GuardedChannel", (GuardedChannel,), {"guard": guard})
