"""--tls-sni-cert-key in ServingTLS: real handshakes on 127.0.0.1, under asyncio and uvloop."""

import asyncio
import contextlib
import logging
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from adapter.server.tls import ServingCertConfig, ServingTLS, TLSConfigError, _local_ip_name
from harness.pki import CertificateAuthority, KeyPair

Run = Callable[[Coroutine[Any, Any, Any]], Any]
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    """Run a coroutine on the event loop under test (the server runs on uvloop by default)."""
    with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
        yield runner.run


# --- helpers ----------------------------------------------------------------------------------


@dataclass
class Files:
    """Certificates issued by one CA, written under one directory; `default` is the
    --tls-cert-file pair, for `default.test` and 127.0.0.1."""

    directory: Path
    ca: CertificateAuthority = field(default_factory=lambda: CertificateAuthority("serving-ca"))
    default: KeyPair = field(init=False)

    def __post_init__(self) -> None:
        self.default = self.ca.issue_server(["default.test", "127.0.0.1"])

    def write(self, stem: str, pair: KeyPair) -> tuple[Path, Path]:
        return pair.write(self.directory, stem)

    def server(self, stem: str, *names: str) -> tuple[KeyPair, str]:
        """A serving certificate for `names`, written; the pair and its `cert,key` flag value."""
        pair = self.ca.issue_server(names)
        cert_path, key_path = self.write(stem, pair)
        return pair, f"{cert_path},{key_path}"

    def default_config(self, **changes: Any) -> ServingCertConfig:
        cert_path, key_path = self.write("default", self.default)
        return ServingCertConfig(
            tls_cert_file=str(cert_path), tls_private_key_file=str(key_path), **changes
        )


def serial(pair: KeyPair) -> int:
    return pair.certificate.serial_number


def replace_file(path: Path, data: bytes) -> None:
    """Swap in new contents with a rename, as a Secret volume update does."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass
class Listener:
    port: int = 0
    # The CN of the verified client certificate of each answered connection ("" for none).
    client_cns: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def listening(tls: ServingTLS) -> AsyncIterator[Listener]:
    """A line-echo server on 127.0.0.1 with the listener's context: answers "ok"."""
    listener = Listener()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            peer = writer.get_extra_info("peercert") or {}
            subject = peer.get("subject", ())
            cns = [value for rdn in subject for key, value in rdn if key == "commonName"]
            listener.client_cns.append(cns[0] if cns else "")
            writer.write(b"ok\n")
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=tls.context)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        await server.wait_closed()


@dataclass(frozen=True)
class Seen:
    serial: int  # of the certificate the server presented
    alpn: str | None
    answer: bytes  # b"ok\n", or b"" when the server dropped the connection


async def connect(
    port: int,
    server_hostname: str | None,
    *,
    client: tuple[Path, Path] | None = None,
    trust: CertificateAuthority | None = None,
    alpn: list[str] | None = None,
) -> Seen:
    """Connect with this SNI name (None: no SNI) and say hello.

    Without `trust` the client accepts any certificate, to see which one the server picks.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if trust is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=trust.cert_pem.decode())
    if client is not None:
        context.load_cert_chain(*client)
    if alpn:
        context.set_alpn_protocols(alpn)
    # CPython sends no SNI for an IP address, and checks it against the IP SANs.
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname=server_hostname or "127.0.0.1"
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
        writer.write(b"hello\n")
        try:
            answer = await reader.readline()
        except (ConnectionError, ssl.SSLError):
            answer = b""
        return Seen(
            x509.load_der_x509_certificate(der).serial_number,
            ssl_object.selected_alpn_protocol(),
            answer,
        )
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def refused(port: int, server_hostname: str, client: tuple[Path, Path]) -> bool:
    """Whether the server drops a client presenting this certificate (TLS 1.2 fails the
    handshake itself; TLS 1.3 fails right after it, on the first read)."""
    try:
        seen = await connect(port, server_hostname, client=client)
    except (ConnectionError, ssl.SSLError):
        return True
    return seen.answer == b""


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `check` until it holds, failing after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    return Files(tmp_path)


# --- picking a certificate --------------------------------------------------------------------


def test_certificate_is_picked_by_server_name(files: Files, run: Run) -> None:
    exact, exact_flag = files.server("exact", "a.example.com")
    wildcard, wildcard_flag = files.server("wildcard", "*.example.com")
    explicit, explicit_flag = files.server("explicit", "other.test")
    tls = ServingTLS(
        files.default_config(
            sni_cert_keys=(
                exact_flag,
                wildcard_flag,
                f"{explicit_flag}: explicit.test , *.explicit.test",
            )
        )
    )
    expected = {
        "a.example.com": exact,
        "A.Example.COM": exact,  # the client's name is lower-cased
        "b.example.com": wildcard,  # the first label as "*"
        "x.a.example.com": files.default,  # a wildcard covers one label
        "explicit.test": explicit,  # explicit patterns replace the certificate's names...
        "y.explicit.test": explicit,
        "other.test": explicit,  # ...but a certificate valid for the name is still found
        "unknown.test": files.default,
        "default.test": files.default,
        None: files.default,
    }

    async def handshakes() -> dict[str | None, int]:
        async with listening(tls) as listener:
            served = {name: (await connect(listener.port, name)).serial for name in expected}
            # Clients that verify accept what they get.
            for name in ("a.example.com", "b.example.com", "other.test", "default.test", None):
                await connect(listener.port, name, trust=files.ca)
            return served

    assert run(handshakes()) == {name: serial(pair) for name, pair in expected.items()}


def test_earlier_flags_and_explicit_patterns_win(files: Files, run: Run) -> None:
    first, first_flag = files.server("first", "dup.test", "first.test")
    _, second_flag = files.server("second", "dup.test")
    pinned, pinned_flag = files.server("pinned", "pinned-san.test")
    _, loser_flag = files.server("loser", "loser-san.test")
    tls = ServingTLS(
        files.default_config(
            sni_cert_keys=(
                first_flag,  # claims dup.test and first.test from its SANs
                second_flag,  # claims dup.test too: the earlier flag wins
                f"{pinned_flag}:first.test",  # explicit beats extracted, though later
                f"{loser_flag}:first.test",  # explicit too, but later: has no name left
            )
        )
    )

    async def handshakes() -> dict[str, int]:
        async with listening(tls) as listener:
            names = ("dup.test", "first.test", "pinned-san.test", "loser-san.test")
            return {name: (await connect(listener.port, name)).serial for name in names}

    assert run(handshakes()) == {
        "dup.test": serial(first),
        "first.test": serial(pinned),
        "pinned-san.test": serial(pinned),
        # Go only falls back to certificates that won a name.
        "loser-san.test": serial(files.default),
    }


def test_client_without_sni_gets_the_certificate_claiming_the_listener_ip(
    files: Files, run: Run
) -> None:
    by_ip, by_ip_flag = files.server("by-ip", "ip.test", "127.0.0.1")
    empty, empty_flag = files.server("empty", "empty.test")

    async def without_sni(config: ServingCertConfig) -> int:
        async with listening(ServingTLS(config)) as listener:
            return (await connect(listener.port, None)).serial

    ip_claim = (f"{by_ip_flag}:ip.test,127.0.0.1",)
    # Go matches the local address of each connection; here it is known when the listener
    # is bound to one IP.
    assert run(
        without_sni(files.default_config(sni_cert_keys=ip_claim, bind_address="127.0.0.1"))
    ) == serial(by_ip)
    # Bound to every address, the SNI callback cannot see which one the client reached.
    for bind_address in ("0.0.0.0", "::", ""):
        config = files.default_config(sni_cert_keys=ip_claim, bind_address=bind_address)
        assert run(without_sni(config)) == serial(files.default)
    # An empty pattern (a trailing comma) is the name Go looks up for clients without SNI.
    config = files.default_config(sni_cert_keys=(*ip_claim, f"{empty_flag}:empty.test,"))
    assert run(without_sni(config)) == serial(empty)
    config = files.default_config(
        sni_cert_keys=(*ip_claim, f"{empty_flag}:empty.test,"), bind_address="127.0.0.1"
    )
    assert run(without_sni(config)) == serial(by_ip)  # the local IP is looked up first


@pytest.mark.parametrize(
    ("bind_address", "name"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::1", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),  # Go prints IPv4-mapped addresses as IPv4
        ("0.0.0.0", ""),
        ("::", ""),
        ("", ""),
        ("localhost", ""),
    ],
)
def test_local_ip_name(bind_address: str, name: str) -> None:
    assert _local_ip_name(bind_address) == name


# --- the same settings on every context -------------------------------------------------------


def test_named_contexts_carry_the_listener_settings(files: Files, run: Run) -> None:
    exact, exact_flag = files.server("exact", "a.example.com")
    client_ca, front_proxy_ca = CertificateAuthority("client-ca"), CertificateAuthority("proxy")
    tls = ServingTLS(
        files.default_config(
            sni_cert_keys=(exact_flag,),
            cipher_suites=(
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ),
        )
    )
    tls.require_client_ca([str(client_ca.write(files.directory))])
    tls.add_client_ca_data(front_proxy_ca.cert_pem.decode())

    def settings(context: ssl.SSLContext) -> tuple[object, ...]:
        return (
            context.minimum_version,
            context.maximum_version,
            context.options,
            context.verify_mode,
            [cipher["name"] for cipher in context.get_ciphers()],
            context.get_ca_certs(binary_form=True),
        )

    default, *named = tls._contexts()
    assert len(named) == 1
    assert settings(named[0]) == settings(default)
    assert default.verify_mode == ssl.CERT_OPTIONAL
    assert len(default.get_ca_certs()) == 2

    async def alpn() -> Seen:
        async with listening(tls) as listener:
            return await connect(listener.port, "a.example.com", alpn=["h2", "http/1.1"])

    seen = run(alpn())
    assert seen.serial == serial(exact)
    assert seen.alpn == "http/1.1"  # ALPN is answered by the named context


def test_client_certificates_are_verified_on_a_named_context(files: Files, run: Run) -> None:
    exact, exact_flag = files.server("exact", "a.example.com")
    client_ca, front_proxy_ca = CertificateAuthority("client-ca"), CertificateAuthority("proxy")
    alice = files.write("alice", client_ca.issue_client("alice"))
    proxy = files.write("proxy", front_proxy_ca.issue_client("front-proxy"))
    stranger = files.write("mallory", CertificateAuthority("unknown-ca").issue_client("mallory"))
    tls = ServingTLS(files.default_config(sni_cert_keys=(exact_flag,)))
    tls.require_client_ca([str(client_ca.write(files.directory))])
    cert_path = files.directory / "exact.crt"
    key_path = files.directory / "exact.key"

    async def scenario() -> None:
        async with listening(tls) as listener:
            seen = await connect(listener.port, "a.example.com", client=alice)
            assert (seen.serial, seen.answer) == (serial(exact), b"ok\n")
            assert listener.client_cns[-1] == "alice"  # requested and verified
            assert await refused(listener.port, "a.example.com", proxy)

            # The ConfigMap's front-proxy CA arrives while serving.
            tls.add_client_ca_data(front_proxy_ca.cert_pem.decode())
            seen = await connect(listener.port, "a.example.com", client=proxy)
            assert (seen.serial, seen.answer) == (serial(exact), b"ok\n")
            assert listener.client_cns[-1] == "front-proxy"
            seen = await connect(listener.port, "a.example.com")  # no certificate: still fine
            assert seen.answer == b"ok\n"
            assert listener.client_cns[-1] == ""
            assert await refused(listener.port, "a.example.com", stranger)

            # A reloaded certificate gets a fresh context, with every CA added so far.
            renewed = files.ca.issue_server(["a.example.com"])
            replace_file(key_path, renewed.key_pem)
            replace_file(cert_path, renewed.cert_pem)
            assert tls.reload_if_changed() is True
            for client, cn in ((alice, "alice"), (proxy, "front-proxy")):
                seen = await connect(listener.port, "a.example.com", client=client)
                assert (seen.serial, seen.answer) == (serial(renewed), b"ok\n")
                assert listener.client_cns[-1] == cn
            assert await refused(listener.port, "a.example.com", stranger)

    run(scenario())


# --- reloading --------------------------------------------------------------------------------


def test_sni_certificate_follows_its_files(
    files: Files, run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    old, flag = files.server("named", "a.example.com")
    cert_path, key_path = (Path(path) for path in flag.split(","))
    tls = ServingTLS(files.default_config(sni_cert_keys=(flag,)))

    async def scenario() -> None:
        watch = asyncio.create_task(tls.watch(interval=0.01))
        try:
            async with listening(tls) as listener:

                async def served(name: str) -> int:
                    return (await connect(listener.port, name)).serial

                assert await served("a.example.com") == serial(old)
                # A renewed certificate for another name: the names follow the certificate.
                new = files.ca.issue_server(["b.example.com"])
                replace_file(key_path, new.key_pem)
                replace_file(cert_path, new.cert_pem)

                async def new_is_served() -> bool:
                    return await served("b.example.com") == serial(new)

                await eventually(new_is_served)
                assert await served("a.example.com") == serial(files.default)

                # A broken pair keeps the current certificate, with an error logged once.
                replace_file(cert_path, files.ca.issue_server(["c.example.com"]).cert_pem)

                async def error_logged() -> bool:
                    return "Keeping the current SNI certificate [0]" in caplog.text

                await eventually(error_logged)
                assert await served("b.example.com") == serial(new)
                await asyncio.sleep(0.05)  # more polls of the same broken files
                assert caplog.text.count("Keeping the current SNI certificate") == 1
                assert "do not match" in caplog.text
                assert "BEGIN" not in caplog.text
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    with caplog.at_level(logging.INFO, logger="adapter.server.tls"):
        run(scenario())
    assert "Reloaded SNI certificate [0]" in caplog.text
    assert "names=[b.example.com] (from the certificate)" in caplog.text


def test_default_certificate_reload_keeps_sni_working(files: Files, run: Run) -> None:
    exact, exact_flag = files.server("exact", "a.example.com")
    config = files.default_config(sni_cert_keys=(exact_flag,))
    tls = ServingTLS(config)
    renewed = files.ca.issue_server(["renewed-default.test"])
    replace_file(Path(config.tls_private_key_file), renewed.key_pem)
    replace_file(Path(config.tls_cert_file), renewed.cert_pem)
    assert tls.reload_if_changed() is True

    async def handshakes() -> tuple[int, int, int]:
        async with listening(tls) as listener:
            return (
                (await connect(listener.port, "a.example.com")).serial,
                (await connect(listener.port, "renewed-default.test")).serial,
                (await connect(listener.port, "unknown.test")).serial,
            )

    assert run(handshakes()) == (serial(exact), serial(renewed), serial(renewed))


# --- start-up ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "a.crt",
            'invalid argument "a.crt" for "--tls-sni-cert-key" flag: '
            "expected comma separated certificate and key file paths",
        ),
        (
            "a.crt,a.key:",
            'invalid argument "a.crt,a.key:" for "--tls-sni-cert-key" flag: '
            "empty names list is not allowed",
        ),
        (
            ",a.key",
            '--tls-sni-cert-key ",a.key": missing filename for the certificate or the key',
        ),
    ],
)
def test_bad_flag_values_fail_before_touching_the_disk(
    tmp_path: Path, value: str, message: str
) -> None:
    cert_dir = tmp_path / "never-created"
    with pytest.raises(TLSConfigError) as info:
        ServingTLS(ServingCertConfig(cert_dir=str(cert_dir), sni_cert_keys=(value,)))
    assert str(info.value) == message
    assert not cert_dir.exists()


def test_unusable_files_name_the_flag_and_the_file(files: Files) -> None:
    pair, flag = files.server("named", "a.example.com")
    cert_path, key_path = flag.split(",")
    missing = f"{files.directory / 'missing.crt'},{key_path}"
    with pytest.raises(TLSConfigError) as info:
        ServingTLS(files.default_config(sni_cert_keys=(f"{missing}:a.test",)))
    assert str(info.value).startswith(f'--tls-sni-cert-key "{missing}:a.test": cannot read SNI ')
    assert "missing.crt: No such file or directory" in str(info.value)

    Path(key_path).write_bytes(files.ca.issue_server(["other"]).key_pem)
    with pytest.raises(TLSConfigError, match="do not match") as info:
        ServingTLS(files.default_config(sni_cert_keys=(flag,)))
    assert cert_path in str(info.value)
    assert key_path in str(info.value)
    assert "BEGIN" not in str(info.value)

    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    Path(key_path).write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(TLSConfigError, match=f"SNI key {key_path} is encrypted"):
        ServingTLS(files.default_config(sni_cert_keys=(flag,)))


def test_each_sni_certificate_is_logged_with_its_names(
    files: Files, caplog: pytest.LogCaptureFixture
) -> None:
    _, extracted_flag = files.server("extracted", "a.example.com", "10.0.0.1")
    _, explicit_flag = files.server("explicit", "other.test")
    with caplog.at_level(logging.INFO, logger="adapter.server.tls"):
        tls = ServingTLS(
            files.default_config(
                sni_cert_keys=(extracted_flag, f"{explicit_flag}:explicit.test,Upper.test")
            )
        )
    lines = [r.getMessage() for r in caplog.records if "SNI certificate" in r.getMessage()]
    assert len(lines) == 3
    assert lines[0].startswith(f"Loaded SNI certificate [0] {files.directory / 'extracted.crt'}")
    assert lines[0].endswith("names=[a.example.com] (from the certificate)")
    assert lines[1].endswith("names=[explicit.test,Upper.test] (explicit)")
    assert "Upper.test" in lines[2]
    assert "never matches" in lines[2]
    # The start-up line stays about the default certificate.
    assert tls.certificate_info()["subject_cn"] == "default.test"


def test_no_sni_flags_no_callback(files: Files) -> None:
    tls = ServingTLS(files.default_config())
    assert tls.context.sni_callback is None
