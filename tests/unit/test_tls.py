"""Serving certificates and the listener's TLS context, over real TLS on 127.0.0.1."""

import asyncio
import datetime
import ipaddress
import logging
import os
import re
import shutil
import ssl
import stat
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.server.tls import (
    GO_CIPHER_SUITES,
    GO_INSECURE_CIPHER_SUITES,
    ServingCertConfig,
    ServingTLS,
    TLSConfigError,
    ensure_serving_cert,
    generate_self_signed_cert,
    openssl_cipher_names,
    tls_min_version,
)

# --- helpers ----------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "test-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


LeafKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def make_leaf(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str = "adapter",
    key: LeafKey | None = None,
) -> tuple[x509.Certificate, LeafKey]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(
    key: LeafKey,
    encryption: serialization.KeySerializationEncryption | None = None,
) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    )


def replace_file(path: Path, data: bytes) -> None:
    """Swap in new contents with a rename, as a Secret volume update does."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def client_context(
    cafile: Path, maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cafile))
    context.maximum_version = maximum
    return context


def load_leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


GATE = web.AppKey("gate", asyncio.Event)


async def _hello(request: web.Request) -> web.StreamResponse:
    # Half the body, then wait: the client sees its connection (and the peer certificate)
    # only while the response is unfinished; aiohttp releases it at the end of the body.
    response = web.StreamResponse(headers={"Content-Length": "2"})
    await response.prepare(request)
    await response.write(b"o")
    await request.app[GATE].wait()
    await response.write(b"k")
    await response.write_eof()
    return response


@dataclass
class Server:
    port: int
    gate: asyncio.Event


@asynccontextmanager
async def serve(context: ssl.SSLContext) -> AsyncIterator[Server]:
    app = web.Application()
    gate = asyncio.Event()
    app[GATE] = gate
    app.router.add_get("/", _hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield Server(int(runner.addresses[0][1]), gate)
    finally:
        gate.set()
        await runner.cleanup()


async def fetch(
    session: aiohttp.ClientSession, server: Server, server_hostname: str | None = None
) -> tuple[int, asyncio.Transport, ssl.SSLObject]:
    """GET / and return the peer certificate's serial, the transport and the SSL object."""
    server.gate.clear()
    url = f"https://127.0.0.1:{server.port}/"
    try:
        async with session.get(url, server_hostname=server_hostname) as resp:
            assert resp.status == 200
            assert resp.connection is not None
            transport = resp.connection.transport
            assert transport is not None
            ssl_object = transport.get_extra_info("ssl_object")
            assert isinstance(ssl_object, ssl.SSLObject)
            der = ssl_object.getpeercert(binary_form=True)
            assert der is not None
            server.gate.set()
            assert await resp.text() == "ok"
    finally:
        server.gate.set()
    return x509.load_der_x509_certificate(der).serial_number, transport, ssl_object


async def serial_of_new_connection(server: Server, cafile: Path) -> int:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_context(cafile))
    ) as session:
        serial, _, _ = await fetch(session, server)
    return serial


def explicit_pair(tmp_path: Path) -> tuple[Path, Path, Path, x509.Certificate]:
    """A CA file plus a leaf certificate and key it signed; returns (ca, cert, key, leaf)."""
    ca, ca_key = make_ca()
    leaf, leaf_key = make_leaf(ca, ca_key)
    ca_path, cert_path, key_path = tmp_path / "ca.crt", tmp_path / "tls.crt", tmp_path / "tls.key"
    ca_path.write_bytes(pem(ca))
    cert_path.write_bytes(pem(leaf))
    key_path.write_bytes(key_pem(leaf_key))
    return ca_path, cert_path, key_path, leaf


# --- self-signed certificates -----------------------------------------------------------------


async def test_generated_cert_serves_localhost_and_loopback_ip(tmp_path: Path) -> None:
    tls = ServingTLS(ServingCertConfig(cert_dir=str(tmp_path / "certs")))
    assert tls.cert_path == tmp_path / "certs" / "apiserver.crt"
    assert tls.key_path == tmp_path / "certs" / "apiserver.key"
    assert tls.context.verify_mode == ssl.CERT_NONE
    assert tls.context.minimum_version == ssl.TLSVersion.TLSv1_2
    client = client_context(tls.cert_path)
    client.set_alpn_protocols(["h2", "http/1.1"])  # aiohttp serves HTTP/1.1 only
    async with (
        serve(tls.context) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client)) as session,
    ):
        # The IP SAN is checked against the URL's host, the DNS SAN against server_hostname.
        serial_ip, transport_ip, ssl_object = await fetch(session, server)
        serial_dns, transport_dns, _ = await fetch(session, server, server_hostname="localhost")
        assert transport_dns is not transport_ip  # a second handshake, not keep-alive
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await fetch(session, server, server_hostname="elsewhere.example")
    assert serial_ip == serial_dns == tls.certificate_info()["serial_number"]
    assert ssl_object.selected_alpn_protocol() == "http/1.1"


def test_generated_cert_shape(tmp_path: Path) -> None:
    cert_path, _ = ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path)))
    leaf, ca = x509.load_pem_x509_certificates(cert_path.read_bytes())
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str)
    host, _, stamp = cn.partition("@")
    assert host == "localhost"
    assert stamp.isdigit()
    assert (
        ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == f"localhost-ca@{stamp}"
    )
    leaf.verify_directly_issued_by(ca)
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=365)
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku


def test_generated_cert_is_reused(tmp_path: Path) -> None:
    config = ServingCertConfig(cert_dir=str(tmp_path / "certs"))
    cert_path, key_path = ensure_serving_cert(config)
    before = (cert_path.read_bytes(), key_path.read_bytes(), cert_path.stat().st_mtime_ns)
    assert ensure_serving_cert(config) == (cert_path, key_path)
    assert (cert_path.read_bytes(), key_path.read_bytes(), cert_path.stat().st_mtime_ns) == before
    # A restart with ServingTLS serves the same certificate.
    assert (
        ServingTLS(config).certificate_info()["serial_number"] == load_leaf(cert_path).serial_number
    )


def test_generated_pair_is_regenerated_when_one_file_is_missing(tmp_path: Path) -> None:
    cert_path, key_path = ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path)))
    old_serial = load_leaf(cert_path).serial_number
    key_path.unlink()
    ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path)))
    assert key_path.exists()
    assert load_leaf(cert_path).serial_number != old_serial


def test_extra_sans_dns_and_ip(tmp_path: Path) -> None:
    config = ServingCertConfig(
        cert_dir=str(tmp_path),
        extra_sans=("adapter.monitoring.svc", "10.96.0.12", "fd00::1", "127.0.0.1", " "),
    )
    tls = ServingTLS(config)
    info = tls.certificate_info()
    assert info["dns_names"] == ["localhost", "adapter.monitoring.svc"]
    assert info["ip_addresses"] == ["127.0.0.1", "10.96.0.12", "fd00::1"]
    assert str(info["subject_cn"]).startswith("localhost@")
    assert info["subject"] == f"CN={info['subject_cn']}"
    assert str(info["issuer_cn"]).startswith("localhost-ca@")
    assert info["key"] == "ECDSA secp256r1"
    assert info["cert_file"] == str(tmp_path / "apiserver.crt")
    assert str(info["not_after"]).endswith("+00:00")


async def test_extra_dns_san_passes_hostname_check(tmp_path: Path) -> None:
    tls = ServingTLS(
        ServingCertConfig(cert_dir=str(tmp_path), extra_sans=("adapter.monitoring.svc",))
    )
    async with (
        serve(tls.context) as server,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_context(tls.cert_path))
        ) as session,
    ):
        await fetch(session, server, server_hostname="adapter.monitoring.svc")


def test_reused_cert_without_new_sans_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path)))
    with caplog.at_level(logging.WARNING, logger="adapter.server.tls"):
        ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path), extra_sans=("new.svc",)))
    assert "new.svc" in caplog.text


def test_invalid_extra_san(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="subject alternative name"):
        ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path), extra_sans=("adäpter.svc",)))


def test_key_file_mode_and_directory_mode(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        cert_path, key_path = ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path / "d")))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o700
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["apiserver.crt", "apiserver.key"]


def test_unwritable_cert_dir_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(TLSConfigError, match=re.escape(str(blocker / "certs"))):
        ensure_serving_cert(ServingCertConfig(cert_dir=str(blocker / "certs")))


def test_unreadable_generated_file_names_the_path(tmp_path: Path) -> None:
    (tmp_path / "apiserver.crt").mkdir()  # exists, but cannot be read as a file
    (tmp_path / "apiserver.key").write_text("x")
    with pytest.raises(TLSConfigError, match=re.escape(str(tmp_path / "apiserver.crt"))):
        ensure_serving_cert(ServingCertConfig(cert_dir=str(tmp_path)))


# --- explicit certificate files ---------------------------------------------------------------


async def test_explicit_cert_and_key_are_served(tmp_path: Path) -> None:
    ca_path, cert_path, key_path, leaf = explicit_pair(tmp_path)
    config = ServingCertConfig(
        cert_dir=str(tmp_path / "unused"),
        tls_cert_file=str(cert_path),
        tls_private_key_file=str(key_path),
    )
    tls = ServingTLS(config)
    assert (tls.cert_path, tls.key_path) == (cert_path, key_path)
    assert not (tmp_path / "unused").exists()
    assert tls.certificate_info()["issuer_cn"] == "test-ca"
    async with serve(tls.context) as server:
        assert await serial_of_new_connection(server, ca_path) == leaf.serial_number


@pytest.mark.parametrize(
    ("cert", "key", "message"),
    [
        pytest.param("tls.crt", "", "without --tls-private-key-file", id="cert-only"),
        pytest.param("", "tls.key", "without --tls-cert-file", id="key-only"),
    ],
)
def test_only_one_explicit_file_is_an_error(
    tmp_path: Path, cert: str, key: str, message: str
) -> None:
    _, cert_path, key_path, _ = explicit_pair(tmp_path)
    config = ServingCertConfig(
        tls_cert_file=str(cert_path) if cert else "",
        tls_private_key_file=str(key_path) if key else "",
    )
    with pytest.raises(TLSConfigError, match=message):
        ensure_serving_cert(config)


def test_missing_explicit_file_names_the_path(tmp_path: Path) -> None:
    _, cert_path, _, _ = explicit_pair(tmp_path)
    missing = tmp_path / "nope.key"
    with pytest.raises(TLSConfigError, match=re.escape(str(missing))):
        ServingTLS(
            ServingCertConfig(tls_cert_file=str(cert_path), tls_private_key_file=str(missing))
        )


def test_mismatched_cert_and_key(tmp_path: Path) -> None:
    _, cert_path, key_path, _ = explicit_pair(tmp_path)
    key_path.write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    config = ServingCertConfig(tls_cert_file=str(cert_path), tls_private_key_file=str(key_path))
    with pytest.raises(TLSConfigError, match="do not match") as info:
        ServingTLS(config)
    assert str(cert_path) in str(info.value)
    assert str(key_path) in str(info.value)


def test_garbage_certificate(tmp_path: Path) -> None:
    _, cert_path, key_path, _ = explicit_pair(tmp_path)
    cert_path.write_text("not a certificate\n")
    config = ServingCertConfig(tls_cert_file=str(cert_path), tls_private_key_file=str(key_path))
    with pytest.raises(TLSConfigError, match=re.escape(str(cert_path))):
        ServingTLS(config)


def test_encrypted_key_is_refused_without_prompting(tmp_path: Path) -> None:
    ca, ca_key = make_ca()
    leaf, leaf_key = make_leaf(ca, ca_key)
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(pem(leaf))
    key_path.write_bytes(key_pem(leaf_key, serialization.BestAvailableEncryption(b"secret")))
    config = ServingCertConfig(tls_cert_file=str(cert_path), tls_private_key_file=str(key_path))
    with pytest.raises(TLSConfigError, match="encrypted"):
        ServingTLS(config)


# --- reloading --------------------------------------------------------------------------------


async def test_reload_serves_new_cert_to_new_connections_only(tmp_path: Path) -> None:
    ca, ca_key = make_ca()
    ca_path = tmp_path / "ca.crt"
    ca_path.write_bytes(pem(ca))
    old_leaf, old_key = make_leaf(ca, ca_key)
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(pem(old_leaf))
    key_path.write_bytes(key_pem(old_key))
    tls = ServingTLS(
        ServingCertConfig(tls_cert_file=str(cert_path), tls_private_key_file=str(key_path))
    )
    assert tls.reload_if_changed() is False  # nothing changed yet

    async with (
        serve(tls.context) as server,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_context(ca_path), limit=1)
        ) as kept,
    ):
        serial, transport, _ = await fetch(kept, server)
        assert serial == old_leaf.serial_number

        new_leaf, new_key = make_leaf(ca, ca_key)
        replace_file(key_path, key_pem(new_key))
        replace_file(cert_path, pem(new_leaf))
        assert tls.reload_if_changed() is True
        assert tls.reload_if_changed() is False
        assert tls.certificate_info()["serial_number"] == new_leaf.serial_number

        assert await serial_of_new_connection(server, ca_path) == new_leaf.serial_number
        # The keep-alive connection still works, on its original handshake.
        serial, transport_again, _ = await fetch(kept, server)
        assert transport_again is transport
        assert serial == old_leaf.serial_number


async def test_reload_to_another_key_type_serves_only_the_new_cert(tmp_path: Path) -> None:
    """OpenSSL keeps one certificate per key type in a context: a new RSA pair loaded over an
    ECDSA one would leave the old ECDSA certificate served to clients preferring ECDSA."""
    ca, ca_key = make_ca()
    ca_path = tmp_path / "ca.crt"
    ca_path.write_bytes(pem(ca))
    old_leaf, old_key = make_leaf(ca, ca_key)
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(pem(old_leaf))
    key_path.write_bytes(key_pem(old_key))
    tls = ServingTLS(
        ServingCertConfig(tls_cert_file=str(cert_path), tls_private_key_file=str(key_path))
    )
    async with serve(tls.context) as server:
        new_leaf, new_key = make_leaf(ca, ca_key, key=rsa.generate_private_key(65537, 2048))
        replace_file(key_path, key_pem(new_key))
        replace_file(cert_path, pem(new_leaf))
        assert tls.reload_if_changed() is True
        assert await serial_of_new_connection(server, ca_path) == new_leaf.serial_number


async def test_broken_new_files_keep_the_old_cert(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca, ca_key = make_ca()
    ca_path = tmp_path / "ca.crt"
    ca_path.write_bytes(pem(ca))
    old_leaf, old_key = make_leaf(ca, ca_key)
    cert_path, key_path = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_path.write_bytes(pem(old_leaf))
    key_path.write_bytes(key_pem(old_key))
    tls = ServingTLS(
        ServingCertConfig(tls_cert_file=str(cert_path), tls_private_key_file=str(key_path))
    )
    async with serve(tls.context) as server:
        # A new certificate whose key has not arrived yet: mismatched pair.
        new_leaf, new_key = make_leaf(ca, ca_key)
        replace_file(cert_path, pem(new_leaf))
        with caplog.at_level(logging.ERROR, logger="adapter.server.tls"):
            assert tls.reload_if_changed() is False
            assert tls.reload_if_changed() is False  # logged once per change, not per poll
        assert caplog.text.count("Keeping the current serving certificate") == 1
        assert "BEGIN" not in caplog.text
        assert await serial_of_new_connection(server, ca_path) == old_leaf.serial_number
        assert tls.certificate_info()["serial_number"] == old_leaf.serial_number

        # Garbage, then a missing file: still the old certificate.
        replace_file(cert_path, b"garbage")
        assert tls.reload_if_changed() is False
        cert_path.unlink()
        assert tls.reload_if_changed() is False
        assert await serial_of_new_connection(server, ca_path) == old_leaf.serial_number

        # The key arrives: the pair loads.
        replace_file(cert_path, pem(new_leaf))
        replace_file(key_path, key_pem(new_key))
        assert tls.reload_if_changed() is True
        assert await serial_of_new_connection(server, ca_path) == new_leaf.serial_number


async def test_watch_reloads_until_cancelled(tmp_path: Path) -> None:
    tls = ServingTLS(ServingCertConfig(cert_dir=str(tmp_path)))
    old_serial = tls.certificate_info()["serial_number"]
    task = asyncio.create_task(tls.watch(interval=0.01))
    cert_pem, new_key_pem = generate_self_signed_cert()
    replace_file(tls.key_path, new_key_pem)
    replace_file(tls.cert_path, cert_pem)
    for _ in range(200):
        if tls.certificate_info()["serial_number"] != old_serial:
            break
        await asyncio.sleep(0.01)
    assert tls.certificate_info()["serial_number"] == load_leaf(tls.cert_path).serial_number
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- versions and cipher suites ---------------------------------------------------------------


def test_min_version_names() -> None:
    assert tls_min_version("") == ssl.TLSVersion.TLSv1_2
    assert tls_min_version("VersionTLS12") == ssl.TLSVersion.TLSv1_2
    assert tls_min_version("VersionTLS13") == ssl.TLSVersion.TLSv1_3
    for old in ("VersionTLS10", "VersionTLS11"):
        with pytest.raises(TLSConfigError, match=r"never accepts TLS below 1\.2"):
            tls_min_version(old)
    with pytest.raises(TLSConfigError, match=r'unknown tls version "TLS13".*VersionTLS13'):
        tls_min_version("TLS13")


async def test_min_version_tls13_refuses_tls12_client(tmp_path: Path) -> None:
    tls = ServingTLS(ServingCertConfig(cert_dir=str(tmp_path), min_version="VersionTLS13"))
    assert tls.context.minimum_version == ssl.TLSVersion.TLSv1_3
    async with serve(tls.context) as server:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=client_context(tls.cert_path, maximum=ssl.TLSVersion.TLSv1_2)
            )
        ) as session:
            with pytest.raises(aiohttp.ClientError):
                await fetch(session, server)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_context(tls.cert_path))
        ) as session:
            _, _, ssl_object = await fetch(session, server)
            assert ssl_object.version() == "TLSv1.3"


async def test_default_min_version_accepts_tls12_client(tmp_path: Path) -> None:
    tls = ServingTLS(ServingCertConfig(cert_dir=str(tmp_path)))
    async with (
        serve(tls.context) as server,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=client_context(tls.cert_path, maximum=ssl.TLSVersion.TLSv1_2)
            )
        ) as session,
    ):
        _, _, ssl_object = await fetch(session, server)
        assert ssl_object.version() == "TLSv1.2"


def test_cipher_suite_mapping() -> None:
    assert openssl_cipher_names([]) == ()
    assert openssl_cipher_names(
        [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_AES_128_GCM_SHA256",  # TLS 1.3: accepted, not configurable
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",  # legacy Go name
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",  # same suite again
            "TLS_RSA_WITH_AES_128_GCM_SHA256",
        ]
    ) == ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-CHACHA20-POLY1305", "AES128-GCM-SHA256")


def test_unknown_cipher_suite_lists_valid_names() -> None:
    with pytest.raises(TLSConfigError) as info:
        openssl_cipher_names(
            ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"]
        )
    message = str(info.value)
    assert message.startswith(
        "cipher suite ECDHE-RSA-AES128-GCM-SHA256 not supported or doesn't exist"
    )
    assert "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" in message
    assert "TLS_AES_256_GCM_SHA384" in message
    # Unknown names are refused before any certificate is written.
    with pytest.raises(TLSConfigError):
        ServingTLS(ServingCertConfig(cert_dir="/nonexistent/never-created", cipher_suites=("X",)))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary")
def test_cipher_table_matches_openssl_standard_names() -> None:
    listing = subprocess.run(
        ["openssl", "ciphers", "-stdname", "ALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    standard = dict(line.split()[0:3:2] for line in listing.splitlines() if " - " in line)
    table = {**GO_CIPHER_SUITES, **GO_INSECURE_CIPHER_SUITES}
    checked = 0
    for go_name, openssl_name in table.items():
        if go_name.endswith("_CHACHA20_POLY1305"):
            go_name += "_SHA256"  # Go's legacy alias
        if go_name in standard:
            assert standard[go_name] == openssl_name, go_name
            checked += 1
    assert checked >= 14


async def test_configured_cipher_suite_is_negotiated(tmp_path: Path) -> None:
    tls = ServingTLS(
        ServingCertConfig(
            cert_dir=str(tmp_path),
            cipher_suites=(
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ),
        )
    )
    names = {c["name"] for c in tls.context.get_ciphers() if c["protocol"] != "TLSv1.3"}
    assert names == {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"}
    async with (
        serve(tls.context) as server,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                ssl=client_context(tls.cert_path, maximum=ssl.TLSVersion.TLSv1_2)
            )
        ) as session,
    ):
        _, _, ssl_object = await fetch(session, server)
        cipher = ssl_object.cipher()
        assert cipher is not None
        assert cipher[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"


def test_only_tls13_cipher_names_disable_tls12(tmp_path: Path) -> None:
    tls = ServingTLS(
        ServingCertConfig(cert_dir=str(tmp_path), cipher_suites=("TLS_AES_128_GCM_SHA256",))
    )
    assert tls.context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_suites_unusable_with_key_type_warn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="adapter.server.tls"):
        ServingTLS(
            ServingCertConfig(
                cert_dir=str(tmp_path), cipher_suites=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",)
            )
        )
    assert "ECDSA secp256r1 serving key" in caplog.text


def test_insecure_cipher_suite_is_accepted_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServingCertConfig(
        cert_dir=str(tmp_path),
        cipher_suites=(
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ),
    )
    with caplog.at_level(logging.WARNING, logger="adapter.server.tls"):
        ServingTLS(config)
    assert (
        "Use of insecure cipher 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256' detected." in caplog.text
    )
    assert "CHACHA20" not in caplog.text


def test_cipher_suites_unavailable_in_openssl(tmp_path: Path) -> None:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.set_ciphers("RC4-SHA")
    except ssl.SSLError:
        pass
    else:
        pytest.skip("this OpenSSL still offers RC4")
    config = ServingCertConfig(cert_dir=str(tmp_path), cipher_suites=("TLS_RSA_WITH_RC4_128_SHA",))
    with pytest.raises(TLSConfigError, match=r"none of the TLS 1\.2 cipher suites"):
        ServingTLS(config)


# --- client CAs (prepared for client-certificate authentication) ------------------------------


def test_require_client_ca(tmp_path: Path) -> None:
    tls = ServingTLS(ServingCertConfig(cert_dir=str(tmp_path / "certs")))
    ca_one, _ = make_ca("client-ca")
    ca_two, _ = make_ca("front-proxy-ca")
    (tmp_path / "client-ca.crt").write_bytes(pem(ca_one))
    (tmp_path / "front-proxy-ca.crt").write_bytes(pem(ca_two))
    (tmp_path / "empty.crt").write_text("")

    with pytest.raises(TLSConfigError, match=r"missing\.crt"):
        tls.require_client_ca([str(tmp_path / "client-ca.crt"), str(tmp_path / "missing.crt")])
    with pytest.raises(TLSConfigError, match=r"empty\.crt"):
        tls.require_client_ca([str(tmp_path / "empty.crt")])
    # Nothing was added by the failed calls.
    assert tls.context.get_ca_certs() == []
    assert tls.context.verify_mode.name == "CERT_NONE"

    tls.require_client_ca([str(tmp_path / "client-ca.crt"), str(tmp_path / "front-proxy-ca.crt")])
    assert tls.context.verify_mode == ssl.CERT_OPTIONAL
    assert len(tls.context.get_ca_certs()) == 2
    assert tls.client_ca_files == (
        str(tmp_path / "client-ca.crt"),
        str(tmp_path / "front-proxy-ca.crt"),
    )
