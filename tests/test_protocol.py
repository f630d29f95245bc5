"""The wire protocol codec (``firmware_bridge/protocol.py``) and its specification
(``docs/protocol.md``): round trips, the CRC, the receiver's resynchronisation, rejection of
malformed payloads, and the document's worked examples and tables checked against the code
so that the two cannot drift apart."""

from __future__ import annotations

import dataclasses
import functools
import operator
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from firmware_bridge.protocol import (
    ALL_FAULTS,
    MAX_PAYLOAD,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    SOF,
    Ack,
    AckStatus,
    ClearFaults,
    Fault,
    FaultReport,
    Frame,
    FrameParser,
    GetIdentity,
    Hello,
    Identity,
    Input,
    MsgType,
    ProtocolError,
    ResetCause,
    SetOutputs,
    SetRelay,
    Telemetry,
    crc16,
    encode,
    encode_frame,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"

MESSAGE_CLASSES = {cls.TYPE: cls for cls in (Hello, SetOutputs, SetRelay, ClearFaults,
                                             GetIdentity, Ack, Identity, Telemetry, FaultReport)}
COMMAND_TYPES = {MsgType.HELLO, MsgType.SET_OUTPUTS, MsgType.SET_RELAY, MsgType.CLEAR_FAULTS,
                 MsgType.GET_IDENTITY}
# Payload lengths as docs/protocol.md section 6 states them (checked against the doc below).
PAYLOAD_LEN = {MsgType.HELLO: 2, MsgType.SET_OUTPUTS: 4, MsgType.SET_RELAY: 1,
               MsgType.CLEAR_FAULTS: 2, MsgType.GET_IDENTITY: 0, MsgType.ACK: 2,
               MsgType.IDENTITY: 14, MsgType.TELEMETRY: 19, MsgType.FAULT: 4}


def crc_bitwise(data: bytes) -> int:
    """CRC-16/CCITT-FALSE written out bit by bit, as the document defines it."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def feed_chunks(parser: FrameParser, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (duplicates and out-of-range cuts are harmless)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def counters(p: FrameParser) -> tuple[int, int, int, int, int, int]:
    return (p.frames, p.crc_errors, p.oversized, p.resyncs, p.discarded_bytes, p.pending)


# --- strategies ---------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
permille = st.integers(0, 1000)

messages = st.one_of(
    st.builds(Hello, u8, u8),
    st.builds(SetOutputs, permille, permille),
    st.builds(SetRelay, st.booleans()),
    st.builds(ClearFaults, u16),
    st.just(GetIdentity()),
    st.builds(Ack, u8, st.sampled_from(AckStatus)),
    st.builds(Identity, u8, u8, st.tuples(u8, u8, u8), u32, u32, st.sampled_from(ResetCause)),
    st.builds(Telemetry, u32, st.tuples(u16, u16, u16, u16), st.tuples(permille, permille),
              u8, u16),
    st.builds(FaultReport, u16, u16),
)
framed_messages = st.tuples(u8, messages).map(lambda sm: encode(sm[0], sm[1]))

# Bytes that hit the interesting values (start marker halves, small and large LENs) often,
# unlike uniformly random bytes, in which "A5 5A" turns up once in 65536 positions.
spiky_bytes = st.lists(
    st.one_of(st.sampled_from([0xA5, 0x5A, 0x00, 0x01, 0x02, 0x04, 0x13, 0x40, 0x41, 0x80,
                               0x82, 0xFF]), u8),
    max_size=400,
).map(bytes)
streams = st.one_of(
    st.binary(max_size=400),
    spiky_bytes,
    st.lists(st.one_of(framed_messages, spiky_bytes.map(lambda b: b[:12])), max_size=12)
    .map(b"".join),
)

SAMPLES = {
    MsgType.HELLO: Hello(PROTOCOL_MAJOR, PROTOCOL_MINOR),
    MsgType.SET_OUTPUTS: SetOutputs(1000, 0),
    MsgType.SET_RELAY: SetRelay(True),
    MsgType.CLEAR_FAULTS: ClearFaults(ALL_FAULTS),
    MsgType.GET_IDENTITY: GetIdentity(),
    MsgType.ACK: Ack(255, AckStatus.REFUSED),
    MsgType.IDENTITY: Identity(1, 0, (1, 2, 3), 0xDEADBEEF, 0xFFFF_FFFF, ResetCause.EXTERNAL),
    MsgType.TELEMETRY: Telemetry(123456, (0, 4095, 1534, 65535), (1000, 1), 0x07,
                                 int(Fault.RESET | Fault.CUTOUT_0)),
    MsgType.FAULT: FaultReport(int(Fault.DEADMAN_1), int(Fault.DEADMAN_1 | Fault.RESET)),
}


# --- CRC ------------------------------------------------------------------------------------


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1
    assert crc_bitwise(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


@given(st.binary(max_size=80))
def test_crc_matches_the_bitwise_definition(data: bytes) -> None:
    assert crc16(data) == crc_bitwise(data)


@given(u8, messages)
def test_frame_layout(seq: int, msg) -> None:
    frame = encode(seq, msg)
    payload = msg.pack()
    assert frame[:2] == b"\xa5\x5a" == SOF
    assert frame[2] == len(payload) == PAYLOAD_LEN[msg.TYPE]
    assert frame[3] == seq
    assert frame[4] == int(msg.TYPE)
    assert frame[5:-2] == payload
    assert len(frame) == 7 + len(payload)
    # CRC over LEN, SEQ, TYPE, PAYLOAD (not the start marker), low byte first
    assert frame[-2:] == crc_bitwise(frame[2:-2]).to_bytes(2, "little")


# --- round trips ----------------------------------------------------------------------------


def test_samples_cover_every_type() -> None:
    assert set(SAMPLES) == set(MsgType) == set(MESSAGE_CLASSES) == set(PAYLOAD_LEN)


@pytest.mark.parametrize("msg_type", list(MsgType), ids=lambda t: t.name)
def test_every_type_round_trips(msg_type: MsgType) -> None:
    msg = SAMPLES[msg_type]
    parser = FrameParser()
    frames = parser.feed(encode(200, msg))
    assert frames == [Frame(200, int(msg_type), msg.pack())]
    assert frames[0].decode() == msg
    assert type(frames[0].decode()) is MESSAGE_CLASSES[msg_type]
    assert counters(parser) == (1, 0, 0, 0, 0, 0)


@given(u8, messages)
def test_any_message_round_trips(seq: int, msg) -> None:
    parser = FrameParser()
    (frame,) = parser.feed(encode(seq, msg))
    assert (frame.seq, frame.type) == (seq, int(msg.TYPE))
    assert frame.decode() == msg
    assert parser.pending == 0


@given(st.lists(st.tuples(u8, messages), min_size=1, max_size=15), st.lists(st.integers(0, 2000)))
def test_back_to_back_frames_in_any_chunks(items, cuts) -> None:
    stream = b"".join(encode(s, m) for s, m in items)
    parser = FrameParser()
    frames = feed_chunks(parser, split_at(stream, cuts))
    assert [(f.seq, f.decode()) for f in frames] == items
    assert counters(parser) == (len(items), 0, 0, 0, 0, 0)


def test_maximum_payload() -> None:
    frame = encode_frame(9, 0x82, bytes(range(MAX_PAYLOAD)))
    assert MAX_PAYLOAD == 64 and len(frame) == 71
    assert FrameParser().feed(frame) == [Frame(9, 0x82, bytes(range(64)))]
    with pytest.raises(ProtocolError):
        encode_frame(9, 0x82, bytes(MAX_PAYLOAD + 1))


# --- robustness: nothing raises, every byte is accounted for ----------------------------------


@settings(deadline=None)
@given(streams, st.lists(st.integers(0, 500)))
def test_feed_never_raises_and_decode_raises_only_protocol_error(stream, cuts) -> None:
    parser = FrameParser()
    frames = feed_chunks(parser, split_at(stream, cuts))  # must not raise
    for frame in frames:
        try:
            msg = frame.decode()
        except ProtocolError:
            continue
        assert msg.pack() == frame.payload
    # every byte fed is in an accepted frame, was discarded, or is held for later
    used = sum(7 + len(f.payload) for f in frames)
    assert used + parser.discarded_bytes + parser.pending == len(stream)
    assert parser.frames == len(frames)
    assert parser.pending < 7 + MAX_PAYLOAD


@settings(deadline=None)
@given(streams, st.lists(st.integers(0, 500)))
def test_result_does_not_depend_on_chunking(stream, cuts) -> None:
    whole = FrameParser()
    expected = whole.feed(stream)
    chunked = FrameParser()
    assert feed_chunks(chunked, split_at(stream, cuts)) == expected
    assert counters(chunked) == counters(whole)
    bytewise = FrameParser()
    assert feed_chunks(bytewise, [bytes([b]) for b in stream]) == expected
    assert counters(bytewise) == counters(whole)


@given(u8, u8, st.binary(max_size=MAX_PAYLOAD))
def test_decode_of_any_frame_raises_only_protocol_error(seq, msg_type, payload) -> None:
    frame = Frame(seq, msg_type, payload)
    try:
        msg = frame.decode()
    except ProtocolError:
        return
    assert int(msg.TYPE) == msg_type
    assert msg.pack() == payload


@given(u8, st.sampled_from(MsgType), st.data())
def test_decode_of_right_sized_payloads(seq, msg_type, data) -> None:
    """Right-sized random payloads reach the value checks, not only the length check."""
    payload = data.draw(st.binary(min_size=PAYLOAD_LEN[msg_type],
                                  max_size=PAYLOAD_LEN[msg_type]))
    (frame,) = FrameParser().feed(encode_frame(seq, msg_type, payload))
    try:
        msg = frame.decode()
    except ProtocolError:
        return
    assert type(msg) is MESSAGE_CLASSES[msg_type]
    assert msg.pack() == payload


# --- frames recovered from noise --------------------------------------------------------------
#
# The noise is built from tokens that can never complete a CRC-valid false frame, so the
# expected result is exact (no "probably"): the only start markers in the noise are
#   * "A5 x"          with x neither 5A nor A5            -> not a start marker at all;
#   * "A5 5A L"       with 64 < L and L != A5              -> dropped at the LEN check;
#   * "A5 5A L ... C" a whole false frame with LEN <= 64 whose CRC is deliberately wrong and
#                     whose bytes after the first contain no A5, so its candidate is judged on
#                     its own bytes alone and fails, and no new marker starts inside it;
# plus plain bytes other than A5. No token ends in A5, so no marker straddles two tokens. A
# noise run may end, just before a real frame, in "A5" (giving "A5 A5 5A": the marker is
# found one byte on) or "A5 5A" (its LEN is the frame's A5 = 165: oversized). A real frame is
# therefore always found at its own first byte, consumed whole, and never overlapped by a
# false candidate. (Uniformly random noise would instead give a false candidate that passes
# its CRC with probability 2**-16 each time, and could swallow a real frame.)

NOT_A5 = st.integers(0, 0xFF).filter(lambda b: b != 0xA5)


@st.composite
def wrong_crc_frame(draw) -> bytes:
    length = draw(st.integers(0, MAX_PAYLOAD))
    body = bytes([length]) + bytes(draw(st.lists(NOT_A5, min_size=length + 2,
                                                 max_size=length + 2)))
    good = crc16(body)
    bad = draw(u16.filter(lambda c: c != good and 0xA5 not in c.to_bytes(2, "little")))
    return SOF + body + bad.to_bytes(2, "little")


NOISE_TOKENS = st.one_of(
    st.tuples(st.just("plain"), NOT_A5.map(lambda b: bytes([b]))),
    st.tuples(st.just("lone"),
              NOT_A5.filter(lambda b: b != 0x5A).map(lambda b: b"\xa5" + bytes([b]))),
    st.tuples(st.just("oversized"),
              st.integers(MAX_PAYLOAD + 1, 0xFF).filter(lambda n: n != 0xA5)
              .map(lambda n: SOF + bytes([n]))),
    st.tuples(st.just("crc"), wrong_crc_frame()),
)
noise_runs = st.tuples(st.lists(NOISE_TOKENS, max_size=6), st.sampled_from([b"", b"\xa5", SOF]))
# Every stream ends with this frame, so no noise is left waiting for bytes that never come
# (a false marker at the very end is held until its 5-byte header is complete).
TERMINATOR = (77, GetIdentity())


@settings(deadline=None)
@given(st.lists(st.tuples(u8, messages), max_size=6), st.data())
def test_frames_in_noise_are_all_recovered_in_order(items, data) -> None:
    items = [*items, TERMINATOR]
    runs = data.draw(st.lists(noise_runs, min_size=len(items), max_size=len(items)))
    stream = b""
    crc_bad = oversized = discarded = resyncs = 0
    for (tokens, tail), item in zip(runs, items, strict=True):
        noise = b"".join(t for _, t in tokens) + tail
        crc_bad += sum(kind == "crc" for kind, _ in tokens)
        oversized += sum(kind == "oversized" for kind, _ in tokens) + (tail == SOF)
        discarded += len(noise)
        resyncs += len(noise) > 0
        stream += noise + encode(*item)
    cuts = data.draw(st.lists(st.integers(0, len(stream))))
    parser = FrameParser()
    frames = feed_chunks(parser, split_at(stream, cuts))
    assert [(f.seq, f.decode()) for f in frames] == items
    assert (parser.crc_errors, parser.oversized) == (crc_bad, oversized)
    assert parser.discarded_bytes == discarded
    assert parser.resyncs == resyncs
    assert parser.pending == 0


@settings(deadline=None)
@given(framed_messages, st.lists(framed_messages, min_size=1, max_size=4), st.data())
def test_truncated_frame_then_valid_ones(cut_frame, following, data) -> None:
    keep = data.draw(st.integers(3, len(cut_frame) - 1))  # at least SOF and LEN arrived
    truncated = cut_frame[:keep]
    rest = b"".join(following)
    stream = truncated + rest
    # The truncated candidate runs into the following frames; it must be complete...
    assume(len(stream) >= 7 + truncated[2])
    # ...and (all but 1 in 65536 times) fail its CRC over the mixed bytes,
    candidate = stream[:7 + truncated[2]]
    assume(crc16(candidate[2:-2]) != int.from_bytes(candidate[-2:], "little"))
    # and no other start marker may hide in the truncated bytes.
    assume(stream.find(SOF, 1) == keep)
    parser = FrameParser()
    frames = feed_chunks(parser, split_at(stream, data.draw(st.lists(st.integers(0, 300)))))
    assert frames == FrameParser().feed(rest)  # every following frame, in order
    assert len(frames) == len(following)
    assert parser.crc_errors == 1
    assert parser.resyncs == 1
    assert parser.discarded_bytes == keep
    assert parser.oversized == 0


def test_truncated_frame_with_long_len_delays_but_does_not_lose() -> None:
    long_frame = encode_frame(1, 0x82, bytes(MAX_PAYLOAD))
    ack = encode(2, Ack(7))
    parser = FrameParser()
    # LEN 64 promises 71 bytes: the ACK is held until that many have arrived
    assert parser.feed(long_frame[:10] + ack) == []
    assert parser.pending == 10 + len(ack)
    later = b"".join(encode(s, Telemetry(s, (1, 2, 3, 4), (0, 0), 0, 0)) for s in range(3, 6))
    frames = parser.feed(later)
    assert [f.seq for f in frames] == [2, 3, 4, 5]
    assert (parser.crc_errors, parser.resyncs, parser.discarded_bytes) == (1, 1, 10)


@given(st.integers(MAX_PAYLOAD + 1, 0xFF), u8, messages)
def test_oversized_len_is_skipped(length, seq, msg) -> None:
    parser = FrameParser()
    frames = parser.feed(SOF + bytes([length]) + encode(seq, msg))
    assert [f.decode() for f in frames] == [msg]
    assert parser.oversized == 1
    assert parser.crc_errors == 0
    assert parser.discarded_bytes == 3
    assert parser.resyncs == 1


def test_split_start_marker_is_held() -> None:
    frame = encode(3, SetRelay(False))
    parser = FrameParser()
    assert parser.feed(b"\x00\x01" + frame[:1]) == []
    assert parser.pending == 1
    assert parser.feed(frame[1:]) == [Frame(3, MsgType.SET_RELAY, b"\x00")]


def test_noise_only_counts_once() -> None:
    parser = FrameParser()
    for _ in range(50):
        parser.feed(b"\x11\x22\x33")
    assert (parser.discarded_bytes, parser.resyncs) == (150, 1)
    parser.feed(encode(0, GetIdentity()) + b"\x44")
    assert (parser.frames, parser.discarded_bytes, parser.resyncs) == (1, 151, 2)


# --- decode rejects malformed payloads --------------------------------------------------------


def through_parser(seq: int, msg_type: int, payload: bytes) -> Frame:
    (frame,) = FrameParser().feed(encode_frame(seq, msg_type, payload))
    return frame


@pytest.mark.parametrize("msg_type", list(MsgType), ids=lambda t: t.name)
def test_wrong_payload_length_is_rejected(msg_type: MsgType) -> None:
    good = SAMPLES[msg_type].pack()
    assert len(good) == PAYLOAD_LEN[msg_type]
    bad = [good + b"\x00", good + bytes(MAX_PAYLOAD - len(good))]
    if good:
        bad += [good[:-1], b""]
    for payload in bad:
        with pytest.raises(ProtocolError):
            through_parser(1, msg_type, payload).decode()
    assert through_parser(1, msg_type, good).decode() == SAMPLES[msg_type]


def test_unknown_types_are_rejected() -> None:
    known = {int(t) for t in MsgType}
    assert known == {0x01, 0x02, 0x03, 0x04, 0x05, 0x80, 0x81, 0x82, 0x83}
    for msg_type in set(range(256)) - known:
        for payload in (b"", b"\x00\x00", bytes(19)):
            with pytest.raises(ProtocolError):
                through_parser(0, msg_type, payload).decode()


@pytest.mark.parametrize("ch0, ch1", [(1001, 0), (0, 1001), (65535, 65535), (1000, 1001)])
def test_set_outputs_above_1000_is_rejected(ch0: int, ch1: int) -> None:
    payload = ch0.to_bytes(2, "little") + ch1.to_bytes(2, "little")
    with pytest.raises(ProtocolError):
        through_parser(0, MsgType.SET_OUTPUTS, payload).decode()


def test_set_outputs_limits_are_accepted() -> None:
    assert through_parser(0, MsgType.SET_OUTPUTS, bytes.fromhex("e803 0000")).decode() == \
        SetOutputs(1000, 0)


@pytest.mark.parametrize("applied", [(1001, 0), (0, 1001), (0xFFFF, 0)])
def test_telemetry_applied_above_1000_is_rejected(applied) -> None:
    payload = Telemetry(0, (0, 0, 0, 0), (0, 0), 0, 0).pack()
    payload = payload[:12] + applied[0].to_bytes(2, "little") + applied[1].to_bytes(2, "little") \
        + payload[16:]
    with pytest.raises(ProtocolError):
        through_parser(0, MsgType.TELEMETRY, payload).decode()


def test_relay_value_must_be_0_or_1() -> None:
    assert through_parser(0, MsgType.SET_RELAY, b"\x00").decode() == SetRelay(False)
    assert through_parser(0, MsgType.SET_RELAY, b"\x01").decode() == SetRelay(True)
    for value in range(2, 256):
        with pytest.raises(ProtocolError):
            through_parser(0, MsgType.SET_RELAY, bytes([value])).decode()


def test_unknown_ack_status_is_rejected() -> None:
    for status in AckStatus:
        assert through_parser(0, MsgType.ACK, bytes([9, status])).decode() == Ack(9, status)
    for status in range(len(AckStatus), 256):
        with pytest.raises(ProtocolError):
            through_parser(0, MsgType.ACK, bytes([9, status])).decode()


def test_unknown_reset_cause_is_rejected() -> None:
    good = SAMPLES[MsgType.IDENTITY].pack()
    for cause in range(len(ResetCause), 256):
        with pytest.raises(ProtocolError):
            through_parser(0, MsgType.IDENTITY, good[:-1] + bytes([cause])).decode()


# --- docs/protocol.md: its examples and tables, checked against the code ----------------------

FLAG_FIELDS = {"mask": Fault, "faults": Fault, "raised": Fault, "active": Fault, "inputs": Input}
ENUM_FIELDS = {"status": AckStatus, "reset_cause": ResetCause}
LIST_FIELDS = {"fw_version", "adc", "applied", "plate"}
DOC_TO_CODE = {"ack_seq": "seq"}  # the doc's name for Ack.seq (the frame already has a seq)
HEX = r"[0-9A-F]{2}(?: [0-9A-F]{2})*"


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def doc_lines(kind: str) -> list[str]:
    """Example lines of every ```kind fenced block in the document, comments left out."""
    if not DOC.exists():
        return []
    blocks = re.findall(rf"^```{kind}\n(.*?)^```\s*$", doc_text(), flags=re.M | re.S)
    return [line for block in blocks for line in block.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def doc_section(heading: str) -> str:
    """The text under the heading that starts with ``heading``, up to the next heading."""
    m = re.search(rf"^#+ {re.escape(heading)}[^\n]*\n(.*?)(?=^#+ |\Z)", doc_text(),
                  flags=re.M | re.S)
    assert m, f"docs/protocol.md has no heading {heading!r}"
    return m.group(1)


def parse_value(key: str, text: str):
    if key in ENUM_FIELDS:
        return ENUM_FIELDS[key][text]
    if key in FLAG_FIELDS:
        if text == "0":
            return 0
        return functools.reduce(operator.or_, (FLAG_FIELDS[key][n].value for n in text.split("|")))
    if key in LIST_FIELDS:
        assert re.fullmatch(r"\[\d+(,\d+)*\]", text), f"{key}={text}"
        return tuple(int(x) for x in text[1:-1].split(","))
    assert re.fullmatch(r"\d+", text), f"{key}={text}"
    return int(text)


def parse_example(line: str):
    """``NAME seq=N field=value ... => HEX`` -> (seq, message, frame bytes)."""
    m = re.fullmatch(rf"([A-Z_]+) seq=(\d+)((?: [a-z_0-9]+=\S+)*) => ({HEX})", line)
    assert m, f"malformed hex-example line: {line!r}"
    name, seq, fields, hexbytes = m.groups()
    cls = MESSAGE_CLASSES[MsgType[name]]
    kwargs = {}
    for item in fields.split():
        key, _, value = item.partition("=")
        kwargs[DOC_TO_CODE.get(key, key)] = parse_value(key, value)
    fields = dataclasses.fields(cls)
    required = {f.name for f in fields if f.default is dataclasses.MISSING}
    # every field without a default; the optional ones (TELEMETRY's 1.1 fields) if given
    assert required <= set(kwargs) <= {f.name for f in fields}, f"fields of {line!r}"
    if cls is SetRelay:
        assert kwargs["closed"] in (0, 1)
        kwargs["closed"] = bool(kwargs["closed"])
    return int(seq), cls(**kwargs), bytes.fromhex(hexbytes)


def board_status(frame: Frame) -> AckStatus:
    """The ACK status docs/protocol.md section 7 prescribes for a command frame."""
    if frame.type not in {int(t) for t in COMMAND_TYPES}:
        return AckStatus.UNKNOWN_TYPE
    if len(frame.payload) != PAYLOAD_LEN[MsgType(frame.type)]:
        return AckStatus.BAD_LENGTH
    try:
        frame.decode()
    except ProtocolError:
        return AckStatus.BAD_VALUE
    return AckStatus.OK


def test_doc_has_examples_of_everything() -> None:
    assert DOC.exists(), "docs/protocol.md is missing"
    examples = [parse_example(line) for line in doc_lines("hex-example")]
    assert {m.TYPE for _, m, _ in examples} == set(MsgType)
    assert {m.status for _, m, _ in examples if isinstance(m, Ack)} == set(AckStatus)
    invalid = {line.rsplit("=> ", 1)[1] for line in doc_lines("hex-invalid")}
    assert invalid == {"BAD_LENGTH", "BAD_VALUE", "UNKNOWN_TYPE"}
    assert len(doc_lines("hex-stream")) >= 5


@pytest.mark.parametrize("line", doc_lines("hex-example"))
def test_doc_hex_example(line: str) -> None:
    seq, msg, frame_bytes = parse_example(line)
    assert encode(seq, msg) == frame_bytes
    parser = FrameParser()
    frames = parser.feed(frame_bytes)
    assert frames == [Frame(seq, int(msg.TYPE), msg.pack())]
    assert frames[0].decode() == msg
    assert counters(parser) == (1, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("line", doc_lines("hex-invalid"))
def test_doc_hex_invalid(line: str) -> None:
    m = re.fullmatch(rf"({HEX}) => ([A-Z_]+)", line)
    assert m, f"malformed hex-invalid line: {line!r}"
    parser = FrameParser()
    (frame,) = parser.feed(bytes.fromhex(m.group(1)))
    assert counters(parser)[1:] == (0, 0, 0, 0, 0)
    status = AckStatus[m.group(2)]
    assert status != AckStatus.OK
    assert board_status(frame) == status
    if frame.type in {int(t) for t in COMMAND_TYPES} or frame.type not in set(MsgType):
        with pytest.raises(ProtocolError):
            frame.decode()


@pytest.mark.parametrize("line", doc_lines("hex-stream"))
def test_doc_hex_stream(line: str) -> None:
    m = re.fullmatch(
        rf"({HEX}) => frames=(\[[^\] ]*\]) crc_errors=(\d+) oversized=(\d+) "
        r"discarded_bytes=(\d+) resyncs=(\d+) pending=(\d+)", line)
    assert m, f"malformed hex-stream line: {line!r}"
    stream = bytes.fromhex(m.group(1))
    expected = re.findall(r"\((\d+),0x([0-9A-F]{2})\)", m.group(2))
    crc_errors, oversized, discarded, resyncs, pending = (int(g) for g in m.groups()[2:])
    for chunks in ([stream], [bytes([b]) for b in stream]):
        parser = FrameParser()
        frames = feed_chunks(parser, chunks)
        assert [(f.seq, f.type) for f in frames] == [(int(s), int(t, 16)) for s, t in expected]
        assert (parser.crc_errors, parser.oversized, parser.discarded_bytes, parser.resyncs,
                parser.pending) == (crc_errors, oversized, discarded, resyncs, pending)


def test_doc_message_table() -> None:
    rows = re.findall(r"^\| `0x([0-9A-F]{2})` \| ([A-Z_]+) \| ([a-z →]+) \| (\d+(?: or \d+)?) \|",
                      doc_section("6. Messages"), flags=re.M)
    assert {(int(t, 16), name, n) for t, name, _, n in rows} == \
        {(int(t), t.name, " or ".join(str(n) for n in payload_lens(t))) for t in MsgType}
    for _, name, direction, _ in rows:
        expect = "host → board" if MsgType[name] in COMMAND_TYPES else "board → host"
        assert direction == expect


STRUCT_CODES = {"u8": "B", "u16": "H", "u32": "I"}


def payload_lens(msg_type: MsgType) -> tuple[int, ...]:
    """The payload lengths a type may have: TELEMETRY's 1.0 and 1.1 layouts (19, 25)."""
    if msg_type is MsgType.TELEMETRY:
        return (PAYLOAD_LEN[msg_type], Telemetry.FMT_1_1.size)
    return (PAYLOAD_LEN[msg_type],)


@pytest.mark.parametrize("msg_type", list(MsgType), ids=lambda t: t.name)
def test_doc_layout_table(msg_type: MsgType) -> None:
    """Offsets, sizes and field order of each message table match the codec's struct (for
    TELEMETRY, the 1.1 layout, whose first 19 bytes are the 1.0 one)."""
    section = doc_section(f"{msg_type.name} (`0x{int(msg_type):02X}`)")
    rows = re.findall(r"^\| (\d+) \| (u8|u16|u32) \| `([a-z_0-9]+)(?:\[\d\])?` \|", section,
                      flags=re.M)
    cls = MESSAGE_CLASSES[msg_type]
    fmt = getattr(cls, "FMT_1_1", cls.FMT)
    assert "".join(STRUCT_CODES[size] for _, size, _ in rows) == fmt.format.lstrip("<")
    assert fmt.format.startswith(cls.FMT.format)  # 1.1 only appends
    offset = 0
    for off, size, _ in rows:
        assert int(off) == offset
        offset += {"u8": 1, "u16": 2, "u32": 4}[size]
    assert offset == payload_lens(msg_type)[-1] == fmt.size
    names = [DOC_TO_CODE.get(n, n) for _, _, n in rows]
    in_order = [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]
    assert in_order == [f.name for f in dataclasses.fields(cls)]
    heading = re.search(rf"^### {msg_type.name} \(`0x{int(msg_type):02X}`\), .*, "
                        r"LEN (\d+(?: or \d+)?)$", doc_text(), flags=re.M)
    assert heading and heading.group(1) == " or ".join(str(n) for n in payload_lens(msg_type))


def test_doc_enum_tables() -> None:
    status = re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", doc_section("7. ACK status codes"),
                        flags=re.M)
    assert {name: int(v) for v, name in status} == {s.name: s.value for s in AckStatus}
    causes = re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", doc_section("8.3 Reset causes"),
                        flags=re.M)
    assert {name: int(v) for v, name in causes} == {c.name: c.value for c in ResetCause}
    faults = re.findall(r"^\| (\d+) \| `0x([0-9A-F]{4})` \| `([A-Z_0-9]+)` \|",
                        doc_section("8.1 Fault flags"), flags=re.M)
    assert {name: int(v, 16) for _, v, name in faults} == {f.name: f.value for f in Fault}
    assert all(1 << int(bit) == int(v, 16) for bit, v, _ in faults)
    assert f"`0x{ALL_FAULTS:04X}`" in doc_section("8.1 Fault flags")
    inputs = re.findall(r"^\| (\d+) \| `0x([0-9A-F]{2})` \| `([A-Z_0-9]+)` \|",
                        doc_section("8.2 Input bits"), flags=re.M)
    assert {name: int(v, 16) for _, v, name in inputs} == {i.name: i.value for i in Input}
    assert all(1 << int(bit) == int(v, 16) for bit, v, _ in inputs)


def test_doc_crc_example() -> None:
    text = doc_text()
    assert "`0x29B1`" in text and "`0x1021`" in text and "`0xFFFF`" in text
    assert encode(4, GetIdentity()) == bytes.fromhex("A55A000405FD50")
    assert "`A5 5A 00 04 05 FD 50`" in text
