"""The reference firmware, compiled for the ATmega328P and run in simavr.

These tests drive the binary that would be flashed: the host's real ``BoardLink`` talks
to the MCU's UART, the plant is driven by its SSR and relay pins, the sensors feed its
ADC.  Times asserted here are the MCU's simulated time, never wall time.
"""

from __future__ import annotations

import re
import struct
import subprocess
import time
from pathlib import Path

import pytest

from firmware_bridge import protocol as p
from firmware_bridge.link import BoardLink
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import Config
from sim.firmware import FirmwareBuild, FirmwareTable, make_server
from sim.firmware.harness import Simavr, symbol_address
from sim.harness import InProcessHarness

pytest.register_assert_rewrite("tests.firmware_fixtures")
from tests.firmware_fixtures import firmware_table_factory  # noqa: E402
from tests.test_protocol import doc_lines  # noqa: E402

pytest_plugins = ["tests.firmware_fixtures"]

def hydrotherm_exe() -> str:
    """The installed ``hydrotherm`` command (as tests/test_cli.py finds it)."""
    import shutil
    import sys

    return shutil.which("hydrotherm") or str(Path(sys.executable).parent / "hydrotherm")


#: the ATmega328P: 32 KiB flash less the Nano's 512-byte bootloader, 2 KiB RAM
FLASH_BYTES = 32768 - 512
RAM_BYTES = 2048


def test_make_builds_elf_and_hex_that_fit(firmware_build: FirmwareBuild) -> None:
    elf = firmware_build.elf
    hex_file = elf.with_suffix(".hex")
    assert elf.is_file() and hex_file.is_file()
    assert hex_file.read_text().startswith(":")
    out = subprocess.run(["avr-size", "-A", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sizes = {m[1]: int(m[2]) for m in re.finditer(r"^(\.\w+)\s+(\d+)", out, re.M)}
    flash = sizes[".text"] + sizes.get(".data", 0)
    ram = sizes.get(".data", 0) + sizes.get(".bss", 0) + sizes.get(".noinit", 0)
    print(f"\nfirmware: flash {flash} B of {FLASH_BYTES}, static RAM {ram} B of {RAM_BYTES}")
    assert flash < FLASH_BYTES
    assert ram < RAM_BYTES // 2, "leave at least half the RAM for the stack"
    # no dynamic memory: nothing from malloc/free is linked in
    nm = subprocess.run(["avr-nm", str(elf)], capture_output=True, text=True,
                        check=True).stdout
    assert not re.search(r"\b(malloc|free|calloc|realloc)\b", nm)


def test_link_handshakes_over_pty_and_reads_telemetry(firmware_build: FirmwareBuild,
                                                      tmp_path: Path, cfg: Config) -> None:
    """``hydrotherm sim --firmware``'s server: the host's BoardLink on a real pty."""
    server = make_server(cfg, firmware_build.elf, RealClock(), tmp_path / "sim", seed=2)
    with server:
        path = server.ports[0].path
        assert Path(path).resolve().as_posix().startswith("/dev/pts/")
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), RealClock(), url=path)
        try:
            link.wait_connected(10.0)
            ident = link.identity
            assert ident.serial == cfg.board.serial_number
            assert ident.proto_major == p.PROTOCOL_MAJOR
            assert ident.reset_cause is p.ResetCause.POWER_ON
            # the rate on the board's own clock (uptime_ms), not the wall clock
            end = time.monotonic() + 5.0
            while link.latest is None and time.monotonic() < end:
                link.poll()
                time.sleep(0.002)
            assert link.latest is not None
            n0, up0 = link.counters.telemetry, link.latest.uptime_ms
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.0:
                link.poll()
                time.sleep(0.002)
            n1, up1 = link.counters.telemetry, link.latest.uptime_ms
            rate = (n1 - n0) / ((up1 - up0) / 1000.0)
            print(f"\ntelemetry over the pty: {rate:.2f} Hz of MCU time, {n1 - n0} reports "
                  f"in {time.monotonic() - t0:.1f} s of wall time")
            assert rate >= 4.0
            reading = link.latest
            assert reading is not None and reading.faults & p.Fault.RESET
            for cushion in reading.cushions:
                for sensor in (cushion.primary, cushion.redundant):
                    assert sensor.celsius is not None
                    assert abs(sensor.celsius - cfg.plant.initial_water_c[0]) < 0.5
            assert link.counters.crc_errors == 0 and link.counters.decode_errors == 0
        finally:
            link.close()


def test_heater_commands_heat_the_plant(fw_connected: InProcessHarness) -> None:
    h = fw_connected
    plant = h.table.plant
    h.link.set_outputs(1.0, 0.25)
    assert h.run(2.0, until=lambda: h.link.latest.cushions[0].applied == 1.0)
    plate0 = list(plant.plate_c)
    h.run(120.0)
    rise = [plant.plate_c[i] - plate0[i] for i in (0, 1)]
    print(f"\nplate rise in 120 s at 100 % / 25 %: {rise[0]:.2f} K / {rise[1]:.2f} K")
    assert rise[0] > 5.0
    assert 0.1 * rise[0] < rise[1] < 0.5 * rise[0]  # time-proportioned, not on/off
    assert h.link.latest.cushions[1].applied == 0.25
    # the sensors follow the water through the ADC
    water = plant.water_c[0]
    assert abs(h.link.latest.cushions[0].primary.celsius - plant.sensed_c[0][0]) < 0.3
    assert water > h.cfg.plant.initial_water_c[0]


def test_deadman_opens_heaters_within_3s_of_mcu_time(firmware_build: FirmwareBuild,
                                                     cfg: Config) -> None:
    h = InProcessHarness(cfg, seed=4, make_table=firmware_table_factory(firmware_build,
                                                                        step_s=0.001))
    table: FirmwareTable = h.table
    try:
        h.connect()
        h.link.set_outputs(1.0, 1.0)
        assert h.run(2.0, until=lambda: table.board.applied(1) == 1000)
        h.run(5.0)
        assert table.sim.last.pins == 0b111 or table.board.applied(0) == 1000
        # The host goes silent: nobody polls the link any more.
        off_at = None
        while h.clock.now() < 100 and off_at is None:
            h.clock.advance(0.001)
            table.poll()
            if table.sim.last.pins & 0b111 == 0:
                off_at = table.mcu_time_s
        assert off_at is not None and table.last_rx_mcu_s is not None
        took = off_at - table.last_rx_mcu_s
        print(f"\ndead-man: heaters and relay off {took:.4f} s (MCU time) after the last "
              "host bytes reached the UART")
        # the last frame takes ~1 ms on the wire; the check runs every 1 ms tick
        assert took <= cfg.board.deadman_s + 0.003
        assert took >= cfg.board.deadman_s - cfg.link.refresh_s
        assert table.board.faults & p.Fault.DEADMAN_0 and table.board.faults & p.Fault.DEADMAN_1
        assert not table.board.relay_closed
        table.poll()
        h.clock.advance(0.01)
        table.poll()
        assert table.plant.power_w == [0.0, 0.0]
    finally:
        table.close()


def test_latched_cutout_flag_cleared_only_after_the_cutout_closes(
        fw_connected: InProcessHarness) -> None:
    h = fw_connected
    plant, board = h.table.plant, h.table.board
    h.link.set_outputs(0.5, 0.0)
    plant.plate_c[0] = 56.0  # the bimetal switch opens above 55 °C
    assert h.run(2.0, until=lambda: board.faults & p.Fault.CUTOUT_0)
    assert not board.relay_closed
    assert h.link.latest.cushions[0].cutout_open
    h.link.clear_faults()
    h.run(1.0)
    assert board.faults & p.Fault.CUTOUT_0, "cleared while the cut-out is still open"
    plant.plate_c[0] = 40.0  # cooled below the 45 °C reclosing point
    h.run(1.0)
    assert not h.link.latest.cushions[0].cutout_open
    h.link.clear_faults(int(p.Fault.CUTOUT_0))
    assert h.run(1.0, until=lambda: board.faults == 0)
    assert not board.relay_closed, "clearing never closes the relay"


def test_boot_reset_flag_cleared_and_relay_refused_before(fw_harness: InProcessHarness) -> None:
    h = fw_harness
    assert h.run(2.0, until=lambda: h.link.connected)
    assert h.table.board.faults == p.Fault.RESET
    events = []
    h.link.add_listener(events.append)
    h.link.set_relay(True)
    h.run(0.5)
    assert not h.table.board.relay_closed
    assert any(e.kind == "command_refused" for e in events)
    h.link.clear_faults(int(p.Fault.RESET))
    assert h.run(1.0, until=lambda: h.table.board.faults == 0)


@pytest.mark.parametrize("cause", [p.ResetCause.WATCHDOG, p.ResetCause.EXTERNAL,
                                   p.ResetCause.POWER_ON])
def test_reset_cause_reported(fw_connected: InProcessHarness, cause: p.ResetCause) -> None:
    """WATCHDOG: the main loop hangs and the MCU's watchdog resets it."""
    h = fw_connected
    table: FirmwareTable = h.table
    h.link.set_outputs(1.0, 1.0)
    assert h.run(2.0, until=lambda: table.board.applied(0) == 1000)
    events = []
    h.link.add_listener(events.append)
    hung_at = table.mcu_time_s
    table.board.reset(cause)
    assert h.run(2.0, until=lambda: table.board.reset_cause is cause)
    if cause is p.ResetCause.WATCHDOG:
        print(f"\nwatchdog reset within {table.mcu_time_s - hung_at:.3f} s (MCU time, "
              "polled every 50 ms) of the hang")
    assert table.board.applied(0) == 0 and not table.board.relay_closed
    assert table.sim.last.pins & 0b111 == 0
    h.run(1.0)
    assert h.link.latest.faults & p.Fault.RESET
    assert any(e.kind == "board_reset" for e in events)
    # a fresh connection hears the cause in IDENTITY
    h.link.close()
    link2 = BoardLink(h.cfg.link, Thermistor(h.cfg.sensor), h.clock, url="inprocess://2",
                      opener=table.pipe.open)
    h.link = link2
    h.wait_connected()
    assert link2.identity.reset_cause is cause


def test_duplicate_and_malformed_commands(fw_connected: InProcessHarness) -> None:
    """Section 5 (a retransmission is answered with the first status and not carried
    out again) and section 13.2 (every malformed command of the document)."""
    h = fw_connected
    pipe = h.table.pipe
    h.link.close()
    port = pipe.open()
    parser = p.FrameParser()

    def exchange(frame: bytes) -> list[p.Message]:
        port.write(frame)
        out: list[p.Message] = []
        for _ in range(4):
            h.clock.advance(0.05)
            h.table.poll()
            out += [f.decode() for f in parser.feed(port.read(4096))]
        return [m for m in out if not isinstance(m, p.Telemetry)]

    exchange(b"")  # the answers to what the link said when it closed
    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    block = doc.split("```hex-invalid\n", 1)[1].split("```", 1)[0]
    cases = [line.split("=>") for line in block.splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(cases) >= 5
    for frame_hex, status in cases:
        frame = bytes.fromhex(frame_hex)
        answers = exchange(frame)
        assert answers == [p.Ack(frame[3], p.AckStatus[status.strip()])], frame_hex
    # CLEAR_FAULTS(RESET) was done by connect(); raise a cut-out... simpler: the relay.
    close = p.encode(200, p.SetRelay(False))
    assert exchange(close) == [p.Ack(200, p.AckStatus.OK)]
    assert not h.table.board.relay_closed
    h.table.plant.plate_c[1] = 60.0  # latch CUTOUT_1 so that closing is refused
    exchange(b"")
    refused = p.encode(201, p.SetRelay(True))
    assert exchange(refused) == [p.Ack(201, p.AckStatus.REFUSED)]
    h.table.plant.plate_c[1] = 30.0
    exchange(b"")
    clear = p.encode(202, p.ClearFaults(p.ALL_FAULTS))
    assert exchange(clear) == [p.Ack(202, p.AckStatus.OK)]
    assert h.table.board.faults == 0
    # the same SET_RELAY frame again (SEQ 201) is not the last command: carried out
    assert exchange(refused) == [p.Ack(201, p.AckStatus.OK)]
    assert h.table.board.relay_closed
    h.table.plant.plate_c[1] = 60.0
    exchange(b"")
    assert not h.table.board.relay_closed
    # ... but a retransmission of it now gets the first answer and changes nothing
    assert exchange(refused) == [p.Ack(201, p.AckStatus.OK)]
    assert not h.table.board.relay_closed
    hello = p.encode(203, p.Hello())
    first = exchange(hello)
    again = exchange(hello)
    assert [type(m) for m in first] == [type(m) for m in again] == [p.Ack, p.Identity]
    port.close()


def false_markers_burst() -> bytes:
    """71 bytes holding 22 false start markers whose candidates all end at the last
    byte: the receiver must check 22 CRCs when it arrives (the worst case of section 4
    for one buffer)."""
    buf = bytearray(71)
    for k in range(22):
        buf[3 * k:3 * k + 3] = bytes((0xA5, 0x5A, 64 - 3 * k))
    return bytes(buf)


def test_main_loop_time_under_load(fw_connected: InProcessHarness) -> None:
    """The firmware raises PB0 while its main loop works; simavr measures the longest
    pass in cycles.  It must stay well below the 1 ms tick (16 000 cycles), whatever
    arrives on the line: noise, and bursts of false start markers."""
    h = fw_connected
    h.link.set_outputs(0.7, 0.3)
    h.table.inject("serial_noise", error_rate=0.05)
    h.run(20.0)
    h.table.inject("serial_noise", clear=True)
    noise_busy = h.table.sim.last.busy_max_cycles
    for _ in range(20):
        h.table.pipe.to_board += false_markers_burst()
        h.run(0.1)
    assert h.run(3.0, until=lambda: h.link.healthy)
    busy = h.table.sim.last.busy_max_cycles
    freq = h.table.sim.frequency
    print(f"\nworst main-loop pass: {noise_busy} cycles with 5 % noise both ways for 20 s; "
          f"{busy} cycles = {busy / freq * 1e6:.0f} us at {freq / 1e6:.0f} MHz with bursts "
          "of false start markers")
    assert 0 < noise_busy <= busy < 16000
    depth, free = h.table.sim.stack_depth()
    print(f"deepest stack: {depth} B of the {free} B above static data")
    assert 0 < depth < free // 2


@pytest.mark.parametrize("line", doc_lines("hex-stream"))
def test_firmware_receiver_on_the_documents_damaged_streams(firmware_build: FirmwareBuild,
                                                            line: str) -> None:
    """docs/protocol.md 13.3, through the MCU's UART into the C receiver: the same frames
    (each answered by one ACK) and the same counters, read from the firmware's RAM."""
    m = re.fullmatch(r"([0-9A-F ]+?) => frames=(\[[^\] ]*\]) crc_errors=(\d+) oversized=(\d+) "
                     r"discarded_bytes=(\d+) resyncs=(\d+) pending=(\d+)", line)
    assert m, line
    stream = bytes.fromhex(m.group(1))
    expected = [(int(s), int(t, 16)) for s, t in re.findall(r"\((\d+),0x([0-9A-F]{2})\)",
                                                            m.group(2))]
    crc_errors, oversized, discarded, _resyncs, pending = (int(g) for g in m.groups()[2:])
    sim = Simavr(firmware_build.simhost, firmware_build.elf)
    try:
        quiet = ([0.5] * 7, [False, False])
        sim.step(20_000, *quiet)  # booted, first TELEMETRY out
        out = sim.step(120_000, *quiet, rx=stream).tx
        acks = [f.decode() for f in p.FrameParser().feed(out) if f.type == p.MsgType.ACK]
        assert [a.seq for a in acks] == [seq for seq, _ in expected]
        for ack, (_seq, mtype) in zip(acks, expected, strict=True):
            want = p.AckStatus.UNKNOWN_TYPE if mtype >= 0x80 else ack.status
            assert ack.status is want
        fc = sim.peek(symbol_address(firmware_build.elf, "frame_counters"), 8)
        frames, crc, over, disc = struct.unpack("<4H", fc)
        rx_len = sim.peek(symbol_address(firmware_build.elf, "rx_len"), 1)[0]
        assert (frames, crc, over, disc, rx_len) == (len(expected), crc_errors, oversized,
                                                     discarded, pending)
    finally:
        sim.close()


def test_cli_sim_firmware_prints_a_pty_the_link_opens(firmware_build: FirmwareBuild,
                                                      tmp_path: Path, cfg: Config) -> None:
    """``hydrotherm sim --firmware ELF`` as a user runs it; Ctrl-C stops it cleanly."""
    import signal

    proc = subprocess.Popen([hydrotherm_exe(), "sim", "--firmware",
                             str(firmware_build.elf), "--dir", str(tmp_path / "s")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        m = re.match(r"table0: (\S+) -> (/dev/pts/\d+)", first)
        assert m, first + proc.stderr.read() if proc.poll() is not None else first
        link = BoardLink(cfg.link, Thermistor(cfg.sensor), RealClock(), url=m.group(1))
        try:
            link.wait_connected(10.0)
            assert link.identity.firmware == "1.1.0"
        finally:
            link.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
    assert proc.returncode == 0, proc.stderr.read()


def test_cli_sim_firmware_missing_elf_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([hydrotherm_exe(), "sim", "--firmware",
                           str(tmp_path / "none.elf"), "--dir", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "no firmware at" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_physical_faults_on_the_firmware_table(fw_connected: InProcessHarness) -> None:
    """The fault vocabulary acts on the plant and the wire around the MCU, as with the
    Python board: a dead heater, a leak, a silent line (the dead-man catches it)."""
    h = fw_connected
    table: FirmwareTable = h.table
    plant = table.plant
    h.link.set_outputs(1.0, 1.0)
    assert h.run(2.0, until=lambda: table.board.applied(1) == 1000)
    table.inject("heater_dead", cushion=0)
    table.inject("cushion_leak", cushion=1, kg_per_min=6.0)
    kg0 = plant.water_kg[1]
    h.run(10.0)
    assert table.board.applied(0) == 1000 and plant.power_w[0] == 0.0
    assert plant.power_w[1] == h.cfg.plant.heater_w
    assert plant.water_kg[1] == pytest.approx(kg0 - 1.0, abs=0.05)
    table.inject("serial_silence", duration_s=5.0)
    assert h.run(5.0, until=lambda: table.board.faults & p.Fault.DEADMAN_1)
    assert not table.board.relay_closed


@pytest.mark.parametrize("noise_lsb", [0.5, 0.0])
def test_oversampled_counts_match_the_divider(firmware_build: FirmwareBuild, cfg: Config,
                                              noise_lsb: float) -> None:
    """docs/protocol.md 11.1: 16 conversions of the 10-bit ADC give 4095 · Vin / Vref to
    within 2.5 counts, with the ADC's usual half-LSB noise (the worst of the 70 readings
    of seven inputs at ten temperatures) and without any noise (the half LSB itself)."""
    therm = Thermistor(cfg.sensor)
    sim = Simavr(firmware_build.simhost, firmware_build.elf, seed=7, adc_noise_lsb=noise_lsb)
    worst = 0.0
    try:
        t_us = 0
        for celsius in (0.5, 10.0, 20.0, 30.0, 37.0, 40.0, 41.0, 42.0, 45.0, 59.5):
            r = therm.resistance_at(celsius)
            ratio = r / (r + cfg.sensor.series_ohm)
            t_us += 400_000  # two samples: the second one saw only this voltage
            state = sim.step(t_us, [ratio] * 7, [False, False]).state
            got = (*state.adc, *state.plate, state.room)  # all seven inputs
            exact = therm.counts_exact(celsius)
            worst = max(worst, *(abs(c - exact) for c in got))
    finally:
        sim.close()
    print(f"\nADC noise {noise_lsb} LSB: worst |counts - 4095 Vin/Vref| = {worst:.2f}")
    assert worst <= 2.51


def test_ssr_windows_run_from_boot_and_a_change_acts_in_the_same_window(
        firmware_build: FirmwareBuild) -> None:
    """docs/protocol.md 9.2: window k is uptime [2k, 2k + 2) s for both channels; an SSR is
    on from its window's start for applied/1000 of it; a change in mid-window acts at once
    (a lower share already exceeded switches off, a higher one switches on again)."""
    sim = Simavr(firmware_build.simhost, firmware_build.elf)
    quiet = ([0.5] * 7, [False, False])
    seq = iter(range(256))
    t_us = 0

    def run_to(until_ms: int, rx: bytes = b"") -> list[tuple[int, int]]:
        """Step 1 ms at a time; (ms, pins) after each step (bit 1 SSR0, bit 2 SSR1)."""
        nonlocal t_us
        seen = []
        while t_us < until_ms * 1000:
            t_us += 1000
            seen.append((t_us // 1000, sim.step(t_us, *quiet, rx=rx).pins))
            rx = b""
        return seen

    def outputs(ch0: int, ch1: int) -> bytes:
        return p.encode(next(seq), p.SetOutputs(ch0, ch1))

    def on_spans(seen: list[tuple[int, int]], bit: int) -> list[tuple[int, int]]:
        spans, start = [], None
        for ms, pins in seen:
            if pins & bit and start is None:
                start = ms
            elif not pins & bit and start is not None:
                spans.append((start, ms))
                start = None
        return spans

    try:
        run_to(100)
        run_to(200, p.encode(next(seq), p.ClearFaults(int(p.Fault.RESET)))
               + p.encode(next(seq), p.SetRelay(True)))
        seen = run_to(500, outputs(500, 250))
        for t in range(1000, 6000, 500):  # refreshed twice a second, same values
            seen += run_to(t, outputs(500, 250))
        ssr0, ssr1 = on_spans(seen, 0b010), on_spans(seen, 0b100)
        # whole windows 1 and 2: both channels switch on together at the window start
        for k in (1, 2):
            assert any(abs(a - 2000 * k) <= 2 and abs(b - (2000 * k + 1000)) <= 2
                       for a, b in ssr0), ssr0
            assert any(abs(a - 2000 * k) <= 2 and abs(b - (2000 * k + 500)) <= 2
                       for a, b in ssr1), ssr1
        # mid-window, in window 3 (6.0 .. 8.0 s): at 6.3 s SSR0 has been on 300 ms, and its
        # new share is 200 ms: off at once.  At 6.6 s SSR1 has been off since 6.5 s; its
        # new share, 800 ms, switches it on again until 6.8 s.
        seen = run_to(6300)
        seen = run_to(6310, outputs(100, 250))
        off0 = next(ms for ms, pins in seen if not pins & 0b010)
        assert off0 <= 6303, seen
        run_to(6600)
        seen = run_to(7000, outputs(100, 400))
        assert on_spans(seen, 0b100) and abs(on_spans(seen, 0b100)[0][0] - 6601) <= 2
        assert abs(on_spans(seen, 0b100)[0][1] - 6800) <= 2, on_spans(seen, 0b100)
    finally:
        sim.close()
