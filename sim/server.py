"""``hydrotherm sim``: simulated tables on real pseudo-terminals, in real time.

Each table gets a pty whose slave any serial program can open (the link, or
``python -m serial.tools.miniterm``), reached through a stable symlink
(``<dir>/table0``) that survives unplug/replug.  A Unix control socket
(``<dir>/control.sock``) takes fault injections and client on/off while it runs, one
JSON object per line (``send_control`` below is the client).
"""

from __future__ import annotations

import json
import os
import selectors
import socketserver
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydrotherm.clock import Clock, RealClock, heartbeat, leave
from hydrotherm.config import Config

from .faults import FaultError, faults_now
from .table import SimulatedTable
from .transport import PtyPort


def default_dir() -> Path:
    """Where the pty symlinks and the control socket live by default."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"hydrotherm-{os.getuid()}"


class SimServer:
    """N simulated tables polled by one thread against one clock."""

    def __init__(self, cfg: Config, clock: Clock | None = None, directory: Path | None = None,
                 tables: int = 1, seed: int = 0, names: list[str] | None = None,
                 make_table: Callable[..., Any] = SimulatedTable) -> None:
        """``make_table(cfg, clock, port, seed=, serial_number=)`` builds each table: the
        Python board by default, ``sim.firmware.FirmwareTable`` for the real firmware."""
        if tables < 1:
            raise ValueError("tables must be at least 1")
        #: The tables' names: their pty links (``<dir>/<name>``) and what the control
        #: socket's ``table`` takes (a name or an index); the demo passes its MQTT ids so
        #: the simulator, the dashboard and the CLI say the same ``table1``.
        self.names = list(names) if names else [f"table{i}" for i in range(tables)]
        if len(self.names) != tables or len(set(self.names)) != tables:
            raise ValueError("names: one distinct name per table")
        self.cfg = cfg
        self.clock = clock or RealClock()
        self.dir = Path(directory) if directory else default_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.ports = [PtyPort(self.dir / name) for name in self.names]
        self.tables = [make_table(cfg, self.clock, port, seed=seed + i,
                                  serial_number=cfg.board.serial_number + i)
                       for i, port in enumerate(self.ports)]
        self.control_path = self.dir / "control.sock"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._control: socketserver.UnixStreamServer | None = None

    # --- running -------------------------------------------------------------------------

    def start(self) -> SimServer:
        self._thread = threading.Thread(target=self._run, name="sim-boards", daemon=True)
        self._thread.start()
        self._start_control()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if self._control:
            self._control.shutdown()
            self._control.server_close()
            self.control_path.unlink(missing_ok=True)
        for port in self.ports:
            port.close()
        for table in self.tables:
            close = getattr(table, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        period = min(0.01, self.cfg.board.telemetry_period_s / 4)
        # A paced demo clock (``hydrotherm.clock.PacedClock``) waits for the boards.
        beat = heartbeat(self.clock, "sim-boards")
        try:
            self._poll_until_stopped(period, beat)
        finally:
            leave(self.clock, "sim-boards")

    def _poll_until_stopped(self, period: float, beat: Callable[[], None]) -> None:
        """Wake when a host writes or at most every ``period``; then poll the tables that
        have input or something due by time (``next_due``; a table without it: always).
        Polling every table on every wake cost O(tables²): with 200 tables some host
        writes nearly every millisecond, and the simulator spent a third of a core
        reading 200 empty ptys each time.  A table's due time changes when it is polled,
        or when something else touches it (a fault, a test reaching into a board, an
        unplugged port): every ``period`` all are asked again, as often as the old loop
        looked at them."""
        n = len(self.tables)
        dues = [float("-inf")] * n
        fds: dict[int, int] = {}
        # epoll where there is one: select() on 200 descriptors, 1,000 times a second,
        # was half of what was left
        waiter = selectors.DefaultSelector()
        ptys: list[tuple[int, int]] = []  # (descriptor, pty count) per port: replugged?
        refreshed = float("-inf")
        try:
            while not self._stop.is_set():
                if time.monotonic() - refreshed >= period:
                    refreshed = time.monotonic()
                    now_ptys = [(p.master_fd, p.opened) for p in self.ports]
                    if now_ptys != ptys:
                        waiter.close()
                        waiter = selectors.DefaultSelector()
                        fds = {fd: i for i, (fd, _) in enumerate(now_ptys) if fd >= 0}
                        for fd in fds:
                            waiter.register(fd, selectors.EVENT_READ)
                        ptys = now_ptys
                    dues = [_due(t) for t in self.tables]
                ready: set[int] = set()
                if fds:
                    try:
                        ready = {fds[key.fd] for key, _ in waiter.select(period)}
                    except (OSError, ValueError, KeyError):
                        self._stop.wait(period)  # a port was unplugged under us
                        refreshed = float("-inf")
                        ptys = []
                else:
                    self._stop.wait(period)
                with self.lock:
                    now = self.clock.now()
                    if min(dues, default=0.0) <= now:
                        ready.update(i for i in range(n) if dues[i] <= now)
                    for i in ready:
                        table = self.tables[i]
                        table.poll()
                        dues[i] = _due(table)
                beat()
        finally:
            waiter.close()

    # --- control -------------------------------------------------------------------------

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        """Carry out one control request; always answers, never raises."""
        try:
            cmd = req.get("cmd", "fault")
            if cmd == "status" and req.get("table") is None:
                with self.lock:
                    return {"ok": True,
                            "tables": [self.status(i) for i in range(len(self.tables))]}
            idx = self.index(req.get("table", 0))
            if idx is None:
                return {"ok": False, "error": f"no table {req.get('table')!r} (have "
                                              f"{', '.join(self.names)})"}
            table = self.tables[idx]
            with self.lock:
                if cmd == "fault":
                    params = {k: v for k, v in req.items()
                              if k not in ("cmd", "table", "fault", "clear")}
                    table.inject(str(req.get("fault")), clear=bool(req.get("clear")), **params)
                    return {"ok": True}
                if cmd == "client":
                    cushion = req.get("cushion")
                    if cushion not in (0, 1):
                        return {"ok": False, "error": "cushion must be 0 or 1"}
                    table.set_client(cushion, bool(req.get("on", True)))
                    return {"ok": True}
                if cmd == "status":
                    return {"ok": True, "tables": [self.status(idx)]}
            return {"ok": False, "error": f"unknown cmd {cmd!r} (fault, client, status)"}
        except FaultError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def index(self, table: Any) -> int | None:
        """A table's index from its name or its number (``None``: no such table)."""
        if isinstance(table, str) and table in self.names:
            return self.names.index(table)
        if isinstance(table, str) and table.isdigit():
            table = int(table)
        if isinstance(table, int) and not isinstance(table, bool) \
                and 0 <= table < len(self.tables):
            return table
        return None

    def status(self, i: int) -> dict[str, Any]:
        t = self.tables[i]
        pl, b = t.plant, t.board
        return {"table": self.names[i], "index": i, "path": self.ports[i].path,
                "plugged": self.ports[i].plugged, "active_faults": faults_now(t),
                "water_c": [round(x, 3) for x in pl.water_c],
                "plate_c": [round(x, 3) for x in pl.plate_c],
                "output": [b.applied(0) / 1000, b.applied(1) / 1000],
                "relay_closed": b.relay_closed, "faults": b.faults,
                "client_on": list(pl.client_on)}

    def _start_control(self) -> None:
        server = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    if not line.strip():
                        continue
                    try:
                        req = json.loads(line)
                        if not isinstance(req, dict):
                            raise ValueError("a request is a JSON object")
                        resp = server.handle(req)
                    except ValueError as exc:
                        resp = {"ok": False, "error": f"bad request: {exc}"}
                    self.wfile.write((json.dumps(resp) + "\n").encode())

        self.control_path.unlink(missing_ok=True)
        self._control = socketserver.ThreadingUnixStreamServer(str(self.control_path), Handler)
        self._control.daemon_threads = True
        threading.Thread(target=self._control.serve_forever, name="sim-control",
                         daemon=True).start()


def send_control(path: str | os.PathLike[str], request: dict[str, Any],
                 timeout_s: float = 5.0) -> dict[str, Any]:
    """Send one request to a running ``hydrotherm sim`` and return its answer."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(path))
        s.sendall((json.dumps(request) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def _due(table: Any) -> float:
    """A table's ``next_due()``; one without it is always due (polled on every wake)."""
    due = getattr(table, "next_due", None)
    return due() if due is not None else float("-inf")
