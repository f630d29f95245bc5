"""Who may use the dashboard: the users file, the session secret, login back-off.

The users file is TOML with one table::

    [users]
    therapist = "scrypt:32768:8:1$..."   # werkzeug.security.generate_password_hash

It lives at ``dashboard.users_file`` or ``<data dir>/users.toml``, is written atomically
with mode 0600, and is re-read whenever it changes on disk, so ``hydrotherm dashboard
set-password`` takes effect in a running dashboard.  A session remembers a stamp of the
password hash it was opened with: changing a password logs that user out everywhere.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from hydrotherm.config import Config
from hydrotherm.files import write_atomically

FIRST_USER = "therapist"
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024
USER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,31}$")
SECRET_FILE = "dashboard_secret"

# Compared against when the user does not exist, so that a wrong name costs as long as a
# wrong password (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not a real password, only for timing")


class UserStoreError(ValueError):
    """A users file or a password that cannot be used; the message says why."""


def users_path(cfg: Config, data_dir: str | os.PathLike[str] | None = None) -> Path:
    if cfg.dashboard.users_file:
        return Path(os.path.expanduser(cfg.dashboard.users_file))
    base = Path(data_dir).expanduser() if data_dir else cfg.data_dir
    return base / "users.toml"


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not USER_NAME_RE.match(name):
        raise UserStoreError(f"user name {name!r} refused: 1–32 letters, digits or _ . @ -, "
                             "starting with a letter or digit")
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LEN:
        raise UserStoreError(f"password refused: it must have at least {MIN_PASSWORD_LEN} "
                             "characters")
    if len(password) > MAX_PASSWORD_LEN:
        raise UserStoreError(f"password refused: at most {MAX_PASSWORD_LEN} characters")
    return password


class UserStore:
    """Hashed passwords in a TOML file; thread-safe; reloads when the file changes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._users: dict[str, str] = {}
        self._stat: tuple[int, int] | None = None
        self._loaded = False

    @classmethod
    def for_config(cls, cfg: Config, data_dir: str | os.PathLike[str] | None = None
                   ) -> UserStore:
        return cls(users_path(cfg, data_dir))

    # --- file ------------------------------------------------------------------------------

    def load(self) -> dict[str, str]:
        """Read the file (missing: no users).  Raises UserStoreError if it is malformed."""
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._users, self._stat, self._loaded = {}, None, True
                return {}
            try:
                with self.path.open("rb") as fh:
                    data = tomllib.load(fh)
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise UserStoreError(f"{self.path}: cannot read the users file: {exc}") from None
            users = data.get("users", {})
            if not isinstance(users, dict) or set(data) - {"users"}:
                raise UserStoreError(f"{self.path}: expected only a [users] table")
            for name, hashed in users.items():
                if not isinstance(hashed, str) or "$" not in hashed:
                    raise UserStoreError(f"{self.path}: users.{name} is not a password hash")
            self._users = dict(users)
            self._stat = (st.st_mtime_ns, st.st_size)
            self._loaded = True
            return dict(self._users)

    def save(self) -> None:
        """Write the file atomically, readable by its owner only."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lines = ["# Dashboard logins: werkzeug password hashes.",
                     "# Change one with: hydrotherm dashboard set-password USER", "",
                     "[users]"]
            for name in sorted(self._users):
                lines.append(f'"{name}" = "{self._users[name]}"')
            st = write_atomically(self.path, "\n".join(lines) + "\n")
            self._stat = (st.st_mtime_ns, st.st_size)

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
            current: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            current = None
        if not self._loaded or current != self._stat:
            self.load()

    # --- users -----------------------------------------------------------------------------

    def names(self) -> list[str]:
        with self._lock:
            self._refresh()
            return sorted(self._users)

    def set_password(self, name: str, password: str) -> None:
        check_user_name(name)
        check_password(password)
        with self._lock:
            self._refresh()
            self._users[name] = generate_password_hash(password)
            self.save()

    def verify(self, name: str, password: str) -> bool:
        with self._lock:
            self._refresh()
            hashed = self._users.get(name) if isinstance(name, str) else None
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_LEN:
            return False
        if hashed is None:
            check_password_hash(_DUMMY_HASH, password)
            return False
        return check_password_hash(hashed, password)

    def stamp(self, name: str) -> str | None:
        """A short digest of the user's current hash (None: no such user)."""
        with self._lock:
            try:
                self._refresh()
            except UserStoreError:
                return None
            hashed = self._users.get(name)
        if hashed is None:
            return None
        return hashlib.sha256(hashed.encode()).hexdigest()[:16]


def ensure_first_user(store: UserStore) -> str | None:
    """With no users at all, create ``therapist`` with a random password and return it
    (the caller prints it once); otherwise None."""
    if store.names():
        return None
    password = secrets.token_urlsafe(12)
    store.set_password(FIRST_USER, password)
    return password


def load_secret_key(data_dir: str | os.PathLike[str]) -> bytes:
    """The session signing key, created once (0600) so restarts keep people logged in."""
    path = Path(data_dir).expanduser() / SECRET_FILE
    try:
        text = path.read_text().strip()
        if len(text) >= 64:
            return bytes.fromhex(text)
    except FileNotFoundError:
        pass
    except ValueError:
        pass  # unreadable content: replace it below
    key = secrets.token_bytes(32)
    write_atomically(path, key.hex() + "\n")
    return key


class LoginLimiter:
    """Per-client back-off after failed logins, in memory.

    The first ``free`` failures cost nothing; after that each further attempt must wait
    ``base_s * 2**(n - free)`` seconds (at most ``max_s``) after the last failure.  A
    success, or ``forget_s`` without failures, forgets the client.
    """

    def __init__(self, free: int = 5, base_s: float = 1.0, max_s: float = 300.0,
                 forget_s: float = 900.0, max_entries: int = 10000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.base_s, self.max_s, self.forget_s = free, base_s, max_s, forget_s
        self.max_entries = max_entries
        self.clock = clock
        self._lock = threading.Lock()
        self._fails: dict[str, tuple[int, float]] = {}

    def wait_s(self, key: str) -> float:
        """Seconds this client must still wait before another attempt (0: go ahead)."""
        now = self.clock()
        with self._lock:
            entry = self._fails.get(key)
            if entry is None:
                return 0.0
            n, last = entry
            if now - last > self.forget_s:
                del self._fails[key]
                return 0.0
            if n < self.free:
                return 0.0
            delay = min(self.max_s, self.base_s * 2 ** (n - self.free))
            return max(0.0, last + delay - now)

    def failed(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            n, _ = self._fails.get(key, (0, now))
            self._fails[key] = (n + 1, now)
            if len(self._fails) > self.max_entries:
                oldest = sorted(self._fails.items(), key=lambda kv: kv[1][1])
                for k, _ in oldest[: len(self._fails) - self.max_entries]:
                    del self._fails[k]

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)


class LoginThrottle:
    """Back-off for failed logins, per account *and* per address.

    One address alone is the wrong key behind a proxy or a clinic's NAT (one guest's
    guesses would lock out every therapist), and one account alone lets anybody lock a
    colleague out.  So three limiters, and an attempt waits for the longest of them:

    * the pair (account, address): 5 free failures, then 1, 2, 4 ... s, at most 5 min —
      one device guessing one account is stopped hard;
    * the account, from any address: 20 free failures, then at most 60 s — guessing one
      account from many addresses is slowed, and the owner is never locked out for long;
    * the address, for any account: 20 free failures, then at most 60 s — one device
      trying many accounts is slowed, and a shared address is never locked out for long.

    A successful login clears its pair and its account, and its address (the back-off is
    against guessing; whoever got in knew the password).  Behind a reverse proxy set
    ``dashboard.trusted_proxies`` so the address is the browser's, not the proxy's.
    Unknown account names are counted like real ones (no hint which names exist).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.pair = LoginLimiter(free=5, base_s=1.0, max_s=300.0, clock=clock)
        self.account = LoginLimiter(free=20, base_s=1.0, max_s=60.0, clock=clock)
        self.address = LoginLimiter(free=20, base_s=1.0, max_s=60.0, clock=clock)

    @staticmethod
    def _account(name: str) -> str:
        return name.strip().lower()[:64]

    def wait_s(self, name: str, address: str) -> float:
        """Seconds before this account may be tried again from this address (0: now)."""
        acct = self._account(name)
        return max(self.pair.wait_s(f"{acct}\0{address}"), self.account.wait_s(acct),
                   self.address.wait_s(address))

    def failed(self, name: str, address: str) -> None:
        acct = self._account(name)
        self.pair.failed(f"{acct}\0{address}")
        self.account.failed(acct)
        self.address.failed(address)

    def succeeded(self, name: str, address: str) -> None:
        acct = self._account(name)
        self.pair.succeeded(f"{acct}\0{address}")
        self.account.succeeded(acct)
        self.address.succeeded(address)
