"""The wire protocol between host and heater board (version 1.1), per ``docs/protocol.md``.

Version 1.1 adds a plate sensor per cushion and a room sensor: their counts ride at the
end of TELEMETRY (25 bytes instead of 19), which a 1.1 board sends only to a host that
said minor 1 or more in its HELLO, and the board-side plate limit ``LIMIT_PLATE_n``.  A
1.1 host reads both layouts: a 1.0 board's telemetry has no plate or room readings.

A frame is ``A5 5A LEN SEQ TYPE PAYLOAD CRC16``: a two-byte start marker, the payload
length, the sender's sequence number, the message type, the payload, and a
CRC-16/CCITT-FALSE over LEN..PAYLOAD, little-endian.  Every multi-byte field is
little-endian.  The parser is a byte-at-a-time state machine over a buffer, so garbage,
truncated and corrupted frames cost at most the bytes they occupy: after any failure it
searches again from the byte after the failed start marker.
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass

SOF = b"\xa5\x5a"
HEADER_LEN = 5  # SOF(2) LEN SEQ TYPE
CRC_LEN = 2
MAX_PAYLOAD = 64
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1
ADC_CHANNELS = 4  # cushion 0 primary, cushion 0 redundant, cushion 1 primary, cushion 1 redundant
PERMILLE_FULL = 1000


def crc16(data: bytes, init: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE: polynomial 0x1021, initial 0xFFFF, no reflection, no final xor.

    ``binascii.crc_hqx`` is exactly this polynomial without reflection, computed in C.
    Check value: ``crc16(b"123456789") == 0x29B1``.
    """
    return binascii.crc_hqx(data, init)


class MsgType(enum.IntEnum):
    """Message types: host→board below 0x80, board→host from 0x80."""

    HELLO = 0x01
    SET_OUTPUTS = 0x02
    SET_RELAY = 0x03
    CLEAR_FAULTS = 0x04
    GET_IDENTITY = 0x05
    ACK = 0x80
    IDENTITY = 0x81
    TELEMETRY = 0x82
    FAULT = 0x83


class AckStatus(enum.IntEnum):
    OK = 0
    BAD_LENGTH = 1
    BAD_VALUE = 2
    UNKNOWN_TYPE = 3
    INCOMPATIBLE_VERSION = 4
    REFUSED = 5


class Fault(enum.IntFlag):
    """Board fault flags (telemetry ``faults`` and FAULT messages).  Every flag latches
    until the host clears it with CLEAR_FAULTS and its cause has gone; any flag opens the
    master relay."""

    DEADMAN_0 = 1 << 0
    DEADMAN_1 = 1 << 1
    LIMIT_HOT_0 = 1 << 2
    LIMIT_HOT_1 = 1 << 3
    LIMIT_SENSOR_0 = 1 << 4
    LIMIT_SENSOR_1 = 1 << 5
    CUTOUT_0 = 1 << 6
    CUTOUT_1 = 1 << 7
    RESET = 1 << 8
    LIMIT_PLATE_0 = 1 << 9  # protocol 1.1: the plate sensor read above the plate limit
    LIMIT_PLATE_1 = 1 << 10

    @classmethod
    def for_channel(cls, name: str, channel: int) -> Fault:
        return cls[f"{name}_{channel}"]


ALL_FAULTS = int(
    Fault.DEADMAN_0 | Fault.DEADMAN_1 | Fault.LIMIT_HOT_0 | Fault.LIMIT_HOT_1
    | Fault.LIMIT_SENSOR_0 | Fault.LIMIT_SENSOR_1 | Fault.CUTOUT_0 | Fault.CUTOUT_1 | Fault.RESET
    | Fault.LIMIT_PLATE_0 | Fault.LIMIT_PLATE_1
)


def fault_names(bits: int) -> list[str]:
    """Readable names of the set flags, lower-case (``["deadman_0", "reset"]``)."""
    return [f.name.lower() for f in Fault if bits & f.value]  # type: ignore[union-attr]


class Input(enum.IntFlag):
    RELAY_CLOSED = 1 << 0
    CUTOUT_0_OPEN = 1 << 1
    CUTOUT_1_OPEN = 1 << 2


# plain ints for the per-report hot path (IntFlag arithmetic is slow)
_RELAY_BIT = int(Input.RELAY_CLOSED)
_CUTOUT_BITS = (int(Input.CUTOUT_0_OPEN), int(Input.CUTOUT_1_OPEN))


class ResetCause(enum.IntEnum):
    POWER_ON = 0
    WATCHDOG = 1
    BROWN_OUT = 2
    SOFTWARE = 3
    EXTERNAL = 4


class ProtocolError(ValueError):
    """A frame or payload that does not follow the protocol."""


class PayloadLengthError(ProtocolError):
    """A known message type with a payload of the wrong length (ACK status BAD_LENGTH)."""


# --- messages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    major: int = PROTOCOL_MAJOR
    minor: int = PROTOCOL_MINOR
    TYPE = MsgType.HELLO
    FMT = struct.Struct("<BB")

    def pack(self) -> bytes:
        return self.FMT.pack(self.major, self.minor)


@dataclass(frozen=True, slots=True)
class SetOutputs:
    """Heater drive per channel in permille (0..1000); also the dead-man refresh."""

    ch0: int
    ch1: int
    TYPE = MsgType.SET_OUTPUTS
    FMT = struct.Struct("<HH")

    def pack(self) -> bytes:
        return self.FMT.pack(self.ch0, self.ch1)


@dataclass(frozen=True, slots=True)
class SetRelay:
    closed: bool
    TYPE = MsgType.SET_RELAY
    FMT = struct.Struct("<B")

    def pack(self) -> bytes:
        return self.FMT.pack(1 if self.closed else 0)


@dataclass(frozen=True, slots=True)
class ClearFaults:
    mask: int = ALL_FAULTS
    TYPE = MsgType.CLEAR_FAULTS
    FMT = struct.Struct("<H")

    def pack(self) -> bytes:
        return self.FMT.pack(self.mask)


@dataclass(frozen=True, slots=True)
class GetIdentity:
    TYPE = MsgType.GET_IDENTITY
    FMT = struct.Struct("<")

    def pack(self) -> bytes:
        return b""


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int
    status: AckStatus = AckStatus.OK
    TYPE = MsgType.ACK
    FMT = struct.Struct("<BB")

    def pack(self) -> bytes:
        return self.FMT.pack(self.seq, int(self.status))


@dataclass(frozen=True, slots=True)
class Identity:
    proto_major: int
    proto_minor: int
    fw_version: tuple[int, int, int]
    serial: int
    uptime_ms: int
    reset_cause: ResetCause
    TYPE = MsgType.IDENTITY
    FMT = struct.Struct("<BBBBBIIB")

    def pack(self) -> bytes:
        return self.FMT.pack(self.proto_major, self.proto_minor, *self.fw_version,
                             self.serial, self.uptime_ms, int(self.reset_cause))

    @property
    def firmware(self) -> str:
        return ".".join(str(p) for p in self.fw_version)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One board report: raw ADC counts, outputs actually applied, inputs and faults;
    from protocol 1.1 also the plate sensors' and the room sensor's counts (None in the
    1.0 layout)."""

    uptime_ms: int
    adc: tuple[int, int, int, int]
    applied: tuple[int, int]  # permille actually driven (0 when the relay is open)
    inputs: int
    faults: int
    plate: tuple[int, int] | None = None  # 1.1: plate sensor counts per cushion
    room: int | None = None  # 1.1: room sensor counts
    TYPE = MsgType.TELEMETRY
    FMT = struct.Struct("<IHHHHHHBH")  # the 1.0 layout (19 bytes)
    FMT_1_1 = struct.Struct("<IHHHHHHBHHHH")  # 1.0 + plate[0], plate[1], room (25 bytes)

    def pack(self) -> bytes:
        if self.plate is None or self.room is None:
            if self.plate is not None or self.room is not None:
                raise ProtocolError("plate and room counts come together (protocol 1.1)")
            return self.FMT.pack(self.uptime_ms, *self.adc, *self.applied, self.inputs,
                                 self.faults)
        return self.FMT_1_1.pack(self.uptime_ms, *self.adc, *self.applied, self.inputs,
                                 self.faults, *self.plate, self.room)

    @property
    def relay_closed(self) -> bool:
        return bool(self.inputs & _RELAY_BIT)

    def cutout_open(self, channel: int) -> bool:
        return bool(self.inputs & (_CUTOUT_BITS[channel]))


@dataclass(frozen=True, slots=True)
class FaultReport:
    """Sent by the board the moment a flag is raised: which flags are new, and all now set."""

    raised: int
    active: int
    TYPE = MsgType.FAULT
    FMT = struct.Struct("<HH")

    def pack(self) -> bytes:
        return self.FMT.pack(self.raised, self.active)


Message = (Hello | SetOutputs | SetRelay | ClearFaults | GetIdentity | Ack | Identity
           | Telemetry | FaultReport)


def _check_permille(v: int) -> int:
    if v > PERMILLE_FULL:
        raise ProtocolError(f"output {v} permille is above {PERMILLE_FULL}")
    return v


def _decode_hello(p: bytes) -> Hello:
    return Hello(*Hello.FMT.unpack(p))


def _decode_set_outputs(p: bytes) -> SetOutputs:
    a, b = SetOutputs.FMT.unpack(p)
    return SetOutputs(_check_permille(a), _check_permille(b))


def _decode_set_relay(p: bytes) -> SetRelay:
    (v,) = SetRelay.FMT.unpack(p)
    if v > 1:
        raise ProtocolError(f"relay value {v} is neither 0 nor 1")
    return SetRelay(bool(v))


def _decode_clear(p: bytes) -> ClearFaults:
    return ClearFaults(*ClearFaults.FMT.unpack(p))


def _decode_get_identity(p: bytes) -> GetIdentity:
    return GetIdentity()


def _decode_ack(p: bytes) -> Ack:
    seq, status = Ack.FMT.unpack(p)
    try:
        return Ack(seq, AckStatus(status))
    except ValueError:
        raise ProtocolError(f"unknown ACK status {status}") from None


def _decode_identity(p: bytes) -> Identity:
    ma, mi, f1, f2, f3, serial, up, cause = Identity.FMT.unpack(p)
    try:
        rc = ResetCause(cause)
    except ValueError:
        raise ProtocolError(f"unknown reset cause {cause}") from None
    return Identity(ma, mi, (f1, f2, f3), serial, up, rc)


def _decode_telemetry(p: bytes) -> Telemetry:
    if len(p) == Telemetry.FMT_1_1.size:
        up, a0, a1, a2, a3, o0, o1, inputs, faults, p0, p1, room = Telemetry.FMT_1_1.unpack(p)
        return Telemetry(up, (a0, a1, a2, a3), (_check_permille(o0), _check_permille(o1)),
                         inputs, faults, (p0, p1), room)
    up, a0, a1, a2, a3, o0, o1, inputs, faults = Telemetry.FMT.unpack(p)
    return Telemetry(up, (a0, a1, a2, a3), (_check_permille(o0), _check_permille(o1)),
                     inputs, faults)


def _decode_fault(p: bytes) -> FaultReport:
    return FaultReport(*FaultReport.FMT.unpack(p))


#: per type: the payload lengths it may have, and its decoder
_DECODERS = {
    MsgType.HELLO: ((Hello.FMT.size,), _decode_hello),
    MsgType.SET_OUTPUTS: ((SetOutputs.FMT.size,), _decode_set_outputs),
    MsgType.SET_RELAY: ((SetRelay.FMT.size,), _decode_set_relay),
    MsgType.CLEAR_FAULTS: ((ClearFaults.FMT.size,), _decode_clear),
    MsgType.GET_IDENTITY: ((0,), _decode_get_identity),
    MsgType.ACK: ((Ack.FMT.size,), _decode_ack),
    MsgType.IDENTITY: ((Identity.FMT.size,), _decode_identity),
    MsgType.TELEMETRY: ((Telemetry.FMT.size, Telemetry.FMT_1_1.size), _decode_telemetry),
    MsgType.FAULT: ((FaultReport.FMT.size,), _decode_fault),
}


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose CRC checked: its sequence number, type byte and raw payload."""

    seq: int
    type: int
    payload: bytes

    def decode(self) -> Message:
        """The message in this frame; ``ProtocolError`` for an unknown type or bad payload."""
        try:
            sizes, fn = _DECODERS[MsgType(self.type)]
        except ValueError:
            raise ProtocolError(f"unknown message type 0x{self.type:02X}") from None
        if len(self.payload) not in sizes:
            expected = " or ".join(str(n) for n in sizes)
            raise PayloadLengthError(f"{MsgType(self.type).name} payload is {len(self.payload)} "
                                     f"bytes, expected {expected}")
        return fn(self.payload)


def encode_frame(seq: int, msg_type: int, payload: bytes) -> bytes:
    """Frame a payload: SOF, LEN, SEQ, TYPE, PAYLOAD, CRC (little-endian)."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytes((len(payload), seq & 0xFF, msg_type & 0xFF)) + payload
    crc = crc16(body)
    return SOF + body + bytes((crc & 0xFF, crc >> 8))


def encode(seq: int, msg: Message) -> bytes:
    """Frame a message."""
    return encode_frame(seq, int(msg.TYPE), msg.pack())


class FrameParser:
    """Turns a byte stream into checked frames, resynchronising after any damage.

    ``feed`` never raises on input bytes.  Counters: ``frames`` accepted, ``crc_errors``
    (a complete candidate frame whose CRC failed), ``oversized`` (a LEN above
    ``MAX_PAYLOAD``), ``resyncs`` (each time synchronisation was lost: one for every run of
    discarded bytes between two accepted frames, however many failed candidates it took and
    however the bytes were split across ``feed`` calls) and ``discarded_bytes``.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.crc_errors = 0
        self.oversized = 0
        self.resyncs = 0
        self.discarded_bytes = 0
        self._lost = False  # bytes were discarded since the last accepted frame

    def _discard(self, n: int) -> None:
        if n > 0:
            del self._buf[:n]
            self.discarded_bytes += n
            if not self._lost:
                self._lost = True
                self.resyncs += 1

    def feed(self, data: bytes) -> list[Frame]:
        buf = self._buf
        buf += data
        out: list[Frame] = []
        while True:
            start = buf.find(SOF)
            if start < 0:
                # keep a trailing A5: it may be the first half of a start marker
                keep = 1 if buf and buf[-1] == SOF[0] else 0
                self._discard(len(buf) - keep)
                return out
            self._discard(start)
            if len(buf) < HEADER_LEN:
                return out
            length = buf[2]
            if length > MAX_PAYLOAD:
                self.oversized += 1
                self._discard(1)
                continue
            total = HEADER_LEN + length + CRC_LEN
            if len(buf) < total:
                return out
            body = bytes(buf[2:HEADER_LEN + length])
            got = buf[total - 2] | (buf[total - 1] << 8)
            if crc16(body) != got:
                self.crc_errors += 1
                self._discard(1)
                continue
            out.append(Frame(body[1], body[2], body[3:]))
            self.frames += 1
            self._lost = False
            del buf[:total]

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)
