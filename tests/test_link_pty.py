"""The link against a board over a real pseudo-terminal, in real time.

Every test runs against both boards: the Python emulator and the compiled firmware in
simavr (``tests/firmware_fixtures.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import serial

from firmware_bridge import protocol as p
from firmware_bridge.link import BoardLink, LinkState
from firmware_bridge.thermistor import Thermistor
from hydrotherm.clock import RealClock
from hydrotherm.config import Config
from sim.server import SimServer

pytest_plugins = ["tests.firmware_fixtures"]


@pytest.fixture
def server(tmp_path: Path, cfg: Config,
           make_table: Callable[..., Any]) -> Iterator[SimServer]:
    with SimServer(cfg, RealClock(), tmp_path / "sim", tables=1, seed=3,
                   make_table=make_table) as srv:
        yield srv


@pytest.fixture
def link(server: SimServer, cfg: Config) -> Iterator[BoardLink]:
    lk = BoardLink(cfg.link, Thermistor(cfg.sensor), RealClock(), url=server.ports[0].path)
    yield lk
    lk.close()


def poll_until(link: BoardLink, cond, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        link.poll()
        if cond():
            return True
        time.sleep(0.002)
    return False


def test_pty_is_a_real_serial_device(server: SimServer) -> None:
    path = server.ports[0].path
    assert Path(path).is_symlink() and Path(path).resolve().as_posix().startswith("/dev/pts/")
    with serial.Serial(path, 115200, timeout=0.5) as port:
        parser = p.FrameParser()
        frames: list[p.Frame] = []
        end = time.monotonic() + 2.0
        while time.monotonic() < end and len(frames) < 3:
            frames += parser.feed(port.read(256))
        kinds = {f.type for f in frames}
        assert p.MsgType.TELEMETRY in kinds


def test_handshake_rate_and_ack_over_pty(server: SimServer, link: BoardLink) -> None:
    link.wait_connected(5.0)
    assert link.identity.serial == server.cfg.board.serial_number
    n0, t0 = link.counters.telemetry, time.monotonic()
    poll_until(link, lambda: False, 2.0)
    rate = (link.counters.telemetry - n0) / (time.monotonic() - t0)
    assert rate >= 4.0, f"telemetry at {rate:.1f} Hz"
    link.clear_faults()
    link.set_relay(True)
    link.set_outputs(0.4, 0.0)
    assert poll_until(link, lambda: link.latest and link.latest.relay_closed
                      and link.latest.cushions[0].applied == 0.4, 3.0)
    assert server.tables[0].board.applied(0) == 400
    assert link.counters.timeouts == 0


def test_noise_recovery_over_pty(server: SimServer, link: BoardLink) -> None:
    link.wait_connected(5.0)
    server.handle({"fault": "serial_noise", "error_rate": 0.01})
    poll_until(link, lambda: False, 3.0)
    assert link.counters.crc_errors + link.counters.resyncs > 0
    server.handle({"fault": "serial_noise", "clear": True})
    assert poll_until(link, lambda: link.healthy, 3.0)


def test_reconnect_after_pty_closed_and_reopened(server: SimServer, link: BoardLink) -> None:
    link.wait_connected(5.0)
    events = []
    link.add_listener(events.append)
    assert server.handle({"fault": "unplug"}) == {"ok": True}
    assert poll_until(link, lambda: link.state is LinkState.DISCONNECTED, 3.0)
    assert not link.healthy
    time.sleep(0.5)
    assert server.handle({"fault": "replug"}) == {"ok": True}
    assert poll_until(link, lambda: link.healthy, 8.0)
    kinds = [e.kind for e in events]
    assert "disconnected" in kinds and "connected" in kinds


def test_link_over_socket_url(cfg: Config, make_table: Callable[..., Any]) -> None:
    """The same link over pyserial's ``socket://`` (a serial-to-Ethernet adapter)."""
    import threading

    from sim.transport import TcpPort

    port = TcpPort()
    table = make_table(cfg, RealClock(), port, seed=5)
    stop = threading.Event()

    def board_loop() -> None:
        while not stop.is_set():
            table.poll()
            stop.wait(0.002)

    thread = threading.Thread(target=board_loop, daemon=True)
    thread.start()
    link = BoardLink(cfg.link, Thermistor(cfg.sensor), RealClock(), url=port.url)
    try:
        link.wait_connected(5.0)
        link.clear_faults()
        link.set_relay(True)
        link.set_outputs(0.3, 0.0)
        assert poll_until(link, lambda: link.latest is not None
                          and link.latest.cushions[0].applied == 0.3, 3.0)
        assert link.identity.serial == cfg.board.serial_number
    finally:
        link.close()
        stop.set()
        thread.join(2)
        port.close()
