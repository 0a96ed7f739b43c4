"""encode_yaml against the bytes k8s.io/apimachinery's YAML serializer writes.

Each expected byte string was derived by hand from go-yaml v2.4.0's rules (encode.go stringv,
resolve.go, sorter.go keyList.Less, emitterc.go) and sigs.k8s.io/yaml's JSONToYAML, and was
checked against the Go library itself (gopkg.in/yaml.v2 v2.4.0 behind sigs.k8s.io/yaml).
"""

import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.server.yaml_encoding import encode_yaml

_STATUS = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": 'pods.custom.metrics.k8s.io "http_requests" not found',
    "reason": "NotFound",
    "details": {},
    "code": 404,
}
_STATUS_YAML = b"""apiVersion: v1
code: 404
details: {}
kind: Status
message: pods.custom.metrics.k8s.io "http_requests" not found
metadata: {}
reason: NotFound
status: Failure
"""

_STATUS_WITH_DETAILS = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "the server could not find the requested resource",
    "reason": "NotFound",
    "details": {"name": "http_requests", "group": "custom.metrics.k8s.io", "kind": "pods"},
    "code": 404,
}
_STATUS_WITH_DETAILS_YAML = b"""apiVersion: v1
code: 404
details:
  group: custom.metrics.k8s.io
  kind: pods
  name: http_requests
kind: Status
message: the server could not find the requested resource
metadata: {}
reason: NotFound
status: Failure
"""


def _metric_value(name: str, value: str) -> dict[str, Any]:
    return {
        "describedObject": {
            "kind": "Pod",
            "namespace": "default",
            "name": name,
            "apiVersion": "/v1",
        },
        "metric": {"name": "http_requests_per_second", "selector": None},
        "timestamp": "2024-01-02T03:04:05Z",
        "value": value,
    }


_METRIC_VALUE_LIST = {
    "kind": "MetricValueList",
    "apiVersion": "custom.metrics.k8s.io/v1beta2",
    "metadata": {},
    "items": [
        _metric_value("web-0", "300m"),
        _metric_value("web-1", "0"),
        _metric_value("web-2", "1"),
    ],
}
# Timestamps, "0" and "1" resolve to non-strings, so they are double-quoted; 300m and /v1 stay
# plain. Items of a sequence that is a map's value are not indented.
_METRIC_VALUE_LIST_YAML = b"""apiVersion: custom.metrics.k8s.io/v1beta2
items:
- describedObject:
    apiVersion: /v1
    kind: Pod
    name: web-0
    namespace: default
  metric:
    name: http_requests_per_second
    selector: null
  timestamp: "2024-01-02T03:04:05Z"
  value: 300m
- describedObject:
    apiVersion: /v1
    kind: Pod
    name: web-1
    namespace: default
  metric:
    name: http_requests_per_second
    selector: null
  timestamp: "2024-01-02T03:04:05Z"
  value: "0"
- describedObject:
    apiVersion: /v1
    kind: Pod
    name: web-2
    namespace: default
  metric:
    name: http_requests_per_second
    selector: null
  timestamp: "2024-01-02T03:04:05Z"
  value: "1"
kind: MetricValueList
metadata: {}
"""

_POD_METRICS_LIST = {
    "kind": "PodMetricsList",
    "apiVersion": "metrics.k8s.io/v1beta1",
    "metadata": {},
    "items": [
        {
            "metadata": {
                "name": "web-7c9f8d6b5-x2k4p",
                "namespace": "default",
                "creationTimestamp": "2024-01-02T03:04:05Z",
                "labels": {
                    "pod-template-hash": "7c9f8d6b5",
                    "app.kubernetes.io/name": "web",
                    "tier": "frontend",
                    "app": "web",
                },
            },
            "timestamp": "2024-01-02T03:04:00Z",
            "window": "1m0s",
            "containers": [
                {"name": "app", "usage": {"cpu": "250m", "memory": "128Mi"}},
                {"name": "sidecar", "usage": {"cpu": "1", "memory": "0"}},
            ],
        }
    ],
}
_POD_METRICS_LIST_YAML = b"""apiVersion: metrics.k8s.io/v1beta1
items:
- containers:
  - name: app
    usage:
      cpu: 250m
      memory: 128Mi
  - name: sidecar
    usage:
      cpu: "1"
      memory: "0"
  metadata:
    creationTimestamp: "2024-01-02T03:04:05Z"
    labels:
      app: web
      app.kubernetes.io/name: web
      pod-template-hash: 7c9f8d6b5
      tier: frontend
    name: web-7c9f8d6b5-x2k4p
    namespace: default
  timestamp: "2024-01-02T03:04:00Z"
  window: 1m0s
kind: PodMetricsList
metadata: {}
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(_STATUS, _STATUS_YAML, id="status"),
        pytest.param(_STATUS_WITH_DETAILS, _STATUS_WITH_DETAILS_YAML, id="status-details"),
        pytest.param(_METRIC_VALUE_LIST, _METRIC_VALUE_LIST_YAML, id="metric-value-list"),
        pytest.param(_POD_METRICS_LIST, _POD_METRICS_LIST_YAML, id="pod-metrics-list"),
    ],
)
def test_response_objects(value: object, expected: bytes) -> None:
    assert encode_yaml(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Plain: resolve() reads it back as the same string and no indicator gets in the way.
        pytest.param("web", b"v: web\n", id="plain"),
        pytest.param("300m", b"v: 300m\n", id="quantity"),
        pytest.param("a:b", b"v: a:b\n", id="colon-without-space"),
        pytest.param("a#b", b"v: a#b\n", id="hash-without-space"),
        pytest.param("yES", b"v: yES\n", id="bool-lookalike-case"),
        pytest.param("nan", b"v: nan\n", id="nan-without-dot"),
        pytest.param("<<", b"v: <<\n", id="merge-key-not-resolved"),
        pytest.param("=", b"v: =\n", id="equals"),
        pytest.param("1e400", b"v: 1e400\n", id="float-overflow-is-string"),
        pytest.param("._5", b"v: ._5\n", id="dot-underscore"),
        pytest.param("2024-02-30", b"v: 2024-02-30\n", id="no-such-day"),
        pytest.param("2024-01-02T24:00:00Z", b"v: 2024-01-02T24:00:00Z\n", id="hour-24"),
        pytest.param("2024-01-02T03:04:05", b"v: 2024-01-02T03:04:05\n", id="T-without-zone"),
        pytest.param("0xFFFFFFFFFFFFFFFFF", b"v: 0xFFFFFFFFFFFFFFFFF\n", id="hex-beyond-64-bits"),
        pytest.param("0o8", b"v: 0o8\n", id="bad-octal-prefix"),
        pytest.param("caf\u00e9", "v: caf\u00e9\n".encode(), id="latin1-raw"),
        pytest.param("\u65e5\u672c\u8a9e", "v: \u65e5\u672c\u8a9e\n".encode(), id="cjk-raw"),
        pytest.param("a\u00a0b", "v: a\u00a0b\n".encode(), id="nbsp-raw"),
        # Single-quoted: plain was asked for, the emitter refused it, single quotes can hold it.
        pytest.param("@admin", b"v: '@admin'\n", id="leading-indicator"),
        pytest.param("- a", b"v: '- a'\n", id="dash-space"),
        pytest.param("-", b"v: '-'\n", id="lone-dash"),
        pytest.param(":", b"v: ':'\n", id="lone-colon"),
        pytest.param("a: b", b"v: 'a: b'\n", id="colon-space"),
        pytest.param("a #b", b"v: 'a #b'\n", id="space-hash"),
        pytest.param("---", b"v: '---'\n", id="document-start"),
        pytest.param("...", b"v: '...'\n", id="document-end"),
        pytest.param(" lead", b"v: ' lead'\n", id="leading-space"),
        pytest.param("trail ", b"v: 'trail '\n", id="trailing-space"),
        pytest.param("it's: x", b"v: 'it''s: x'\n", id="quote-doubled"),
        pytest.param("[a]", b"v: '[a]'\n", id="flow-sequence"),
        pytest.param("{a}", b"v: '{a}'\n", id="flow-mapping"),
        pytest.param("*ref", b"v: '*ref'\n", id="alias"),
        pytest.param("!tag", b"v: '!tag'\n", id="tag"),
        pytest.param("%x", b"v: '%x'\n", id="directive"),
        pytest.param('"q"', b"v: '\"q\"'\n", id="leading-double-quote"),
        # Double-quoted: resolve() would read the plain text as another type.
        pytest.param("", b'v: ""\n', id="empty-is-null"),
        pytest.param("true", b'v: "true"\n', id="bool"),
        pytest.param("Yes", b'v: "Yes"\n', id="yes"),
        pytest.param("y", b'v: "y"\n', id="y"),
        pytest.param("N", b'v: "N"\n', id="n"),
        pytest.param("on", b'v: "on"\n', id="on"),
        pytest.param("OFF", b'v: "OFF"\n', id="off"),
        pytest.param("null", b'v: "null"\n', id="null"),
        pytest.param("~", b'v: "~"\n', id="tilde"),
        pytest.param("0", b'v: "0"\n', id="zero"),
        pytest.param("-1", b'v: "-1"\n', id="negative"),
        pytest.param("+1", b'v: "+1"\n', id="plus"),
        pytest.param("1.5", b'v: "1.5"\n', id="float"),
        pytest.param("1.", b'v: "1."\n', id="float-trailing-dot"),
        pytest.param(".5", b'v: ".5"\n', id="float-leading-dot"),
        pytest.param("1e3", b'v: "1e3"\n', id="exponent"),
        pytest.param("1_000", b'v: "1_000"\n', id="underscores"),
        pytest.param("0x1F", b'v: "0x1F"\n', id="hex"),
        pytest.param("0o17", b'v: "0o17"\n', id="octal-prefix"),
        pytest.param("017", b'v: "017"\n', id="octal"),
        pytest.param("08", b'v: "08"\n', id="bad-octal-reads-as-float"),
        pytest.param("0b101", b'v: "0b101"\n', id="binary"),
        pytest.param("0b-1", b'v: "0b-1"\n', id="signed-binary"),
        pytest.param(".inf", b'v: ".inf"\n', id="inf"),
        pytest.param("-.Inf", b'v: "-.Inf"\n', id="negative-inf"),
        pytest.param(".NaN", b'v: ".NaN"\n', id="dot-nan"),
        pytest.param("1:20", b'v: "1:20"\n', id="base60"),
        pytest.param("99999999999999999999", b'v: "99999999999999999999"\n', id="beyond-uint64"),
        pytest.param("2024-01-02", b'v: "2024-01-02"\n', id="date"),
        pytest.param("2024-1-2", b'v: "2024-1-2"\n', id="short-date"),
        pytest.param("2024-01-02T03:04:05Z", b'v: "2024-01-02T03:04:05Z"\n', id="timestamp"),
        pytest.param(
            "2024-01-02t03:04:05.5+01:00", b'v: "2024-01-02t03:04:05.5+01:00"\n', id="zone"
        ),
        pytest.param("2024-01-02  03:04:05", b'v: "2024-01-02  03:04:05"\n', id="spaced-time"),
        # Double-quoted: characters neither plain nor single quotes can hold.
        pytest.param("tab\there", b'v: "tab\\there"\n', id="tab"),
        pytest.param("cr\rx", b'v: "cr\\rx"\n', id="carriage-return"),
        pytest.param("a\x00b\x07\x1b", b'v: "a\\0b\\a\\e"\n', id="controls"),
        pytest.param("\U0001f600", b'v: "\\U0001F600"\n', id="beyond-bmp-escaped"),
        pytest.param("x\ufeffy", b'v: "x\\uFEFFy"\n', id="bom-inside"),
        pytest.param("a\\b\\", b"v: a\\b\\\n", id="backslash-plain"),
        pytest.param('\\"', b'v: \\"\n', id="backslash-quote-plain"),
        # emitterc.go's is_bom checks the value's start for every character: all escaped.
        pytest.param("\ufeffab c", b'v: "\\uFEFF\\x61\\x62\\x20\\x63"\n', id="leading-bom"),
        # JSON round trip: json.Marshal leaves NEL raw, the YAML scanner folds it as a break.
        pytest.param("a\x85b", b"v: a b\n", id="nel-folded"),
        pytest.param("a \x85  b", b"v: a b\n", id="nel-with-spaces"),
        pytest.param("a\x85\x85b", b"v: |-\n  a\n  b\n", id="two-nels"),
        pytest.param("\ud800x", "v: \ufffdx\n".encode(), id="lone-surrogate"),
    ],
)
def test_string_styles(text: str, expected: bytes) -> None:
    assert encode_yaml({"v": text}) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("line1\nline2", b"v: |-\n  line1\n  line2\n", id="strip"),
        pytest.param("line1\nline2\n", b"v: |\n  line1\n  line2\n", id="clip"),
        pytest.param("line1\n\n", b"v: |+\n  line1\n\n", id="keep"),
        pytest.param("\n", b"v: |2+\n\n", id="only-newline"),
        pytest.param(" indented\nx", b"v: |2-\n   indented\n  x\n", id="indent-indicator"),
        pytest.param("\nfirst", b"v: |2-\n\n  first\n", id="leading-newline"),
        pytest.param("a\n\nb", b"v: |-\n  a\n\n  b\n", id="blank-line"),
        pytest.param("#x\n- y", b"v: |-\n  #x\n  - y\n", id="indicators-kept"),
        # A space before a break or a trailing space rules out block style and single quotes.
        pytest.param("a \nb", b'v: "a \\nb"\n', id="space-before-break"),
        pytest.param("a\nb ", b'v: "a\\nb "\n', id="trailing-space"),
        pytest.param("a\n\tb", b'v: "a\\n\\tb"\n', id="tab-rules-out-block"),
        pytest.param("a\tb\n\x07", b'v: "a\\tb\\n\\a"\n', id="control-character"),
        # A line separator breaks the line; single quotes close right after it (no indent),
        # and a literal ending in one has no final newline at all.
        pytest.param("a b\u2028", "v: 'a b\u2028'\n".encode(), id="single-quoted-ls-end"),
        pytest.param("a\u2029b", "v: 'a\u2029  b'\n".encode(), id="single-quoted-ps-inside"),
        pytest.param("a\n\u2028", "v: |+\n  a\n\u2028".encode(), id="literal-ls-end"),
    ],
)
def test_multi_line_strings(text: str, expected: bytes) -> None:
    assert encode_yaml({"v": text}) == expected


def test_multi_line_key_is_a_complex_key() -> None:
    assert encode_yaml({"a\nb": 1, "c": 2}) == b"? |-\n  a\n  b\n: 1\nc: 2\n"


def test_key_over_128_bytes_is_a_complex_key() -> None:
    key = "k" * 129
    assert encode_yaml({key: 1, "k": [2]}) == f"k:\n- 2\n? {key}\n: 1\n".encode()
    # 64 two-byte characters (128 bytes) still make a simple key; 65 (130 bytes) do not.
    assert encode_yaml({"\u00e9" * 64: 1}) == ("\u00e9" * 64 + ": 1\n").encode()
    assert encode_yaml({"\u00e9" * 65: 1}) == ("? " + "\u00e9" * 65 + "\n: 1\n").encode()


def test_quoted_keys() -> None:
    value = {"true": 1, "on": 2, "0": 3, "@k": 4, "a b": 5, "": 6, "k\tv": 7}
    assert encode_yaml(value) == (
        b'"": 6\n\'@k\': 4\n"0": 3\na b: 5\n"k\\tv": 7\n"on": 2\n"true": 1\n'
    )


@pytest.mark.parametrize(
    ("keys", "expected_order"),
    [
        # A character that is no letter sorts before a letter; letters by code point.
        pytest.param(["a10", "a2", "B", "_x"], ["_x", "B", "a2", "a10"], id="digits-letters"),
        pytest.param(["x001", "x01", "x1"], ["x1", "x01", "x001"], id="equal-numbers-shorter"),
        pytest.param(["v2", "v1beta1", "v1"], ["v1", "v1beta1", "v2"], id="api-versions"),
        pytest.param(["ab", "a.b", "a-b"], ["a-b", "a.b", "ab"], id="punctuation"),
        pytest.param(["\u00e9", "z", "Z", "_"], ["_", "Z", "z", "\u00e9"], id="unicode"),
        pytest.param(
            ["pod-template-hash", "app.kubernetes.io/name", "app", "tier"],
            ["app", "app.kubernetes.io/name", "pod-template-hash", "tier"],
            id="labels",
        ),
        pytest.param(["10", "9", "100", "09"], ["9", "09", "10", "100"], id="numbers"),
    ],
)
def test_key_order(keys: list[str], expected_order: list[str]) -> None:
    encoded = encode_yaml(dict.fromkeys(keys, 0)).decode()
    order = [yaml.safe_load(line.rsplit(":", 1)[0]) for line in encoded.splitlines()]
    assert [str(key) for key in order] == expected_order


def test_key_order_exact_bytes() -> None:
    assert encode_yaml({"a10": 1, "a2": 2, "B": 3, "_x": 4}) == b"_x: 4\nB: 3\na2: 2\na10: 1\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Plain text breaks at the first space past column 80; the next line is indented.
        pytest.param(
            {
                "description": "The quick brown fox jumps over the lazy dog and keeps running"
                " far beyond the eightieth column of this line"
            },
            b"description: The quick brown fox jumps over the lazy dog and keeps running far beyond\n"
            b"  the eightieth column of this line\n",
            id="plain",
        ),
        pytest.param(
            {"v": "\t" + " ".join(["lorem"] * 20)},
            b'v: "\\tlorem lorem lorem lorem lorem lorem lorem lorem lorem lorem lorem lorem lorem\n'
            b'  lorem lorem lorem lorem lorem lorem lorem"\n',
            id="double-quoted",
        ),
        # A space run at the break: the next line starts with an escaped space.
        pytest.param(
            {"v": "\t" + " ".join(["lorem"] * 13) + "  next"},
            b'v: "\\tlorem lorem lorem lorem lorem lorem lorem lorem lorem lorem lorem lorem lorem\n'
            b'  \\ next"\n',
            id="double-quoted-space-run",
        ),
        pytest.param(
            {"v": "- " + " ".join(["ipsum"] * 16)},
            b"v: '- ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum ipsum\n"
            b"  ipsum ipsum ipsum'\n",
            id="single-quoted",
        ),
        # No space, no break: a long word stays on one line.
        pytest.param({"v": "x" * 100}, b"v: " + b"x" * 100 + b"\n", id="no-space"),
        # Nested deeper, continuation lines follow the scalar's indentation.
        pytest.param(
            {"a": [{"b": " ".join(["word"] * 20)}]},
            b"a:\n- b: word word word word word word word word word word word word word word word word\n"
            b"    word word word word\n",
            id="nested",
        ),
        # Literal blocks are never wrapped.
        pytest.param(
            {"v": "y " * 50 + "y\nz"},
            b"v: |-\n  " + b"y " * 50 + b"y\n  z\n",
            id="literal-not-wrapped",
        ),
    ],
)
def test_long_strings(value: object, expected: bytes) -> None:
    assert encode_yaml(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({}, b"{}\n", id="empty-map"),
        pytest.param([], b"[]\n", id="empty-list"),
        pytest.param(
            {"a": {}, "b": [], "c": [{}, []]}, b"a: {}\nb: []\nc:\n- {}\n- []\n", id="nested-empty"
        ),
        pytest.param(None, b"null\n", id="null"),
        pytest.param("hello", b"hello\n", id="string"),
        pytest.param("true", b'"true"\n', id="quoted-string"),
        pytest.param("a\nb", b"|-\n  a\n  b\n", id="literal"),
        pytest.param(True, b"true\n", id="true"),
        pytest.param(False, b"false\n", id="false"),
        pytest.param(7, b"7\n", id="int"),
    ],
)
def test_top_level_values(value: object, expected: bytes) -> None:
    assert encode_yaml(value) == expected


def test_nested_lists() -> None:
    value = [[1, 2], [3, [4, [5]]], {"k": [[6], {"m": [7]}]}, ("t",)]
    assert encode_yaml(value) == (
        b"- - 1\n  - 2\n- - 3\n  - - 4\n    - - 5\n- k:\n  - - 6\n  - m:\n    - 7\n- - t\n"
    )


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        pytest.param(0, b"0", id="zero"),
        pytest.param(-5, b"-5", id="negative"),
        pytest.param(2**63 - 1, b"9223372036854775807", id="int64-max"),
        pytest.param(2**63, b"9223372036854775808", id="uint64"),
        pytest.param(2**64 - 1, b"18446744073709551615", id="uint64-max"),
        # Beyond 64 bits go-yaml reads the JSON number as a float64.
        pytest.param(2**64, b"1.8446744073709552e+19", id="beyond-uint64"),
        pytest.param(-(2**63) - 1, b"-9.223372036854776e+18", id="below-int64"),
        pytest.param(10**400, b"1" + b"0" * 400, id="beyond-float64-stays-text"),
        pytest.param(0.5, b"0.5", id="fraction"),
        pytest.param(3.0, b"3", id="integral-float"),
        pytest.param(-0.0, b"0", id="negative-zero"),
        pytest.param(1e6, b"1000000", id="million"),
        # json.Marshal writes the shortest digits padded with zeros, read back as an integer.
        pytest.param(-90863803841649584.0, b"-90863803841649580", id="shortest-digits"),
        pytest.param(1e20, b"1e+20", id="integral-beyond-uint64"),
        pytest.param(1e21, b"1e+21", id="exponent-json"),
        pytest.param(123456789.5, b"1.234567895e+08", id="g-exponent"),
        pytest.param(123456.7, b"123456.7", id="g-plain"),
        pytest.param(0.0001, b"0.0001", id="small"),
        pytest.param(1e-5, b"1e-05", id="smaller"),
        pytest.param(1e-7, b"1e-07", id="exponent-two-digits"),
        pytest.param(5e-324, b"5e-324", id="subnormal"),
        pytest.param(1.7976931348623157e308, b"1.7976931348623157e+308", id="max"),
        pytest.param(math.inf, b".inf", id="inf"),
        pytest.param(-math.inf, b"-.inf", id="negative-inf"),
        pytest.param(math.nan, b".nan", id="nan"),
    ],
)
def test_numbers(number: float, expected: bytes) -> None:
    assert encode_yaml({"x": number}) == b"x: " + expected + b"\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # go-yaml's reader refuses U+007F, C1 controls, U+FFFE and U+FFFF.
        pytest.param({"v": "\x7f\x80\ufffe"}, b'v: "\\x7F\\x80\\uFFFE"\n', id="refused-characters"),
        # A NEL in a key: a simple key spanning two lines to go-yaml's scanner.
        pytest.param({"a\x85b": 1}, b"a b: 1\n", id="nel-in-key"),
        # json.Marshal writes "a b" before "a\x85b" (byte order); decoded, both are "a b" and
        # the later wins.
        pytest.param({"a\x85b": 1, "a b": 2}, b"a b: 1\n", id="keys-made-equal"),
        pytest.param({"k" * 1100: 1}, b"? " + b"k" * 1100 + b"\n: 1\n", id="key-over-1024-bytes"),
    ],
)
def test_where_go_fails_we_write_valid_yaml(value: object, expected: bytes) -> None:
    assert encode_yaml(value) == expected


@pytest.mark.parametrize("value", [{1: "x"}, {"k": {1.5}}, object(), b"bytes"])
def test_rejects_what_is_not_json_like(value: object) -> None:
    with pytest.raises(TypeError):
        encode_yaml(value)


# --- properties -------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """PyYAML's YAML 1.1 loader without the "=" (value) and "<<" (merge) tags, which go-yaml's
    resolve() reads as plain strings."""


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:value", "tag:yaml.org,2002:merge")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_SPECIAL_WORDS = [
    *("y", "Y", "yes", "No", "on", "OFF", "true", "False", "null", "~", "NULL", "", "<<", "="),
    *("0", "1", "-1", "+1", "1.5", "1.", ".5", "1e3", "1E+3", ".inf", "-.Inf", ".nan", "nan"),
    *("0x1F", "0o17", "0b101", "017", "08", "1_000", "1:20", "300m", "1Gi", "2024-01-02"),
    *("2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "-", "---", "...", "- a", "? x", ": x"),
    *("a: b", "a #b", "#x", "!x", "&a", "*a", "|", ">", "'", '"', "%", "@", "`", "[a]", "{a}"),
    *(",", "a\nb", "a\n", "\n", "\n\n", " a", "a ", "a \nb", "\ufeffx", "\u00e9", "\U0001f600"),
    *("\t", "a\\b", "app.kubernetes.io/name", "x" * 90 + " " + "y" * 10),
]
# Printable text, and the breaks and tabs JSON escapes; no NEL (folded by the round trip) nor
# line/paragraph separators.
_PRINTABLE = st.characters(
    exclude_categories=("Cs", "Cc", "Zl", "Zp", "Cn"), include_characters="\n\t\r"
)


def _pyyaml_reads_as_string(text: str) -> bool:
    # Random text that PyYAML's resolver would type (its YAML 1.1 regexes differ from
    # go-yaml's in corner cases such as "._5") is left to the table tests above.
    resolvers = [
        *_Loader.yaml_implicit_resolvers.get(text[:1], []),
        *_Loader.yaml_implicit_resolvers.get(None, []),
    ]
    return not any(regexp.match(text) for _, regexp in resolvers)


_STRINGS = st.one_of(
    st.sampled_from(_SPECIAL_WORDS),
    st.text(_PRINTABLE, max_size=120).filter(_pyyaml_reads_as_string),
    st.lists(st.sampled_from(["ab", "cd", " ", "  ", "x" * 30]), max_size=20)
    .map("".join)
    .filter(_pyyaml_reads_as_string),
)
# Floats whose Go formatting PyYAML reads back as the same number ("1e-07" needs a dot there).
_FLOATS = st.floats(min_value=-1e5, max_value=1e5).filter(lambda f: f == 0 or abs(f) >= 1e-4)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    _FLOATS,
    _STRINGS,
)
_JSON_LIKE = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(_STRINGS, children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON_LIKE)
def test_round_trips_through_a_yaml_parser(value: object) -> None:
    assert yaml.load(encode_yaml(value), Loader=_Loader) == value


# Any code point, lone surrogates included.
_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)
_ANYTHING = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _ANY_TEXT),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_ANY_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_ANYTHING)
def test_never_raises_for_json_like_values(value: object) -> None:
    assert isinstance(encode_yaml(value), bytes)
