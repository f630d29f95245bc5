"""mqtts:// with a CA and a client certificate, against Debian's Mosquitto on loopback.

The test makes its own CA, server and client certificates with openssl, so nothing
outside the test directory is trusted or changed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from controller.mqtt.client import make_client, parse_broker_url
from hydrotherm.config import MqttConfig
from tests.mqtt_fixtures import (
    Mosquitto,
    Table,
    find_program,
    short_tmpdir,
    wait_for,
)

pytest_plugins = ["tests.mqtt_fixtures"]


def _openssl(*args: str, cwd: Path) -> None:
    exe = find_program("openssl", "openssl")
    subprocess.run([exe, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=hydrotherm test CA", "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "table0")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        extra = ["-extfile", "san.ext"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *extra, cwd=d)
    return {k: d / v for k, v in (("ca", "ca.pem"), ("server_cert", "server.pem"),
                                  ("server_key", "server.key"), ("client_cert", "client.pem"),
                                  ("client_key", "client.key"))}


@pytest.fixture
def tls_broker() -> Iterator[tuple[Mosquitto, dict[str, Path]]]:
    binary = find_program("mosquitto", "mosquitto")
    d = short_tmpdir()
    pki = make_pki(d)
    m = Mosquitto(binary, d)
    m.conf.write_text(m.conf.read_text() + "\n".join([
        f"cafile {pki['ca']}", f"certfile {pki['server_cert']}",
        f"keyfile {pki['server_key']}", "require_certificate true",
        "use_identity_as_username true"]) + "\n")
    m.start()
    try:
        yield m, pki
    finally:
        m.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_table_publishes_over_mqtts_with_a_client_certificate(
        tls_broker: tuple[Mosquitto, dict[str, Path]],
        table_factory: Callable[..., Table]) -> None:
    broker, pki = tls_broker
    url = f"mqtts://127.0.0.1:{broker.port}"
    table = table_factory(url, mqtt={"ca_file": str(pki["ca"]),
                                     "cert_file": str(pki["client_cert"]),
                                     "key_file": str(pki["client_key"])})
    assert wait_for(lambda: table.bridge.counters["state_published"] > 0, 10)
    assert table.bridge.address.tls


def test_mqtts_refuses_a_broker_it_cannot_verify_and_a_client_without_certificate(
        tls_broker: tuple[Mosquitto, dict[str, Path]], tmp_path: Path) -> None:
    broker, pki = tls_broker
    address = parse_broker_url(f"mqtts://127.0.0.1:{broker.port}", env={})
    # 1. no CA given: the system trust store does not know the test CA
    untrusting = make_client(MqttConfig(), address, "no-ca")
    with pytest.raises(Exception, match="(?i)certificate"):
        untrusting.connect(address.host, address.port)
    # 2. the CA but no client certificate: the broker requires one
    cfg = MqttConfig(ca_file=str(pki["ca"]))
    accepted: list[bool] = []
    anonymous = make_client(cfg, address, "no-client-cert")
    anonymous.on_connect = lambda c, u, f, rc, p: accepted.append(not rc.is_failure)
    try:
        anonymous.connect(address.host, address.port)
        anonymous.loop_start()
        wait_for(lambda: bool(accepted), 3)
    except OSError:
        pass  # refused during the TLS handshake
    finally:
        anonymous.loop_stop()
    assert True not in accepted, "a client without a certificate was accepted"
    # 3. and with the client certificate it is accepted (so 2 failed for the right reason)
    full = make_client(MqttConfig(ca_file=str(pki["ca"]), cert_file=str(pki["client_cert"]),
                                  key_file=str(pki["client_key"])), address, "with-cert")
    ok: list[bool] = []
    full.on_connect = lambda c, u, f, rc, p: ok.append(not rc.is_failure)
    full.connect(address.host, address.port)
    full.loop_start()
    try:
        assert wait_for(lambda: bool(ok), 5) and ok[0]
    finally:
        full.disconnect()
        full.loop_stop()
