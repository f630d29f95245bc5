"""Byte pipes between the board emulator and the host: in-process, or a real pty.

The board side of every transport has ``read_available() -> bytes`` and ``write(bytes)``;
it never blocks and never raises (a UART with nobody listening just loses bytes).  The
host side is whatever pyserial opens: for a pty that is pyserial itself; for the
in-process pipe it is ``InProcessSerial``, which behaves like a non-blocking
``serial.Serial`` (``read``, ``write``, ``in_waiting``, ``reset_input_buffer``, ``close``)
and raises ``serial.SerialException`` when "unplugged", exactly like a USB adapter pulled
out.  That is what lets the same link and board code run thousands of times faster than
real time in tests.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import termios
import tty
from pathlib import Path
from typing import Protocol

import serial


class BoardPort(Protocol):
    def read_available(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...


class InProcessSerial:
    """The host's end of an in-process pipe, shaped like a non-blocking pyserial port."""

    def __init__(self, pipe: InProcessPipe) -> None:
        self._pipe = pipe
        self.is_open = True
        self._generation = pipe.generation

    def _check(self) -> None:
        if not self.is_open:
            raise serial.PortNotOpenError()
        if not self._pipe.plugged or self._generation != self._pipe.generation:
            raise serial.SerialException("in-process port unplugged")

    @property
    def in_waiting(self) -> int:
        self._check()
        return len(self._pipe.to_host)

    def read(self, size: int = 1) -> bytes:
        self._check()
        buf = self._pipe.to_host
        data = bytes(buf[:size])
        del buf[:size]
        return data

    def write(self, data: bytes) -> int:
        self._check()
        self._pipe.to_board += data
        return len(data)

    def reset_input_buffer(self) -> None:
        self._check()
        self._pipe.to_host.clear()

    def close(self) -> None:
        self.is_open = False


class InProcessPipe:
    """A pair of byte buffers: the board's ``BoardPort`` and an opener for the host.

    ``unplug()`` makes the host's port raise and refuses new opens until ``replug()``.
    """

    def __init__(self) -> None:
        self.to_host = bytearray()
        self.to_board = bytearray()
        self.plugged = True
        self.generation = 0

    # board side
    def read_available(self) -> bytes:
        data = bytes(self.to_board)
        self.to_board.clear()
        return data

    def write(self, data: bytes) -> None:
        if self.plugged:
            self.to_host += data

    # host side
    def open(self, url: str = "", **_: object) -> InProcessSerial:
        if not self.plugged:
            raise serial.SerialException("in-process port is unplugged")
        return InProcessSerial(self)

    def unplug(self) -> None:
        self.plugged = False
        self.generation += 1
        self.to_host.clear()
        self.to_board.clear()

    def replug(self) -> None:
        self.plugged = True


class NoisyPort:
    """Wraps a board port: serial noise (each byte corrupted with probability
    ``error_rate``, both directions) and silence (nothing in or out while silent)."""

    def __init__(self, inner: BoardPort, rng: random.Random) -> None:
        self.inner = inner
        self.rng = rng
        self.error_rate = 0.0
        self.silent_until = float("-inf")
        self.now = 0.0  # set by the board before each use

    def _corrupt(self, data: bytes) -> bytes:
        if self.error_rate <= 0.0 or not data:
            return data
        rnd = self.rng.random
        out = bytearray(data)
        for i in range(len(out)):
            if rnd() < self.error_rate:
                out[i] ^= self.rng.randrange(1, 256)
        return bytes(out)

    def read_available(self) -> bytes:
        data = self.inner.read_available()
        if self.now < self.silent_until:
            return b""
        return self._corrupt(data)

    def write(self, data: bytes) -> None:
        if self.now < self.silent_until:
            return
        self.inner.write(self._corrupt(data))


class PtyPort:
    """A real pseudo-terminal: the board holds the master, the host opens the slave path.

    A stable symlink (``link_path``) points at the current slave, so the host keeps one
    URL across ``unplug()``/``replug()``, which close the pty and open a new one like a
    USB adapter pulled and plugged back.  The board keeps the slave open itself (in raw
    mode, so nothing is echoed back) so that writes with no host attached are simply
    buffered or dropped.
    """

    def __init__(self, link_path: str | os.PathLike[str] | None = None) -> None:
        self.link_path = Path(link_path) if link_path else None
        self.master_fd = -1
        self.slave_fd = -1
        self.slave_path = ""
        self.dropped_bytes = 0
        self.opened = 0  # ptys opened so far: a new one may reuse the old descriptor number
        self.replug()

    @property
    def plugged(self) -> bool:
        return self.master_fd >= 0

    def replug(self) -> None:
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)
        os.set_blocking(master, False)
        self.master_fd, self.slave_fd = master, slave
        self.opened += 1
        self.slave_path = os.ttyname(slave)
        if self.link_path:
            self.link_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.link_path.with_name(self.link_path.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_path)
            tmp.replace(self.link_path)

    def unplug(self) -> None:
        if not self.plugged:
            return
        for fd in (self.master_fd, self.slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.master_fd = self.slave_fd = -1
        if self.link_path:
            with contextlib.suppress(FileNotFoundError):
                self.link_path.unlink()

    close = unplug

    @property
    def path(self) -> str:
        return str(self.link_path) if self.link_path else self.slave_path

    def read_available(self) -> bytes:
        if not self.plugged:
            return b""
        chunks = []
        while True:
            try:
                data = os.read(self.master_fd, 4096)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EAGAIN):
                    break
                raise
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def write(self, data: bytes) -> None:
        if not self.plugged:
            return
        try:
            n = os.write(self.master_fd, data)
            self.dropped_bytes += len(data) - n
        except (BlockingIOError, OSError):
            self.dropped_bytes += len(data)


class TcpPort:
    """The board behind a TCP socket, as a serial-to-Ethernet adapter would present it:
    the host opens ``socket://host:port`` with pyserial.  One client at a time; bytes
    written with nobody connected are dropped, like a UART with nobody listening."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        import socket

        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(1)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._conn: object | None = None
        self.dropped_bytes = 0

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, OSError):
            return
        conn.setblocking(False)
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()  # type: ignore[attr-defined]
        self._conn = conn

    def read_available(self) -> bytes:
        self._accept()
        conn = self._conn
        if conn is None:
            return b""
        try:
            data = conn.recv(4096)  # type: ignore[attr-defined]
        except BlockingIOError:
            return b""
        except OSError:
            data = b""
        if not data:  # the host closed the connection
            with contextlib.suppress(OSError):
                conn.close()  # type: ignore[attr-defined]
            self._conn = None
        return data

    def write(self, data: bytes) -> None:
        conn = self._conn
        if conn is None:
            self.dropped_bytes += len(data)
            return
        try:
            conn.sendall(data)  # type: ignore[attr-defined]
        except (BlockingIOError, OSError):
            self.dropped_bytes += len(data)

    def close(self) -> None:
        for s in (self._conn, self._listener):
            if s is not None:
                with contextlib.suppress(OSError):
                    s.close()  # type: ignore[attr-defined]
        self._conn = None
