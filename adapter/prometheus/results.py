"""Result values of the Prometheus HTTP API, and pure parsers for its responses.

`decode_response` is the Go client's `httpAPIClient.Do` after the response arrives; the
`parse_*` functions read the `data` payload of each endpoint. They raise `ResponseProblem`
(error type and message); the client adds where it happened and makes a `PrometheusError`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

__all__ = [
    "MalformedResponse",
    "QueryResult",
    "ResponseProblem",
    "Sample",
    "body_snippet",
    "check_envelope",
    "decode_response",
    "format_time",
    "not_json",
    "parse_label_names",
    "parse_query_data",
    "parse_series_data",
    "parse_vector",
]


class ResponseProblem(Exception):
    """A response that is an error: Prometheus' own, or one it should never send."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class MalformedResponse(ResponseProblem):
    """A JSON payload that does not have the shape the Prometheus API documents."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_response", f"unexpected response data: {message}")


# Go's client reads JSON only from these; any other status is "unknown response code".
_JSON_STATUSES = frozenset({400, 422, 503})
_SNIPPET = 100  # characters of an unexpected body quoted in an error


def _status_hint(status: int, method: str) -> str:
    """What to check for the statuses users hit most (issues #298, #668, crane #907)."""
    if status == 414 and method == "GET":
        return "the URL is too long: long queries need --prometheus-verb=POST"
    if status == 404:
        return "check that --prometheus-url is the API root, including any path prefix"
    if status in (401, 403):
        return "check --prometheus-token-file and --prometheus-header"
    if status == 405 and method == "POST":
        return "this server does not accept POST here; try --prometheus-verb=GET"
    return ""


def decode_response(
    status: int, reason: str, content: bytes, content_type: str, method: str
) -> tuple[object, tuple[str, ...]]:
    """Check an API response like the Go client; return its `(data, warnings)`."""
    snippet = body_snippet(content)
    if status // 100 != 2 and status not in _JSON_STATUSES:
        message = f"unknown response code {status}"
        if reason:
            message += f" ({reason})"
        hint = _status_hint(status, method)
        if hint:
            message += f"; {hint}"
        if snippet:
            message += f"; body {snippet!r}"
        raise ResponseProblem("bad_response", message)
    try:
        doc = orjson.loads(content)
    except orjson.JSONDecodeError as err:
        raise not_json(str(err), content_type, snippet) from None
    return check_envelope(doc, status, snippet)


def body_snippet(content: bytes) -> str:
    """The start of a body, quoted in errors about it."""
    return content[:_SNIPPET].decode("utf-8", errors="replace")


def not_json(detail: str, content_type: str, snippet: str) -> ResponseProblem:
    """The error for a body that does not parse as JSON."""
    kind = content_type or "no Content-Type"
    return ResponseProblem(
        "bad_response", f"response body is not JSON ({detail}; {kind}): {snippet!r}"
    )


def check_envelope(doc: object, status: int, snippet: str) -> tuple[object, tuple[str, ...]]:
    """Check a parsed API envelope like the Go client; return its `(data, warnings)`.

    Shared by `decode_response` and the streaming series parser, which checks the envelope
    with its `data` array emptied."""
    if not isinstance(doc, dict):
        raise ResponseProblem(
            "bad_response", f"response body is JSON but not an object: {snippet!r}"
        )
    if doc.get("status") == "error":
        error_type = doc.get("errorType")
        error_text = doc.get("error")
        raise ResponseProblem(
            error_type if isinstance(error_type, str) and error_type else "bad_response",
            error_text if isinstance(error_text, str) and error_text else "(no error message)",
        )
    if status // 100 != 2:
        raise ResponseProblem(
            "bad_response", f'HTTP {status} without "status": "error": {snippet!r}'
        )
    raw_warnings = doc.get("warnings")
    warnings: tuple[str, ...] = ()
    if isinstance(raw_warnings, list):
        warnings = tuple(str(w) for w in raw_warnings)
    return doc.get("data"), warnings


@dataclass(frozen=True, slots=True)
class Sample:
    """One instant value: all labels (with `__name__` if present), value, seconds."""

    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class QueryResult:
    """An instant query's result.

    `samples` holds one Sample per series for a vector, one unlabelled Sample for a scalar,
    and nothing for a matrix or string; those keep Prometheus' `result` in `raw_result`.
    """

    result_type: str
    samples: tuple[Sample, ...]
    warnings: tuple[str, ...] = ()
    raw_result: object = field(default=None, compare=False, repr=False)


def format_time(seconds: float) -> str:
    """Render a Unix time like Go's `model.Time.String()`: "1565786045.323", "1565786045".

    model.Time has millisecond resolution; rounding (not truncating) keeps 0.323 from
    becoming 0.322 through float error.
    """
    ms = round(seconds * 1000)
    sign = "-" if ms < 0 else ""
    whole, frac = divmod(abs(ms), 1000)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:03d}".rstrip("0")


def _parse_value(raw: object) -> float:
    # Prometheus sends values as strings so that "NaN", "+Inf" and "-Inf" survive JSON;
    # Python's float() reads those spellings directly.
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            raise MalformedResponse(f"sample value {raw[:40]!r} is not a number") from None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    raise MalformedResponse(f"sample value {raw!r} is not a string")


def _parse_pair(pair: object, what: str) -> tuple[float, float]:
    if not isinstance(pair, list) or len(pair) != 2:
        raise MalformedResponse(f"{what} is not a [timestamp, value] pair: {str(pair)[:80]}")
    ts = pair[0]
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        raise MalformedResponse(f"{what} timestamp {ts!r} is not a number")
    return float(ts), _parse_value(pair[1])


def parse_vector(result: list[object]) -> list[Sample]:
    """The Samples of a vector's elements (native-histogram samples have none)."""
    samples: list[Sample] = []
    for item in result:
        if not isinstance(item, dict):
            raise MalformedResponse(f"vector element is not an object: {str(item)[:80]}")
        labels = item.get("metric")
        if labels is None:
            labels = {}
        elif not isinstance(labels, dict):
            raise MalformedResponse(f"vector element's metric is not an object: {labels!r}")
        pair = item.get("value")
        if pair is None and "histogram" in item:
            # A native-histogram sample has no float value for the metrics APIs to serve.
            continue
        ts, value = _parse_pair(pair, "vector sample")
        samples.append(Sample(labels, value, ts))
    return samples


def parse_query_data(data: object, warnings: tuple[str, ...] = ()) -> QueryResult:
    """Parse the `data` of an `/api/v1/query` response."""
    if not isinstance(data, dict):
        raise MalformedResponse(f"query data is {_describe(data)}, not an object")
    result_type = data.get("resultType")
    result = data.get("result")
    if result_type == "vector":
        if result is None:  # tolerate `null` for an empty vector
            return QueryResult("vector", (), warnings)
        if not isinstance(result, list):
            raise MalformedResponse(f"vector result is {_describe(result)}, not an array")
        return QueryResult("vector", tuple(parse_vector(result)), warnings)
    if result_type == "scalar":
        ts, value = _parse_pair(result, "scalar")
        return QueryResult("scalar", (Sample({}, value, ts),), warnings)
    if result_type in ("matrix", "string"):
        return QueryResult(result_type, (), warnings, raw_result=result)
    raise MalformedResponse(f"unknown resultType {result_type!r}")


def parse_series_data(data: object) -> list[dict[str, str]]:
    """Parse the `data` of an `/api/v1/series` response: a list of label sets."""
    if not isinstance(data, list):
        raise MalformedResponse(f"series data is {_describe(data)}, not an array")
    for item in data:
        if not isinstance(item, dict):
            raise MalformedResponse(f"series element is not an object: {str(item)[:80]}")
    return data


def parse_label_names(data: object) -> list[str]:
    """Parse the `data` of an `/api/v1/labels` response: a list of label names."""
    if not isinstance(data, list) or not all(isinstance(name, str) for name in data):
        raise MalformedResponse(f"labels data is {_describe(data)}, not an array of strings")
    return data


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _describe(value: object) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "a number")
