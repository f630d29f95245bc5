"""Which broker, and which account each part of this installation logs in with.

``hydrotherm run``, ``demo`` and ``dashboard`` all ask this module: with no broker
configured, it creates the installation's MQTT accounts (once, 0600 files in the data
directory), starts the embedded broker on them and hands each part the address of its own
account (a table its ``table-<id>``, the dashboard ``dashboard``).  With a broker URL,
explicit credentials (in the URL or the environment) win; otherwise the account's password
comes from ``mqtt.credentials_file`` (what ``hydrotherm broker mosquitto-config`` writes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from hydrotherm.config import MqttConfig

from .accounts import CREDENTIALS_FILE, CredentialStore, credentials_store
from .broker import EmbeddedBroker
from .client import BrokerAddress, parse_broker_url


@dataclass
class BrokerSetup:
    """The outcome: an address per account, the embedded broker (if one was started, for
    the caller to stop) and the credentials created now (for the caller to announce)."""

    address_for: Callable[[str], BrokerAddress]
    embedded: EmbeddedBroker | None
    store: CredentialStore | None
    created: list[str]

    def announce(self) -> str | None:
        """A line for the terminal when accounts were created, else None."""
        if not self.created or self.store is None:
            return None
        return (f"created MQTT accounts {', '.join(self.created)}: passwords in "
                f"{self.store.credentials_path} (mode 0600), argon2 hashes for the broker in "
                f"{self.store.passwd_path}")


def setup_broker(cfg: MqttConfig, data_dir: Path, table_ids: Iterable[str],
                 env: dict[str, str] | None = None) -> BrokerSetup:
    """Start the embedded broker on this installation's accounts, or resolve the configured
    broker; raises ``BrokerError``/``BrokerUrlError``/``AccountError`` with the reason."""
    store = credentials_store(cfg, data_dir)
    if not cfg.broker:
        embedded = EmbeddedBroker(cfg.embedded_host, cfg.embedded_port,
                                  passwd_file=store.passwd_path, prefix=cfg.prefix,
                                  discovery_prefix=cfg.discovery_prefix,
                                  certfile=cfg.embedded_cert_file,
                                  keyfile=cfg.embedded_key_file)
        embedded.check_exposure()  # before creating anything
        created = store.ensure(table_ids)
        embedded.start()
        base = parse_broker_url(embedded.url, env={})
        return BrokerSetup(lambda user: _with_account(base, store, user), embedded, store,
                           created)
    base = parse_broker_url(cfg.broker, env=env)
    if base.username:  # explicit credentials (URL or environment) win
        return BrokerSetup(lambda user: base, None, None, [])
    known = store.load() if store.credentials_path.exists() else {}
    return BrokerSetup(lambda user: _with_account(base, store, user) if user in known
                       else base, None, store, [])


def _with_account(base: BrokerAddress, store: CredentialStore, user: str) -> BrokerAddress:
    return replace(base, username=user, password=store.password(user))


__all__ = ["CREDENTIALS_FILE", "BrokerSetup", "credentials_store", "setup_broker"]
