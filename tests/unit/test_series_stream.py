"""SeriesStreamParser: the same series, warnings and errors as parsing the whole body, however
the body is cut into chunks."""

import ast
import json
import random
import tracemalloc
from collections.abc import Iterable, Sequence

import orjson
import pytest

from adapter.prometheus import series_stream
from adapter.prometheus.results import (
    MalformedResponse,
    ResponseProblem,
    decode_response,
    parse_series_data,
)
from adapter.prometheus.series_stream import SeriesStreamParser

Series = list[dict[str, str]]


def parse(chunks: Iterable[bytes]) -> tuple[Series, tuple[str, ...]]:
    parser = SeriesStreamParser()
    found: Series = []
    for chunk in chunks:
        found.extend(parser.feed(chunk))
    return found, parser.finish()


def splits(body: bytes) -> Iterable[list[bytes]]:
    """The body whole, in two parts at every offset, and one byte at a time."""
    yield [body]
    for cut in range(len(body) + 1):
        yield [body[:cut], body[cut:]]
    yield [body[i : i + 1] for i in range(len(body))]


def whole(body: bytes) -> tuple[object, tuple[str, ...]]:
    """What decode_response and parse_series_data make of the body: the reference."""
    data, warnings = decode_response(200, "OK", body, "application/json", "GET")
    return parse_series_data(data), warnings


def assert_same_at_every_split(body: bytes) -> Series:
    expected, warnings = whole(body)
    for chunks in splits(body):
        assert parse(chunks) == (expected, warnings), chunks
    assert isinstance(expected, list)
    return expected


def raises_at_every_split(body: bytes, error: type[ResponseProblem] = ResponseProblem) -> str:
    """The error message for the whole body, the same however the body is cut (but for the
    quoted start of the body, which is what had arrived when the error was found)."""
    with pytest.raises(error) as info:
        parse([body])
    message = str(info.value)
    quoted = f"; application/json): {body[:100].decode(errors='replace')!r}"
    for chunks in splits(body):
        with pytest.raises(error) as info:
            parse(chunks)
        got = str(info.value)
        if got.endswith("'") and message.endswith(quoted):
            head, _, snippet = got.rpartition("; application/json): ")
            assert head + quoted == message, chunks
            start = body[:100].decode(errors="replace")
            assert start.startswith(ast.literal_eval(snippet).rstrip("\ufffd")), chunks
        else:
            assert got == message, chunks
    return message


TRICKY_VALUES = [
    "},{",
    '"},{"x":"y',
    '}, {"__name__":"fake"},{',
    "}]",
    "],",
    "\\",
    '\\"},{',
    "a\\u0022b",
    "\n\t\r\b\f/",
    "\u2028\u2029",
    "é€漢字",
    "😀 astral",
    "\x00\x1f",
    "",
    " ",
    "{}",
    "[{}]",
    "}" * 20,
]


def test_tricky_label_values_at_every_split() -> None:
    data = [
        {"__name__": "up", "job": value, "instance": f"i-{index}"}
        for index, value in enumerate(TRICKY_VALUES)
    ]
    body = orjson.dumps({"status": "success", "data": data})
    assert assert_same_at_every_split(body) == data


def test_escapes_as_written_by_other_encoders() -> None:
    # Go's encoding/json escapes <, >, & and U+2028; Python's json escapes all non-ASCII,
    # astral characters as surrogate pairs. Keys can be escaped too.
    data = [{"__name__": "m<&>", "k\u00e9y": "v😀\u2028", "a": '"},{"b":"c"}'}]
    body = json.dumps({"status": "success", "data": data}, ensure_ascii=True).encode()
    assert b"\\ud83d\\ude00" in body and b"\\u00e9" in body
    assert assert_same_at_every_split(body) == data
    go_style = b'{"status":"success","data":[{"\\u005f_name__":"a\\u003cb\\u0026c\\/d"}]}'
    assert assert_same_at_every_split(go_style) == [{"__name__": "a<b&c/d"}]


def test_whitespace_everywhere() -> None:
    data = [{"__name__": "up", "job": "a , b"}, {"__name__": "x", "pod": "}  ,  {"}, {}]
    doc = {"status": "success", "data": data, "warnings": ["w"]}
    pretty = json.dumps(doc, indent=3, separators=(" ,\r\n", " :\t")).encode()
    assert assert_same_at_every_split(b" \n" + pretty + b"\n\t ") == data
    assert parse([pretty])[1] == ("w",)


@pytest.mark.parametrize(
    "body",
    [
        b'{"status":"success","data":[{"a":"1"}],"warnings":["w1","w2"],"infos":["i"]}',
        b'{"warnings":["w1","w2"],"data":[{"a":"1"}],"status":"success"}',
        b'{"infos":["i"],"status":"success","warnings":["w1","w2"],"data":[{"a":"1"}]}',
        b'{"warnings":["data","[{\\"a\\":\\"2\\"}]"],"data":[{"a":"1"}],"status":"success"}',
        b'{"extra":{"data":[{"no":"t me"}],"x":[1,2.5e3,true,null]},"data":[{"a":"1"}],"status":"success"}',
    ],
    ids=["last", "first", "middle", "data-in-warnings", "data-nested-elsewhere"],
)
def test_envelope_keys_in_any_order(body: bytes) -> None:
    assert assert_same_at_every_split(body) == [{"a": "1"}]


def test_warnings_are_returned() -> None:
    body = b'{"status":"success","warnings":["results truncated","\\u00e9"],"data":[]}'
    for chunks in splits(body):
        assert parse(chunks) == ([], ("results truncated", "é"))


@pytest.mark.parametrize(
    "body",
    [
        b'{"status":"success","data":[]}',
        b'{"status":"success","data":[ \n ]}',
        b'{"status":"success","data":[{}]}',
        b'{"status":"success","data":[{},{}]}',
    ],
)
def test_empty_data_and_empty_objects(body: bytes) -> None:
    assert_same_at_every_split(body)


def test_error_envelope_is_prometheus_error() -> None:
    body = b'{"status":"error","errorType":"timeout","error":"query timed out in series fetch"}'
    message = raises_at_every_split(body)
    assert message == "timeout: query timed out in series fetch"
    # The error is found however late it comes, even after data.
    late = b'{"data":[{"a":"b"}],"errorType":"execution","error":"boom","status":"error"}'
    assert raises_at_every_split(late) == "execution: boom"
    bare = b'{"status":"error"}'
    assert raises_at_every_split(bare) == "bad_response: (no error message)"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"status":"success"}', "series data is null, not an array"),
        (b'{"status":"success","data":null}', "series data is null, not an array"),
        (b'{"status":"success","data":{"a":"b"}}', "series data is an object, not an array"),
        (b'{"status":"success","data":"x"}', "series data is a string, not an array"),
        (b'{"status":"success","data":[1]}', "series element is not an object: 1"),
        (b'{"status":"success","data":[{"a":"b"},"x"]}', "series element is not an object: x"),
        (b'{"status":"success","data":[[],{"a":"b"}]}', "series element is not an object: []"),
        (b'{"status":"success","data":[null]}', "series element is not an object: None"),
        (b'{"status":"success","data":[{"a":1}]}', "series label 'a' is not a string: 1"),
        (b'{"status":"success","data":[{"a":"b"},{"c":null}]}', "'c' is not a string: None"),
        (b'{"status":"success","data":[{"a":{"b":"c"}},{"d":"e"}]}', "'a' is not a string"),
        (b'{"status":"success","data":[{"a":"b"},{"c":{"d":"e"}}]}', "'c' is not a string"),
        (b'{"status":"success","data":[{"a":{"b":"c"}}]}', "'a' is not a string"),
        (b'{"status":"success","data":[{"a":["},{"]},{"d":"e"}]}', "'a' is not a string"),
        (b'{"status":"success","data":[{"a":true}, {"b":"c"}]}', "'a' is not a string: True"),
        (b'{"status":"success","data":[{"a":"b"}],"data":[{"c":"d"}]}', 'more than one "data"'),
    ],
)
def test_malformed_data(body: bytes, needle: str) -> None:
    message = raises_at_every_split(body, MalformedResponse)
    assert message.startswith("bad_response: unexpected response data: ")
    assert needle in message


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "zero-length"),
        (b"  \n", "zero-length"),
        (b"<html>no</html>", "not JSON ("),
        (b'{"status":"success","data":[{"a":"b"},]}', "not JSON ("),
        (b'{"status":"success","data":[,{"a":"b"}]}', "not JSON ("),
        (b'{"status":"success","data":[{"a":"b"}{"c":"d"}]}', "not JSON ("),
        (b'{"status":"success","data":[{"a":"b",}]}', "not JSON ("),
        (b'{"status":"success","data":[{"a":"\\x"}]}', "not JSON ("),
        (b'{"status":"success","data":[{"a":"\xff"}]}', "not JSON ("),
        (b'{"status":"success","data":[{"a":"tab\there"}]}', "not JSON ("),
        (b'{"status":"success","data":[{"a" "b"}]}', "not JSON ("),
        (b'{"status":"success","data":[]} trailing', "not JSON ("),
        (b'{"status":success,"data":[]}', "not JSON ("),
        (b'{"status":"success","data":[]]', "not JSON ("),
        (b'{"status":"success","data":[]}{"data":[{"a":"b"}]}', "not JSON ("),
        (b'{"status":"success","data":[]}]', "not JSON ("),
    ],
)
def test_not_json(body: bytes, needle: str) -> None:
    message = raises_at_every_split(body)
    assert message.startswith("bad_response: response body is not JSON (")
    assert needle in message
    assert message.endswith(f"; application/json): {body[:100].decode(errors='replace')!r}")


@pytest.mark.parametrize(
    "body",
    [b'[{"a":"b"}]', b'"success"', b"null", b"42"],
)
def test_body_not_an_object(body: bytes) -> None:
    assert raises_at_every_split(body) == (
        f"bad_response: response body is JSON but not an object: {body.decode()!r}"
    )


def test_every_truncation_is_an_error() -> None:
    data = [{"__name__": "up", "job": TRICKY_VALUES[i]} for i in range(4)]
    body = orjson.dumps({"status": "success", "data": data, "warnings": ["w"]})
    body = body.replace(b'"job"', '"jöb"'.encode())  # a multi-byte character to cut too
    for end in range(len(body)):
        with pytest.raises(ResponseProblem) as info:
            parse([body[:end]])
        message = str(info.value)
        assert message.startswith("bad_response: response body is not JSON ("), (end, message)
        if end:
            assert f"unexpected end of data after {end} bytes" in message, (end, message)


def test_series_come_out_as_their_objects_complete() -> None:
    parser = SeriesStreamParser()
    assert parser.feed(b'{"status":"success","data":[{"a":"1"},{"b":"2"') == [{"a": "1"}]
    assert parser.feed(b'},{"c":"},{"}') == [{"b": "2"}]
    assert parser.feed(b"  ") == []
    assert parser.feed(b"]") == [{"c": "},{"}]
    assert parser.feed(b"}") == []
    assert parser.finish() == ()


def test_element_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(series_stream, "MAX_ELEMENT_BYTES", 1000)
    parser = SeriesStreamParser()
    parser.feed(b'{"status":"success","data":[{"a":"b"},{"long":"')
    with pytest.raises(MalformedResponse, match="longer than 1000 bytes"):
        for _ in range(20):
            parser.feed(b"x" * 100)


def random_value(rng: random.Random) -> str:
    pieces = [*TRICKY_VALUES, "pod-", "namespace", "0", ",", "}", '"', "{"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))


def random_body(rng: random.Random) -> bytes:
    data = [
        {random_value(rng) or "k": random_value(rng) for _ in range(rng.randint(0, 5))}
        for _ in range(rng.randint(0, 8))
    ]
    return random_envelope(rng, data, random_value(rng))


def random_envelope(rng: random.Random, data: object, warning: str) -> bytes:
    """A success envelope around `data` as some encoder might write it: keys in any order,
    maybe a warning, maybe ASCII escapes, maybe whitespace between tokens."""
    doc: dict[str, object] = {"status": "success", "data": data}
    if rng.random() < 0.5:
        doc["warnings"] = [warning]
    items = list(doc.items())
    rng.shuffle(items)
    body = json.dumps(dict(items), ensure_ascii=rng.random() < 0.5).encode()
    if rng.random() < 0.3:  # whitespace between tokens (and, harmlessly, inside strings)
        body = body.replace(b", ", b"  ,  ").replace(b": ", b" :  ")
    return body


def random_cuts(rng: random.Random, body: bytes) -> Sequence[bytes]:
    cuts = sorted(rng.randint(0, len(body)) for _ in range(rng.randint(0, 6)))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


def test_random_bodies_match_whole_parsing() -> None:
    rng = random.Random(20240601)
    for _ in range(2000):
        body = random_body(rng)
        assert parse(random_cuts(rng, body)) == whole(body), body


def test_random_corruptions_fail_like_whole_parsing() -> None:
    """Cut a byte out of or into a valid body: if the whole body then parses, so do the
    chunks, to the same result; if it does not, both fail."""
    rng = random.Random(7)
    for _ in range(2000):
        body = bytearray(random_body(rng))
        at = rng.randrange(len(body))
        if rng.random() < 0.5:
            del body[at]
        else:
            body.insert(at, rng.choice(b'{}[],:" \\x1'))
        try:
            expected: object = whole(bytes(body))
        except ResponseProblem:
            expected = ResponseProblem
        try:
            got: object = parse(random_cuts(rng, bytes(body)))
        except ResponseProblem:
            got = ResponseProblem
        assert got == expected, bytes(body)


def test_memory_is_bounded_by_the_chunk_not_the_body() -> None:
    element = {
        "__name__": "container_cpu_usage_seconds_total",
        "container": "app",
        "namespace": "ns-1",
        "pod": "app-7d9f8c6b5-x7k2q",
        "id": "/kubepods/burstable/pod0123/" + "ab" * 32,
    }
    head = b'{"status":"success","data":['
    one = orjson.dumps(element)
    count = 40_000  # about 7 MB of body
    chunk = 64 * 1024
    body_size = len(head) + count * (len(one) + 1) + 2
    tracemalloc.start()
    try:
        parser = SeriesStreamParser()
        parser.feed(head)
        seen = 0
        pending = b""
        for index in range(count):
            pending += one + (b"," if index < count - 1 else b"]}")
            if len(pending) >= chunk:
                seen += len(parser.feed(pending))  # the batch is dropped at once
                pending = b""
        seen += len(parser.feed(pending))
        parser.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < 2_000_000 < body_size  # a chunk, its series and the buffers
