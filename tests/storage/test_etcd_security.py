"""The etcd backend against members that require TLS with client certificates, or etcd's user/password
authentication (one private single-member cluster each; certificates made here by a throw-away CA)."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from strongroom.errors import InvalidRequest, StorageUnavailable
from strongroom.storage.base import Store
from strongroom.storage.etcd import EtcdStore
from strongroom.storage.etcd_client import EtcdClient
from strongroom.storage.etcd_txn import b64s, prefix_end
from strongroom.storage.url import open_store
from tests.support.etcd import EtcdCluster, start_cluster


def _issue(
    directory: Path, name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, usage: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Write ``name.pem`` and ``name-key.pem``: a CA (no issuer) or a server/client certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        ).add_extension(
            # etcd's own gateway dials the member with the server certificate: it needs client use too.
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                if usage == "server"
                else [ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{name}-key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[tuple[EtcdCluster, Path]]:
    ca = _issue(tmp_path, "ca", None, "ca")
    _issue(tmp_path, "other-ca", None, "ca")
    _issue(tmp_path, "server", ca, "server")
    _issue(tmp_path, "client", ca, "client")
    client_tls = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    client_tls.load_cert_chain(tmp_path / "client.pem", tmp_path / "client-key.pem")
    args = [
        f"--cert-file={tmp_path / 'server.pem'}",
        f"--key-file={tmp_path / 'server-key.pem'}",
        f"--trusted-ca-file={tmp_path / 'ca.pem'}",
        "--client-cert-auth",
    ]
    cluster = start_cluster(1, args, client_tls)
    try:
        yield cluster, tmp_path
    finally:
        cluster.close()


async def _roundtrip(store: Store) -> None:
    async with store.transaction() as tx:
        tx.set(b"k", b"v")
    async with store.transaction() as tx:
        assert await tx.get(b"k") == b"v"
        tx.clear(b"k")


async def test_tls_with_client_certificate(tls_cluster: tuple[EtcdCluster, Path]) -> None:
    cluster, certs = tls_cluster
    endpoint = cluster.endpoints()
    base = f"etcd://{endpoint}?prefix=tls/&timeout=1&ca_file={certs / 'ca.pem'}"
    store = open_store(f"{base}&cert_file={certs / 'client.pem'}&key_file={certs / 'client-key.pem'}")
    try:
        await _roundtrip(store)
    finally:
        await store.close()
    for refused in [
        base,  # no client certificate: etcd refuses the handshake
        f"etcd://{endpoint}?prefix=tls/&timeout=1&ca_file={certs / 'other-ca.pem'}"  # member not trusted
        f"&cert_file={certs / 'client.pem'}&key_file={certs / 'client-key.pem'}",
        f"etcd://{endpoint}?prefix=tls/&timeout=1",  # plain HTTP to a TLS member
    ]:
        store = open_store(refused)
        try:
            with pytest.raises(StorageUnavailable):
                await _roundtrip(store)
        finally:
            await store.close()


@pytest.mark.parametrize(
    "options",
    ["tls=maybe", "cert_file=/x", "ca_file=/nonexistent/ca.pem", "tls=false&ca_file=/x", "password_file=/x"],
)
def test_bad_tls_and_password_options(options: str) -> None:
    with pytest.raises(InvalidRequest):
        open_store(f"etcd://127.0.0.1:2379?{options}")


def test_user_without_password_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRONGROOM_ETCD_PASSWORD", raising=False)
    with pytest.raises(InvalidRequest):
        open_store("etcd://strongroom@127.0.0.1:2379")


async def test_password_authentication(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cluster = start_cluster(1)
    admin = EtcdClient(
        [("127.0.0.1", cluster.members[0].client_port)], timeout=5, attempt_timeout=5, max_connections=1
    )
    password = secrets.token_urlsafe(16)
    try:
        # A user who may read and write the prefix "app/" only; then authentication on.
        root_password = secrets.token_urlsafe(16)
        for path, doc in [
            ("/v3/auth/user/add", {"name": "root", "password": root_password}),
            ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
            ("/v3/auth/user/add", {"name": "strongroom", "password": password}),
            ("/v3/auth/role/add", {"name": "app"}),
            (
                "/v3/auth/role/grant",
                {
                    "name": "app",
                    "perm": {
                        "key": b64s(b"app/"),
                        "range_end": b64s(prefix_end(b"app/")),
                        "permType": "READWRITE",
                    },
                },
            ),
            ("/v3/auth/user/grant", {"user": "strongroom", "role": "app"}),
            ("/v3/auth/enable", {}),
        ]:
            await admin.call(path, doc)
        url = f"etcd://{cluster.endpoints()}?prefix=app/&timeout=2"

        monkeypatch.setenv("STRONGROOM_ETCD_PASSWORD", password)
        store = open_store(url.replace("etcd://", "etcd://strongroom@"))
        assert isinstance(store, EtcdStore)
        try:
            await _roundtrip(store)
            store._client._token = b"expired-token"  # etcd answers "invalid auth token": log in again
            await _roundtrip(store)
        finally:
            await store.close()

        (tmp_path / "password").write_text(password + "\n")
        monkeypatch.delenv("STRONGROOM_ETCD_PASSWORD")
        store = open_store(
            url.replace("etcd://", "etcd://strongroom@") + f"&password_file={tmp_path / 'password'}"
        )
        try:
            await _roundtrip(store)
        finally:
            await store.close()

        for refused in [
            url,  # no user at all
            url.replace("etcd://", "etcd://strongroom@") + f"&password_file={tmp_path / 'wrong'}",
            url.replace("prefix=app/", "prefix=other/").replace(
                "etcd://", "etcd://strongroom@"
            ),  # no permission
        ]:
            (tmp_path / "wrong").write_text("not the password")
            monkeypatch.setenv("STRONGROOM_ETCD_PASSWORD", password)
            store = open_store(refused)
            try:
                with pytest.raises(StorageUnavailable) as caught:
                    await _roundtrip(store)
                assert password not in str(caught.value)
            finally:
                await store.close()
    finally:
        await admin.close()
        cluster.close()
