"""QueryStreamParser: the same result, warnings and errors as parsing the whole body with
decode_response and parse_query_data, however the body is cut into chunks."""

import json
import random
from collections.abc import Iterable

import orjson
import pytest

from adapter.prometheus import query_stream
from adapter.prometheus.query_stream import QueryStreamParser
from adapter.prometheus.results import (
    MalformedResponse,
    QueryResult,
    ResponseProblem,
    decode_response,
    parse_query_data,
)
from tests.unit.test_series_stream import random_cuts, random_envelope


def parse(chunks: Iterable[bytes]) -> QueryResult:
    parser = QueryStreamParser()
    for chunk in chunks:
        parser.feed(chunk)
    return parser.finish()


def whole(body: bytes) -> QueryResult:
    """What decode_response and parse_query_data make of the body: the reference."""
    data, warnings = decode_response(200, "OK", body, "application/json", "GET")
    return parse_query_data(data, warnings)


def same(got: QueryResult, expected: QueryResult) -> bool:
    # repr: NaN samples compare unequal to themselves; raw_result is left out of == and repr.
    return repr(got) == repr(expected) and got.raw_result == expected.raw_result


def splits(body: bytes) -> Iterable[list[bytes]]:
    """The body whole, in two parts at every offset, and one byte at a time."""
    yield [body]
    for cut in range(len(body) + 1):
        yield [body[:cut], body[cut:]]
    yield [body[i : i + 1] for i in range(len(body))]


def assert_same_at_every_split(body: bytes) -> QueryResult:
    expected = whole(body)
    for chunks in splits(body):
        assert same(parse(chunks), expected), chunks
    return expected


def raises_at_every_split(body: bytes, error: type[ResponseProblem] = ResponseProblem) -> str:
    """The error for the whole body, which every way of cutting it raises too."""
    with pytest.raises(error) as info:
        parse([body])
    for chunks in splits(body):
        with pytest.raises(error):
            parse(chunks)
    return str(info.value)


def vector(*samples: tuple[dict[str, str], object], **envelope: object) -> bytes:
    result = [{"metric": labels, "value": [1700000000.5, value]} for labels, value in samples]
    return orjson.dumps(
        {"status": "success", "data": {"resultType": "vector", "result": result}, **envelope}
    )


TRICKY_VALUES = ["},{", '"},{"x":"y', "}]", "]},{", "\\", '\\"},{', "{}", "[{}]", "}" * 20, "é😀"]


def test_tricky_label_values_at_every_split() -> None:
    body = vector(
        *(({"pod": value, "i": str(index)}, "1") for index, value in enumerate(TRICKY_VALUES))
    )
    result = assert_same_at_every_split(body)
    assert [sample.labels["pod"] for sample in result.samples] == TRICKY_VALUES


@pytest.mark.parametrize(
    "body",
    [
        vector(({"pod": "a"}, "1"), ({}, "NaN"), ({"pod": "c"}, "+Inf")),
        vector(),
        vector(({"pod": "a"}, "2"), warnings=["w1", "w2"], infos=["i"]),
        b'{"status":"success","data":{"result":[{"metric":{"a":"x"},"value":[1,"2"]}],"resultType":"vector"}}',
        b'{"data":{"resultType":"matrix","result":[{"metric":{"a":"x"},"values":[[1,"2"],[2,"3"]]},{"metric":{},"values":[]}]},"status":"success"}',
        b'{"status":"success","data":{"resultType":"scalar","result":[1.5,"2"]}}',
        b'{"status":"success","data":{"result":[1.5,"2"],"resultType":"scalar"}}',
        b'{"status":"success","data":{"resultType":"string","result":[1.5,"s"]}}',
        b'{"status":"success","data":{"resultType":"vector","result":null}}',
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"x"},"histogram":[1,{"count":"1","buckets":[[0,"1","2","3"]]}]},{"metric":{"b":"x"},"value":[1,"1"]}]}}',
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"b":"x"},"value":[1,"1"]},{"metric":{"a":"x"},"histogram":[1,{"count":"1","buckets":[[0,"1","2","3"]]}]}]}}',
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"x"},"histograms":[[1,{"count":"1"}],[2,{"count":"2"}]]}]}}',
        b'{"extra":{"data":{"result":[{"no":"t me"}]}},"data":{"x":{"result":[1]},"resultType":"vector","result":[]},"status":"success"}',
    ],
    ids=[
        "vector",
        "empty",
        "warnings",
        "result-first",
        "matrix",
        "scalar",
        "scalar-result-first",
        "string",
        "null",
        "histogram-first",
        "histogram-last",
        "matrix-histograms",
        "result-nested-elsewhere",
    ],
)
def test_every_result_type_and_envelope(body: bytes) -> None:
    assert_same_at_every_split(body)


def test_whitespace_everywhere() -> None:
    doc = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"a": "x , y"}, "value": [1, "2"]},
                {"metric": {}, "value": [2, "3"]},
            ],
        },
    }
    pretty = json.dumps(doc, indent=3, separators=(" ,\r\n", " :\t")).encode()
    assert_same_at_every_split(b" \n" + pretty + b"\n\t ")


def test_error_envelopes() -> None:
    body = b'{"status":"error","errorType":"execution","error":"too many samples"}'
    assert raises_at_every_split(body) == "execution: too many samples"
    late = b'{"data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]},"errorType":"timeout","error":"t","status":"error"}'
    assert raises_at_every_split(late) == "timeout: t"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            b'{"status":"success","data":{"resultType":"vector","result":[1]}}',
            "vector element is not an object: 1",
        ),
        (
            b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"x"]}]}}',
            "sample value 'x' is not a number",
        ),
        (
            b'{"status":"success","data":{"resultType":"vector","result":[{"metric":[],"value":[1,"1"]}]}}',
            "metric is not an object",
        ),
        (
            b'{"status":"success","data":{"resultType":"nope","result":[]}}',
            "unknown resultType 'nope'",
        ),
        (
            b'{"status":"success","data":{"resultType":"vector","result":[]},"data":{"resultType":"vector","result":[]}}',
            'more than one "result"',
        ),
        (
            b'{"status":"success","data":{"resultType":"vector","result":[],"resultType":"matrix"}}',
            'more than one "resultType"',
        ),
    ],
)
def test_malformed_data(body: bytes, needle: str) -> None:
    assert needle in raises_at_every_split(body, MalformedResponse)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>no</html>",
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]},]}}',
        b'{"status":"success","data":{"resultType":"vector","result":[,{"metric":{},"value":[1,"1"]}]}}',
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}{"metric":{},"value":[1,"1"]}]}}',
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}}]}}',
        b'{"status":"success","data":{"resultType":"vector","result":[]}} trailing',
        b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"\xff"},"value":[1,"1"]}]}}',
    ],
)
def test_not_json(body: bytes) -> None:
    assert raises_at_every_split(body).startswith("bad_response: response body is not JSON (")


def test_every_truncation_is_an_error() -> None:
    body = vector(({"pod": "a", "x": "},{"}, "1"), ({"pod": "b"}, "2"), ({"pod": "c"}, "3"))
    for end in range(len(body)):
        with pytest.raises(ResponseProblem, match="not JSON"):
            parse([body[:end]])


def test_samples_are_made_as_the_body_arrives() -> None:
    # White box: the vector's elements become Samples run by run, not at the end.
    body = vector(*(({"pod": f"p-{n}"}, str(n)) for n in range(2000)))
    parser = QueryStreamParser()
    made = []
    for start in range(0, len(body), 4096):
        parser.feed(body[start : start + 4096])
        made.append(len(parser._samples))
        assert len(parser._buffer) < 4096 + 200  # a chunk and an unfinished element
    assert made[0] > 0 and made == sorted(made) and made[-2] < 2000
    assert len(parser.finish().samples) == 2000


def test_one_element_longer_than_the_scan_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_stream, "_SCAN_AFTER", 64)
    points = [[n, str(n)] for n in range(200)]
    body = orjson.dumps(
        {
            "status": "success",
            "data": {
                "resultType": "matrix",
                "result": [{"metric": {"a": "b"}, "values": points}] * 3,
            },
        }
    )
    for size in (1, 7, 100):
        assert same(parse(body[i : i + size] for i in range(0, len(body), size)), whole(body))


def test_fake_boundaries_in_every_label_value(monkeypatch: pytest.MonkeyPatch) -> None:
    # More fake "},{" than the fast path tries: the exact scan finds the real boundaries.
    monkeypatch.setattr(query_stream, "_SCAN_AFTER", 256)
    body = vector(*(({"pod": f"p{n}", "fake": "},{" * 40}, "1") for n in range(50)))
    for size in (5, 64, 1000):
        assert same(parse(body[i : i + size] for i in range(0, len(body), size)), whole(body))


def test_element_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_stream, "MAX_ELEMENT_BYTES", 1000)
    monkeypatch.setattr(query_stream, "_SCAN_AFTER", 100)
    parser = QueryStreamParser()
    parser.feed(b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{"long":"')
    with pytest.raises(MalformedResponse, match="longer than 1000 bytes"):
        for _ in range(20):
            parser.feed(b"x" * 100)


def random_value(rng: random.Random) -> str:
    pieces = [*TRICKY_VALUES, "pod-", "0", ",", "}", '"', "{", "]", "["]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 3)))


def random_body(rng: random.Random) -> bytes:
    result_type = rng.choice(["vector", "vector", "matrix", "scalar"])
    result: object
    if result_type == "scalar":
        result = [rng.randint(0, 9), str(rng.random())]
    else:
        key = "value" if result_type == "vector" else "values"
        elements: list[object] = []
        result = elements
        for _ in range(rng.randint(0, 6)):
            metric = {random_value(rng) or "k": random_value(rng) for _ in range(rng.randint(0, 4))}
            point = [rng.randint(0, 9), str(rng.randint(0, 9))]
            result.append(
                {"metric": metric, key: point if key == "value" else [point] * rng.randint(0, 3)}
            )
    data = [("resultType", result_type), ("result", result)]
    rng.shuffle(data)
    return random_envelope(rng, dict(data), random_value(rng))


def test_random_bodies_match_whole_parsing() -> None:
    rng = random.Random(20260601)
    for _ in range(2000):
        body = random_body(rng)
        assert same(parse(random_cuts(rng, body)), whole(body)), body


def test_random_corruptions_fail_like_whole_parsing() -> None:
    """Cut a byte out of or into a valid body: if the whole body then parses, so do the
    chunks, to the same result; if it does not, both fail."""
    rng = random.Random(11)
    for _ in range(2000):
        body = bytearray(random_body(rng))
        at = rng.randrange(len(body))
        if rng.random() < 0.5:
            del body[at]
        else:
            body.insert(at, rng.choice(b'{}[],:" \\x1'))
        try:
            expected: object = repr(whole(bytes(body)))
        except ResponseProblem:
            expected = ResponseProblem
        try:
            got: object = repr(parse(random_cuts(rng, bytes(body))))
        except ResponseProblem:
            got = ResponseProblem
        assert got == expected, bytes(body)
