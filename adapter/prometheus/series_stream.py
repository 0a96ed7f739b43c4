"""An incremental parser for `/api/v1/series` responses, so that listing a million series
needs memory for one chunk of the body rather than the whole of it.

The envelope (`status`, `warnings`, `errorType`, ...; keys in any order) is small: its bytes
are kept with the `data` array emptied to `[]`, and checked at the end exactly as
`decode_response` checks a whole body. The `data` array is parsed as it arrives, in runs of
whole elements handed to orjson in one call:

- fast path: the run ends at the last `}` followed by `,` in the buffer. That is a real
  boundary between elements exactly when orjson parses the run, since a `},` inside a string
  would leave that string unterminated (and one inside a nested value, brackets unbalanced);
- otherwise a regular expression that ends strings where JSON does (at the first unescaped
  quote) matches the whole flat `{"name": "value", ...}` objects at the start of the buffer.

The closing `]` is found the same way, and whatever cannot be parsed yet waits for the next
chunk, so only the unparsed tail (less than one element, plus the chunk) is ever held.
"""

import json
import re
from itertools import chain
from typing import Final, NoReturn, cast

import orjson

from adapter.prometheus.results import (
    MalformedResponse,
    ResponseProblem,
    body_snippet,
    check_envelope,
    not_json,
    parse_series_data,
)

__all__ = ["MAX_ELEMENT_BYTES", "SeriesStreamParser"]

# The unparsed tail of the data array may not grow beyond this: it is one series object (its
# label values are at most a few KiB in practice) plus one chunk, unless the body is broken.
MAX_ELEMENT_BYTES: Final = 8 << 20

_S = rb"[ \t\r\n]*+"  # JSON whitespace
# Content is not checked (orjson does that): only where the string ends matters. Possessive
# quantifiers keep a string that is not finished yet from backtracking.
_STR = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_MEMBER = _STR + _S + rb":" + _S + _STR
_OBJ = rb"\{" + _S + rb"(?:" + _MEMBER + _S + rb"(?:," + _S + _MEMBER + _S + rb")*+)?\}"
# Whole elements, each with its comma, from where the buffer starts.
_ELEMENTS = re.compile(rb"(?:" + _S + _OBJ + _S + rb",)*+", re.DOTALL)
# The last element and the array's end; the element may be missing only right after "[".
_LAST = re.compile(_S + rb"(" + _OBJ + rb")" + _S + rb"\]", re.DOTALL)
_LAST_OR_EMPTY = re.compile(_S + rb"(?:(" + _OBJ + rb")" + _S + rb")?\]", re.DOTALL)
# Tokens of the envelope: a string, a structural character, or a run of anything else (a
# number or literal; orjson judges it at the end).
_TOKEN = re.compile(_S + rb"(?:(" + _STR + rb')|([][{}:,])|([^][{}:," \t\r\n]++))', re.DOTALL)
_STRING, _SCALAR = 1, 3  # group numbers (2: a structural character)

_WS = b" \t\r\n"
_OPEN_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = ord("{"), ord("["), ord("]")
_COMMA, _COLON, _CLOSE_OBJECT = ord(","), ord(":"), ord("}")
_MAX_CANDIDATES = 16  # `}` tried from the end before the regular expression takes over


def _check_elements(run: list[object]) -> list[dict[str, str]]:
    """The run itself, once every element is an object of strings (as parse_series_data
    and Prometheus' API promise); the checks iterate in C, a few ns per label."""
    if set(map(type, run)) != {dict}:
        for item in run:
            if not isinstance(item, dict):
                raise MalformedResponse(f"series element is not an object: {str(item)[:80]}")
    objects = cast(list[dict[str, object]], run)
    if not set(map(type, chain.from_iterable(map(dict.values, objects)))) <= {str}:
        for item in objects:
            for name, value in item.items():
                if not isinstance(value, str):
                    raise MalformedResponse(
                        f"series label {name[:80]!r} is not a string: {str(value)[:80]}"
                    )
    return cast(list[dict[str, str]], run)


class SeriesStreamParser:
    """Feed it a 2xx `/api/v1/series` body chunk by chunk; it returns the series as their
    objects complete, then `finish` checks the rest and returns the warnings.

    Errors are `ResponseProblem`s, as `decode_response` and `parse_series_data` raise them;
    series returned before an error (say, a truncated body) must be discarded.
    """

    __slots__ = (
        "_buffer",
        "_closed",
        "_content_type",
        "_data_seen",
        "_envelope",
        "_expect_key",
        "_in_data",
        "_key_is_data",
        "_pending",
        "_received",
        "_snippet",
        "_stack",
        "_value_next",
        "_wants_element",
    )

    def __init__(self, content_type: str = "application/json") -> None:
        self._content_type = content_type
        self._snippet = b""  # the start of the body, for error messages
        self._received = 0
        # The envelope: bytes kept (data emptied), and bytes not tokenised yet.
        self._envelope = bytearray()
        self._pending = bytearray()
        self._stack = bytearray()  # open brackets of the envelope
        self._closed = False  # the envelope has ended: what follows is an error
        self._expect_key = False
        self._key_is_data = False
        self._value_next = False
        self._data_seen = False
        # The data array: "[" and the bytes not parsed yet, starting at an element.
        self._in_data = False
        self._buffer = bytearray(b"[")
        self._wants_element = False  # after a comma: "]" may not come next

    def feed(self, chunk: bytes) -> list[dict[str, str]]:
        """Take the next bytes of the body; return the series objects they completed."""
        if len(self._snippet) < 100:
            self._snippet += chunk[: 100 - len(self._snippet)]
        self._received += len(chunk)
        found: list[dict[str, str]] = []
        if self._in_data:
            self._buffer += chunk
        else:
            self._pending += chunk
        self._run(found, final=False)
        return found

    def finish(self) -> tuple[str, ...]:
        """Check what is left at the end of the body; return the response's warnings."""
        found: list[dict[str, str]] = []
        self._run(found, final=True)  # raises if the data array is not complete
        if found:  # pragma: no cover - feed() already took every complete element
            raise MalformedResponse("series data ended in a way it could not be read")
        try:
            doc = orjson.loads(self._envelope)
        except orjson.JSONDecodeError as err:
            if self._stack or bytes(self._pending).strip(_WS):
                raise self._truncated() from None  # an object or a string left open
            raise self._not_json(err.msg) from None
        data, warnings = check_envelope(doc, 200, body_snippet(self._snippet))
        if not self._data_seen:
            parse_series_data(data)  # raises: data is missing, or not an array
            raise MalformedResponse("series data is not an array")  # pragma: no cover
        return warnings

    # --- internals ------------------------------------------------------------------

    def _run(self, found: list[dict[str, str]], final: bool) -> None:
        while True:
            if not self._in_data and not self._scan_envelope(final):
                return
            if not self._parse_data(found, final):
                return

    def _scan_envelope(self, final: bool) -> bool:
        """Tokenise the envelope up to the data array's "["; True once it is reached."""
        pending = self._pending
        stack = self._stack
        size = len(pending)
        pos = 0
        try:
            while pos < size:
                match = _TOKEN.match(pending, pos)
                if match is None:  # whitespace, or a string still arriving
                    break
                end = match.end()
                kind = match.lastindex
                if kind == _SCALAR and end == size and not final:
                    break  # "tru" may become "true"
                self._envelope += pending[pos:end]
                pos = end
                value_next, self._value_next = self._value_next, False
                top_level = len(stack) == 1 and stack[0] == _OPEN_OBJECT and not self._closed
                if kind == _STRING:
                    if top_level and self._expect_key:
                        self._expect_key = False
                        self._key_is_data = self._is_data(match.group(_STRING))
                    continue
                if kind == _SCALAR:
                    continue
                char = pending[end - 1]
                if char == _OPEN_ARRAY and top_level and value_next and self._key_is_data:
                    if self._data_seen:
                        raise MalformedResponse('the response has more than one "data" key')
                    self._data_seen = True
                    self._in_data = True
                    self._wants_element = False
                    self._buffer = bytearray(b"[")
                    self._buffer += pending[pos:]
                    pos = size
                    return True
                if char in (_OPEN_OBJECT, _OPEN_ARRAY):
                    stack.append(char)
                    self._expect_key = char == _OPEN_OBJECT and len(stack) == 1
                elif char in (_CLOSE_OBJECT, _CLOSE_ARRAY):
                    if stack:
                        stack.pop()
                        self._closed = not stack
                elif char == _COLON:
                    self._value_next = top_level
                elif char == _COMMA and top_level:
                    self._expect_key = True
            return False
        finally:
            del pending[:pos]

    @staticmethod
    def _is_data(token: bytes) -> bool:
        if b"\\" not in token:
            return token == b'"data"'
        try:
            return bool(orjson.loads(token) == "data")  # "d\u0061ta" is "data" too
        except orjson.JSONDecodeError:
            return False  # the envelope check reports it

    def _parse_data(self, found: list[dict[str, str]], final: bool) -> bool:
        """Take the complete elements of the data array; True once the array has ended."""
        buffer = self._buffer
        comma = self._last_boundary()
        if comma < 0 or not self._take_run(found, comma + 1, proven=False):
            match = _ELEMENTS.match(buffer, 1)  # always matches, maybe nothing
            if match is not None and match.end() > 1:
                self._take_run(found, match.end(), proven=True)
        if _CLOSE_ARRAY in buffer:
            last = (_LAST if self._wants_element else _LAST_OR_EMPTY).match(buffer, 1)
            if last is not None:
                element = last.group(1)
                if element is not None:
                    found.extend(self._load_proven(element))
                self._envelope += b"]"
                self._pending = bytearray(buffer[last.end() :])
                self._buffer = bytearray(b"[")
                self._in_data = False
                return True
        if final or len(buffer) > MAX_ELEMENT_BYTES:
            self._fail_data(final)
        return False

    def _last_boundary(self) -> int:
        """The index of the last comma after a `}`, or -1."""
        buffer = self._buffer
        limit = len(buffer)
        for _ in range(_MAX_CANDIDATES):
            brace = buffer.rfind(b"}", 1, limit)
            if brace < 0:
                return -1
            after = brace + 1
            while after < len(buffer) and buffer[after] in _WS:
                after += 1
            if after < len(buffer) and buffer[after] == _COMMA:
                return after
            limit = brace
        return -1

    def _take_run(self, found: list[dict[str, str]], end: int, proven: bool) -> bool:
        """Parse `buffer[1:end]` (whole elements, the last followed by its comma) as one
        array. Unless the boundary is `proven`, a parse failure only means it was not one."""
        buffer = self._buffer
        buffer[end - 1] = _CLOSE_ARRAY  # "[" + elements + "]" in place of the comma
        try:
            with memoryview(buffer)[:end] as run:
                parsed = orjson.loads(run)
        except orjson.JSONDecodeError as err:
            buffer[end - 1] = _COMMA
            if proven:
                raise self._not_json(err.msg) from None
            return False
        found.extend(_check_elements(parsed))
        del buffer[1:end]
        self._wants_element = True
        return True

    def _load_proven(self, element: bytes) -> list[dict[str, str]]:
        """The one element the regular expression delimited."""
        try:
            return _check_elements([orjson.loads(element)])
        except orjson.JSONDecodeError as err:
            raise self._not_json(err.msg) from None

    def _fail_data(self, final: bool) -> NoReturn:
        """Say why the rest of the data array cannot be read, precisely (this is slow, but
        only broken or truncated bodies come here)."""
        prefix = "[0," if self._wants_element else "["  # keeps a trailing comma an error
        rest = bytes(self._buffer[1:])
        try:
            text = prefix + rest.decode("utf-8")
        except UnicodeDecodeError as err:
            cut = err.reason == "unexpected end of data" and len(rest) - err.start < 4
            if final and cut:
                raise self._truncated() from None
            raise self._not_json(f"invalid UTF-8: {err.reason}") from None
        try:
            value, _ = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as err:
            at_end = err.pos >= len(text) or err.msg.startswith("Unterminated string")
            if at_end and final:
                raise self._truncated() from None
            if at_end:
                raise MalformedResponse(
                    f"a series element is longer than {MAX_ELEMENT_BYTES} bytes"
                ) from None
            raise self._not_json(err.msg) from None
        _check_elements(value[1:] if self._wants_element else value)
        raise MalformedResponse("series data is not an array of flat objects")  # pragma: no cover

    def _not_json(self, detail: str) -> ResponseProblem:
        return not_json(detail, self._content_type, body_snippet(self._snippet))

    def _truncated(self) -> ResponseProblem:
        return self._not_json(f"unexpected end of data after {self._received} bytes")
