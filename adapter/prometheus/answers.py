"""Reading an answer that the caller gets whole (query, series, labels): small ones the
fastest way, large ones as they arrive, none past the size limit.

The hot path is a query answer of a few KB: its body is kept and parsed in one call by
`decode_response`, as before. Once a 2xx JSON body passes `STREAM_THRESHOLD` bytes it goes
to the endpoint's incremental parser instead (`QueryStreamParser`, `SeriesStreamParser`), so
that no more than a chunk is parsed at a time (the event loop runs between chunks) and the
body is never held whole. Bodies that are not 2xx JSON (error pages, Prometheus' error
envelopes) are kept whole: the size limit bounds them, and their errors are exactly
`decode_response`'s.

The same `Answer` reads both transports: `Http1Pool` feeds it from its protocol callbacks,
`read_aiohttp_answer` from aiohttp's stream.
"""

import asyncio
import gc
from collections.abc import Callable, Mapping
from typing import Generic, Protocol, TypeVar

import aiohttp

from adapter.heap import heap_trimmer
from adapter.prometheus.http1 import PACED_BODY_SIZE, ResponseHead, ResponseTooLarge
from adapter.prometheus.query_stream import QueryStreamParser
from adapter.prometheus.results import (
    QueryResult,
    decode_response,
    parse_label_names,
    parse_query_data,
    parse_series_data,
)
from adapter.prometheus.series_stream import SeriesStreamParser

__all__ = [
    "LABEL_NAMES",
    "QUERY",
    "SERIES",
    "STREAM_THRESHOLD",
    "Answer",
    "AnswerReading",
    "is_json",
    "read_aiohttp_answer",
]

_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

# Parsing 256 KiB whole (orjson, then Samples) takes ~2 ms; past that, chunk by chunk. The
# lean client starts pacing its reads at the same size.
STREAM_THRESHOLD = PACED_BODY_SIZE
# Bytes asked of aiohttp's stream at a time (it may return fewer).
_AIOHTTP_CHUNK = 64 * 1024
# Seconds after the last chunk of a large answer until the process is back to normal
# (`_LargeAnswers`): by then the request that asked for it is answered and the answer freed.
_SETTLE = 1.0
# Generation-1 collections between two full ones, while large answers are read: never.
_NO_FULL_COLLECTION = 1 << 30


class _StreamParser(Protocol[_T_co]):
    def feed(self, chunk: bytes) -> object: ...
    def finish(self) -> _T_co: ...


class AnswerReading(Generic[_T]):
    """How one endpoint's answer is read: `parse(data, warnings)` after `decode_response`
    for a body read whole, and optionally an incremental parser for a large one."""

    __slots__ = ("open_stream", "parse")

    def __init__(
        self,
        parse: Callable[[object, tuple[str, ...]], _T],
        open_stream: Callable[[str], _StreamParser[_T]] | None = None,
    ) -> None:
        self.parse = parse
        self.open_stream = open_stream


class _SeriesList:
    """`SeriesStreamParser`'s batches, collected: `series()` returns them all at once."""

    __slots__ = ("_parser", "_series")

    def __init__(self, content_type: str) -> None:
        self._parser = SeriesStreamParser(content_type)
        self._series: list[dict[str, str]] = []

    def feed(self, chunk: bytes) -> None:
        self._series.extend(self._parser.feed(chunk))

    def finish(self) -> list[dict[str, str]]:
        self._parser.finish()
        return self._series


QUERY: AnswerReading[QueryResult] = AnswerReading(parse_query_data, QueryStreamParser)
SERIES: AnswerReading[list[dict[str, str]]] = AnswerReading(
    lambda data, _warnings: parse_series_data(data), _SeriesList
)
LABEL_NAMES: AnswerReading[list[str]] = AnswerReading(
    lambda data, _warnings: parse_label_names(data)
)


class _LargeAnswers:
    """What large answers need of the process, so that they do not hold the event loop
    after they are parsed: no full garbage collection meanwhile, their objects freed on a
    loop turn of their own, and the C heap trimmed after.

    A 25 MB answer adds ~40,000 Samples (~280,000 if they carry two labels each) to the
    objects the collector tracks; once they are a quarter more than it had, CPython runs a
    full collection over all of them: 50 ms or more, several times per answer. So while
    large answers are read and used, until `_SETTLE` seconds after the last chunk, full
    collections wait (the third threshold is raised; young generations are still
    collected), and the parsed answers are held here: freeing one (~20 ms for 40,000
    Samples) would otherwise add to the turn of the request that used it. Then the answers
    are let go, the threshold is put back, and `malloc_trim` returns the heap pages glibc
    keeps after the answer's chunks and buffers are freed (~25 MB after a 25 MB answer,
    ~2 ms; nothing without glibc)."""

    __slots__ = ("_due", "_kept", "_loop", "_thresholds", "_trim")

    def __init__(self) -> None:
        self._trim = heap_trimmer()
        self._due = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None  # where the settling is timed
        self._thresholds: tuple[int, int, int] | None = None  # to put back
        self._kept: list[object] = []  # answers read, freed when settled

    def chunk_read(self) -> None:
        """A chunk of a large answer was parsed."""
        loop = asyncio.get_running_loop()
        self._due = loop.time() + _SETTLE
        if self._loop is loop:
            return
        self._settled()  # a timer on another (closed) loop will never fire
        self._loop = loop
        self._thresholds = gc.get_threshold()
        young, middle, _ = self._thresholds
        gc.set_threshold(young, middle, _NO_FULL_COLLECTION)
        loop.call_at(self._due, self._settle, loop)

    def keep(self, answer: object) -> None:
        """Hold a parsed large answer until settled."""
        if self._loop is not None:
            self._kept.append(answer)

    def _settle(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop.time() < self._due:  # another large chunk since: wait for the last
            loop.call_at(self._due, self._settle, loop)
        elif self._loop is loop:
            self._settled()

    def _settled(self) -> None:
        self._loop = None
        self._kept.clear()
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
            if self._trim is not None:
                self._trim()


_large_answers = _LargeAnswers()


def is_json(content_type: str) -> bool:
    """Whether a Content-Type header (parameters and all) names JSON."""
    mimetype = content_type.partition(";")[0].strip().lower()
    return mimetype == "application/json" or mimetype.endswith("+json")


class Answer(Generic[_T]):
    """One answer's body, fed as it arrives; `result()` once it has ended. A `BodySink`."""

    __slots__ = ("_head", "_method", "_parts", "_reading", "_size", "_stream", "_streamable")

    def __init__(self, head: ResponseHead, method: str, reading: AnswerReading[_T]) -> None:
        self._head = head
        self._method = method
        self._reading = reading
        self._parts: list[bytes] = []
        self._size = 0
        self._stream: _StreamParser[_T] | None = None
        self._streamable = (
            reading.open_stream is not None
            and head.status // 100 == 2
            and is_json(head.headers.get("Content-Type", ""))
        )

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    def feed(self, chunk: bytes) -> None:
        if self._stream is not None:
            self._stream.feed(chunk)
            _large_answers.chunk_read()
            return
        self._parts.append(chunk)
        self._size += len(chunk)
        if self._size > STREAM_THRESHOLD and self._streamable:
            assert self._reading.open_stream is not None
            stream = self._reading.open_stream(self._head.headers.get("Content-Type", ""))
            parts, self._parts = self._parts, []
            for part in parts:
                stream.feed(part)
            self._stream = stream
            _large_answers.chunk_read()

    def result(self) -> _T:
        """The parsed answer; a `ResponseProblem` for an error or a malformed body."""
        if self._stream is not None:
            result = self._stream.finish()
            _large_answers.keep(result)
            return result
        parts = self._parts
        content = parts[0] if len(parts) == 1 else b"".join(parts)
        head = self._head
        data, warnings = decode_response(
            head.status,
            head.reason,
            content,
            head.headers.get("Content-Type", ""),
            self._method,
        )
        return self._reading.parse(data, warnings)


async def read_aiohttp_answer(
    response: aiohttp.ClientResponse,
    method: str,
    reading: AnswerReading[_T],
    max_body_size: int,
) -> _T:
    """An aiohttp response read as `Http1Pool` reads one: into an `Answer`, within
    `max_body_size` bytes (0: no limit; past it, the connection is closed and
    `ResponseTooLarge` raised). aiohttp has inflated the body already."""
    length = response.content_length
    headers: Mapping[str, str] = response.headers
    if max_body_size and length is not None and length > max_body_size and not _encoded(headers):
        response.close()
        raise ResponseTooLarge(max_body_size, length, response.status)
    answer = Answer(ResponseHead(response.status, response.reason or "", headers), method, reading)
    size = 0
    async for chunk in response.content.iter_chunked(_AIOHTTP_CHUNK):
        size += len(chunk)
        if max_body_size and size > max_body_size:
            response.close()
            del answer  # what was parsed goes now, not with the error's traceback
            raise ResponseTooLarge(max_body_size, size, response.status)
        answer.feed(chunk)
        if answer.streaming:
            # A chunk already buffered is returned without awaiting: yield anyway, so that
            # parsing a large body interleaves with other work.
            await asyncio.sleep(0)
    return answer.result()


def _encoded(headers: Mapping[str, str]) -> bool:
    return headers.get("Content-Encoding", "identity").lower() != "identity"
