"""Running the controller in real time: the poll loop, the host watchdog, clean stops.

``ControllerRunner`` owns one thread that polls the controller and a second, independent
watchdog thread.  Between polls the thread sleeps in ``poll(2)`` on the board's port and
a wake-up pipe: it wakes the moment bytes arrive (a reading is handled as fast as with a
5 ms poll), the moment a command is recorded from another thread (an MQTT or dashboard
heat-off reaches the board without waiting for a timer), and otherwise when
``Controller.next_due`` says something is due by time alone: a control cycle, a history
sample, a retransmission, the output refresh, the stale-telemetry and control-stall
limits.  ``idle_s`` (0.25 s of the controller's clock) bounds the sleep for anything not
announced there.  Polling every 5 ms whether or not anything had arrived was most of the
controller's CPU; waking every 50 ms to look was still most of a fleet's (200 tables on
two cores: 23 polls a second per table for 5 telemetry reports).

If the poll thread stops completing control
cycles (a hang, a deadlock, a long GC pause), the watchdog cuts the heaters itself: it
writes SET_OUTPUTS 0 and SET_RELAY open straight to the board, without the link's lock
that the hung thread may hold.  The board's own dead-man (3 s) is the layer below that.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

from firmware_bridge import protocol as p
from hydrotherm.clock import heartbeat, leave

from .service import Controller

#: the longest the poll thread sleeps without bytes from the board or a due time, in the
#: controller's clock time: a bound for anything ``Controller.next_due`` does not announce
IDLE_CLOCK_S = 0.25


class ControllerRunner:
    """Poll thread + watchdog thread around one ``Controller``."""

    def __init__(self, controller: Controller, poll_s: float = 0.005,
                 on_watchdog: Callable[[str], None] | None = None,
                 idle_s: float | None = None) -> None:
        self.controller = controller
        self.poll_s = poll_s
        # a ScaledClock (``demo --speed``) runs ``speed`` times faster: what is due every
        # 50 ms of its time is due every 50 ms / speed of ours
        self._speed = float(getattr(controller.clock, "speed", 1.0)) or 1.0
        if idle_s is None:
            idle_s = IDLE_CLOCK_S / self._speed
        self.idle_s = max(poll_s, idle_s)
        # written by a command from another thread, so the sleeping poll thread acts on
        # it at once (``_wake``); made by ``start``, closed by ``stop``
        self._wake_r = self._wake_w = -1
        self._poll_ident: int | None = None
        self.on_watchdog = on_watchdog
        self._stop = threading.Event()
        self._last_progress = time.monotonic()
        self._poll_thread: threading.Thread | None = None
        self._watchdog_thread: threading.Thread | None = None
        self.watchdog_fired = 0
        #: How long the loop had been stalled when the watchdog last cut (its own
        #: monotonic timestamps), e.g. to check it acted before the board's dead-man.
        self.cut_after_s: float | None = None
        self.error: BaseException | None = None

    def start(self) -> ControllerRunner:
        # both ends non-blocking: a full pipe already wakes the thread
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.controller.listeners.append(self._wake)
        self.controller.start()
        self._poll_thread = threading.Thread(target=self._poll_loop, name="controller",
                                             daemon=True)
        self._watchdog_thread = threading.Thread(target=self._watchdog_loop,
                                                 name="controller-watchdog", daemon=True)
        self._poll_thread.start()
        self._watchdog_thread.start()
        return self

    def stop(self) -> None:
        """Heaters off, relay open, log closed (the controller's own ``stop``)."""
        self._stop.set()
        if self._poll_thread:
            self._poll_thread.join(timeout=5)
        if self._watchdog_thread:
            self._watchdog_thread.join(timeout=5)
        self.controller.stop()
        if self._wake in self.controller.listeners:
            self.controller.listeners.remove(self._wake)
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _wake(self, ev: dict[str, object]) -> None:
        """A controller listener: an event recorded by another thread (a command) wakes
        the poll thread.  Its own events and the per-cycle ``state`` notices do not."""
        if ev.get("type") != "event" or threading.get_ident() == self._poll_ident:
            return
        try:
            os.write(self._wake_w, b"!")
        except OSError:  # full (already woken) or closed (stopping)
            pass

    def _poll_loop(self) -> None:
        c = self.controller
        # A paced demo clock (``hydrotherm.clock.PacedClock``) waits for this loop.
        name = f"controller-{id(self):x}"
        self._poll_ident = threading.get_ident()
        beat = heartbeat(c.clock, name)
        try:
            self._poll_until_stopped(c, beat)
        finally:
            leave(c.clock, name)

    def _poll_until_stopped(self, c: Controller, beat: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                c.poll()
            except Exception as exc:  # noqa: BLE001 - keep the heaters safe, report
                self.error = exc
                self._cut("controller poll raised " + type(exc).__name__ + f": {exc}")
                self._stop.wait(0.5)
                continue
            self._last_progress = time.monotonic()
            beat()
            self._wait(self._last_progress)

    def _wait(self, polled_at: float) -> None:
        """Until the board sends something, at most ``idle_s``, and never sooner than
        ``poll_s`` after the last poll (so a port that stays readable, a hung-up pty,
        costs no more than the old fixed poll).  A plain ``poll_s`` sleep if the port has
        no file descriptor (or there is no port: reconnecting)."""
        c = self.controller
        fd = _fileno(c.link._port)  # noqa: SLF001 - only to wait on it
        if fd is not None:
            # no later than the next thing due by time (control cycle, link timers, ...)
            due_in = (c.next_due() - c.clock.now()) / self._speed
            timeout = max(0.0, min(self.idle_s, due_in))
            try:
                # poll(), not select(): select cannot wait on descriptors above 1023
                waiter = select.poll()
                waiter.register(fd, select.POLLIN)
                waiter.register(self._wake_r, select.POLLIN)
                if waiter.poll(timeout * 1000):
                    os.read(self._wake_r, 64)
            except (OSError, ValueError):  # closed under us, or nothing to drain
                pass
        rest = self.poll_s - (time.monotonic() - polled_at)
        if rest > 0:
            self._stop.wait(rest)

    def _watchdog_loop(self) -> None:
        # Shorter than the board's dead-man, so this layer acts before the one below it.
        limit = self.controller.cfg.control.watchdog_s
        while not self._stop.wait(min(0.25, limit / 4)):
            stalled_for = time.monotonic() - self._last_progress
            if stalled_for > limit:
                self.cut_after_s = stalled_for
                self._cut(f"control loop stalled for {stalled_for:.1f} s")
                self._last_progress = time.monotonic()  # repeat while it stays hung

    def _cut(self, why: str) -> None:
        """Write 0 % and relay-open frames directly to the port (no link lock)."""
        self.watchdog_fired += 1
        link = self.controller.link
        port = link._port  # noqa: SLF001 - deliberately bypasses the lock
        if port is not None:
            try:
                # Two sequence numbers: the board treats a repeat of its last (seq, type)
                # as a retransmission, so at least one of these is applied for certain.
                port.write(p.encode(0xEE, p.SetOutputs(0, 0)))
                port.write(p.encode(0xEF, p.SetOutputs(0, 0)))
                port.write(p.encode(0xF0, p.SetRelay(False)))
            except Exception:  # noqa: BLE001 - the board's dead-man is the next layer
                pass
        if self.on_watchdog is not None:
            self.on_watchdog(why)


def _fileno(port: object) -> int | None:
    if port is None:
        return None
    try:
        fd = port.fileno()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - not every pyserial URL handler has one
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None
