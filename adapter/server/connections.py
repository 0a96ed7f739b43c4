"""The secure port's connections, held to what k8s.io/apiserver's http.Server allows
(SecureServingInfo.Serve: ReadHeaderTimeout 32s, IdleTimeout 90s, MaxHeaderBytes 1 MiB).

- `SecureSite` listens and accepts connections itself, so that it can count every one, in
  the TLS handshake or not, against `--max-connections` and close those past it before any
  TLS work; the TLS handshake gets `--request-header-timeout` (Go: tlsHandshakeTimeout).
- `ConnectionHandler` is aiohttp's HTTP/1.1 protocol with Go's limits on a request's head:
  `--request-header-timeout` from the connection's start, or from the first byte of a further
  request, until the headers are complete (then the connection is dropped without an answer,
  as Go does); at most 1 MiB + 4 KiB of request line and headers in all (Go's
  `initialReadLimitSize`), else a 431; `--idle-connection-timeout` between requests
  (aiohttp's keep-alive timeout).
- Every error the HTTP parser raises is answered with a Kubernetes Status (Go's net/http
  writes plain text there) and logged in one line, at most one a second (`ThrottledLog`).

aiohttp has public knobs for the idle timeout and the parser's limits only; the head timeout,
the head budget and the error answers hook into `RequestHandler` (`data_received`,
`handle_error`) and read its message queue. tests/unit/test_server_connections.py fails if
those internals change.
"""

import asyncio
import contextlib
import logging
import re
import socket
import ssl
from ast import literal_eval
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http import RawRequestMessage
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from adapter.errors import APIError, BadRequestError, MethodNotAllowedError, UnknownError
from adapter.heap import heap_trimmer
from adapter.server.responses import status_response

__all__ = [
    "ConnectionHandler",
    "ConnectionLimits",
    "HTTPVersionNotSupported",
    "HeadTooLargeError",
    "RequestHeadTooLarge",
    "SecureSite",
    "ThrottledLog",
    "VersionNotSupportedError",
    "parser_error",
]

log = logging.getLogger(__name__)

# Go's http.Server limits, as k8s.io/apiserver sets them.
READ_HEADER_TIMEOUT = 32.0
IDLE_TIMEOUT = 90.0
# MaxHeaderBytes (1 << 20) plus the 4096 bytes net/http adds for bufio (initialReadLimitSize).
MAX_HEAD_BYTES = (1 << 20) + 4096
# Reads of one request head. A head arriving in more pieces is a slowloris, and expensive:
# aiohttp's C parser grows a header value by bytes concatenation, so a 1 MiB value in 16,384
# pieces costs 3 s of CPU (in 1,024 pieces, 30 ms). Go clients send a head in 4 KiB writes
# (256 for 1 MiB). Past it the connection is dropped, as when the head timeout passes.
MAX_HEAD_READS = 1024
# Go has no limit on the number of header lines. Parsing is CPU on our one event loop, so we
# keep one that realistic heads never reach: 16,384 lines of 65 bytes fill the byte budget
# (an X-Remote-Group line with a 48-byte group name), while 1 MiB of 4-byte lines would take
# half a second and 46 MB to parse.
MAX_HEADER_LINES = 16384
DEFAULT_MAX_CONNECTIONS = 1024
LISTEN_BACKLOG = 128


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    request_header_timeout: float = READ_HEADER_TIMEOUT
    idle_connection_timeout: float = IDLE_TIMEOUT
    max_head_bytes: int = MAX_HEAD_BYTES
    max_header_lines: int = MAX_HEADER_LINES
    max_head_reads: int = MAX_HEAD_READS
    # 0: no limit.
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def handler_options(self) -> dict[str, Any]:
        """aiohttp RequestHandler's own limits: one line may use the whole budget (Go has no
        per-line limit), and the idle timeout is its keep-alive timeout."""
        return {
            "keepalive_timeout": self.idle_connection_timeout,
            "max_line_size": self.max_head_bytes,
            "max_field_size": self.max_head_bytes,
            "max_headers": self.max_header_lines,
        }


class ThrottledLog:
    """One line per `interval` at most: the first event of a quiet spell is logged at once,
    later ones are counted and reported in one line when the interval ends."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        *,
        interval: float = 1.0,
        clock: Callable[[], float],
        call_later: Callable[[float, Callable[[], None]], object],
    ) -> None:
        self._logger = logger
        self._level = level
        self._interval = interval
        self._clock = clock
        self._call_later = call_later
        self._quiet_until = float("-inf")
        self._suppressed = 0
        self._last_message = ""

    def log(self, message: str) -> None:
        now = self._clock()
        if now >= self._quiet_until:
            self._quiet_until = now + self._interval
            self._logger.log(self._level, "%s", message)
            return
        if self._suppressed == 0:
            self._call_later(self._quiet_until - now, self._flush)
        self._suppressed += 1
        self._last_message = message

    def _flush(self) -> None:
        count, self._suppressed = self._suppressed, 0
        if count == 0:
            return
        # This line is the next interval's one.
        self._quiet_until = self._clock() + self._interval
        if count == 1:
            self._logger.log(self._level, "%s", self._last_message)
        else:
            self._logger.log(
                self._level,
                "%s (and %d more like it in the last %gs)",
                self._last_message,
                count - 1,
                self._interval,
            )


class HeadTooLargeError(HttpProcessingError):
    """The request line and headers are over the budget (Go's errTooLarge)."""

    code = 431


class VersionNotSupportedError(HttpProcessingError):
    """A request line with an HTTP version other than 1.x, which llhttp parses."""

    code = 505


def _head_size(message: RawRequestMessage) -> int:
    """The bytes of a parsed request line and headers, as sent (give or take whitespace)."""
    line = len(f"{message.method} {message.path} HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in message.raw_headers) + 2


class HTTPVersionNotSupported(APIError):
    """Kubernetes has no StatusReason for a 505."""

    code = 505
    reason = ""


class RequestHeadTooLarge(APIError):
    """Go's net/http answers "431 Request Header Fields Too Large" in plain text. Kubernetes
    has no StatusReason for it; RequestEntityTooLarge is the one it has for a request too
    large to serve (client-go's IsRequestEntityTooLargeError)."""

    code = 431
    reason = "RequestEntityTooLarge"


# An HTTP token (RFC 9110 5.6.2): what Go's net/http accepts as a method.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# llhttp's messages quote the line as bytes after a blank line: "...:\n\n  b'FOO / HTTP/1.1'".
_QUOTED_LINE = re.compile(r"\n\n  (b(?:'[^\n]*'|\"[^\n]*\"))\n")
_SUMMARY_LIMIT = 120


def _summary(exc: HttpProcessingError) -> str:
    """The first line of the parser's message, without the bytes it quotes."""
    first = (exc.message or type(exc).__name__).split("\n", 1)[0]
    return first.split(": ", 1)[0].rstrip(":. ")[:_SUMMARY_LIMIT]


def _rejected_method(exc: BadHttpMethod) -> bytes | None:
    """The method of a request line llhttp refused for its method alone ("FOO / HTTP/1.1"),
    when its message quotes the line; None for a line Go would not parse either."""
    match = _QUOTED_LINE.search(exc.message)
    if match is None:
        return None
    try:
        line = literal_eval(match.group(1))
    except (SyntaxError, ValueError):
        return None
    if not isinstance(line, bytes):
        return None
    parts = line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
        return None
    return parts[0]


def parser_error(exc: HttpProcessingError, limits: ConnectionLimits) -> APIError:
    """The Status for a request the HTTP parser refused: 431 for a head over the budget (a
    request line or header line too long, too many lines), 405 for a method Go would accept
    (any token; go-restful answers 405 on API paths), else 400."""
    if isinstance(exc, HeadTooLargeError | LineTooLong):
        return RequestHeadTooLarge(
            f"the request line and headers are larger than the server accepts "
            f"({limits.max_head_bytes} bytes)"
        )
    if exc.message == "Too many headers received":
        return RequestHeadTooLarge(
            f"the request has more header lines than the server accepts ({limits.max_header_lines})"
        )
    if isinstance(exc, VersionNotSupportedError):
        return HTTPVersionNotSupported(exc.message)
    if isinstance(exc, BadHttpMethod):
        method = _rejected_method(exc)
        if method and _TOKEN.fullmatch(method):
            return MethodNotAllowedError(
                "the server does not allow this method on the requested resource", details={}
            )
    return BadRequestError(f"malformed HTTP request: {_summary(exc)}")


class ConnectionHandler(RequestHandler):
    """aiohttp's RequestHandler with Go's limits on a request's head and Status answers to
    the parser's errors. One per connection; `SecureSite` makes them."""

    __slots__ = (
        "_body",
        "_failed",
        "_head_bytes",
        "_head_reads",
        "_head_started",
        "_head_timer",
        "_released",
        "_site",
    )

    def __init__(self, manager: web.Server, site: "SecureSite") -> None:
        options = site.limits.handler_options()
        options["access_log"] = None  # the error middleware logs requests
        super().__init__(manager, loop=site.loop, **options)
        self._site = site
        # The request body being received (bytes that are not a head), if any.
        self._body: Any = None
        # When the head being received began (None between requests), and its size so far.
        self._head_started: float | None = None
        self._head_bytes = 0
        self._head_reads = 0
        self._head_timer: asyncio.TimerHandle | None = None
        # An error answer is queued: what follows on the connection is not read.
        self._failed = False
        self._released = False

    # --- the head timeout ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Go's ReadHeaderTimeout runs from the start of the first request's read.
        self._start_head(self._loop.time())

    def _start_head(self, now: float) -> None:
        self._head_started = now
        # One timer per connection, re-armed lazily: a keep-alive connection serving many
        # requests schedules at most one timer per timeout period, not one per request.
        if self._head_timer is None:
            self._head_timer = self._loop.call_at(
                now + self._site.limits.request_header_timeout, self._check_head
            )

    def _check_head(self) -> None:
        self._head_timer = None
        started = self._head_started
        transport = self.transport
        if started is None or transport is None:
            return
        deadline = started + self._site.limits.request_header_timeout
        if self._loop.time() < deadline:
            self._head_timer = self._loop.call_at(deadline, self._check_head)
            return
        # Go drops the connection without an answer when the deadline passes (a timeout is a
        # "common net read error"). abort(): no TLS close_notify exchange with a silent peer.
        log.debug("closing a connection from %s: no complete request head in time", self.peer)
        transport.abort()

    @property
    def peer(self) -> str:
        peername = self.peername
        if isinstance(peername, tuple):
            return str(peername[0])
        return str(peername) if peername else "unknown"

    # --- the head budget -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return  # an error answer is queued; the connection closes after it
        body = self._body
        if body is not None:
            if not body.is_eof():
                super().data_received(data)
                return
            self._body = None
        if self._head_started is None:
            if not data:  # aiohttp re-feeding its own buffer: no new bytes
                super().data_received(data)
                return
            self._start_head(self._loop.time())
        self._head_bytes += len(data)
        self._head_reads += 1
        # aiohttp's queue of parsed requests: a new entry is a complete head (or the parser's
        # error).
        messages = self._messages
        queued = len(messages)
        super().data_received(data)
        if len(messages) == queued:
            limits = self._site.limits
            if self._head_bytes > limits.max_head_bytes:
                self._fail(HeadTooLargeError(message=f"over {self._head_bytes} bytes"))
            elif self._head_reads > limits.max_head_reads and self.transport is not None:
                log.debug(
                    "closing a connection from %s: request head in too many pieces", self.peer
                )
                self.transport.abort()
            return
        # These bytes may also hold a body or the next request: over the budget, measure.
        over_budget = self._head_bytes > self._site.limits.max_head_bytes
        self._head_started = None
        self._head_bytes = 0
        self._head_reads = 0
        for index in range(queued, len(messages)):
            message = messages[index][0]
            if isinstance(message, _ErrInfo):
                self._failed = True
                return
            refused: HttpProcessingError | None = None
            if message.version.major != 1:
                # Go: "505 HTTP Version Not Supported: unsupported protocol version".
                refused = VersionNotSupportedError(message="unsupported protocol version")
            elif over_budget and index == queued:
                size = _head_size(message)
                if size > self._site.limits.max_head_bytes:
                    refused = HeadTooLargeError(message=f"{size} bytes")
            if refused is not None:
                while len(messages) > index:
                    messages.pop()
                self._fail(refused)
                return
        payload = messages[-1][1]
        if not payload.is_eof():
            self._body = payload

    def _fail(self, exc: HttpProcessingError) -> None:
        """Queue an error answer as aiohttp queues its parser's errors; read no more."""
        self._failed = True
        self._head_started = None
        error = _ErrInfo(status=exc.code, exc=exc, message=exc.message)
        self._messages.append((error, EMPTY_PAYLOAD))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- error answers ---------------------------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer to a request aiohttp could not parse or hand to the app: a Status."""
        if request.writer.output_size > 0:
            # As aiohttp: part of a response is out, the connection is beyond repair.
            raise ConnectionError("the response has begun; cannot answer with an error")
        error: APIError
        if isinstance(exc, HttpProcessingError):
            error = parser_error(exc, self._site.limits)
            self._site.rejections.log(
                f"malformed request from {self.peer}: {error.code} {error.message}"
            )
        else:
            # Not the client's doing: a bug below the error middleware, worth a traceback.
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            error = UnknownError(HTTPStatus(status).phrase)
            error.code = status
        response = status_response(request, error, headers={"Connection": "close"})
        response.force_close()
        return response

    # --- accounting ------------------------------------------------------------------------

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self.release()

    def release(self) -> None:
        """Give the connection's place back to the site (once)."""
        if not self._released:
            self._released = True
            self._site.connection_closed()


class HeapTrim:
    """Gives the memory of closed connections back to the system.

    Python frees a closed connection's buffers (about 50 KB with TLS under uvloop, 300 KB
    under asyncio's loop), but glibc keeps freed heap memory for reuse: after 1,000 silent
    connections had closed, RSS stayed 47 MB up. malloc_trim(0) returns it (5-8 ms for a
    100 MB heap). It runs once `after_closes` connections have closed, `delay` seconds after
    the last of them (so that a burst is one trim), at most every `min_interval` seconds.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        trim: Callable[[], object],
        *,
        after_closes: int = 64,
        delay: float = 1.0,
        min_interval: float = 10.0,
    ) -> None:
        self._loop = loop
        self._trim = trim
        self._after_closes = after_closes
        self._delay = delay
        self._min_interval = min_interval
        self._closes = 0
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop) -> "HeapTrim | None":
        """None where the C library has no malloc_trim (musl, macOS)."""
        trim = heap_trimmer()
        return None if trim is None else cls(loop, trim)

    def connection_closed(self) -> None:
        self._closes += 1
        if self._closes < self._after_closes:
            return
        if self._timer is not None:
            self._timer.cancel()
        when = max(self._loop.time() + self._delay, self._last + self._min_interval)
        self._timer = self._loop.call_at(when, self._run)

    def _run(self) -> None:
        self._timer = None
        self._closes = 0
        self._last = self._loop.time()
        self._trim()
        log.debug(
            "returned freed memory to the system in %.1fms", (self._loop.time() - self._last) * 1000
        )

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class SecureSite(web.BaseSite):
    """aiohttp's TCPSite with its own accept loop: each connection takes a place under
    `--max-connections` from accept until it closes, TLS handshake included; past the limit
    a connection is closed at once, before any TLS work or answer."""

    __slots__ = (
        "_accepting",
        "_handshakes",
        "_host",
        "_limits",
        "_loop",
        "_open",
        "_port",
        "_refusals",
        "_rejections",
        "_reuse_address",
        "_reuse_port",
        "_sockets",
        "_trim",
    )

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        limits: ConnectionLimits,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        backlog: int = LISTEN_BACKLOG,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._limits = limits
        self._reuse_address = reuse_address
        self._reuse_port = reuse_port
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._handshakes: set[asyncio.Task[None]] = set()
        self._open = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rejections: ThrottledLog | None = None
        self._refusals: ThrottledLog | None = None
        self._trim: HeapTrim | None = None

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the one asked for before `start`)."""
        return int(self._sockets[0].getsockname()[1]) if self._sockets else self._port

    @property
    def limits(self) -> ConnectionLimits:
        return self._limits

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "the site has not started"
        return self._loop

    @property
    def rejections(self) -> ThrottledLog:
        assert self._rejections is not None, "the site has not started"
        return self._rejections

    @property
    def refusals(self) -> ThrottledLog:
        assert self._refusals is not None, "the site has not started"
        return self._refusals

    @property
    def open_connections(self) -> int:
        return self._open

    async def start(self) -> None:
        await super().start()
        loop = self._loop = asyncio.get_running_loop()
        self._rejections = ThrottledLog(
            log, logging.INFO, clock=loop.time, call_later=loop.call_later
        )
        self._refusals = ThrottledLog(
            log, logging.WARNING, clock=loop.time, call_later=loop.call_later
        )
        self._trim = HeapTrim.for_loop(loop)
        self._sockets = _listen(
            self._host, self._port, self._backlog, self._reuse_address, self._reuse_port
        )
        self._accepting = [loop.create_task(self._accept(sock)) for sock in self._sockets]

    async def stop(self) -> None:
        for task in (*self._accepting, *self._handshakes):
            task.cancel()
        for task in (*self._accepting, *self._handshakes):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sock in self._sockets:
            sock.close()
        self._accepting = []
        if self._trim is not None:
            self._trim.cancel()
        await super().stop()

    def connection_closed(self) -> None:
        self._open -= 1
        if self._trim is not None:
            self._trim.connection_closed()

    async def _accept(self, listening: socket.socket) -> None:
        loop = self.loop
        limit = self._limits.max_connections
        while True:
            try:
                sock, _ = await loop.sock_accept(listening)
            except OSError as exc:
                # Out of file descriptors and the like: Go's Serve backs off and tries again.
                self.refusals.log(f"accepting a connection failed: {exc}")
                await asyncio.sleep(0.1)
                continue
            if limit and self._open >= limit:
                sock.close()
                self.refusals.log(
                    f"refused a connection: {self._open} are open (--max-connections={limit})"
                )
                continue
            self._open += 1
            task = loop.create_task(self._connect(sock))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _connect(self, sock: socket.socket) -> None:
        """Hand the socket to the event loop (TLS handshake included), then to a handler."""
        server = self._runner.server
        assert server is not None
        handler = ConnectionHandler(server, self)
        tls = self._ssl_context
        try:
            sock.setblocking(False)
            await self.loop.connect_accepted_socket(
                lambda: handler,
                sock,
                ssl=tls,
                ssl_handshake_timeout=self._limits.request_header_timeout if tls else None,
            )
        except (Exception, asyncio.CancelledError) as exc:
            # The handshake failed or timed out, or the site stops: the handler never saw the
            # connection. The transport owned the socket and has closed it. Failed
            # handshakes are not logged (neither does the event loop, nor Go by default).
            handler.release()
            if isinstance(exc, asyncio.CancelledError):
                raise


def _listen(
    host: str, port: int, backlog: int, reuse_address: bool | None, reuse_port: bool | None
) -> list[socket.socket]:
    """Listening sockets for `host`, as asyncio's create_server binds them."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, _, _, _, address in dict.fromkeys(
            (info[0], info[1], info[2], info[3], info[4]) for info in infos
        ):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            if reuse_address is not False:  # asyncio's default on POSIX
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
