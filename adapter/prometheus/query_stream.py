"""An incremental parser for large `/api/v1/query` answers, so that reading one does not hold
the event loop for longer than parsing one chunk of it.

A 25 MB vector parsed whole holds the loop for 130 to 500 ms (orjson, then a Sample per
series; more with two-label samples) and needs the body, its parse tree and the samples at
once. Here the envelope is handled by `ArrayStreamParser` and the `data.result` array is
parsed as it arrives, in runs of whole elements handed to orjson in one call, and a vector's
elements become Samples run by run (256 KiB: 2 to 8 ms):

- a run ends at the last `}`, `,`, `{` in the buffer (a real boundary exactly when orjson
  parses the run, see `array_stream`). Requiring the `{` skips the commas after the `metric`
  object inside each element;
- the array's end is a `]` after a `}` (or right after the `[`), proven the same way;
- when neither is found although they should be (an element longer than a chunk, `},{`
  inside label values) or at the end of the body, a scan that skips strings and counts
  brackets finds the commas and the `]` at the array's own level. It resumes where it
  stopped, so it reads each byte once.

Only the unfinished element and the chunk are ever held as bytes. Equal label values are
made one string (`_share_label_values`).
"""

import re
from typing import Final

import orjson

from adapter.prometheus.array_stream import STRING_PATTERN, WHITESPACE, ArrayStreamParser
from adapter.prometheus.results import (
    MalformedResponse,
    QueryResult,
    Sample,
    parse_query_data,
    parse_vector,
)

__all__ = ["MAX_ELEMENT_BYTES", "QueryStreamParser"]

# The unparsed tail of the result array may not grow beyond this: one element (a matrix
# series of 11,000 points, Prometheus' most, is ~300 KB) plus one chunk, unless it is broken.
MAX_ELEMENT_BYTES: Final = 16 << 20

# The exact scan below costs a regular-expression match per string and bracket, and its
# objects, scattered among the samples, keep the allocator from returning their memory when
# the answer is freed: it runs only at the end of the body, or when the fast checks have
# left this much unparsed (one element larger than a chunk, or commas inside strings).
_SCAN_AFTER: Final = 1 << 20
_MAX_END_CANDIDATES = 4  # `}]` tried as the array's end per chunk before waiting for more

# What matters to the array's structure: strings (skipped whole), brackets and commas. A lone
# quote is a string not finished yet; the scan waits for the rest of it.
_STRUCTURE = re.compile(STRING_PATTERN + rb'|[][{},]|"', re.DOTALL)
_QUOTE, _COMMA, _CLOSE_ARRAY = ord('"'), ord(","), ord("]")
_OPENERS = frozenset(b"[{")
_RESULT_TYPE_KEY = b'"resultType"'
# Label values kept for sharing, per answer: the repeating ones (namespace, job, node, image,
# ...) come early; values unique to a series (pod, id) only fill the rest.
_SHARED_VALUES_MAX = 4096


class QueryStreamParser(ArrayStreamParser):
    """Feed it a 2xx `/api/v1/query` body chunk by chunk, then `finish` returns the result,
    the same as `decode_response` and `parse_query_data` make of the whole body.

    A vector's elements become Samples as they arrive when `resultType` comes before
    `result` (as Prometheus, Thanos, Mimir and VictoriaMetrics write it); otherwise, and for
    a matrix, the elements are kept as parsed and `finish` reads them. Errors are
    `ResponseProblem`s.
    """

    __slots__ = (
        "_elements",
        "_end_search",
        "_label_values",
        "_result_type",
        "_samples",
        "_scan_comma",
        "_scan_depth",
        "_scan_pos",
        "_vector",
    )

    def __init__(self, content_type: str = "application/json") -> None:
        super().__init__(("data", "result"), content_type)
        self._result_type: str | None = None  # data.resultType, if seen before the result
        self._vector = False  # the elements become Samples as they arrive
        self._samples: list[Sample] = []
        self._elements: list[object] = []  # otherwise, as parsed
        # The structural scan of the buffer: where it resumes, the nesting depth there (0:
        # between elements), and the last comma it found between elements (-1: none).
        self._scan_pos = 1
        self._scan_depth = 0
        self._scan_comma = -1
        self._label_values: dict[str, str] = {}
        self._end_search = 1  # where `_quick_end` looks for a `}` next

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the body."""
        self._feed(chunk)

    def finish(self) -> QueryResult:
        """Check what is left at the end of the body; return the query's result."""
        data, warnings = self._finish_envelope()
        if not self._array_seen or not isinstance(data, dict) or data.get("result") != []:
            # No result array was streamed, or a later duplicate key replaced it.
            return parse_query_data(data, warnings)
        if self._vector:
            if data.get("resultType") != "vector":
                raise MalformedResponse('the response has more than one "resultType" key')
            return QueryResult("vector", tuple(self._samples), warnings)
        return parse_query_data({**data, "result": self._elements}, warnings)

    # --- internals ------------------------------------------------------------------

    def _member(self, depth: int, key: bytes, value: bytes) -> None:
        if depth == 2 and key == _RESULT_TYPE_KEY:
            try:
                result_type = orjson.loads(value)
            except orjson.JSONDecodeError:
                return  # the envelope check reports it
            self._result_type = result_type if isinstance(result_type, str) else None

    def _parse_array(self, final: bool) -> bool:
        """Take the complete elements of the result array; True once the array has ended."""
        # resultType, if it comes first, is known by now: only members before the array count.
        self._vector = self._result_type == "vector"
        comma = self._last_boundary(object_next=True)
        if comma >= 0:
            taken = self._take_run(comma + 1, proven=False)
            if taken is not None:
                self._add(taken)
                self._moved(comma + 1)
        if self._quick_end():
            return True
        if not final and len(self._buffer) <= _SCAN_AFTER:
            return False
        end = self._scan()
        if end >= 0:
            self._take_last(end)
            return True
        if self._scan_comma > 0:  # a boundary the fast path did not see: take it too
            comma = self._scan_comma
            self._add(self._take_run(comma + 1, proven=True) or [])
            self._moved(comma + 1)
        if final:
            raise self._truncated()
        if len(self._buffer) > MAX_ELEMENT_BYTES:
            raise MalformedResponse(f"a result element is longer than {MAX_ELEMENT_BYTES} bytes")
        return False

    def _quick_end(self) -> bool:
        """Find the array's end among the few places it can be after whole elements: a `]`
        after a `}` (or right after the `[`), proven by orjson parsing up to it. True once
        the last elements are taken."""
        buffer = self._buffer
        size = len(buffer)
        if not self._wants_element:  # nothing taken yet: maybe "[]"
            first = 1
            while first < size and buffer[first] in WHITESPACE:
                first += 1
            if first < size and buffer[first] == _CLOSE_ARRAY:
                self._take_last(first)
                return True
        pos = self._end_search
        tries = 0
        while tries < _MAX_END_CANDIDATES:
            brace = buffer.find(b"}", pos)
            if brace < 0:
                pos = size
                break
            after = brace + 1
            while after < size and buffer[after] in WHITESPACE:
                after += 1
            if after >= size:  # what follows has not arrived: look here again
                pos = brace
                break
            pos = brace + 1
            if buffer[after] != _CLOSE_ARRAY:
                continue
            tries += 1
            try:
                with memoryview(buffer)[: after + 1] as run:
                    elements = orjson.loads(run)
            except orjson.JSONDecodeError:
                continue  # the `}` closed something inside an element, or sits in a string
            self._add(elements)
            self._end_array(after)
            return True
        self._end_search = pos
        return False

    def _take_last(self, end: int) -> None:
        """The last elements, up to the array's closing `]` at `_buffer[end]`."""
        try:
            with memoryview(self._buffer)[: end + 1] as run:
                elements = orjson.loads(run)
        except orjson.JSONDecodeError as err:
            raise self._not_json(err.msg) from None
        if self._wants_element and not elements:  # "[...,]"
            raise self._not_json("a comma before the end of the result array")
        self._add(elements)
        self._end_array(end)

    def _add(self, elements: list[object]) -> None:
        _share_label_values(elements, self._label_values)
        if self._vector:
            self._samples.extend(parse_vector(elements))
        else:
            self._elements.extend(elements)

    def _moved(self, end: int) -> None:
        """`_buffer[1:end]` was taken (a run up to a comma between elements): move the scan
        with the bytes, or restart it after that comma, where it is between elements."""
        self._end_search = 1
        if self._scan_pos >= end:
            self._scan_pos -= end - 1
            self._scan_comma = self._scan_comma - (end - 1) if self._scan_comma >= end else -1
        else:
            self._scan_pos, self._scan_depth, self._scan_comma = 1, 0, -1

    def _scan(self) -> int:
        """Scan on from where the last scan stopped; the index of the array's closing `]`,
        or -1 (commas between elements are noted in `_scan_comma`)."""
        buffer = self._buffer
        depth = self._scan_depth
        pos = self._scan_pos
        try:
            for match in _STRUCTURE.finditer(buffer, pos):
                start = match.start()
                char = buffer[start]
                if char == _QUOTE:
                    if match.end() - start == 1:  # a string not finished yet
                        pos = start
                        return -1
                    continue
                if char in _OPENERS:
                    depth += 1
                elif char == _COMMA:
                    if depth == 0:
                        self._scan_comma = start
                else:
                    depth -= 1
                    if depth < 0:
                        if char != _CLOSE_ARRAY:
                            raise self._not_json(f"unexpected {chr(char)!r} in the result")
                        pos = start
                        return start
            pos = len(buffer)
            return -1
        finally:
            self._scan_pos = pos
            self._scan_depth = depth


def _share_label_values(elements: list[object], known: dict[str, str]) -> None:
    """Make equal label values of the elements' `metric` objects one string, as Prometheus
    interns them. A runaway answer is most often a query that lost its aggregation: every
    series with all of its labels, most of them alike. Shared, its samples take ~20% less
    memory, and freeing them (all at once, when the answer is done with) takes half as
    long: the loop is held that long."""
    for element in elements:
        if type(element) is not dict:
            continue
        metric = element.get("metric")
        if type(metric) is not dict:
            continue
        for name, value in metric.items():  # replacing values, not keys: allowed while iterating
            if type(value) is not str:
                continue
            shared = known.get(value)
            if shared is not None:
                metric[name] = shared
            elif len(known) < _SHARED_VALUES_MAX:
                known[value] = value
