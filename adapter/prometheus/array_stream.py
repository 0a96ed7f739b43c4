"""The part common to parsing a Prometheus answer as it arrives: the envelope, and runs of
whole elements of the one array that holds the bulk of the answer.

The array sits at a key path of the envelope: `data` for `/api/v1/series`, `data.result` for
`/api/v1/query`. The envelope (`status`, `warnings`, `errorType`, ...; keys in any order) is
small: its bytes are kept with the array emptied to `[]`, and checked at the end exactly as
`decode_response` checks a whole body. The array's elements are handed to orjson in runs of
whole elements, one call per run. A run may end at a `}` followed by `,` only if that is a
real boundary between elements, which is so exactly when orjson parses the run: a `},`
inside a string would leave that string unterminated, and one inside a nested value would
leave brackets unbalanced. Subclasses decide how to find the array's end and what to make of
the elements.
"""

import re
from typing import Final

import orjson

from adapter.prometheus.results import (
    MalformedResponse,
    ResponseProblem,
    body_snippet,
    check_envelope,
    not_json,
)

__all__ = ["STRING_PATTERN", "WHITESPACE", "ArrayStreamParser"]

_S = rb"[ \t\r\n]*+"  # JSON whitespace
# Content is not checked (orjson does that): only where the string ends matters. Possessive
# quantifiers keep a string that is not finished yet from backtracking.
STRING_PATTERN: Final = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
WHITESPACE: Final = b" \t\r\n"

# Tokens of the envelope: a string, a structural character, or a run of anything else (a
# number or literal; orjson judges it at the end).
_TOKEN = re.compile(
    _S + rb"(?:(" + STRING_PATTERN + rb')|([][{}:,])|([^][{}:," \t\r\n]++))', re.DOTALL
)
_STRING, _SCALAR = 1, 3  # group numbers (2: a structural character)

_OPEN_OBJECT, _OPEN_ARRAY, _CLOSE_ARRAY = ord("{"), ord("["), ord("]")
_COMMA, _COLON, _CLOSE_OBJECT = ord(","), ord(":"), ord("}")
_MAX_CANDIDATES = 16  # `}` tried from the end before a slower search takes over


class ArrayStreamParser:
    """Feed it a 2xx body chunk by chunk (`_feed`); `_parse_array` (the subclass's) takes the
    array's elements, `_finish_envelope` checks the rest.

    Errors are `ResponseProblem`s, as `decode_response` raises them; whatever was taken from
    the array before an error (say, a truncated body) must be discarded.
    """

    __slots__ = (
        "_array_seen",
        "_buffer",
        "_closed",
        "_content_type",
        "_envelope",
        "_expect_key",
        "_in_array",
        "_key",
        "_key_on_path",
        "_path",
        "_path_depth",
        "_pending",
        "_received",
        "_snippet",
        "_stack",
        "_value_next",
        "_wants_element",
    )

    def __init__(self, path: tuple[str, ...], content_type: str = "application/json") -> None:
        self._path = path
        self._content_type = content_type
        self._snippet = b""  # the start of the body, for error messages
        self._received = 0
        # The envelope: bytes kept (array emptied), and bytes not tokenised yet.
        self._envelope = bytearray()
        self._pending = bytearray()
        self._stack = bytearray()  # open brackets of the envelope
        self._path_depth = 0  # stack depth of the innermost open object on the path
        self._closed = False  # the envelope has ended: what follows is an error
        self._expect_key = False
        self._key = b""  # the last key read in an object on the path
        self._key_on_path = False
        self._value_next = False
        self._array_seen = False
        # The array: "[" and the bytes not parsed yet, starting at an element.
        self._in_array = False
        self._buffer = bytearray(b"[")
        self._wants_element = False  # after a comma: "]" may not come next

    # --- for subclasses ---------------------------------------------------------------

    def _parse_array(self, final: bool) -> bool:
        """Take the complete elements in `_buffer`; True once the array has ended (then
        `_end_array` has been called)."""
        raise NotImplementedError

    def _member(self, depth: int, key: bytes, value: bytes) -> None:
        """A string member of an object on the path (`depth` 1: the envelope itself), both
        as raw JSON tokens, seen before the array."""

    def _feed(self, chunk: bytes, final: bool = False) -> None:
        if len(self._snippet) < 100:
            self._snippet += chunk[: 100 - len(self._snippet)]
        self._received += len(chunk)
        if self._in_array:
            self._buffer += chunk
        else:
            self._pending += chunk
        while True:
            if not self._in_array and not self._scan_envelope(final):
                return
            if not self._parse_array(final):
                return

    def _finish_envelope(self) -> tuple[object, tuple[str, ...]]:
        """Check what is left at the end of the body: the envelope; its `(data, warnings)`."""
        self._feed(b"", final=True)  # raises if the array is not complete
        try:
            doc = orjson.loads(self._envelope)
        except orjson.JSONDecodeError as err:
            if self._stack or bytes(self._pending).strip(WHITESPACE):
                raise self._truncated() from None  # an object or a string left open
            raise self._not_json(err.msg) from None
        return check_envelope(doc, 200, body_snippet(self._snippet))

    def _end_array(self, end: int) -> None:
        """The array's closing `]` is at `_buffer[end]`: what follows is envelope again."""
        self._envelope += b"]"
        self._pending = bytearray(self._buffer[end + 1 :])
        self._buffer = bytearray(b"[")
        self._in_array = False

    def _last_boundary(self, object_next: bool = False) -> int:
        """The index of the last comma after a `}` (and, with `object_next`, before a `{`:
        elements that contain objects have commas after `}` inside them too), or -1."""
        buffer = self._buffer
        size = len(buffer)
        limit = size
        for _ in range(_MAX_CANDIDATES):
            brace = buffer.rfind(b"}", 1, limit)
            if brace < 0:
                return -1
            limit = brace
            after = brace + 1
            while after < size and buffer[after] in WHITESPACE:
                after += 1
            if after >= size or buffer[after] != _COMMA:
                continue
            if object_next:
                start = after + 1
                while start < size and buffer[start] in WHITESPACE:
                    start += 1
                if start >= size or buffer[start] != _OPEN_OBJECT:
                    continue
            return after
        return -1

    def _take_run(self, end: int, proven: bool) -> list[object] | None:
        """Parse `_buffer[1:end]` (whole elements, the last followed by its comma) as one
        array and drop it from the buffer. Unless the boundary is `proven`, a parse failure
        only means it was not one (None)."""
        buffer = self._buffer
        buffer[end - 1] = _CLOSE_ARRAY  # "[" + elements + "]" in place of the comma
        try:
            with memoryview(buffer)[:end] as run:
                parsed = orjson.loads(run)
        except orjson.JSONDecodeError as err:
            buffer[end - 1] = _COMMA
            if proven:
                raise self._not_json(err.msg) from None
            return None
        del buffer[1:end]
        self._wants_element = True
        assert isinstance(parsed, list)
        return parsed

    def _not_json(self, detail: str) -> ResponseProblem:
        return not_json(detail, self._content_type, body_snippet(self._snippet))

    def _truncated(self) -> ResponseProblem:
        return self._not_json(f"unexpected end of data after {self._received} bytes")

    # --- the envelope -------------------------------------------------------------------

    def _scan_envelope(self, final: bool) -> bool:
        """Tokenise the envelope up to the array's "["; True once it is reached."""
        pending = self._pending
        stack = self._stack
        path = self._path
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
                depth = len(stack)
                # Inside the innermost object on the path (the envelope, then data, ...).
                on_path = self._path_depth == depth > 0 and not self._closed
                if kind == _STRING:
                    if on_path and self._expect_key:
                        self._expect_key = False
                        self._key = match.group(_STRING)
                        self._key_on_path = depth <= len(path) and _is_key(
                            self._key, path[depth - 1]
                        )
                    elif on_path and value_next:
                        self._member(depth, self._key, match.group(_STRING))
                    continue
                if kind == _SCALAR:
                    continue
                char = pending[end - 1]
                entering = on_path and value_next and self._key_on_path
                if char == _OPEN_ARRAY and entering and depth == len(path):
                    if self._array_seen:
                        raise MalformedResponse(f'the response has more than one "{path[-1]}" key')
                    self._array_seen = True
                    self._in_array = True
                    self._wants_element = False
                    self._buffer = bytearray(b"[")
                    self._buffer += pending[pos:]
                    pos = size
                    return True
                if char in (_OPEN_OBJECT, _OPEN_ARRAY):
                    stack.append(char)
                    if char == _OPEN_OBJECT and (
                        (depth == 0 and not self._closed) or (entering and depth < len(path))
                    ):
                        self._path_depth = depth + 1  # the envelope, or an object on the path
                        self._expect_key = True
                elif char in (_CLOSE_OBJECT, _CLOSE_ARRAY):
                    if stack:
                        stack.pop()
                        self._path_depth = min(self._path_depth, len(stack))
                        self._closed = not stack
                elif char == _COLON:
                    self._value_next = on_path
                elif char == _COMMA and on_path:
                    self._expect_key = True
            return False
        finally:
            del pending[:pos]


def _is_key(token: bytes, name: str) -> bool:
    if b"\\" not in token:
        return token[1:-1] == name.encode()
    try:
        return bool(orjson.loads(token) == name)  # "d\u0061ta" is "data" too
    except orjson.JSONDecodeError:
        return False  # the envelope check reports it
