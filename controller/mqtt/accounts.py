"""Who may do what on the broker: MQTT accounts, their credentials and the topic ACL.

One model, two brokers.  The embedded amqtt broker enforces it through
``controller.mqtt.acl`` and a hashed password file; ``hydrotherm broker mosquitto-config``
writes the same rules as a Mosquitto password file and ACL file.  The roles
(docs/mqtt.md, "Security model"):

* ``table-<id>``: one table's controller.  Publishes only its own subtree
  (``<prefix>/<id>/#``) and its own Home Assistant discovery; reads only its own commands
  (``cmd/…`` and the plain ``…/set`` topics) and ``homeassistant/status``.  So a stolen
  table password cannot speak for another table.
* ``dashboard``: reads every table; publishes only ``<prefix>/+/cmd/#``.  It is the only
  account that may publish there, which is how a controller knows a ``cmd/…`` message
  came from the dashboard and may trust the person named in it.
* ``homeassistant``: reads every table and the discovery topics; publishes only the plain
  ``<prefix>/+/cushion/+/+/set`` topics and ``homeassistant/status`` (its birth message).
  Again the only account allowed there: a command on a ``…/set`` topic is Home Assistant's.
* ``observer``: reads every table and the discovery topics, publishes nothing.

Passwords are random (``secrets``), kept in plain text only in the 0600 credentials file
the clients of this installation read, and hashed (argon2, the format amqtt reads) in the
broker's password file.
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hydrotherm.config import MqttConfig

DASHBOARD = "dashboard"
HOMEASSISTANT = "homeassistant"
OBSERVER = "observer"
SERVICE_ACCOUNTS = (DASHBOARD, HOMEASSISTANT, OBSERVER)
TABLE_PREFIX = "table-"

CREDENTIALS_FILE = "mqtt-credentials.toml"
PASSWD_FILE = "mqtt-passwd"


class AccountError(ValueError):
    """A credentials file or table id that cannot be used; the message says why."""


def table_account(table_id: str) -> str:
    """The username of a table's controller."""
    return f"{TABLE_PREFIX}{table_id}"


@dataclass(frozen=True)
class Rules:
    """Topic filters an account may read (subscribe to and receive) and write (publish)."""

    read: tuple[str, ...]
    write: tuple[str, ...]


def rules_for(username: str, prefix: str = "hydrotherm",
              discovery_prefix: str = "homeassistant") -> Rules | None:
    """The ACL of one account; None for an unknown account (it may do nothing)."""
    if username.startswith(TABLE_PREFIX) and len(username) > len(TABLE_PREFIX):
        tid = username[len(TABLE_PREFIX):]
        base = f"{prefix}/{tid}"
        return Rules(read=(f"{base}/cmd/#", f"{base}/cushion/+/+/set",
                           f"{discovery_prefix}/status"),
                     write=(f"{base}/#", f"{discovery_prefix}/+/hydrotherm_{tid}/#"))
    if username == DASHBOARD:
        return Rules(read=(f"{prefix}/#",), write=(f"{prefix}/+/cmd/#",))
    if username == HOMEASSISTANT:
        return Rules(read=(f"{prefix}/#", f"{discovery_prefix}/#"),
                     write=(f"{prefix}/+/cushion/+/+/set", f"{discovery_prefix}/status"))
    if username == OBSERVER:
        return Rules(read=(f"{prefix}/#", f"{discovery_prefix}/#"), write=())
    return None


def acl(usernames: Iterable[str], prefix: str = "hydrotherm",
        discovery_prefix: str = "homeassistant") -> dict[str, Rules]:
    out = {}
    for u in usernames:
        r = rules_for(u, prefix, discovery_prefix)
        if r is not None:
            out[u] = r
    return out


def topic_matches(topic: str, pattern: str) -> bool:
    """Does a concrete topic match an MQTT filter (``+`` one level, ``#`` the rest)?"""
    t, p = topic.split("/"), pattern.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(t) == len(p)


def filter_within(requested: str, pattern: str) -> bool:
    """Is every topic a subscription filter can match also matched by ``pattern``?

    ``hydrotherm/+/state`` is within ``hydrotherm/#``; ``hydrotherm/#`` is not within
    ``hydrotherm/t1/#``; a requested ``+`` is only covered by a ``+`` or ``#``."""
    r, p = requested.split("/"), pattern.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True
        if i >= len(r):
            return False
        if r[i] == "#":
            return False
        if level == "+":
            continue
        if r[i] == "+" or r[i] != level:
            return False
    return len(r) == len(p)


def may_publish(rules: Rules | None, topic: str) -> bool:
    return rules is not None and any(topic_matches(topic, p) for p in rules.write)


def may_subscribe(rules: Rules | None, topic_filter: str) -> bool:
    return rules is not None and any(filter_within(topic_filter, p) for p in rules.read)


def may_receive(rules: Rules | None, topic: str) -> bool:
    return rules is not None and any(topic_matches(topic, p) for p in rules.read)


def check_table_id(table_id: str) -> None:
    if not table_id or any(ch in table_id for ch in "/+#: \t\n"):
        raise AccountError(f"table id {table_id!r} cannot be an MQTT account "
                           "(no /, +, #, :, blanks)")


# --- credentials on disk ------------------------------------------------------------------

class CredentialStore:
    """``mqtt-credentials.toml`` (plain, 0600: what this installation's clients log in with)
    and ``mqtt-passwd`` (argon2 hashes, 0600: what the embedded broker checks), in one
    directory.  ``ensure`` adds missing accounts and never changes an existing password."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory).expanduser()
        self.credentials_path = self.dir / CREDENTIALS_FILE
        self.passwd_path = self.dir / PASSWD_FILE

    def load(self) -> dict[str, str]:
        try:
            data = tomllib.loads(self.credentials_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise AccountError(f"cannot read {self.credentials_path}: {exc}") from None
        accounts = data.get("accounts", {})
        if not isinstance(accounts, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in accounts.items()):
            raise AccountError(f"{self.credentials_path}: [accounts] must map usernames to "
                               "non-empty passwords")
        return dict(accounts)

    def ensure(self, table_ids: Iterable[str], broker_hashes: bool = True) -> list[str]:
        """Make sure the service accounts and one account per table exist; returns the
        usernames created now (empty when nothing changed).  ``broker_hashes``: also keep
        the embedded broker's argon2 password file (Mosquitto has its own format)."""
        wanted = list(SERVICE_ACCOUNTS)
        for tid in table_ids:
            check_table_id(tid)
            wanted.append(table_account(tid))
        current = self.load()
        created = [u for u in wanted if u not in current]
        if created or (broker_hashes and not self.passwd_path.exists()):
            for u in created:
                current[u] = secrets.token_urlsafe(18)
            self._write(current, broker_hashes)
        return created

    def password(self, username: str) -> str:
        pw = self.load().get(username)
        if pw is None:
            raise AccountError(f"no MQTT account {username!r} in {self.credentials_path}")
        return pw

    def _write(self, accounts: dict[str, str], broker_hashes: bool = True) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        lines = ["# MQTT accounts of this installation (plain passwords: keep this file 0600)",
                 "# The broker checks the argon2 hashes in mqtt-passwd. See docs/mqtt.md.",
                 "[accounts]"]
        lines += [f"{json.dumps(u)} = {json.dumps(p)}" for u, p in sorted(accounts.items())]
        write_private(self.credentials_path, "\n".join(lines) + "\n")
        if broker_hashes:
            write_private(self.passwd_path, "".join(f"{u}:{hash_password(p)}\n"
                                                     for u, p in sorted(accounts.items())))


def hash_password(password: str) -> str:
    """argon2id, the hash amqtt's file authentication verifies (via pwdlib).  OWASP's
    minimum setting (19 MiB, 2 passes): the passwords are random 144-bit tokens, which no
    hash cost makes stronger, and every check costs the broker this much work."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(time_cost=2, memory_cost=19456, parallelism=1),)) \
        .hash(password)


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def credentials_store(cfg: MqttConfig, data_dir: Path) -> CredentialStore:
    """``mqtt.credentials_file`` if set, else ``<data dir>/mqtt-credentials.toml``."""
    if cfg.credentials_file:
        path = Path(cfg.credentials_file).expanduser()
        store = CredentialStore(path.parent)
        store.credentials_path = path
        return store
    return CredentialStore(data_dir)
