"""A lean HTTP/1.1 keep-alive client for Prometheus' answers.

Every request the HPA makes costs one Prometheus query. aiohttp's client spent ~160 µs of CPU
on each on this machine class; writing a request and reading its answer on a bare keep-alive
connection costs ~50 µs. With this client a named request's CPU fell from ~0.6 to ~0.3 ms.
It does only what the query path needs: one host, GET or POST, HTTP/1.1 with keep-alive.
Answers are framed by httptools (llhttp, the parser of uvicorn and of aiohttp's C parser):
Content-Length, chunked encoding with trailers, or the connection's end.

A body goes, as it arrives, to a `BodySink` the caller makes once the head is read, so a
caller can parse a large answer as it streams in instead of holding it whole. Past
`max_body_size` bytes the exchange fails with `ResponseTooLarge` and the connection is
closed. Past `PACED_BODY_SIZE` bytes the answer is read one chunk per turn of the event loop,
so that parsing it interleaves with other work (libuv would otherwise read up to 32 chunks,
8 MB, in one go).

A connection taken from the idle pool that the server had closed (Go servers close idle
connections) before any byte of an answer arrived is retried on another connection, as
Go's and aiohttp's clients do; Prometheus' read endpoints are all safe to repeat.
"""

import asyncio
import ssl
import zlib
from collections.abc import Callable, Mapping
from typing import NamedTuple, Protocol, TypeVar, cast

import httptools
from multidict import CIMultiDict

__all__ = [
    "PACED_BODY_SIZE",
    "BodySink",
    "BufferedBody",
    "HTTPResponse",
    "Http1Pool",
    "ResponseFramingError",
    "ResponseHead",
    "ResponseTooLarge",
]

# A Prometheus answer's head is a few hundred bytes; 64 KiB is surely not one.
_MAX_HEAD = 64 * 1024
# Reading one chunk (at most 256 KiB) per loop turn costs a little throughput; answers this
# small arrive in one or two reads anyway.
PACED_BODY_SIZE = 256 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class ResponseFramingError(Exception):
    """The server's answer is not an HTTP/1.1 response we can read."""


class ResponseTooLarge(Exception):
    """The answer's body is longer than the caller allows; reading it was abandoned."""

    def __init__(self, limit: int, size: int, status: int) -> None:
        super().__init__(f"the response body is longer than {limit} bytes")
        self.limit = limit
        self.size = size  # bytes read, or announced by Content-Length, when it stopped
        self.status = status  # the answer's HTTP status


class _ClosedBeforeAnswer(ConnectionResetError):
    """The connection closed before any byte of the answer arrived."""


class ResponseHead(NamedTuple):
    status: int
    reason: str
    headers: Mapping[str, str]


class BodySink(Protocol):
    """Takes an answer's body as it arrives. Runs inside the connection's `data_received`:
    an exception it raises fails the exchange and closes the connection."""

    def feed(self, chunk: bytes) -> None: ...


_Sink = TypeVar("_Sink", bound=BodySink)


class BufferedBody:
    """The body kept whole."""

    __slots__ = ("_parts",)

    def __init__(self, head: ResponseHead | None = None) -> None:
        self._parts: list[bytes] = []

    def feed(self, chunk: bytes) -> None:
        self._parts.append(chunk)

    def content(self) -> bytes:
        parts = self._parts
        return parts[0] if len(parts) == 1 else b"".join(parts)


class HTTPResponse:
    """A whole answer. `read()` mirrors aiohttp's, so readers take either kind."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    async def read(self) -> bytes:
        return self.body


class _Exchange:
    """What one request waits for, and how it wants its body."""

    __slots__ = ("max_body_size", "open_body", "waiter")

    def __init__(
        self,
        waiter: "asyncio.Future[tuple[ResponseHead, BodySink]]",
        open_body: Callable[[ResponseHead], BodySink],
        max_body_size: int,
    ) -> None:
        self.waiter = waiter
        self.open_body = open_body
        self.max_body_size = max_body_size


class _Connection(asyncio.Protocol):
    """One connection, carrying one exchange at a time. httptools calls the `on_*` methods
    as it parses the answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._exchange: _Exchange | None = None
        self._received = False
        self._stray = False  # bytes after the answer: the connection is unusable
        self._resume_scheduled = False
        self._reset()

    def _reset(self) -> None:
        self._reason = ""
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._head_size = 0
        self._head: ResponseHead | None = None
        self._sink: BodySink | None = None
        self._inflate: zlib._Decompress | None = None
        self._body_size = 0
        self._until_eof = False  # no Content-Length, not chunked: the body ends with the close

    # --- driven by the pool -------------------------------------------------------

    def send(self, data: bytes, exchange: _Exchange) -> None:
        assert self.transport is not None and self._exchange is None
        self._exchange = exchange
        self._received = False
        self.transport.write(data)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._exchange is None:  # bytes nobody asked for: the connection is unusable
            self.abort()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as err:
            # One of our callbacks raised (too large, a sink's parse error): that is the cause.
            cause = err.__context__
            self._fail(cause if isinstance(cause, Exception) else _framing(err))
            return
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as err:
            self._fail(_framing(err))
            return
        if self._stray:
            self.abort()
        elif self._exchange is not None and self._body_size > PACED_BODY_SIZE:
            self._pause()

    def eof_received(self) -> bool | None:
        self._ended()
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._ended(exc)

    # --- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._exchange is None:  # a second answer to one request
            self._stray = True

    def on_status(self, status: bytes) -> None:
        self._grow_head(len(status))
        self._reason += status.decode("latin-1")  # may come in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow_head(len(name) + len(value))
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200 or self._exchange is None:  # an interim answer (103 Early Hints)
            return
        headers = self._headers
        encoding = headers.get("Content-Encoding", "").lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._inflate = zlib.decompressobj(47 if encoding != "deflate" else zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            raise ResponseFramingError(f"unsupported Content-Encoding {encoding!r}")
        length = headers.get("Content-Length")
        limit = self._exchange.max_body_size
        if length is not None and limit and self._inflate is None and int(length) > limit:
            raise ResponseTooLarge(limit, int(length), status)
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self._until_eof = length is None and not chunked and status not in _NO_BODY_STATUSES
        self._head = ResponseHead(status, self._reason, headers)
        self._sink = self._exchange.open_body(self._head)

    def on_body(self, body: bytes) -> None:
        if self._sink is None:  # the body of an interim answer
            return
        assert self._exchange is not None
        if self._inflate is not None:
            body = self._inflated(body)
        self._body_size += len(body)
        limit = self._exchange.max_body_size
        if limit and self._body_size > limit:
            raise ResponseTooLarge(limit, self._body_size, self._answer_status())
        self._sink.feed(body)

    def on_message_complete(self) -> None:
        if self._head is None:  # an interim answer: the real one follows
            self._reset()
            return
        self._complete(keep_alive=self._parser.should_keep_alive())

    # --- internals --------------------------------------------------------------------

    def _answer_status(self) -> int:
        return self._head.status if self._head is not None else 0

    def _grow_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > _MAX_HEAD:
            raise ResponseFramingError("response head too long")

    def _inflated(self, data: bytes) -> bytes:
        """Inflate, but never past the size limit: a small bomb cannot make a big body."""
        assert self._inflate is not None and self._exchange is not None
        limit = self._exchange.max_body_size
        try:
            if not limit:
                return self._inflate.decompress(data)
            out = self._inflate.decompress(data, limit - self._body_size + 1)
        except zlib.error as err:
            raise ResponseFramingError(f"malformed response: {err}") from None
        if self._inflate.unconsumed_tail:
            raise ResponseTooLarge(limit, self._body_size + len(out), self._answer_status())
        return out

    def _complete(self, keep_alive: bool) -> None:
        head, sink, exchange = self._head, self._sink, self._exchange
        assert head is not None and sink is not None and exchange is not None
        if self._inflate is not None and not self._inflate.eof:
            raise ResponseFramingError("malformed response: the compressed body is truncated")
        self._exchange = None
        self._reset()
        if not keep_alive:
            self.abort()
        if not exchange.waiter.done():
            exchange.waiter.set_result((head, sink))

    def _ended(self, exc: Exception | None = None) -> None:
        self.closed = True
        exchange = self._exchange
        if exchange is None:
            return
        if exchange.waiter.done():  # cancelled (a timeout): drop what its body made
            self._exchange = None
            self._reset()
            return
        if self._head is not None and self._until_eof:
            try:  # the body ran until the connection's end
                self._complete(keep_alive=False)
            except Exception as err:  # a sink's or the inflater's complaint
                self._fail(err)
        elif not self._received:
            self._fail(_ClosedBeforeAnswer("the server closed the connection without answering"))
        else:
            reason = f": {exc}" if exc else ""
            self._fail(ConnectionResetError(f"the connection closed mid-response{reason}"))

    def _fail(self, err: Exception) -> None:
        exchange, self._exchange = self._exchange, None
        self._reset()  # drop the sink and whatever it holds now, not when the pool lets go
        self.abort()
        if exchange is not None and not exchange.waiter.done():
            exchange.waiter.set_exception(err)

    def _pause(self) -> None:
        """Read no more until the loop has run everything else that is ready."""
        if self._resume_scheduled or self.transport is None or self.transport.is_closing():
            return
        self.transport.pause_reading()
        self._resume_scheduled = True
        asyncio.get_running_loop().call_soon(self._resume)

    def _resume(self) -> None:
        self._resume_scheduled = False
        if not self.closed and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


def _framing(err: BaseException) -> ResponseFramingError:
    return ResponseFramingError(f"malformed response: {err}")


class Http1Pool:
    """Keep-alive connections to one server, at most `limit` at a time (0: no limit)."""

    __slots__ = (
        "_closed",
        "_host",
        "_idle",
        "_limit",
        "_port",
        "_server_hostname",
        "_slots",
        "_ssl",
    )

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        limit: int,
        server_hostname: str | None = None,
    ) -> None:
        """`server_hostname`: the name to verify the certificate against (and send as SNI)
        when it is not `host`."""
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._server_hostname = (server_hostname or host) if ssl_context is not None else None
        self._idle: list[_Connection] = []
        self._limit = limit
        self._slots: asyncio.Semaphore | None = None  # made on first use, inside the loop
        self._closed = False

    async def request(self, data: bytes, *, max_body_size: int = 0) -> HTTPResponse:
        """Send one serialised request and return its whole answer."""
        head, body = await self.exchange(data, BufferedBody, max_body_size=max_body_size)
        return HTTPResponse(head.status, head.reason, head.headers, body.content())

    async def exchange(
        self,
        data: bytes,
        open_body: Callable[[ResponseHead], _Sink],
        *,
        max_body_size: int = 0,
    ) -> tuple[ResponseHead, _Sink]:
        """Send one serialised request; its answer's body goes to `open_body(head)` as it
        arrives. Returns once the body has ended. Cancelling (or a timeout around this call)
        aborts the connection the exchange was on. `max_body_size` (0: no limit): past it,
        `ResponseTooLarge`."""
        if self._slots is None and self._limit:
            self._slots = asyncio.Semaphore(self._limit)
        slots = self._slots
        if slots is not None:
            await slots.acquire()
        try:
            while self._idle:
                conn = self._idle.pop()
                if conn.closed:
                    continue
                try:
                    return await self._exchange(conn, data, open_body, max_body_size)
                except _ClosedBeforeAnswer:
                    continue  # the server had closed it while idle: try another
            conn = await self._connect()
            return await self._exchange(conn, data, open_body, max_body_size)
        finally:
            if slots is not None:
                slots.release()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.abort()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            _Connection,
            self._host,
            self._port,
            ssl=self._ssl,
            server_hostname=self._server_hostname,
        )
        return conn

    async def _exchange(
        self,
        conn: _Connection,
        data: bytes,
        open_body: Callable[[ResponseHead], _Sink],
        max_body_size: int,
    ) -> tuple[ResponseHead, _Sink]:
        waiter: asyncio.Future[tuple[ResponseHead, BodySink]]
        waiter = asyncio.get_running_loop().create_future()
        conn.send(data, _Exchange(waiter, open_body, max_body_size))
        try:
            head, sink = await waiter
        except BaseException:
            conn.abort()
            raise
        if not conn.closed:  # closed: the answer said so, or the server hung up
            if self._closed:
                conn.abort()
            else:
                self._idle.append(conn)
        return head, cast(_Sink, sink)
