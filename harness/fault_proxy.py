"""A fault-injecting HTTP/1.1 proxy to put in front of a real Prometheus.

It passes requests through to Prometheus unless told to fail them, and fails them the ways
upstreams really do: it refuses connections (Prometheus down), answers late, answers an HTML
page with 200 (a login portal) or 502 (a reverse proxy whose upstream is down), cuts the body
off mid-way (with Content-Length or chunked framing), sends a huge but valid vector answer
(or one whose samples never end), answers Prometheus' error envelope with a 200, or sends a
body that is not JSON.

The answers are written as raw bytes on the socket, so that framing is exactly what the
fault calls for. A fault applies to the paths in ``FaultProxy.fault_paths`` (by default the
instant-query endpoint, so that discovery keeps working) and lasts until it is changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from harness.recording_proxy import HOP_BY_HOP

__all__ = [
    "ERROR_ENVELOPE",
    "HTML_PAGE",
    "HUGE_SHAPES",
    "NOT_JSON",
    "Fault",
    "FaultProxy",
    "HugeAnswer",
    "huge_vector_chunks",
    "running_fault_proxy",
]

HTML_PAGE = b"<html><head><title>Sign in</title></head><body>Sign in</body></html>\n"
ERROR_ENVELOPE = (
    b'{"status":"error","errorType":"execution","error":"query processing would load too many '
    b'samples into memory in query execution"}'
)
NOT_JSON = b"\x00\x01garbage, {not json at all\n"
# A whole, valid answer, of which the truncating faults send only the first half.
_TRUNCATED_BODY = (
    b'{"status":"success","data":{"resultType":"vector","result":['
    + b",".join(
        b'{"metric":{"namespace":"default","pod":"p-%d"},"value":[1700000000,"1"]}' % n
        for n in range(64)
    )
    + b"]}}"
)

# Hop-by-hop headers (as the recording proxy drops them), plus those this proxy sets itself.
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length"}
_SERIES_PER_CHUNK = 100  # 9 to 60 KB made at a time
_HUGE_CHUNK = 32 * 1024  # bytes of the huge answer in one HTTP chunk
_ENDLESS_MAX = 1 << 30  # an endless answer ends after this, to bound a test that went wrong


class Fault(enum.Enum):
    """How the proxy answers a request on one of its fault paths."""

    NONE = "none"  # pass through
    SLOW = "slow"  # pass through after `FaultProxy.delay` seconds
    HTML_200 = "html-200"
    HTML_502 = "html-502"
    TRUNCATED_LENGTH = "truncated-content-length"  # half the announced Content-Length
    TRUNCATED_CHUNKED = "truncated-chunked"  # half the body, no last chunk
    HUGE = "huge"  # `FaultProxy.huge` bytes of a valid vector, chunked
    ENDLESS = "endless"  # a valid vector whose samples never end (until the client hangs up)
    ERROR_JSON_200 = "error-json-200"
    NOT_JSON = "not-json"


@dataclass
class HugeAnswer:
    """What became of one huge answer: bytes written, and whether the client hung up."""

    size: int  # bytes the answer would have had (0: endless)
    sent: int = 0
    client_closed: bool = False
    finished: asyncio.Event | None = None  # set once the answer is written or abandoned


# The labels of one sample of the huge answer, by shape: "pod" as an aggregation by pod answers
# (~90 bytes a sample), "cadvisor" as a query that lost its aggregation answers with every
# label of a kubelet's container series (~600 bytes a sample), the likelier cause of a huge
# answer. %(ns)s and %(pod)s are filled in.
HUGE_SHAPES = {
    "pod": b'{"namespace":"%(ns)s","pod":"%(pod)s"}',
    "cadvisor": (
        b'{"__name__":"container_memory_working_set_bytes","container":"app",'
        b'"endpoint":"https-metrics","id":"/kubepods.slice/kubepods-burstable.slice/'
        b"kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/"
        b'cri-containerd-%(pod)s0123456789abcdef0123456789abcdef0123456789abcdef.scope",'
        b'"image":"registry.example.com/team/app:1.24.3","instance":"10.0.3.17:10250",'
        b'"job":"kubelet","metrics_path":"/metrics/cadvisor",'
        b'"name":"%(pod)s0123456789abcdef0123456789abcdef0123456789abcdef",'
        b'"namespace":"%(ns)s","node":"node-17","pod":"%(pod)s","service":"kubelet"}'
    ),
}


def huge_vector_chunks(
    size: int, *, namespace: str = "default", pods: tuple[str, ...] = (), shape: str = "pod"
) -> Iterator[bytes]:
    """A valid instant-vector answer of at least `size` bytes, made as it is sent: one
    sample per pod, labelled as `HUGE_SHAPES[shape]`. `pods` come first (so that a request
    for them finds its values), then made-up ones."""
    labels = HUGE_SHAPES[shape]
    space = namespace.encode()

    def sample(pod: bytes, value: int) -> bytes:
        metric = labels % {b"ns": space, b"pod": pod}
        return b'{"metric":%s,"value":[1700000000.123,"%d"]}' % (metric, value)

    yield b'{"status":"success","data":{"resultType":"vector","result":['
    written = 0
    if pods:
        chunk = b",".join(sample(pod.encode(), 1) for pod in pods)
        written += len(chunk)
        yield chunk
    made_up = 0
    while written < size:
        items = [
            sample(b"huge-%08d" % n, n % 1000) for n in range(made_up, made_up + _SERIES_PER_CHUNK)
        ]
        made_up += _SERIES_PER_CHUNK
        chunk = (b"," if written else b"") + b",".join(items)
        written += len(chunk)
        yield chunk
    yield b"]}}"


class FaultProxy:
    """The proxy. ``fault`` (and ``delay``, ``huge``) may be changed at any time; requests
    it has answered are counted in ``answered``, huge answers recorded in ``huge_answers``."""

    def __init__(self, upstream_url: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self.host = host
        self.port = port
        self.fault = Fault.NONE
        self.fault_paths: frozenset[str] = frozenset({"/api/v1/query"})
        self.delay = 1.0  # seconds, for Fault.SLOW
        self.huge = 25_000_000  # bytes, for Fault.HUGE
        self.huge_namespace = "default"  # the huge vector's samples are in this namespace,
        self.huge_pods: tuple[str, ...] = ()  # and these pods come first;
        self.huge_shape = "cadvisor"  # their labels: a key of HUGE_SHAPES
        self.answered: dict[Fault, int] = {}
        self.huge_answers: list[HugeAnswer] = []
        self._server: asyncio.Server | None = None
        self._session: aiohttp.ClientSession | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._huge_body: tuple[tuple[int, str, tuple[str, ...], str], bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def is_down(self) -> bool:
        return self._server is None

    async def start(self) -> None:
        if self._session is None:
            # Bodies are passed through as they are: no decompression, no added encoding.
            self._session = aiohttp.ClientSession(
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=60)
            )
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def go_down(self) -> None:
        """Refuse connections from now on (the port stays ours) and drop open ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._connections):
                writer.transport.abort()
            await server.wait_closed()

    async def come_up(self) -> None:
        """Accept connections again, on the same port."""
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        await self.go_down()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # --- serving ------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                method, target, headers = _parse_head(head)
                body = await reader.readexactly(int(headers.get("Content-Length", "0") or 0))
                path = URL(target).path
                fault = self.fault if path in self.fault_paths else Fault.NONE
                self.answered[fault] = self.answered.get(fault, 0) + 1
                if not await self._answer(fault, method, target, headers, body, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.discard(writer)
            writer.transport.abort()

    async def _answer(
        self,
        fault: Fault,
        method: str,
        target: str,
        headers: CIMultiDict[str],
        body: bytes,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request; False to close the connection after it."""
        if fault is Fault.SLOW:
            await asyncio.sleep(self.delay)
        if fault in (Fault.NONE, Fault.SLOW):
            status, reason, reply_headers, payload = await self._forward(
                method, target, headers, body
            )
            writer.write(_head(status, reason, reply_headers, len(payload)) + payload)
        elif fault in (Fault.HTML_200, Fault.HTML_502):
            status = 200 if fault is Fault.HTML_200 else 502
            reason = "OK" if status == 200 else "Bad Gateway"
            writer.write(_head(status, reason, [("Content-Type", "text/html")], len(HTML_PAGE)))
            writer.write(HTML_PAGE)
        elif fault is Fault.ERROR_JSON_200:
            json_type = [("Content-Type", "application/json")]
            writer.write(_head(200, "OK", json_type, len(ERROR_ENVELOPE)) + ERROR_ENVELOPE)
        elif fault is Fault.NOT_JSON:
            json_type = [("Content-Type", "application/json")]
            writer.write(_head(200, "OK", json_type, len(NOT_JSON)) + NOT_JSON)
        elif fault is Fault.TRUNCATED_LENGTH:
            half = _TRUNCATED_BODY[: len(_TRUNCATED_BODY) // 2]
            json_type = [("Content-Type", "application/json")]
            writer.write(_head(200, "OK", json_type, len(_TRUNCATED_BODY)) + half)
            await writer.drain()
            return False
        elif fault is Fault.TRUNCATED_CHUNKED:
            half = _TRUNCATED_BODY[: len(_TRUNCATED_BODY) // 2]
            writer.write(_chunked_head() + _chunk(half))
            await writer.drain()
            return False
        elif fault in (Fault.HUGE, Fault.ENDLESS):
            return await self._send_huge(writer, endless=fault is Fault.ENDLESS)
        await writer.drain()
        return True

    def huge_body(self) -> bytes:
        """The huge answer's body, made once for the current `huge*` settings: making it
        as it is sent would take CPU from the adapter being measured."""
        key = (self.huge, self.huge_namespace, self.huge_pods, self.huge_shape)
        if self._huge_body is None or self._huge_body[0] != key:
            chunks = huge_vector_chunks(
                self.huge, namespace=self.huge_namespace, pods=self.huge_pods, shape=self.huge_shape
            )
            self._huge_body = (key, b"".join(chunks))
        return self._huge_body[1]

    async def _send_huge(self, writer: asyncio.StreamWriter, *, endless: bool) -> bool:
        """The huge answer; `endless`: its samples again and again (still valid JSON), until
        the client hangs up or `_ENDLESS_MAX` bytes."""
        body = self.huge_body()
        start, end = body.index(b"[") + 1, len(body) - len(b"]}}")
        pieces = [(0, end)] + [(start - 1, end)] * (_ENDLESS_MAX // len(body) if endless else 0)
        record = HugeAnswer(len(body) if not endless else 0, finished=asyncio.Event())
        self.huge_answers.append(record)
        try:
            writer.write(_chunked_head())
            for index, (first, last) in enumerate(pieces):
                if index:  # the samples again, after a comma in place of the "["
                    writer.write(_chunk(b","))
                    first += 1
                for offset in range(first, last, _HUGE_CHUNK):
                    piece = body[offset : min(offset + _HUGE_CHUNK, last)]
                    writer.write(_chunk(piece))
                    record.sent += len(piece)
                    await writer.drain()  # as fast as the client reads, no faster
            writer.write(_chunk(body[end:]) + b"0\r\n\r\n")
            record.sent += len(body) - end
            await writer.drain()
            return True
        except ConnectionError:
            record.client_closed = True
            return False
        finally:
            assert record.finished is not None
            record.finished.set()

    async def _forward(
        self, method: str, target: str, headers: CIMultiDict[str], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        assert self._session is not None
        forwarded = CIMultiDict(
            (name, value) for name, value in headers.items() if name.lower() not in _NOT_FORWARDED
        )
        try:
            async with self._session.request(
                method,
                URL(self.upstream_url + target, encoded=True),
                headers=forwarded,
                data=body or None,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                reply = [
                    (name, value)
                    for name, value in upstream.headers.items()
                    if name.lower() not in _NOT_FORWARDED
                ]
                return upstream.status, upstream.reason or "", reply, payload
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            text = f"502 Bad Gateway: {error}\n".encode()
            return 502, "Bad Gateway", [("Content-Type", "text/plain")], text


def _parse_head(head: bytes) -> tuple[str, str, CIMultiDict[str]]:
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers.add(name.strip(), value.strip())
    return method, target, headers


def _head(status: int, reason: str, headers: list[tuple[str, str]], length: int) -> bytes:
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    lines = [f"HTTP/1.1 {status} {reason}", f"Date: {date}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunked_head() -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@contextlib.asynccontextmanager
async def running_fault_proxy(upstream_url: str) -> AsyncIterator[FaultProxy]:
    """A :class:`FaultProxy` to ``upstream_url`` for the duration of the block."""
    proxy = FaultProxy(upstream_url)
    try:
        await proxy.start()
        yield proxy
    finally:
        await proxy.stop()
