"""Password checks for the embedded broker that do not stall it.

amqtt's ``FileAuthPlugin`` verifies the argon2 hash inside the broker's event loop: about
0.7 s per CONNECT on a loaded two-core machine, during which no other client of the broker
is served.  A burst of reconnects (or someone trying passwords) would then stall every
table's state.  This plugin checks the same file, but runs the verification in a worker
thread, and remembers the last password each account verified with (as a SHA-256 digest,
in memory), so the controllers' and the dashboard's reconnects cost nothing.  Only a new or
wrong password costs an argon2 run, and it runs off the loop.

The passwords are random 144-bit tokens (``controller.mqtt.accounts``), so the hash's cost
is not what protects them: ``hash_password`` uses a moderate argon2id setting.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac

from amqtt.plugins.authentication import FileAuthPlugin
from amqtt.session import Session


class ThreadedFileAuthPlugin(FileAuthPlugin):
    """``FileAuthPlugin`` with the argon2 check off the event loop and a verified cache."""

    def __init__(self, context) -> None:  # noqa: ANN001 - amqtt's BrokerContext
        super().__init__(context)
        self._verified: dict[str, bytes] = {}

    async def authenticate(self, *, session: Session) -> bool | None:
        if session is None:
            return False
        if not session.username:
            return None  # no vote; with no other plugin voting, the client is refused
        stored = self._users.get(session.username)
        if not stored:
            return False
        password = session.password or ""
        digest = hashlib.sha256(password.encode("utf-8")).digest()
        known = self._verified.get(session.username)
        if known is not None and hmac.compare_digest(known, digest):
            return True
        ok = await asyncio.to_thread(self.pwd_hasher.verify, password, stored)
        if ok:
            self._verified[session.username] = digest
        return bool(ok)
