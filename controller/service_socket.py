"""The service person's way in: a UNIX socket in the controller's data directory.

A trip that needs a service person (``SERVICE_ONLY``: a welded relay, the board's
hot-water limit, a cut-out) cannot be reset from the dashboard, MQTT or Home Assistant.
``hydrotherm service reset --name ... --reason ...`` reaches the running controller
through this socket, ``<data dir>/service.sock``.

Why a local socket, and not MQTT or a dashboard role:

* **Only someone at the controller's machine** can use it.  The person who resets a welded
  relay must have been at the table; a socket file cannot be reached over the network,
  so a leaked dashboard or broker password cannot lift a lockout.
* **File permissions are the access control**: the socket is created with mode 0600 (under
  a umask, so it never exists with wider rights), owned by the account the controller runs
  as; only that account and root can connect.  The server checks the peer's uid again
  (``SO_PEERCRED``) and logs the operating-system account with the name given, so the
  record says *who* (the name typed and the account used) and *why* (``--reason``).
* No new secret to manage, no port, nothing to configure.

One request per connection, one JSON line each way (``{"cmd": "reset", "name": ...,
"reason": ..., "cushion": null}`` or ``{"cmd": "status"}``).  ``hydrotherm schedule``
uses it too, on the same terms (only the controller's account): ``{"cmd": "schedule"}``
answers the schedule's status, ``{"cmd": "schedule", "schedule": {...}}`` replaces the
schedule through the same ``ScheduleRunner.update`` that ``cmd/schedule`` over MQTT uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import socket
import socketserver
import stat
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SOCKET_NAME = "service.sock"
MAX_REQUEST = 16384  # a whole week's schedule (28 entries) fits
MAX_NAME = 100
MAX_REASON = 500
#: how long a reset may take: CLEAR_FAULTS, a few reports, the supervisor's judgement
ANSWER_TIMEOUT_S = 10.0


class ServiceSocketError(RuntimeError):
    """The socket cannot be served (another controller serves it, a path problem)."""


def peer_user(sock: socket.socket) -> tuple[int | None, str]:
    """The connecting process's uid and account name (Linux ``SO_PEERCRED``)."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
    except (AttributeError, OSError):
        return None, "unknown"
    try:
        return uid, pwd.getpwuid(uid).pw_name
    except KeyError:
        return uid, f"uid {uid}"


def _text(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} is required (a non-empty text)")
    value = " ".join(value.split())
    if len(value) > limit:
        raise ValueError(f"{key} is longer than {limit} characters")
    return value


class ServiceSocket:
    """Serves ``service.sock`` for one controller."""

    def __init__(self, controller: Any, data_dir: Path | str) -> None:
        self.controller = controller
        self.path = Path(data_dir).expanduser() / SOCKET_NAME
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def start(self) -> ServiceSocket:
        path = self.path
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ServiceSocketError(f"{path} exists and is not a socket: move it away")
            if _answers(path):
                raise ServiceSocketError(f"another controller already serves {path}: "
                                         "one controller per data directory")
            path.unlink()  # left behind by a controller that was killed
        server = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 5.0

            def handle(self) -> None:
                uid, user = peer_user(self.connection)
                try:
                    if uid is not None and uid not in (os.getuid(), 0):
                        raise PermissionError(f"account {user} may not use this socket")
                    line = self.rfile.readline(MAX_REQUEST + 1)
                    if len(line) > MAX_REQUEST:
                        raise ValueError("request too long")
                    body = json.loads(line)
                    if not isinstance(body, dict):
                        raise ValueError("a request is a JSON object")
                    answer = server.handle(body, user)
                except (ValueError, PermissionError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                except OSError:
                    return  # the client went away or never wrote: nothing to answer
                with contextlib.suppress(OSError):
                    self.wfile.write((json.dumps(answer) + "\n").encode())

        old = os.umask(0o177)  # the socket file is born 0600
        try:
            with reachable(path) as address:
                self._server = socketserver.ThreadingUnixStreamServer(address, Handler)
        except OSError as exc:
            raise ServiceSocketError(f"cannot serve {path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="service-socket",
                         daemon=True).start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            with contextlib.suppress(OSError):
                self.path.unlink()

    # --- requests --------------------------------------------------------------------------

    def handle(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        """One request from ``user`` (the peer's account); always answers."""
        cmd = body.get("cmd")
        if cmd == "status":
            snap = self.controller.snapshot()
            trips: dict[tuple[str, Any], dict[str, Any]] = {}
            for c in snap["cushions"]:
                for t in c["trips"]:
                    trips.setdefault((t["reason"], t["detail"]), t)
            return {"ok": True, "service_needed": snap.get("service_needed", False),
                    "trips": list(trips.values())}
        if cmd == "schedule":
            return self._schedule(body, user)
        if cmd != "reset":
            return {"ok": False, "error": f"unknown cmd {cmd!r} (reset, status, schedule)"}
        name = _text(body, "name", MAX_NAME)
        reason = _text(body, "reason", MAX_REASON)
        cushion = body.get("cushion")
        if cushion is not None and (isinstance(cushion, bool) or cushion not in (0, 1)):
            raise ValueError(f"cushion must be 0, 1 or null, got {cushion!r}")
        actor = f"service:{name} (account {user})"
        done = threading.Event()
        result: list[Any] = []

        def finished(res: Any) -> None:
            result.append(res)
            done.set()

        try:
            self.controller.request_reset(actor, cushion, finished, service_reason=reason)
        except ValueError as exc:  # CommandError
            return {"ok": False, "error": str(exc)}
        if not done.wait(ANSWER_TIMEOUT_S):
            return {"ok": False, "error": "the controller did not judge the reset within "
                                          f"{ANSWER_TIMEOUT_S:g} s (is its loop running?)"}
        res = result[0]
        return {"ok": res.ok, "actor": actor,
                "cleared": [t.reason for t in res.cleared],
                "refused": [{"reason": t.reason, "why": why} for t, why in res.refused]}

    def _schedule(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        """Read (no ``schedule`` key) or replace the ready-by schedule; validated, stored
        and logged by the controller's runner, as an MQTT edit is."""
        runner = getattr(self.controller, "schedule", None)
        if runner is None:
            return {"ok": False, "error": "this controller keeps no schedule"}
        if "schedule" in body:
            try:
                runner.update(body["schedule"], f"cli:{user}")
            except ValueError as exc:  # ScheduleError
                return {"ok": False, "error": f"schedule refused: {exc}"}
        with self.controller.lock:  # as the snapshot reads it; the rest of it is not needed
            return {"ok": True, "status": runner.status()}


@contextlib.contextmanager
def reachable(path: Path) -> Iterator[str]:
    """An address for ``path`` that fits a UNIX socket (at most 107 bytes).  A longer path
    (a deep data directory, a demo's per-run folder) is reached through an open descriptor
    of its directory, ``/proc/self/fd/N/service.sock``, which Linux resolves like the path
    itself, so the file's permissions still decide who may connect."""
    if len(os.fsencode(path)) <= 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            with reachable(path) as address:
                s.connect(address)
        except OSError:
            return False
    return True


def request(path: Path | str, body: dict[str, Any],
            timeout_s: float = ANSWER_TIMEOUT_S + 5) -> dict[str, Any]:
    """Send one request to a running controller's service socket; its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        with reachable(Path(path)) as address:
            s.connect(address)
        s.sendall((json.dumps(body) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    answer = json.loads(buf) if buf else {"ok": False, "error": "no answer"}
    if not isinstance(answer, dict):
        return {"ok": False, "error": "malformed answer"}
    return answer
