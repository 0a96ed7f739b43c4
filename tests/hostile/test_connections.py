"""Hostile clients against the real adapter process over TLS: slow and silent connections,
idle keep-alive connections, connection floods, huge and malformed request heads, and log
floods. The timeouts are shortened by flags (--request-header-timeout,
--idle-connection-timeout) so that the suite stays quick; the defaults are Go's 32 s and 90 s.

No Prometheus is needed (a dead URL, relisted once an hour): nothing here queries metrics.
"""

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from multidict import CIMultiDict

from adapter.errors import status_body
from adapter.server.connections import MAX_HEAD_BYTES
from adapter.server.responses import go_json
from harness.adapter import AdapterProcess
from harness.fake_kube_apiserver import FakeKubeAPIServer, running_fake_kube_apiserver
from harness.pki import CertificateAuthority
from harness.slow_client import (
    Connection,
    close_all,
    parse_response,
    raise_open_files_limit,
    read_response,
    read_until_closed,
    rss_mb,
    send_raw,
    silent_connections,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo.yaml"
NO_PROMETHEUS = "http://127.0.0.1:9"  # refused at once; relisted once an hour
QUIET = ["--metrics-max-age=2h"]
HEADER_TIMEOUT, IDLE_TIMEOUT = 1.0, 3.0
# Scheduling slack on a loaded machine; less than the gap between the two timeouts, since
# aiohttp's idle timer would also close a silent connection.
LATE = 1.0
HOST = "127.0.0.1"
LIVEZ = b"GET /livez HTTP/1.1\r\nHost: adapter\r\n\r\n"
RELIST_NOISE = (" adapter.prometheus.", " adapter.discovery.")
LIVEZ_ONCE = b"GET /livez HTTP/1.1\r\nHost: adapter\r\nConnection: close\r\n\r\n"


def adapter_process(*flags: str, no_cluster: bool = True) -> AdapterProcess:
    return AdapterProcess(
        DEMO_CONFIG, NO_PROMETHEUS, [*QUIET, *flags], relist_interval="1h", no_cluster=no_cluster
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def adapter() -> AsyncIterator[AdapterProcess]:
    process = adapter_process(
        f"--request-header-timeout={HEADER_TIMEOUT}s", f"--idle-connection-timeout={IDLE_TIMEOUT}s"
    )
    try:
        await process.start(wait_ready=False)
        yield process
    finally:
        await process.close()


async def assert_serving(adapter: AdapterProcess) -> None:
    answer = parse_response(
        await send_raw(HOST, adapter.port, LIVEZ_ONCE, tls=adapter.ssl_context())
    )
    assert answer.code == 200, answer


async def closed_after(reader: asyncio.StreamReader, since: float, timeout: float) -> float:
    """Seconds from `since` until the server closes the connection, which must send nothing."""
    assert await read_until_closed(reader, timeout) == b""
    return time.monotonic() - since


# --- timeouts ------------------------------------------------------------------------------


async def test_slow_and_silent_clients_are_dropped_after_the_header_timeout(
    adapter: AdapterProcess,
) -> None:
    tls = adapter.ssl_context()
    port = adapter.port
    no_client_hello, silent_tls, half_line, half_headers = await asyncio.gather(
        silent_connections(HOST, port, 1),
        silent_connections(HOST, port, 1, tls=tls),
        silent_connections(
            HOST, port, 1, tls=tls, first_bytes=b"GET /apis/custom.metrics.k8s.io HT"
        ),
        silent_connections(
            HOST, port, 1, tls=tls, first_bytes=b"GET /livez HTTP/1.1\r\nHost: a\r\n"
        ),
    )
    # A client that keeps sending header bytes is still held to one deadline for the head.
    trickling = (
        await silent_connections(HOST, port, 1, tls=tls, first_bytes=b"GET / HTTP/1.1\r\n")
    )[0]

    async def trickle() -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            for i in range(20):
                trickling.writer.write(b"X-%d: 1\r\n" % i)
                await trickling.writer.drain()
                await asyncio.sleep(0.2)

    feeder = asyncio.ensure_future(trickle())
    try:
        connections = [*no_client_hello, *silent_tls, *half_line, *half_headers, trickling]
        elapsed = await asyncio.gather(
            *(closed_after(c.reader, c.opened, HEADER_TIMEOUT + LATE + 2) for c in connections)
        )
    finally:
        feeder.cancel()
        close_all([*no_client_hello, *silent_tls, *half_line, *half_headers, trickling])
    for seconds in elapsed:
        assert HEADER_TIMEOUT - 0.1 <= seconds <= HEADER_TIMEOUT + LATE, elapsed


async def test_kept_alive_connection_serves_past_the_header_timeout_then_closes_when_idle(
    adapter: AdapterProcess,
) -> None:
    connection = (await silent_connections(HOST, adapter.port, 1, tls=adapter.ssl_context()))[0]
    try:
        # Requests 0.4 s apart for longer than the header timeout: each head has its own
        # deadline.
        started = last_answer = time.monotonic()
        while last_answer - started < 1.5 * HEADER_TIMEOUT:
            await asyncio.sleep(0.4)
            connection.writer.write(LIVEZ)
            answer = await read_response(connection.reader)
            last_answer = time.monotonic()
            assert answer.code == 200 and answer.body == b"ok"
        seconds = await closed_after(connection.reader, last_answer, IDLE_TIMEOUT + LATE + 2)
    finally:
        connection.close()
    assert IDLE_TIMEOUT - 0.1 <= seconds <= IDLE_TIMEOUT + LATE


# --- request heads -------------------------------------------------------------------------


def expected_status(code: int, reason: str, message: str, details: Any = None) -> bytes:
    """status_response's bytes: Go's json.Encoder output, compact with a final newline."""
    return go_json(status_body(code, reason, message, details)) + b"\n"


def head_of_size(size: int, *, path: str = "/livez") -> bytes:
    """A GET whose request line and headers are exactly `size` bytes, padded in 4 KiB lines."""
    head = f"GET {path} HTTP/1.1\r\nHost: adapter\r\nConnection: close\r\n".encode()
    filler = []
    remaining = size - len(head) - 2
    index = 0
    while remaining > 0:
        name = b"X-Pad-%05d: " % index
        value_length = min(4096, remaining - len(name) - 2)
        assert value_length >= 1, "size is not reachable with whole lines"
        filler.append(name + b"p" * value_length + b"\r\n")
        remaining -= len(filler[-1])
        index += 1
    data = head + b"".join(filler) + b"\r\n"
    assert len(data) == size
    return data


TOO_LARGE = "the request line and headers are larger than the server accepts (1052672 bytes)"
BAD_HEADS = [
    pytest.param(b"GARBAGE\r\n\r\n", 400, "BadRequest", "malformed HTTP request: Invalid method encountered", id="no request line"),
    pytest.param(b"FOO /apis HTTP/1.1\r\nHost: a\r\n\r\n", 405, "MethodNotAllowed", "the server does not allow this method on the requested resource", id="unknown method"),
    pytest.param(b"G\x01T /apis HTTP/1.1\r\nHost: a\r\n\r\n", 400, "BadRequest", "malformed HTTP request: Invalid method encountered", id="method not a token"),
    pytest.param(b"GET /apis/a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "BadRequest", "malformed HTTP request: Bad status line", id="raw space in path"),
    pytest.param("GET /apis/ü HTTP/1.1\r\nHost: a\r\n\r\n".encode(), 400, "BadRequest", "malformed HTTP request: Invalid char in url path", id="non-ASCII path"),
    pytest.param(b"GET /apis HTTP/1.1\r\n\r\n", 400, "BadRequest", "malformed HTTP request: Missing 'Host' header in request", id="no Host"),
    pytest.param(b"GET /apis HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n", 400, "BadRequest", "malformed HTTP request: Invalid header token", id="space in header name"),
    pytest.param(b"GET /apis HTTP/2.0\r\nHost: a\r\n\r\n", 505, "", "unsupported protocol version", id="HTTP/2.0 line"),
    pytest.param(b"GET /" + b"a" * MAX_HEAD_BYTES + b" HTTP/1.1\r\nHost: a\r\n\r\n", 431, "RequestEntityTooLarge", TOO_LARGE, id="request line over 1 MiB"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * MAX_HEAD_BYTES + b"\r\n\r\n", 431, "RequestEntityTooLarge", TOO_LARGE, id="header line over 1 MiB"),
    pytest.param(head_of_size(MAX_HEAD_BYTES + 1), 431, "RequestEntityTooLarge", TOO_LARGE, id="head one byte over"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Remote-Group: g\r\n" * 16400 + b"\r\n", 431, "RequestEntityTooLarge", "the request has more header lines than the server accepts (16384)", id="too many header lines"),
]  # fmt: skip


@pytest.mark.parametrize(("head", "code", "reason", "message"), BAD_HEADS)
async def test_refused_heads_get_a_status_and_the_server_goes_on(
    adapter: AdapterProcess, head: bytes, code: int, reason: str, message: str
) -> None:
    answer = parse_response(await send_raw(HOST, adapter.port, head, tls=adapter.ssl_context()))
    assert answer.code == code, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    details: dict[str, Any] | None = {} if code == 405 else None
    assert answer.body == expected_status(code, reason, message, details)
    await assert_serving(adapter)


async def test_a_head_of_exactly_the_budget_is_served(adapter: AdapterProcess) -> None:
    answer = parse_response(
        await send_raw(HOST, adapter.port, head_of_size(MAX_HEAD_BYTES), tls=adapter.ssl_context())
    )
    assert answer.code == 200 and answer.body == b"ok"


async def test_malformed_request_floods_log_a_few_lines_without_tracebacks(
    adapter: AdapterProcess,
) -> None:
    before = adapter.log().splitlines()
    tls = adapter.ssl_context()
    gate = asyncio.Semaphore(20)

    async def bad() -> int:
        async with gate:
            return parse_response(
                await send_raw(HOST, adapter.port, b"GARBAGE\r\n\r\n", tls=tls)
            ).code

    assert await asyncio.gather(*(bad() for _ in range(200))) == [400] * 200
    # The suppressed ones are counted in one more line when the second is over.
    deadline = time.monotonic() + 5
    while "more like it" not in adapter.log() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    # Without Prometheus, the relister logs its retries: not about connections.
    added = [
        line
        for line in adapter.log().splitlines()[len(before) :]
        if not any(noise in line for noise in RELIST_NOISE)
    ]
    assert 1 <= len(added) <= 4, added
    assert all(
        " adapter.server.connections] malformed request from 127.0.0.1: 400" in line
        for line in added
    ), added
    assert all(line.startswith("I") for line in added), added  # INFO, not ERROR
    # Every rejection is counted; a summary may also count those of the tests before.
    counted = sum(
        int(line.split("(and ")[1].split()[0]) + 1 if "(and " in line else 1 for line in added
    )
    assert 200 <= counted <= 200 + len(BAD_HEADS) + 1, added
    assert not any("Traceback" in line or "Error handling request" in line for line in added)


# --- connection floods ---------------------------------------------------------------------

CAP = 1000
CAPPED_HEADER_TIMEOUT = 4.0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def capped_adapter() -> AsyncIterator[AdapterProcess]:
    if raise_open_files_limit(4096) < 2 * CAP + 500:
        pytest.skip("the open-files limit is too low for 1,000 connections")
    process = adapter_process(
        f"--request-header-timeout={CAPPED_HEADER_TIMEOUT}s", f"--max-connections={CAP}"
    )
    try:
        await process.start(wait_ready=False)
        yield process
    finally:
        await process.close()


async def test_connection_flood_is_capped_and_its_memory_returned(
    capped_adapter: AdapterProcess,
) -> None:
    adapter = capped_adapter
    assert adapter.process is not None
    pid = adapter.process.pid
    tls = adapter.ssl_context()
    await assert_serving(adapter)
    before = rss_mb(pid)
    # Connections that never send a ClientHello: each takes a place and TLS state up to the
    # header timeout. 200 more than the cap are closed at once, before any handshake.
    started = time.monotonic()
    flood = await silent_connections(HOST, adapter.port, CAP + 200)
    try:
        # At once, while the first of the flood are still far from their header timeout.
        with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
            await send_raw(HOST, adapter.port, LIVEZ_ONCE, tls=tls, timeout=2)  # past the cap
        refused = await asyncio.gather(*(refused_at_once(c) for c in flood))
        # If opening took longer than the header timeout, places were freed meanwhile.
        opening = max(c.opened for c in flood) - started
        # The cap holds: at most CAP are held. A place or two may free up meanwhile (the
        # probe's own connection closing), so a few more than CAP may be accepted in all.
        held_count = len(flood) - sum(refused)
        assert held_count <= CAP, f"held {held_count}; opened {len(flood)} in {opening:.1f}s"
        assert sum(refused) >= 195, f"opened {CAP + 200} connections in {opening:.1f}s"
        during = rss_mb(pid)
        held = [c for c, was_refused in zip(flood, refused, strict=True) if not was_refused]
        await asyncio.gather(
            *(read_until_closed(c.reader, CAPPED_HEADER_TIMEOUT + LATE + 3) for c in held)
        )
    finally:
        close_all(flood)
    await assert_serving(adapter)  # the places are back
    # glibc keeps freed memory; the adapter trims its heap a second after a burst of closes,
    # at most every 10 s (the refused connections' burst may just have had its trim).
    deadline = time.monotonic() + 12
    after = rss_mb(pid)
    while after - before > 0.35 * (during - before) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        after = rss_mb(pid)
    print(
        f"RSS before {before:.1f} MB, with {CAP} connections {during:.1f} MB, after {after:.1f} MB"
    )
    # About 50 KB a connection (TLS state, buffers, the HTTP protocol) ...
    assert during - before >= 20, (before, during)
    # ... and most of it back: Python keeps some of its own free lists and arenas.
    assert after - before <= 0.35 * (during - before), (before, during, after)
    log = adapter.log()
    assert log.count("refused a connection") <= 3, log


async def refused_at_once(connection: Connection) -> bool:
    """Whether the server closed `connection` long before the header timeout (a refused
    connection is closed as soon as it is accepted; a held one at the timeout). Each gets at
    least half a second: opening the whole flood may take longer than the window."""
    window = CAPPED_HEADER_TIMEOUT / 2
    try:
        await read_until_closed(
            connection.reader, max(0.5, connection.opened + window - time.monotonic())
        )
    except TimeoutError:
        return False
    return True


# --- many groups, through authentication ---------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[AdapterProcess, FakeKubeAPIServer, ssl.SSLContext]]:
    workdir = tmp_path_factory.mktemp("many-groups")
    front_proxy_ca = CertificateAuthority("front-proxy-ca")
    async with running_fake_kube_apiserver() as kube:
        kube.set_authentication_configmap(
            client_ca=CertificateAuthority("client-ca").cert_pem.decode(),
            requestheader_ca=front_proxy_ca.cert_pem.decode(),
            allowed_names=["front-proxy-client"],
        )
        # Only the last of the user's groups may read /apis: all of them must arrive.
        kube.allow(group="group-0999", non_resource_path="/apis", verb="get")
        kubeconfig = kube.kubeconfig(workdir / "kubeconfig")
        process = adapter_process(
            f"--lister-kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            no_cluster=False,
        )
        try:
            await process.start(wait_ready=False)
            context = process.ssl_context()
            cert, key = front_proxy_ca.issue_client("front-proxy-client").write(workdir, "proxy")
            context.load_cert_chain(cert, key)
            yield process, kube, context
        finally:
            await process.close()


async def test_a_thousand_groups_reach_the_subject_access_review(
    cluster: tuple[AdapterProcess, FakeKubeAPIServer, ssl.SSLContext],
) -> None:
    adapter, kube, front_proxy = cluster
    groups = [f"group-{i:04d}" for i in range(1000)]
    headers = CIMultiDict([("X-Remote-User", "alice"), *(("X-Remote-Group", g) for g in groups)])
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{adapter.url}/apis", ssl=front_proxy, headers=headers) as response,
    ):
        body = await response.read()
    assert response.status == 200, body
    assert orjson.loads(body)["kind"] == "APIGroupList"
    reviews = [
        r.body["spec"]
        for r in kube.requests
        if r.method == "POST" and r.path.startswith("/apis/authorization.k8s.io")
    ]
    assert reviews and reviews[-1]["user"] == "alice"
    assert reviews[-1]["groups"] == [*groups, "system:authenticated"]
