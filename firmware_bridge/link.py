"""The host's link to one heater board over any pyserial URL.

``BoardLink`` is poll-driven: the owner calls ``poll()`` often (every few milliseconds
in real time, every simulation step in-process).  Each poll (re)opens the port with
back-off, reads and parses what arrived, converts telemetry to °C, retransmits commands
whose ACK is late, and re-sends the heater outputs before the board's dead-man expires.

Every failure is reported upward at once, as a ``LinkEvent`` and through ``healthy``,
so the controller can treat it as "heater off": the port vanishing, a handshake that
fails or meets an incompatible board, telemetry going stale, a command that exhausts its
retries or is refused, a board fault, a board reset.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial

from hydrotherm.clock import Clock
from hydrotherm.config import LinkConfig

from . import protocol as p
from .thermistor import SensorReading, Thermistor


class LinkState(enum.Enum):
    DISCONNECTED = "disconnected"
    HANDSHAKING = "handshaking"
    CONNECTED = "connected"
    INCOMPATIBLE = "incompatible"


class IncompatibleBoardError(RuntimeError):
    """The board speaks a protocol major version this host does not."""


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Something the controller must hear about.  ``kind`` is one of: connected,
    disconnected, incompatible, handshake_failed, stale, command_failed, command_refused,
    board_fault, board_reset."""

    kind: str
    time: float
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CushionReading:
    primary: SensorReading
    redundant: SensorReading
    applied: float  # fraction 0..1 actually driven by the board
    cutout_open: bool
    #: the heater plate's sensor (protocol 1.1); None from a 1.0 board, which has none
    plate: SensorReading | None = None


@dataclass(frozen=True, slots=True)
class BoardReading:
    """One telemetry report, converted; ``time`` is the host clock when it arrived."""

    time: float
    uptime_ms: int
    cushions: tuple[CushionReading, CushionReading]
    relay_closed: bool
    faults: int
    raw: p.Telemetry
    #: the room sensor (protocol 1.1); None from a 1.0 board, which has none
    room: SensorReading | None = None

    @property
    def fault_names(self) -> list[str]:
        return p.fault_names(self.faults)


@dataclass
class LinkCounters:
    """Running totals kept across reconnects; later published over MQTT."""

    frames_rx: int = 0
    frames_tx: int = 0
    crc_errors: int = 0
    resyncs: int = 0
    oversized: int = 0
    decode_errors: int = 0
    lost_frames: int = 0
    retransmissions: int = 0
    timeouts: int = 0
    refusals: int = 0
    reconnects: int = 0
    telemetry: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    msg: p.Message
    seq: int
    sent_at: float = 0.0
    tries: int = 0


Opener = Callable[[str], Any]


def open_serial(url: str, baudrate: int = 115200) -> Any:
    """Open a pyserial URL non-blocking: ``/dev/ttyUSB0``, a pty path, ``socket://h:p``."""
    return serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=0.5)


class BoardLink:
    """A self-reconnecting link to one board.  Thread-safe: commands may come from any
    thread while one thread polls."""

    def __init__(self, cfg: LinkConfig, thermistor: Thermistor, clock: Clock,
                 url: str | None = None, opener: Opener | None = None,
                 on_event: Callable[[LinkEvent], None] | None = None) -> None:
        self.cfg = cfg
        self.therm = thermistor
        self.clock = clock
        self.url = url if url is not None else cfg.port
        self._opener = opener or (lambda u: open_serial(u, cfg.baudrate))
        self._listeners: list[Callable[[LinkEvent], None]] = [on_event] if on_event else []
        self._lock = threading.RLock()
        self.state = LinkState.DISCONNECTED
        self.error = ""
        self.identity: p.Identity | None = None
        self.latest: BoardReading | None = None
        self.counters = LinkCounters()
        self._port: Any = None
        self._parser = p.FrameParser()
        self._parser_base = (0, 0, 0)
        self._tx_seq = 0
        self._rx_seq: int | None = None
        self._queue: deque[_Pending] = deque()
        self._inflight: _Pending | None = None
        self._outputs = (0, 0)  # permille wanted
        self._outputs_sent_at = float("-inf")
        self._outputs_dirty = True
        self._backoff = cfg.reconnect_min_s
        self._next_attempt = clock.now()
        self._last_rx = clock.now()
        self._opened_at = clock.now()
        self._stale_reported = False
        self._last_uptime = -1
        self.events: deque[LinkEvent] = deque(maxlen=1000)
        #: command-to-ACK round trips (seconds) of commands acknowledged on the first try
        self.rtt_s: deque[float] = deque(maxlen=1000)

    # --- public API ------------------------------------------------------------------------

    def add_listener(self, fn: Callable[[LinkEvent], None]) -> None:
        self._listeners.append(fn)

    @property
    def connected(self) -> bool:
        return self.state is LinkState.CONNECTED

    @property
    def healthy(self) -> bool:
        """Connected, and a valid telemetry report no older than ``stale_s``."""
        with self._lock:
            return (self.state is LinkState.CONNECTED and self.latest is not None
                    and self.clock.now() - self.latest.time <= self.cfg.stale_s)

    def set_outputs(self, ch0: float, ch1: float) -> None:
        """Wanted heater drive per channel, fraction 0..1; sent now and kept refreshed."""
        with self._lock:
            want = (_permille(ch0), _permille(ch1))
            if want != self._outputs:
                self._outputs = want
                self._outputs_dirty = True

    @property
    def outputs(self) -> tuple[float, float]:
        return (self._outputs[0] / 1000.0, self._outputs[1] / 1000.0)

    def set_relay(self, closed: bool) -> bool:
        """Queue SET_RELAY.  False (and a command_failed event) when not connected: a
        command is never held over a reconnect, where it could act on a changed board."""
        return self._command(p.SetRelay(closed))

    def command_pending(self, kind: type[p.Message]) -> bool:
        """A command of this type is queued or waiting for its ACK (retransmissions
        included).  Once it is not, the next TELEMETRY shows its effect: the board sends
        the ACK before the TELEMETRY of any later sample (protocol 5 and 9.1)."""
        with self._lock:
            return (self._inflight is not None and isinstance(self._inflight.msg, kind)) or \
                any(isinstance(q.msg, kind) for q in self._queue)

    def clear_faults(self, mask: int = p.ALL_FAULTS) -> bool:
        """Queue CLEAR_FAULTS; False when not connected (see ``set_relay``)."""
        return self._command(p.ClearFaults(mask))

    def _command(self, msg: p.Message) -> bool:
        with self._lock:
            if self.state is not LinkState.CONNECTED:
                self._emit("command_failed", f"{type(msg).__name__} not sent: link "
                                             f"{self.state.value}")
                return False
            self._queue.append(_Pending(msg, 0))
            return True

    def close(self) -> None:
        """Ask the board for 0 % on both channels (best effort), then close the port."""
        with self._lock:
            if self._port is not None and self.state is LinkState.CONNECTED:
                try:
                    self._port.write(p.encode(self._next_seq(), p.SetOutputs(0, 0)))
                    self._port.write(p.encode(self._next_seq(), p.SetRelay(False)))
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
            self._drop_port("closed by host", report=False)
            self.state = LinkState.DISCONNECTED

    def next_due(self) -> float:
        """Clock time of the next thing ``poll`` does by time alone, with no byte from the
        board: a retransmission, the output refresh, a queued command, a reconnect
        attempt, the stale report or the silence limit.  A runner that sleeps until bytes
        arrive wakes by then (a loop that polled every few milliseconds to catch these
        was most of a fleet's CPU)."""
        with self._lock:
            now = self.clock.now()
            if self._port is None:
                return now if self.state is not LinkState.INCOMPATIBLE and \
                    now >= self._next_attempt else self._next_attempt
            if self.state is LinkState.HANDSHAKING:
                due = self._opened_at + self.cfg.silence_reconnect_s
            else:
                due = self._last_rx + self.cfg.silence_reconnect_s
            pend = self._inflight
            if pend is not None:
                return min(due, pend.sent_at + self.cfg.ack_timeout_s)
            if self.state is LinkState.CONNECTED:
                if self._outputs_dirty:
                    return now
                due = min(due, self._outputs_sent_at + self.cfg.refresh_s)
                if not self._stale_reported:
                    last = self.latest.time if self.latest is not None else self._last_rx
                    due = min(due, last + self.cfg.stale_s)
            if self._queue:
                return now
            return due

    def poll(self) -> None:
        """Do everything that is due.  Never raises for port trouble: it reports it."""
        with self._lock:
            now = self.clock.now()
            if self._port is None:
                if self.state is LinkState.INCOMPATIBLE or now < self._next_attempt:
                    return
                self._open(now)
                if self._port is None:
                    return
            try:
                self._read(now)
                if self._port is not None:
                    self._transmit(now)
                    self._watch(now)
            except (serial.SerialException, OSError) as exc:
                self._drop_port(f"port error: {exc}")

    def wait_connected(self, timeout_s: float, step_s: float = 0.005) -> None:
        """Poll until connected (real time or a clock that ``sleep`` advances).
        Raises ``IncompatibleBoardError`` or ``TimeoutError`` with the reason."""
        deadline = self.clock.now() + timeout_s
        while True:
            self.poll()
            if self.state is LinkState.CONNECTED:
                return
            if self.state is LinkState.INCOMPATIBLE:
                raise IncompatibleBoardError(self.error)
            if self.clock.now() >= deadline:
                raise TimeoutError(f"no board answered on {self.url!r} within {timeout_s} s"
                                   + (f" ({self.error})" if self.error else ""))
            self.clock.sleep(step_s)

    # --- internals -------------------------------------------------------------------------

    def _emit(self, kind: str, detail: str = "", **data: Any) -> None:
        ev = LinkEvent(kind, self.clock.now(), detail, data)
        self.events.append(ev)
        for fn in self._listeners:
            try:
                fn(ev)
            except Exception:  # noqa: BLE001 - a listener must not break the link
                pass

    def _next_seq(self) -> int:
        s = self._tx_seq
        self._tx_seq = (s + 1) & 0xFF
        return s

    def _open(self, now: float) -> None:
        try:
            port = self._opener(self.url)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.error = f"cannot open {self.url!r}: {exc}"
            self._schedule_retry(now)
            return
        try:
            port.reset_input_buffer()
        except Exception:  # noqa: BLE001 - not every port type supports it
            pass
        self._port = port
        self.counters.reconnects += 1
        self._parser = p.FrameParser()
        self._rx_seq = None
        self._tx_seq = 0  # each connection's first frame, its HELLO, has SEQ 0 (protocol 5)
        self._queue.clear()
        self._inflight = None
        self._last_rx = now
        self._opened_at = now
        self._stale_reported = False
        self.latest = None
        self.state = LinkState.HANDSHAKING
        self._queue.append(_Pending(p.Hello(), 0))

    def _schedule_retry(self, now: float) -> None:
        self._next_attempt = now + self._backoff
        self._backoff = min(self._backoff * 2, self.cfg.reconnect_max_s)

    def _drop_port(self, reason: str, report: bool = True) -> None:
        was = self.state
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001
                pass
        self._fold_parser_counters()
        self._inflight = None
        self._queue.clear()
        self.latest = None
        self._outputs_dirty = True
        if was is not LinkState.INCOMPATIBLE:
            self.state = LinkState.DISCONNECTED
        self.error = reason
        self._schedule_retry(self.clock.now())
        if report and was in (LinkState.CONNECTED, LinkState.HANDSHAKING):
            self._emit("disconnected", reason)

    def _fold_parser_counters(self) -> None:
        c, par = self.counters, self._parser
        c.crc_errors += par.crc_errors
        c.resyncs += par.resyncs
        c.oversized += par.oversized
        par.crc_errors = par.resyncs = par.oversized = 0

    def _read(self, now: float) -> None:
        port = self._port
        n = port.in_waiting
        if not n:
            return
        frames = self._parser.feed(port.read(n))
        self._fold_parser_counters()
        for frame in frames:
            self._on_frame(frame, now)
            if self._port is None:
                return

    def _on_frame(self, frame: p.Frame, now: float) -> None:
        c = self.counters
        c.frames_rx += 1
        if self._rx_seq is not None:
            gap = (frame.seq - self._rx_seq - 1) & 0xFF
            if gap and gap < 128:
                c.lost_frames += gap
        self._rx_seq = frame.seq
        try:
            msg = frame.decode()
        except p.ProtocolError:
            c.decode_errors += 1
            return
        self._last_rx = now
        if isinstance(msg, p.Telemetry):
            self._on_telemetry(msg, now)
        elif isinstance(msg, p.Ack):
            self._on_ack(msg, now)
        elif isinstance(msg, p.Identity):
            self._on_identity(msg, now)
        elif isinstance(msg, p.FaultReport):
            self._emit("board_fault", ", ".join(p.fault_names(msg.raised)),
                       raised=msg.raised, active=msg.active)

    def _on_identity(self, ident: p.Identity, now: float) -> None:
        self.identity = ident
        if ident.proto_major != p.PROTOCOL_MAJOR:
            self.error = (f"incompatible board: it speaks protocol {ident.proto_major}."
                          f"{ident.proto_minor} (firmware {ident.firmware}, serial "
                          f"{ident.serial}); this host speaks {p.PROTOCOL_MAJOR}.x")
            self.state = LinkState.INCOMPATIBLE
            self._drop_port(self.error, report=False)
            self.state = LinkState.INCOMPATIBLE
            self._emit("incompatible", self.error)
            return
        if self.state is LinkState.HANDSHAKING:
            self.state = LinkState.CONNECTED
            self.error = ""
            self._backoff = self.cfg.reconnect_min_s
            self._outputs_dirty = True
            self._emit("connected", f"firmware {ident.firmware}, serial {ident.serial}, "
                                    f"reset cause {ident.reset_cause.name.lower()}",
                       serial=ident.serial, firmware=ident.firmware)

    def _on_ack(self, ack: p.Ack, now: float) -> None:
        pend = self._inflight
        if pend is None or ack.seq != pend.seq:
            return  # a late duplicate
        self._inflight = None
        if ack.status is p.AckStatus.OK:
            if pend.tries == 1:
                self.rtt_s.append(now - pend.sent_at)
            return
        if ack.status is p.AckStatus.INCOMPATIBLE_VERSION:
            return  # the IDENTITY that follows names the version
        self.counters.refusals += 1
        self._emit("command_refused", f"{type(pend.msg).__name__} refused by the board: "
                                      f"{ack.status.name.lower()}", status=ack.status.name)

    def _on_telemetry(self, t: p.Telemetry, now: float) -> None:
        self.counters.telemetry += 1
        read = self.therm.read
        a = t.adc
        plate: tuple[SensorReading | None, SensorReading | None] = (None, None)
        room = None
        if t.plate is not None and t.room is not None:  # the 1.1 layout
            wide = self.therm.read_rails_only
            plate = (wide(t.plate[0]), wide(t.plate[1]))
            room = wide(t.room)
        cushions = (
            CushionReading(read(a[0]), read(a[1]), t.applied[0] / 1000.0, t.cutout_open(0),
                           plate[0]),
            CushionReading(read(a[2]), read(a[3]), t.applied[1] / 1000.0, t.cutout_open(1),
                           plate[1]),
        )
        if self._last_uptime >= 0 and t.uptime_ms < self._last_uptime:
            self._emit("board_reset", "board uptime went back: it restarted",
                       uptime_ms=t.uptime_ms)
        self._last_uptime = t.uptime_ms
        self.latest = BoardReading(now, t.uptime_ms, cushions, t.relay_closed, t.faults, t,
                                   room)
        if self._stale_reported:
            self._stale_reported = False

    def _transmit(self, now: float) -> None:
        pend = self._inflight
        if pend is not None:
            if now - pend.sent_at < self.cfg.ack_timeout_s:
                return
            if pend.tries > self.cfg.max_retries:
                self._inflight = None
                self.counters.timeouts += 1
                name = type(pend.msg).__name__
                if isinstance(pend.msg, p.Hello):
                    self._emit("handshake_failed", f"no answer to HELLO on {self.url!r}")
                    self._drop_port(f"no answer to HELLO on {self.url!r}", report=False)
                    return
                self._emit("command_failed", f"{name} not acknowledged after "
                                             f"{self.cfg.max_retries} retries")
                if isinstance(pend.msg, p.SetOutputs):
                    self._outputs_dirty = True
            else:
                self._send(pend, now, retry=True)
                return
        if self.state is LinkState.CONNECTED and (
                self._outputs_dirty or now - self._outputs_sent_at >= self.cfg.refresh_s):
            self._outputs_dirty = False
            self._outputs_sent_at = now
            self._send(_Pending(p.SetOutputs(*self._outputs), 0), now)
            return
        if self._queue and (self.state is LinkState.CONNECTED
                            or isinstance(self._queue[0].msg, p.Hello)):
            self._send(self._queue.popleft(), now)

    def _send(self, pend: _Pending, now: float, retry: bool = False) -> None:
        if retry:
            self.counters.retransmissions += 1
        else:
            pend.seq = self._next_seq()
        pend.tries += 1
        pend.sent_at = now
        self._inflight = pend
        self._port.write(p.encode(pend.seq, pend.msg))
        self.counters.frames_tx += 1

    def _watch(self, now: float) -> None:
        if self.state is LinkState.HANDSHAKING:
            # HELLO may be acknowledged but its IDENTITY lost: never wait forever.
            if now - self._opened_at > self.cfg.silence_reconnect_s:
                self._emit("handshake_failed", f"no IDENTITY from {self.url!r} within "
                                               f"{self.cfg.silence_reconnect_s} s")
                self._drop_port("handshake timed out", report=False)
            return
        if self.state is not LinkState.CONNECTED:
            return
        last = self.latest.time if self.latest is not None else self._last_rx
        if now - last > self.cfg.stale_s and not self._stale_reported:
            self._stale_reported = True
            self._emit("stale", f"no valid telemetry for {now - last:.2f} s")
        if now - self._last_rx > self.cfg.silence_reconnect_s:
            self._drop_port(f"board silent for {now - self._last_rx:.1f} s: reconnecting")


def _permille(x: float) -> int:
    if not 0.0 <= x <= 1.0:  # also refuses NaN
        raise ValueError(f"heater output {x!r} is outside 0..1")
    return round(x * 1000)
