"""Http1Pool against scripted servers on 127.0.0.1 that write exact bytes, so that every way
an HTTP/1.1 answer can be framed, end early or be malformed is exercised on a real socket."""

import asyncio
import gzip
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import uvloop

from adapter.prometheus.http1 import (
    PACED_BODY_SIZE,
    Http1Pool,
    ResponseFramingError,
    ResponseHead,
    ResponseTooLarge,
)

REQUEST = b"GET /api/v1/query?query=up HTTP/1.1\r\nHost: x\r\n\r\n"

# Answers one request on a connection: gets the request head, returns False to stop serving
# the connection (the server then closes it).
Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class Scripted:
    port: int
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)
    hung_up: "asyncio.Queue[int]" = field(default_factory=asyncio.Queue)  # by number


@asynccontextmanager
async def scripted(answer: Answer) -> AsyncIterator[Scripted]:
    state = Scripted(port=0)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        number = state.connections
        state.open_now += 1
        state.most_open = max(state.most_open, state.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                state.requests.append(head)
                if not await answer(head, writer):
                    return
        finally:
            state.open_now -= 1
            writer.close()
            state.hung_up.put_nowait(number)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


def pool_for(server: Scripted, limit: int = 0) -> Http1Pool:
    return Http1Pool("127.0.0.1", server.port, ssl_context=None, limit=limit)


def writes(*parts: bytes, keep: bool = True, pause: bool = False) -> Answer:
    """An answer written in the given pieces (each drained, so they arrive apart)."""

    async def answer(_head: bytes, writer: asyncio.StreamWriter) -> bool:
        for part in parts:
            writer.write(part)
            await writer.drain()
            if pause:
                await asyncio.sleep(0.001)
        return keep

    return answer


OK = b'{"status":"success"}'
CONTENT_LENGTH = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n" + OK
)


async def test_content_length_answer_and_the_connection_is_reused() -> None:
    async with scripted(writes(CONTENT_LENGTH)) as server:
        pool = pool_for(server)
        for _ in range(3):
            answer = await pool.request(REQUEST)
            assert (answer.status, answer.reason, await answer.read()) == (200, "OK", OK)
            assert answer.headers["content-type"] == "application/json"
        await pool.close()
    assert server.connections == 1 and len(server.requests) == 3


async def test_chunked_answer_arriving_a_few_bytes_at_a_time() -> None:
    body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    body += b"5;ext=1\r\n" + OK[:5] + b"\r\n" + b"f\r\n" + OK[5:] + b"\r\n0\r\nX-Trailer: y\r\n\r\n"
    pieces = [body[i : i + 3] for i in range(0, len(body), 3)]
    async with scripted(writes(*pieces, pause=True)) as server:
        pool = pool_for(server)
        assert (await pool.request(REQUEST)).body == OK
        assert (await pool.request(REQUEST)).body == OK
        await pool.close()
    assert server.connections == 1


async def test_body_until_the_connection_ends_is_read_and_not_reused() -> None:
    async with scripted(writes(b"HTTP/1.1 200 OK\r\n\r\n", OK, keep=False)) as server:
        pool = pool_for(server)
        assert (await pool.request(REQUEST)).body == OK
        assert (await pool.request(REQUEST)).body == OK
        await pool.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 20\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\n",
    ],
)
async def test_connection_close_and_http10_are_not_reused(head: bytes) -> None:
    # The server keeps its side open: only our reading of the head may close it.
    async with scripted(writes(head + OK)) as server:
        pool = pool_for(server)
        await pool.request(REQUEST)
        await pool.request(REQUEST)
        await pool.close()
    assert server.connections == 2


async def test_an_idle_connection_closed_by_the_server_is_retried_on_a_new_one() -> None:
    answered = 0

    async def hang_up_on_the_second(_head: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal answered
        answered += 1
        if answered == 2:  # as a server closing an idle connection the moment we reuse it
            return False
        writer.write(CONTENT_LENGTH)
        return True

    async with scripted(hang_up_on_the_second) as server:
        pool = pool_for(server)
        await pool.request(REQUEST)
        assert (await pool.request(REQUEST)).body == OK
        await pool.close()
    assert server.connections == 2 and len(server.requests) == 3


async def test_a_new_connection_closed_without_an_answer_is_an_error() -> None:
    async def hang_up(_head: bytes, _writer: asyncio.StreamWriter) -> bool:
        return False

    async with scripted(hang_up) as server:
        pool = pool_for(server)
        with pytest.raises(ConnectionResetError, match="without answering"):
            await pool.request(REQUEST)
        await pool.close()
    assert server.connections == 1  # no retry on a connection that was never reused


async def test_a_connection_closed_mid_answer_is_an_error() -> None:
    short = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n" + OK
    async with scripted(writes(short, keep=False)) as server:
        pool = pool_for(server)
        with pytest.raises(ConnectionResetError, match="mid-response"):
            await pool.request(REQUEST)
        await pool.close()


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        (b"SPDY/3 200 OK\r\n\r\n", "malformed response: Expected HTTP/"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed response: Invalid response status"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed response: Invalid header token"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "malformed response"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed response"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd", "after chunk data"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 0\r\n\r\n", "br"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx", "malformed"),
    ],
)
async def test_malformed_answers_are_framing_errors(answer: bytes, needle: str) -> None:
    async with scripted(writes(answer)) as server:
        pool = pool_for(server)
        for _ in range(2):
            with pytest.raises(ResponseFramingError, match=needle):
                await pool.request(REQUEST)
        await pool.close()
    assert server.connections == 2  # the broken connection was dropped


async def test_compressed_answer_is_inflated_and_interim_answers_skipped() -> None:
    packed = gzip.compress(OK)
    answer = b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    answer += b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
    answer += b"Content-Length: %d\r\n\r\n" % len(packed) + packed
    async with scripted(writes(answer)) as server:
        pool = pool_for(server)
        assert (await pool.request(REQUEST)).body == OK
        await pool.close()


async def test_no_body_statuses_and_a_header_split_across_packets() -> None:
    answer = b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"
    async with scripted(writes(answer[:20], answer[20:], pause=True)) as server:
        pool = pool_for(server)
        first = await pool.request(REQUEST)
        assert (first.status, first.body, first.headers["x-a"]) == (204, b"", "b")
        await pool.request(REQUEST)
        await pool.close()
    assert server.connections == 1


async def test_cancelling_abandons_the_connection() -> None:
    first_arrived, release = asyncio.Event(), asyncio.Event()

    async def late_first(_head: bytes, writer: asyncio.StreamWriter) -> bool:
        if not first_arrived.is_set():
            first_arrived.set()
            await release.wait()
        writer.write(CONTENT_LENGTH)
        return True

    async with scripted(late_first) as server:
        pool = pool_for(server)
        first = asyncio.create_task(pool.request(REQUEST))
        await first_arrived.wait()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()  # the late answer must never be read as the next request's
        assert (await pool.request(REQUEST)).body == OK
        assert await asyncio.wait_for(server.hung_up.get(), 5) == 1  # and not left open
        await pool.close()
    assert server.connections == 2


async def test_the_pool_limit_bounds_open_connections() -> None:
    async def answer(_head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.01)
        writer.write(CONTENT_LENGTH)
        return True

    async with scripted(answer) as server:
        pool = pool_for(server, limit=2)
        answers = await asyncio.gather(*(pool.request(REQUEST) for _ in range(6)))
        assert all(a.body == OK for a in answers)
        await pool.close()
    assert server.most_open <= 2 and server.connections == 2


async def test_bytes_beyond_the_answer_drop_the_connection() -> None:
    async with scripted(writes(CONTENT_LENGTH + CONTENT_LENGTH)) as server:
        pool = pool_for(server)
        await pool.request(REQUEST)
        assert (await pool.request(REQUEST)).body == OK
        await pool.close()
    assert server.connections == 2


async def transport_closed_under_the_pool() -> int:
    """An idle connection reset behind the pool's back is not used again."""
    async with scripted(writes(CONTENT_LENGTH)) as server:
        pool = pool_for(server)
        assert (await pool.request(REQUEST)).body == OK
        idle = pool._idle[-1]  # white box: close it the way a reset would, behind our back
        assert idle.transport is not None
        idle.transport.abort()
        assert (await pool.request(REQUEST)).body == OK
        await pool.close()
        return server.connections


async def test_a_transport_closed_under_the_pool() -> None:
    assert await transport_closed_under_the_pool() == 2


def test_on_uvloop() -> None:
    """uvloop's transports differ from asyncio's (they are not asyncio.Transport)."""

    async def reused() -> int:
        async with scripted(writes(CONTENT_LENGTH)) as server:
            pool = pool_for(server)
            for _ in range(3):
                assert (await pool.request(REQUEST)).body == OK
            await pool.close()
            return server.connections

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(reused()) == 1
        assert runner.run(transport_closed_under_the_pool()) == 2


# --- the size limit and bodies read as they arrive -------------------------------------------


def chunked(body: bytes, size: int = 1000) -> bytes:
    framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    for start in range(0, len(body), size):
        part = body[start : start + size]
        framed += b"%x\r\n%s\r\n" % (len(part), part)
    return framed + b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "size", "keep"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000, 5000, True),
        (chunked(b"x" * 5000), 4000, True),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 5000, 5000, False),  # one piece: read at once
    ],
    ids=["content-length", "chunked", "until-close"],
)
async def test_a_body_over_the_limit_fails_and_closes_the_connection(
    answer: bytes, size: int, keep: bool
) -> None:
    async with scripted(writes(answer, keep=keep)) as server:
        pool = pool_for(server)
        with pytest.raises(ResponseTooLarge) as info:
            await pool.request(REQUEST, max_body_size=3999)
        assert (info.value.limit, info.value.size, info.value.status) == (3999, size, 200)
        assert await asyncio.wait_for(server.hung_up.get(), 5) == 1
        # Up to the limit is fine; 0 is no limit.
        assert len((await pool.request(REQUEST, max_body_size=5000)).body) == 5000
        assert len((await pool.request(REQUEST)).body) == 5000
        await pool.close()


async def test_a_compressed_body_is_limited_as_inflated() -> None:
    bomb = gzip.compress(b"0" * 1_000_000)
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb)
    async with scripted(writes(answer + bomb)) as server:
        pool = pool_for(server)
        with pytest.raises(ResponseTooLarge) as info:
            await pool.request(REQUEST, max_body_size=10_000)
        assert info.value.size <= 10_001  # never inflated past the limit
        assert (await pool.request(REQUEST, max_body_size=1_000_000)).body == b"0" * 1_000_000
        await pool.close()


class Recorder:
    """A body sink that notes, at each chunk, the bytes before it and the loop turns so far."""

    def __init__(self, head: ResponseHead, turns: list[int], fail_at: int = 0) -> None:
        self.head = head
        self.turns = turns
        self.seen: list[tuple[int, int]] = []
        self.size = 0
        self.fail_at = fail_at

    def feed(self, chunk: bytes) -> None:
        self.seen.append((self.size, self.turns[0]))
        self.size += len(chunk)
        if self.fail_at and self.size >= self.fail_at:
            raise ValueError("the sink gives up")


async def loop_turns_between_chunks() -> list[int]:
    """The loop turns counted at each chunk of a large answer, once past PACED_BODY_SIZE."""
    turns = [0]

    async def count_turns() -> None:
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    body = b"y" * (8 * PACED_BODY_SIZE)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    async with scripted(writes(answer)) as server:
        pool = pool_for(server)
        counter = asyncio.create_task(count_turns())
        head, sink = await pool.exchange(REQUEST, lambda head: Recorder(head, turns))
        counter.cancel()
        await pool.close()
    assert head.status == 200 and sink.size == len(body)
    return [turn for before, turn in sink.seen if before > PACED_BODY_SIZE]


@pytest.mark.parametrize("loop_factory", [uvloop.new_event_loop, asyncio.new_event_loop])
def test_a_large_body_is_read_one_chunk_per_loop_turn(
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    # uvloop (libuv) would otherwise read up to 32 chunks in one turn.
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        paced = runner.run(loop_turns_between_chunks())
    assert len(paced) > 1
    assert all(later > earlier for earlier, later in itertools.pairwise(paced))


async def test_a_sink_that_raises_fails_the_exchange_and_closes_the_connection() -> None:
    body = b"z" * 10_000
    answer = chunked(body, 500)
    async with scripted(writes(answer)) as server:
        pool = pool_for(server)
        with pytest.raises(ValueError, match="gives up"):
            await pool.exchange(REQUEST, lambda head: Recorder(head, [0], fail_at=2000))
        assert await asyncio.wait_for(server.hung_up.get(), 5) == 1
        head, sink = await pool.exchange(REQUEST, lambda head: Recorder(head, [0]))
        assert sink.size == len(body) and head.headers["transfer-encoding"] == "chunked"
        await pool.close()


async def test_a_head_too_long_is_a_framing_error() -> None:
    answer = b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n"
    async with scripted(writes(answer)) as server:
        pool = pool_for(server)
        with pytest.raises(ResponseFramingError, match="head too long"):
            await pool.request(REQUEST)
        await pool.close()
