"""An incremental parser for `/api/v1/series` responses, so that listing a million series
needs memory for one chunk of the body rather than the whole of it.

The envelope is handled by `ArrayStreamParser`; the `data` array is parsed as it arrives, in
runs of whole elements handed to orjson in one call:

- fast path: the run ends at the last `}` followed by `,` in the buffer (a real boundary
  exactly when orjson parses the run, see `array_stream`);
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

from adapter.prometheus.array_stream import STRING_PATTERN, ArrayStreamParser
from adapter.prometheus.results import MalformedResponse, parse_series_data

__all__ = ["MAX_ELEMENT_BYTES", "SeriesStreamParser"]

# The unparsed tail of the data array may not grow beyond this: it is one series object (its
# label values are at most a few KiB in practice) plus one chunk, unless the body is broken.
MAX_ELEMENT_BYTES: Final = 8 << 20

_S = rb"[ \t\r\n]*+"  # JSON whitespace
_MEMBER = STRING_PATTERN + _S + rb":" + _S + STRING_PATTERN
_OBJ = rb"\{" + _S + rb"(?:" + _MEMBER + _S + rb"(?:," + _S + _MEMBER + _S + rb")*+)?\}"
# Whole elements, each with its comma, from where the buffer starts.
_ELEMENTS = re.compile(rb"(?:" + _S + _OBJ + _S + rb",)*+", re.DOTALL)
# The last element and the array's end; the element may be missing only right after "[".
_LAST = re.compile(_S + rb"(" + _OBJ + rb")" + _S + rb"\]", re.DOTALL)
_LAST_OR_EMPTY = re.compile(_S + rb"(?:(" + _OBJ + rb")" + _S + rb")?\]", re.DOTALL)
_CLOSE_ARRAY = ord("]")


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


class SeriesStreamParser(ArrayStreamParser):
    """Feed it a 2xx `/api/v1/series` body chunk by chunk; it returns the series as their
    objects complete, then `finish` checks the rest and returns the warnings.

    Errors are `ResponseProblem`s, as `decode_response` and `parse_series_data` raise them;
    series returned before an error (say, a truncated body) must be discarded.
    """

    __slots__ = ("_found",)

    def __init__(self, content_type: str = "application/json") -> None:
        super().__init__(("data",), content_type)
        self._found: list[dict[str, str]] = []

    def feed(self, chunk: bytes) -> list[dict[str, str]]:
        """Take the next bytes of the body; return the series objects they completed."""
        found = self._found = []
        self._feed(chunk)
        return found

    def finish(self) -> tuple[str, ...]:
        """Check what is left at the end of the body; return the response's warnings."""
        found = self._found = []
        data, warnings = self._finish_envelope()  # raises if the data array is not complete
        if found:  # pragma: no cover - feed() already took every complete element
            raise MalformedResponse("series data ended in a way it could not be read")
        if not self._array_seen:
            parse_series_data(data)  # raises: data is missing, or not an array
            raise MalformedResponse("series data is not an array")  # pragma: no cover
        return warnings

    # --- internals ------------------------------------------------------------------

    def _parse_array(self, final: bool) -> bool:
        """Take the complete elements of the data array; True once the array has ended."""
        buffer = self._buffer
        found = self._found
        comma = self._last_boundary()
        run = self._take_run(comma + 1, proven=False) if comma >= 0 else None
        if run is None:
            match = _ELEMENTS.match(buffer, 1)  # always matches, maybe nothing
            if match is not None and match.end() > 1:
                run = self._take_run(match.end(), proven=True)
        if run is not None:
            found.extend(_check_elements(run))
        if _CLOSE_ARRAY in buffer:
            last = (_LAST if self._wants_element else _LAST_OR_EMPTY).match(buffer, 1)
            if last is not None:
                element = last.group(1)
                if element is not None:
                    found.extend(self._load_proven(element))
                self._end_array(last.end() - 1)
                return True
        if final or len(buffer) > MAX_ELEMENT_BYTES:
            self._fail_data(final)
        return False

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
