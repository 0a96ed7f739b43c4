"""adapter.server.connections: the pure parts (throttled log, parser errors as Status, heap
trim), and the connection handler over real sockets in this process, with small limits.

The handler hooks into aiohttp's RequestHandler (its message queue, its error entries,
`handle_error`); the tests against a served app fail if those change underneath."""

import asyncio
import contextlib
import inspect
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.http_parser import HttpRequestParser
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from adapter.errors import status_body
from adapter.server.connections import (
    ConnectionLimits,
    HeadTooLargeError,
    HeapTrim,
    SecureSite,
    ThrottledLog,
    VersionNotSupportedError,
    parser_error,
)
from adapter.server.responses import go_json
from harness.pki import CertificateAuthority
from harness.slow_client import (
    RawResponse,
    close_all,
    parse_response,
    read_response,
    read_until_closed,
    send_raw,
    silent_connections,
)

HOST = "127.0.0.1"
GET = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
GET_ONCE = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

# --- ThrottledLog ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.scheduled.append((self.now + delay, callback))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [item for item in self.scheduled if item[0] <= self.now]
        self.scheduled = [item for item in self.scheduled if item[0] > self.now]
        for _, callback in due:
            callback()


def throttled(clock: FakeClock) -> ThrottledLog:
    return ThrottledLog(
        logging.getLogger("test.throttled"),
        logging.INFO,
        clock=lambda: clock.now,
        call_later=clock.call_later,
    )


def test_throttled_log_logs_the_first_and_then_one_count_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = throttled(clock)
    with caplog.at_level(logging.INFO, "test.throttled"):
        for i in range(200):
            log.log(f"event {i}")
            clock.advance(0.004)
        assert [r.getMessage() for r in caplog.records] == ["event 0"]
        clock.advance(1)
    assert [r.getMessage() for r in caplog.records] == [
        "event 0",
        "event 199 (and 198 more like it in the last 1s)",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records)


def test_throttled_log_after_a_quiet_second_logs_at_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = throttled(clock)
    with caplog.at_level(logging.INFO, "test.throttled"):
        log.log("a")
        clock.advance(0.5)
        log.log("b")  # suppressed, reported alone when the second is over
        clock.advance(0.6)
        clock.advance(1.5)
        log.log("c")
    assert [r.getMessage() for r in caplog.records] == ["a", "b", "c"]
    assert clock.scheduled == []


# --- parser errors as Status ---------------------------------------------------------------


def parse_error(
    data: bytes, *, max_line_size: int = 8190, max_headers: int = 128
) -> HttpProcessingError:
    """What aiohttp's C parser (llhttp) raises for `data`, as the server feeds it."""
    loop = asyncio.new_event_loop()
    try:
        parser = HttpRequestParser(
            None, loop, 2**16, max_line_size=max_line_size, max_headers=max_headers
        )
        with pytest.raises(HttpProcessingError) as raised:
            parser.feed_data(data)
    finally:
        loop.close()
    return raised.value


LIMITS = ConnectionLimits()


@pytest.mark.parametrize(
    ("data", "code", "reason"),
    [
        (b"FOO /apis HTTP/1.1\r\nHost: a\r\n\r\n", 405, "MethodNotAllowed"),
        (b"get /apis HTTP/1.0\r\n\r\n", 405, "MethodNotAllowed"),  # a token: Go routes it
        (b"GARBAGE\r\n\r\n", 400, "BadRequest"),  # no request line: Go's "malformed"
        (b"FOO /apis HTCPCP/1.0\r\n\r\n", 400, "BadRequest"),
        (b"G\x01T /apis HTTP/1.1\r\n\r\n", 400, "BadRequest"),
        (b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "BadRequest"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "BadRequest"),
    ],
)
def test_parser_errors_become_go_like_statuses(data: bytes, code: int, reason: str) -> None:
    error = parser_error(parse_error(data), LIMITS)
    assert (error.code, error.reason) == (code, reason), error.message
    assert "\n" not in error.message and "b'" not in error.message


def test_the_method_parser_error_quotes_the_request_line() -> None:
    exc = parse_error(b"FOO /apis HTTP/1.1\r\nHost: a\r\n\r\n")
    assert isinstance(exc, BadHttpMethod)
    assert "\n\n  b'FOO /apis HTTP/1.1'\n" in exc.message  # what _QUOTED_LINE reads


def test_head_limits_are_431_with_kubernetes_reason() -> None:
    too_long = parse_error(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n", max_line_size=50)
    too_many = parse_error(b"GET / HTTP/1.1\r\n" + b"X: 1\r\n" * 5, max_headers=3)
    assert isinstance(too_long, LineTooLong)
    for exc in (too_long, too_many, HeadTooLargeError(message="x")):
        error = parser_error(exc, LIMITS)
        assert (error.code, error.reason) == (431, "RequestEntityTooLarge")
    version = parser_error(VersionNotSupportedError(message="unsupported protocol version"), LIMITS)
    assert (version.code, version.reason) == (505, "")


def test_aiohttp_internals_the_handler_relies_on() -> None:
    """Fails if aiohttp renames what ConnectionHandler reads or builds."""
    slots = {name for cls in RequestHandler.__mro__ for name in getattr(cls, "__slots__", ())}
    assert {"_messages", "_waiter", "_loop"} <= slots
    assert [f.name for f in _ErrInfo.__attrs_attrs__] == ["status", "exc", "message"]
    assert list(inspect.signature(RequestHandler.handle_error).parameters) == [
        "self",
        "request",
        "status",
        "exc",
        "message",
    ]
    options = inspect.signature(RequestHandler.__init__).parameters
    assert set(ConnectionLimits().handler_options()) | {"access_log"} <= set(options)


# --- HeapTrim ------------------------------------------------------------------------------


async def test_heap_trim_runs_once_after_a_burst_of_closes() -> None:
    trims: list[float] = []
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def trim() -> None:
        trims.append(loop.time())
        done.set()

    heap = HeapTrim(loop, trim, after_closes=3, delay=0.05, min_interval=0.3)
    heap.connection_closed()
    heap.connection_closed()
    await asyncio.sleep(0.1)
    assert trims == []  # fewer closes than the threshold
    for _ in range(10):
        heap.connection_closed()
    await asyncio.wait_for(done.wait(), 1)
    done.clear()
    for _ in range(3):
        heap.connection_closed()
    await asyncio.wait_for(done.wait(), 1)
    assert len(trims) == 2 and trims[1] - trims[0] >= 0.3 - 0.01  # at most every min_interval
    heap.cancel()


async def test_heap_trim_is_found_in_glibc() -> None:
    assert HeapTrim.for_loop(asyncio.get_running_loop()) is not None


# --- the handler over real sockets ---------------------------------------------------------


class Served:
    def __init__(self, site: SecureSite, tls: ssl.SSLContext | None) -> None:
        self.site = site
        self.tls = tls

    @property
    def port(self) -> int:
        return self.site.port

    async def send(self, data: bytes) -> RawResponse:
        return parse_response(await send_raw(HOST, self.port, data, tls=self.tls, timeout=5))


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"groups={len(request.headers.getall('X-Remote-Group', []))}")


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@contextlib.asynccontextmanager
async def served(
    limits: ConnectionLimits, *, tls: bool = False, tmp_path: Path | None = None
) -> AsyncIterator[Served]:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    server_tls = client_tls = None
    if tls:
        assert tmp_path is not None
        ca = CertificateAuthority("test-ca")
        cert, key = ca.issue_server().write(tmp_path, "server")
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(cert, key)
        client_tls = ssl.create_default_context(cafile=str(ca.write(tmp_path)))
    site = SecureSite(runner, HOST, 0, ssl_context=server_tls, limits=limits)
    await site.start()
    try:
        yield Served(site, client_tls)
    finally:
        await runner.cleanup()


def status_bytes(code: int, reason: str, message: str) -> bytes:
    return go_json(status_body(code, reason, message)) + b"\n"


async def test_pipelined_requests_and_bodies_do_not_count_as_heads() -> None:
    async with served(ConnectionLimits(max_head_bytes=1000)) as app:
        (connection,) = await silent_connections(HOST, app.port, 1)
        try:
            # A body larger than the head budget, then two requests in one write.
            body = b"x" * 5000
            connection.writer.write(
                b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n" + body + GET + GET
            )
            for _ in range(3):
                answer = await read_response(connection.reader)
                assert (answer.code, answer.body) == (200, b"groups=0")
        finally:
            connection.close()
        assert app.site.open_connections <= 1


async def test_head_budget_exact_boundary() -> None:
    budget = 2000
    async with served(ConnectionLimits(max_head_bytes=budget)) as app:
        head = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Pad: "
        exact = head + b"p" * (budget - len(head) - 4) + b"\r\n\r\n"
        assert len(exact) == budget
        assert (await app.send(exact)).code == 200
        over = head + b"p" * (budget - len(head) - 3) + b"\r\n\r\n"
        answer = await app.send(over)
        assert answer.code == 431
        assert answer.body == status_bytes(
            431,
            "RequestEntityTooLarge",
            "the request line and headers are larger than the server accepts (2000 bytes)",
        )
        # Over the budget before the end of the head: answered without waiting for it.
        answer = await app.send(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Remote-Group: g\r\n" * 200)
        assert answer.code == 431
        assert (await app.send(GET_ONCE)).code == 200


async def test_many_groups_and_long_lines_within_the_budget() -> None:
    async with served(ConnectionLimits()) as app:
        groups = b"".join(b"X-Remote-Group: group-%04d\r\n" % i for i in range(1000))
        answer = await app.send(GET_ONCE[:-2] + groups + b"X-Long: " + b"l" * 100_000 + b"\r\n\r\n")
        assert (answer.code, answer.body) == (200, b"groups=1000")


async def test_http_version_other_than_1_is_505() -> None:
    async with served(ConnectionLimits()) as app:
        answer = await app.send(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n")
        assert answer.code == 505
        assert answer.headers["connection"] == "close"
        assert answer.body == go_json(status_body(505, "", "unsupported protocol version")) + b"\n"


async def test_bugs_below_the_app_are_500_statuses_with_a_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with served(ConnectionLimits()) as app:
        with caplog.at_level(logging.ERROR):
            answer = await app.send(b"GET /broken HTTP/1.1\r\nHost: a\r\n\r\n")
    assert answer.code == 500
    assert orjson.loads(answer.body)["message"] == "Internal Server Error"
    assert any(r.exc_info for r in caplog.records)


async def test_malformed_requests_log_one_throttled_line(caplog: pytest.LogCaptureFixture) -> None:
    async with served(ConnectionLimits()) as app:
        with caplog.at_level(logging.DEBUG):
            answers = await asyncio.gather(*(app.send(b"GARBAGE\r\n\r\n") for _ in range(50)))
    assert {a.code for a in answers} == {400}
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].name == "adapter.server.connections" and lines[0].levelno == logging.INFO
    assert lines[0].exc_info is None


async def test_head_timeout_drops_silent_and_partial_heads_without_an_answer() -> None:
    async with served(ConnectionLimits(request_header_timeout=0.3)) as app:
        loop = asyncio.get_running_loop()
        connections = [
            (await silent_connections(HOST, app.port, 1, first_bytes=first))[0]
            for first in (b"", b"GET / HTTP/1.1\r\n")
        ]
        try:
            for connection in connections:
                assert await read_until_closed(connection.reader, 3) == b""
                assert loop.time() - connection.opened >= 0.25
        finally:
            close_all(connections)
        await asyncio.sleep(0)
        assert app.site.open_connections == 0


async def test_a_head_in_too_many_pieces_is_dropped() -> None:
    async with served(ConnectionLimits(request_header_timeout=30, max_head_reads=5)) as app:
        (pieces,) = await silent_connections(HOST, app.port, 1, first_bytes=b"GET / HTTP/1.1\r\n")
        try:
            with contextlib.suppress(ConnectionError):  # closed after the fifth read
                for i in range(20):
                    pieces.writer.write(b"X-%d: 1\r\n" % i)
                    await pieces.writer.drain()
                    await asyncio.sleep(0.01)
            assert await read_until_closed(pieces.reader, 3) == b""
        finally:
            pieces.close()


async def test_connection_cap_refuses_at_accept_and_frees_places(tmp_path: Path) -> None:
    async with served(ConnectionLimits(max_connections=2), tls=True, tmp_path=tmp_path) as app:
        # Two connections in their TLS handshake (no ClientHello) fill the places.
        held = await silent_connections(HOST, app.port, 2)
        (third,) = await silent_connections(HOST, app.port, 1)
        assert await read_until_closed(third.reader, 1) == b""  # closed at once
        close_all([*held, third])
        # A handshake that fails gives its place back too.
        (garbage,) = await silent_connections(
            HOST, app.port, 1, first_bytes=b"GET / HTTP/1.1\r\n\r\n"
        )
        await read_until_closed(garbage.reader, 2)
        garbage.close()
        for _ in range(100):
            if app.site.open_connections == 0:
                break
            await asyncio.sleep(0.01)
        assert app.site.open_connections == 0
        assert (await app.send(GET_ONCE)).code == 200


def test_limits_default_to_go() -> None:
    limits = ConnectionLimits()
    assert (limits.request_header_timeout, limits.idle_connection_timeout) == (32.0, 90.0)
    assert limits.max_head_bytes == (1 << 20) + 4096
    assert limits.handler_options()["keepalive_timeout"] == 90.0
