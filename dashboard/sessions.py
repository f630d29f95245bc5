"""Server-side record of the logins that are still valid, so a logout really ends one.

Flask keeps the session in a signed cookie: on its own, a copied cookie stays valid
until it expires, whatever its owner does.  So every login gets a random session id,
and the server keeps the (hashed) ids that are still valid in a small JSON file next to
the users file.  A cookie whose id is not in the file is refused, for GET and POST alike.
Logout removes its own id; "log out everywhere" removes all of a user's ids; a password
change ends them all through the password stamp (``auth.UserStore.stamp``).

The file is written atomically with mode 0600 and re-read when it changes on disk, so
several dashboard processes sharing a data directory agree, and a restart keeps people
logged in.  Only SHA-256 digests of the ids are stored: the file alone opens nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydrotherm.files import write_atomically

#: the file's name, next to ``users.toml``
SESSIONS_FILE = "dashboard_sessions.json"
#: at most this many valid logins are kept; the oldest go first (a flood of logins
#: cannot grow the file without bound)
MAX_SESSIONS = 5000


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class SessionStore:
    """Valid session ids (as digests) with their user and expiry; thread-safe."""

    def __init__(self, path: str | os.PathLike[str] | None,
                 clock: Callable[[], float] = time.time,
                 max_sessions: int = MAX_SESSIONS) -> None:
        """``path`` None keeps the record in memory only (tests, throw-away apps)."""
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self.max_sessions = max_sessions
        self._lock = threading.RLock()
        self._sessions: dict[str, dict[str, Any]] = {}
        self._stat: tuple[int, int] | None = None
        self._loaded = False

    # --- the file --------------------------------------------------------------------------

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
            current: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            current = None
        if self._loaded and current == self._stat:
            return
        sessions: dict[str, dict[str, Any]] = {}
        if current is not None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                raw = data.get("sessions", {}) if isinstance(data, dict) else {}
                for key, entry in raw.items() if isinstance(raw, dict) else ():
                    if (isinstance(entry, dict) and isinstance(entry.get("user"), str)
                            and isinstance(entry.get("expires"), int | float)):
                        sessions[str(key)] = entry
            except (OSError, ValueError, RecursionError):
                # An unreadable record fails closed: nobody stays logged in, everybody
                # can log in again (which rewrites the file).
                sessions = {}
        self._sessions = sessions
        self._stat = current
        self._loaded = True

    def _save(self) -> None:
        if self.path is None:
            return
        text = json.dumps({"sessions": self._sessions}, separators=(",", ":"))
        st = write_atomically(self.path, text)
        self._stat = (st.st_mtime_ns, st.st_size)

    def _prune(self) -> None:
        now = self.clock()
        for key in [k for k, e in self._sessions.items() if e["expires"] <= now]:
            del self._sessions[key]
        extra = len(self._sessions) - self.max_sessions
        if extra > 0:
            oldest = sorted(self._sessions, key=lambda k: self._sessions[k].get("created", 0))
            for key in oldest[:extra]:
                del self._sessions[key]

    # --- logins ----------------------------------------------------------------------------

    def create(self, user: str, lifetime_s: float) -> str:
        """A new session id for ``user``, valid for ``lifetime_s`` (or until revoked)."""
        sid = secrets.token_urlsafe(18)
        now = self.clock()
        with self._lock:
            self._refresh()
            self._sessions[_digest(sid)] = {"user": user, "created": now,
                                            "expires": now + lifetime_s}
            self._prune()
            self._save()
        return sid

    def valid(self, sid: str, user: str) -> bool:
        if not sid:
            return False
        with self._lock:
            self._refresh()
            entry = self._sessions.get(_digest(sid))
        return (entry is not None and entry["user"] == user
                and entry["expires"] > self.clock())

    def revoke(self, sid: str) -> bool:
        """End one login; True if it was valid."""
        with self._lock:
            self._refresh()
            gone = self._sessions.pop(_digest(sid), None) is not None
            if gone:
                self._save()
        return gone

    def revoke_user(self, user: str) -> int:
        """End every login of ``user``; returns how many there were."""
        with self._lock:
            self._refresh()
            keys = [k for k, e in self._sessions.items() if e["user"] == user]
            for key in keys:
                del self._sessions[key]
            if keys:
                self._save()
        return len(keys)

    def count(self, user: str | None = None) -> int:
        with self._lock:
            self._refresh()
            now = self.clock()
            return sum(1 for e in self._sessions.values()
                       if e["expires"] > now and (user is None or e["user"] == user))
