"""The heater board's firmware behaviour, run against the thermal plant.

What a real board does on its own, without the host: the dead-man timer per channel,
the board-side limit (above 42.0 °C, or a sensor at a rail, for 4 samples in a row),
the master relay that any fault opens, the bimetal cut-out inputs, identity and reset
cause.  It talks ``docs/protocol.md`` over any ``BoardPort`` (in-process pipe or pty).

Time comes only from the shared clock: ``poll()`` catches the board (and the plant it
owns) up to ``clock.now()`` one telemetry period at a time, so the same code runs in
real time in a thread or thousands of times faster when a simulation advances the clock.
"""

from __future__ import annotations

import random

from firmware_bridge import protocol as p
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import Clock
from hydrotherm.config import BoardConfig, SensorConfig

from .plant import Plant
from .transport import BoardPort, NoisyPort

CHANNELS = 2
#: per channel: (board limit on a sensor at a rail, board limit hot, cut-out) flag bits
_CHANNEL_BITS = tuple(
    (int(p.Fault.for_channel("LIMIT_SENSOR", ch)), int(p.Fault.for_channel("LIMIT_HOT", ch)),
     int(p.Fault.for_channel("CUTOUT", ch))) for ch in range(CHANNELS))
_DEADMAN_BITS = tuple(int(p.Fault.for_channel("DEADMAN", ch)) for ch in range(CHANNELS))
#: per channel: the plate limit flag (protocol 1.1)
_PLATE_BITS = tuple(int(p.Fault.for_channel("LIMIT_PLATE", ch)) for ch in range(CHANNELS))
#: per channel: every board-limit flag (while latched, the channel stays at 0)
_LIMIT_BITS = tuple(sensor | hot | plate for (sensor, hot, _cut), plate
                    in zip(_CHANNEL_BITS, _PLATE_BITS, strict=True))
_TELEMETRY_1_1 = p.Telemetry.FMT_1_1
_RELAY, _CUT0, _CUT1 = (int(p.Input.RELAY_CLOSED), int(p.Input.CUTOUT_0_OPEN),
                        int(p.Input.CUTOUT_1_OPEN))
_TELEMETRY = p.Telemetry.FMT


class BoardEmulator:
    """One heater board: two channels, four water sensors, a master relay, two cut-outs;
    from protocol 1.1 also a plate sensor per cushion and a room sensor."""

    def __init__(self, cfg: BoardConfig, sensor_cfg: SensorConfig, plant: Plant, clock: Clock,
                 port: BoardPort, rng: random.Random | None = None,
                 protocol_version: tuple[int, int] | None = None) -> None:
        self.cfg = cfg
        self.plant = plant
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.port = NoisyPort(port, self.rng)
        self.protocol_version = (protocol_version if protocol_version is not None
                                 else (p.PROTOCOL_MAJOR, cfg.protocol_minor))
        #: a 1.1 board: plate and room sensors, the plate limit
        self.has_plate = self.protocol_version >= (1, 1)
        self.fw_version = tuple(int(x) for x in cfg.firmware_version.split("."))
        therm = Thermistor(sensor_cfg)
        # Compare raw counts on the hot path: hotter means fewer counts.
        self._hot_counts = therm.counts_exact(cfg.limit_c)
        self._plate_hot_counts = therm.counts_exact(cfg.plate_limit_c)
        self._low_rail = therm.low_rail
        self._high_rail = therm.high_rail
        self._period = cfg.telemetry_period_s
        self.frames_in = 0
        self.frames_out = 0
        self.commands_rejected = 0
        self._plant_time = clock.now()
        self._boot(p.ResetCause.POWER_ON)

    # --- life cycle ----------------------------------------------------------------------

    def _boot(self, cause: p.ResetCause) -> None:
        now = self.clock.now()
        self.boot_time = now
        self.reset_cause = cause
        self.output = [0, 0]  # permille as last commanded and still valid
        self.output_set_at = [now, now]
        self.relay_closed = False
        self.faults = int(p.Fault.RESET)
        self._hot_run = [0, 0]
        self._rail_run = [0, 0]
        self._plate_run = [0, 0]
        # the telemetry layout: 1.1 only once a host said minor >= 1 in HELLO (5, 6)
        self._host_minor = 0
        self._cutout_seen = [False, False]
        self._parser = p.FrameParser()
        self._tx_seq = 0
        # The last command frame (SEQ, TYPE, PAYLOAD), the status it got and whether an
        # IDENTITY followed its ACK: a retransmission gets exactly that answer again.
        self._last_rx: tuple[int, int, bytes] | None = None
        self._last_ack_status = p.AckStatus.OK
        self._last_sent_identity = False
        self._next_sample = now
        self._boot_sample_due = True  # the first frame after boot is a TELEMETRY
        self.last_adc = (0, 0, 0, 0)
        self.last_plate: tuple[int, int] | None = None
        self.last_room: int | None = None

    def reset(self, cause: p.ResetCause = p.ResetCause.WATCHDOG) -> None:
        """Reboot: outputs off, relay open, RESET flagged, uptime from zero."""
        self._catch_up_plant(self.clock.now())
        self._boot(cause)

    @property
    def uptime_ms(self) -> int:
        return int((self.clock.now() - self.boot_time) * 1000) & 0xFFFFFFFF

    def applied(self, ch: int) -> int:
        """Permille actually driven to the SSR (0 when the relay is open)."""
        return self.output[ch] if self.relay_closed else 0

    # --- fault injection hooks -----------------------------------------------------------

    def set_serial_noise(self, error_rate: float) -> None:
        self.port.error_rate = error_rate

    def silence(self, duration_s: float) -> None:
        self.port.silent_until = self.clock.now() + duration_s

    def latch(self, bits: int) -> None:
        """Raise fault flags as if their cause had happened (relay open, the channel's
        setting to 0 where the flag does that, FAULT sent): a test hook for a board met
        with flags latched while no host watched.  The flags then clear on CLEAR_FAULTS
        unless their cause is present in the plant."""
        bits &= p.ALL_FAULTS & ~int(p.Fault.RESET)
        for ch in range(CHANNELS):
            if bits & (_DEADMAN_BITS[ch] | _LIMIT_BITS[ch]):
                self.output[ch] = 0
        self._raise(bits)

    # --- the main loop -------------------------------------------------------------------

    def next_due(self) -> float:
        """Clock time of the next thing ``poll`` does without a command from the host: the
        next sample (with its telemetry) or a dead-man cut, whichever is sooner.  A
        simulator serving many boards polls the others only when their port has input."""
        if self._boot_sample_due:
            return float("-inf")
        due = self._next_sample
        limit = self.cfg.deadman_s
        for ch in range(CHANNELS):
            if self.output[ch]:
                due = min(due, self.output_set_at[ch] + limit)
        return due

    def poll(self) -> None:
        """Catch up to now: sample, enforce limits, report, and handle host commands."""
        now = self.clock.now()
        self.port.now = now
        if self._boot_sample_due:
            # Boot takes its first sample before it reads any command (protocol 9.6).
            self._boot_sample_due = False
            self._sample(self._next_sample)
            self._next_sample += self._period
        self._handle_input(now)
        self._check_deadman(now)
        while self._next_sample <= now:
            t = self._next_sample
            self._catch_up_plant(t)
            self.port.now = t
            self._check_deadman(t)
            self._sample(t)
            self._next_sample = t + self._period
        self.port.now = now

    def _catch_up_plant(self, t: float) -> None:
        dt = t - self._plant_time
        if dt > 0:
            out = self.output
            self.plant.step(dt, (out[0] / 1000.0, out[1] / 1000.0), self.relay_closed)
            self._plant_time = t

    def _raise(self, bits: int) -> None:
        new = bits & ~self.faults
        if not new:
            return
        self.faults |= bits
        self.relay_closed = False
        self._send(p.FaultReport(new, self.faults))

    def _check_deadman(self, t: float) -> None:
        limit = self.cfg.deadman_s
        for ch in range(CHANNELS):
            if self.output[ch] and t - self.output_set_at[ch] > limit:
                self.output[ch] = 0
                self._raise(_DEADMAN_BITS[ch])

    def _sample(self, t: float) -> None:
        """One ADC sample of all four sensors: board-side limit, cut-outs, telemetry.

        The hot path of every simulation (5 Hz × hours), so the flag arithmetic uses
        precomputed ints rather than enum operations."""
        plant = self.plant
        counts = plant.sensor_counts
        adc = (counts(0, 0), counts(0, 1), counts(1, 0), counts(1, 1))
        self.last_adc = adc
        need = self.cfg.limit_samples
        lo, hi, hot = self._low_rail, self._high_rail, self._hot_counts
        cutout = plant.cutout_open
        raised = 0
        for ch, (sensor_bit, hot_bit, cutout_bit) in enumerate(_CHANNEL_BITS):
            a, b = adc[2 * ch], adc[2 * ch + 1]
            a_rail = a <= lo or a >= hi
            b_rail = b <= lo or b >= hi
            # A sensor at a rail is broken, never hot (a short reads like boiling water);
            # but it does not hide the other sensor's hot reading (protocol 9.4).
            self._rail_run[ch] = self._rail_run[ch] + 1 if (a_rail or b_rail) else 0
            is_hot = (not a_rail and a < hot) or (not b_rail and b < hot)
            self._hot_run[ch] = self._hot_run[ch] + 1 if is_hot else 0
            ch_raised = 0
            if self._rail_run[ch] >= need and self.output[ch] > 0:
                # a backstop for a host that kept driving a channel with a broken sensor
                ch_raised |= sensor_bit
            if self._hot_run[ch] >= need:
                ch_raised |= hot_bit
            if ch_raised:
                self.output[ch] = 0
            if cutout[ch]:
                ch_raised |= cutout_bit
            raised |= ch_raised
        plate = room = None
        if self.has_plate:
            plate = (plant.plate_counts(0), plant.plate_counts(1))
            room = plant.room_counts()
            raised |= self._plate_limit(plate)
        self.last_plate, self.last_room = plate, room
        if raised:
            self._raise(raised)
        relay = self.relay_closed
        inputs = ((_RELAY if relay else 0) | (_CUT0 if cutout[0] else 0)
                  | (_CUT1 if cutout[1] else 0))
        out = self.output
        if plate is not None and room is not None and self._host_minor >= 1:
            payload = _TELEMETRY_1_1.pack(self.uptime_ms, adc[0], adc[1], adc[2], adc[3],
                                          out[0] if relay else 0, out[1] if relay else 0,
                                          inputs, self.faults, plate[0], plate[1], room)
        else:
            payload = _TELEMETRY.pack(self.uptime_ms, adc[0], adc[1], adc[2], adc[3],
                                      out[0] if relay else 0, out[1] if relay else 0,
                                      inputs, self.faults)
        self.port.write(p.encode_frame(self._tx_seq, p.MsgType.TELEMETRY, payload))
        self._tx_seq = (self._tx_seq + 1) & 0xFF
        self.frames_out += 1

    def _plate_limit(self, plate: tuple[int, int]) -> int:
        """The plate limit (protocol 9.7): a plate sensor clear of the rails above
        ``plate_limit_c`` in ``limit_samples`` samples in a row sets the channel to 0 and
        raises LIMIT_PLATE_n, whatever the setting.  A plate sensor at a rail is broken,
        never hot: the bimetal cut-out still guards that plate."""
        lo, hi, hot = self._low_rail, self._high_rail, self._plate_hot_counts
        raised = 0
        for ch in range(CHANNELS):
            c = plate[ch]
            is_hot = lo < c < hi and c < hot
            self._plate_run[ch] = self._plate_run[ch] + 1 if is_hot else 0
            if self._plate_run[ch] >= self.cfg.limit_samples:
                self.output[ch] = 0
                raised |= _PLATE_BITS[ch]
        return raised

    # --- protocol ------------------------------------------------------------------------

    def _send(self, msg: p.Message) -> None:
        self.port.write(p.encode(self._tx_seq, msg))
        self._tx_seq = (self._tx_seq + 1) & 0xFF
        self.frames_out += 1

    def _handle_input(self, now: float) -> None:
        data = self.port.read_available()
        if not data:
            return
        for frame in self._parser.feed(data):
            self.frames_in += 1
            self._handle_frame(frame, now)

    def _handle_frame(self, frame: p.Frame, now: float) -> None:
        key = (frame.seq, frame.type, bytes(frame.payload))
        if key == self._last_rx:
            # A retransmission: the ACK was lost.  Say the same again; SET_OUTPUTS is
            # re-applied because it is idempotent and doubles as the dead-man refresh,
            # and a fresh IDENTITY follows only if the first answer had one.
            if frame.type == p.MsgType.SET_OUTPUTS and self._last_ack_status == p.AckStatus.OK:
                self._touch_outputs(now)
            self._send(p.Ack(frame.seq, self._last_ack_status))
            if self._last_sent_identity:
                self._send(self._identity())
            return
        self._last_rx = key  # every CRC-valid frame, rejected or not, is "the last command"
        status, extra = self._execute(frame, now)
        self._last_ack_status = status
        self._last_sent_identity = extra is not None
        if status is not p.AckStatus.OK:
            self.commands_rejected += 1
        self._send(p.Ack(frame.seq, status))
        if extra is not None:
            self._send(extra)

    def _identity(self) -> p.Identity:
        major, minor = self.protocol_version
        return p.Identity(major, minor, self.fw_version, self.cfg.serial_number,  # type: ignore[arg-type]
                          self.uptime_ms, self.reset_cause)

    def _touch_outputs(self, now: float) -> None:
        self.output_set_at = [now, now]

    def _execute(self, frame: p.Frame, now: float) -> tuple[p.AckStatus, p.Message | None]:
        try:
            mtype = p.MsgType(frame.type)
        except ValueError:
            return p.AckStatus.UNKNOWN_TYPE, None
        if mtype >= 0x80:
            return p.AckStatus.UNKNOWN_TYPE, None
        try:
            msg = frame.decode()
        except p.PayloadLengthError:
            return p.AckStatus.BAD_LENGTH, None
        except p.ProtocolError:
            return p.AckStatus.BAD_VALUE, None
        if isinstance(msg, p.Hello):
            ok = msg.major == self.protocol_version[0]
            if ok:
                self._host_minor = msg.minor  # the telemetry layout this host reads
            return (p.AckStatus.OK if ok else p.AckStatus.INCOMPATIBLE_VERSION), self._identity()
        if isinstance(msg, p.GetIdentity):
            return p.AckStatus.OK, self._identity()
        if isinstance(msg, p.SetOutputs):
            self._catch_up_plant(now)
            for ch, value in enumerate((msg.ch0, msg.ch1)):
                blocked = self.faults & _LIMIT_BITS[ch]
                self.output[ch] = 0 if blocked else value
            self._touch_outputs(now)
            return p.AckStatus.OK, None
        if isinstance(msg, p.SetRelay):
            if msg.closed and self.faults:
                return p.AckStatus.REFUSED, None
            self._catch_up_plant(now)
            self.relay_closed = msg.closed
            return p.AckStatus.OK, None
        if isinstance(msg, p.ClearFaults):
            self._clear(msg.mask)
            return p.AckStatus.OK, None
        return p.AckStatus.UNKNOWN_TYPE, None  # pragma: no cover - every host type handled

    def _clear(self, mask: int) -> None:
        """Clear the asked-for flags whose cause has gone; the rest stay latched."""
        persisting = 0
        for ch in range(CHANNELS):
            sensor_bit, hot_bit, cutout_bit = _CHANNEL_BITS[ch]
            if self._hot_run[ch]:
                persisting |= hot_bit
            if self._rail_run[ch]:
                persisting |= sensor_bit
            if self._plate_run[ch]:
                persisting |= _PLATE_BITS[ch]
            if self.plant.cutout_open[ch]:
                persisting |= cutout_bit
        self.faults &= ~(mask & ~persisting) & 0xFFFF
