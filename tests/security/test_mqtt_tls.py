"""MQTT over TLS with certificate verification, against a test CA made here with ``openssl``.

A client that trusts the CA connects and authenticates; a client that trusts another CA (what a
man-in-the-middle's certificate looks like to it) is refused during the handshake; the edge
agent's own uplink settings (``mqtts://`` + ``tls.ca_file``) produce a verifying client.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.registry.broker import BrokerAccount
from guanjia.app.stack.mosquitto import MosquittoServer
from tests.support.mqtt import connect, publish, subscribe

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "2", "-subj", f"/CN={name}")
    return key, cert


def make_server_cert(directory: Path, ca_key: Path, ca_cert: Path) -> tuple[Path, Path]:
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return key, cert


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[tuple[MosquittoServer, BrokerAccount, Path, Path]]:
    # the broker drops to its own user: pytest's tmp dirs (0700) are out of its reach
    base = Path(tempfile.mkdtemp(prefix="guanjia-tls-"))
    base.chmod(0o755)
    pki = base / "pki"
    pki.mkdir()
    ca_key, ca_cert = make_ca(pki, "guanjia-test-ca")
    _, other_ca = make_ca(pki, "someone-else-ca")
    key, cert = make_server_cert(pki, ca_key, ca_cert)
    for path in (pki, *pki.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    server = MosquittoServer(base / "mq", tls=(ca_cert, cert, key))
    account = BrokerAccount.gateway("tls-c", "gw-1")
    admin = BrokerAccount("admin", "admin-pw-for-tls-test", [("readwrite", "#")])
    server.set_accounts([account, admin])
    server.start()
    try:
        yield server, account, ca_cert, other_ca
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_client_trusting_the_ca_connects_and_publishes(tls_broker: tuple[MosquittoServer, BrokerAccount, Path,
                                                                           Path]) -> None:
    server, account, ca, _ = tls_broker
    admin = connect(server.host, server.tls_port, "admin", "admin-pw-for-tls-test", ca_file=ca)
    gw = connect(server.host, server.tls_port, account.username, account.password, ca_file=ca)
    try:
        assert admin.refused is None
        assert admin.connected.is_set()
        assert gw.refused is None
        assert gw.connected.is_set()
        subscribe(admin, "guanjia/v1/tls-c/gw-1/telemetry")
        publish(gw, "guanjia/v1/tls-c/gw-1/telemetry", b"over tls")
        assert admin.got.wait(5)
        assert admin.messages == [("guanjia/v1/tls-c/gw-1/telemetry", b"over tls")]
    finally:
        gw.close()
        admin.close()


def test_client_with_the_wrong_ca_is_refused(tls_broker: tuple[MosquittoServer, BrokerAccount, Path, Path]) -> None:
    server, account, _, other_ca = tls_broker
    with pytest.raises(ssl.SSLCertVerificationError):
        connect(server.host, server.tls_port, account.username, account.password, ca_file=other_ca)


def test_plain_client_on_the_tls_port_gets_nowhere(tls_broker: tuple[MosquittoServer, BrokerAccount, Path,
                                                                       Path]) -> None:
    server, account, _, _ = tls_broker
    probe = connect(server.host, server.tls_port, account.username, account.password, timeout=2)
    try:
        assert not probe.connected.is_set() or probe.refused is not None
    finally:
        probe.close()


def test_edge_uplink_settings_verify_the_broker(tls_broker: tuple[MosquittoServer, BrokerAccount, Path,
                                                                   Path]) -> None:
    """``mqtts://`` + ``tls.ca_file`` in the agent config give a client context that verifies."""
    from edge.config import UplinkConfig
    from edge.uplink import mqtt_client_args

    server, account, ca, _ = tls_broker
    config = UplinkConfig.model_validate({
        "url": f"mqtts://{account.username}:{account.password}@{server.host}:{server.tls_port}",
        "tls": {"ca_file": str(ca)}})
    args = mqtt_client_args(config)
    tls = args.get("tls_context") or args.get("tls_params")
    assert tls is not None, args
    if isinstance(tls, ssl.SSLContext):
        assert tls.verify_mode == ssl.CERT_REQUIRED
        assert tls.check_hostname
