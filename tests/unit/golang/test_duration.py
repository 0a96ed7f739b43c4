import math

import pytest

from adapter.golang.duration import (
    DurationError,
    format_go_duration,
    format_go_duration_ns,
    format_prometheus_duration,
    format_prometheus_duration_ns,
    parse_go_duration,
    parse_go_duration_ns,
    parse_prometheus_duration,
    parse_prometheus_duration_ns,
)

NS = 1
US = 1000 * NS
MS = 1000 * US
S = 1000 * MS
M = 60 * S
H = 60 * M
D = 24 * H
W = 7 * D
Y = 365 * D
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)

# --- Prometheus model.ParseDuration / Duration.String -------------------------------


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        pytest.param("0", 0, id="bare-zero"),
        pytest.param("0s", 0, id="zero-seconds"),
        pytest.param("5m", 5 * M, id="5m"),
        pytest.param("1h30m", H + 30 * M, id="1h30m"),
        pytest.param("500ms", 500 * MS, id="500ms"),
        pytest.param("1w", W, id="1w"),
        pytest.param("1y", Y, id="1y"),
        pytest.param("324ms", 324 * MS, id="324ms"),
        pytest.param("3s", 3 * S, id="3s"),
        pytest.param("14d", 14 * D, id="14d"),
        pytest.param("3w", 3 * W, id="3w"),
        pytest.param("10y", 10 * Y, id="10y"),
        pytest.param("4h", 4 * H, id="4h"),
        pytest.param(
            "1y2w3d4h5m6s7ms", Y + 2 * W + 3 * D + 4 * H + 5 * M + 6 * S + 7 * MS, id="all"
        ),
        pytest.param("0005m", 5 * M, id="leading-zeros"),
        pytest.param("292y", 292 * Y, id="292y-fits"),
        pytest.param("106751d23h47m16s854ms", 9223372036854 * MS, id="largest"),
    ],
)
def test_parse_prometheus_duration(text: str, expected_ns: int) -> None:
    assert parse_prometheus_duration_ns(text) == expected_ns
    assert parse_prometheus_duration(text) == expected_ns / S


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "empty duration string", id="empty"),
        pytest.param("5x", 'unknown unit "x" in duration "5x"', id="unknown-unit"),
        pytest.param("1M", 'unknown unit "M" in duration "1M"', id="unit-is-case-sensitive"),
        pytest.param("1ns", 'unknown unit "ns" in duration "1ns"', id="no-nanoseconds"),
        pytest.param("x5m", 'not a valid duration string: "x5m"', id="leading-letter"),
        pytest.param("-5m", 'not a valid duration string: "-5m"', id="no-sign"),
        pytest.param("1.5h", 'unknown unit "." in duration "1.5h"', id="no-fraction"),
        pytest.param("5", 'not a valid duration string: "5"', id="missing-unit"),
        pytest.param("1m1h", 'not a valid duration string: "1m1h"', id="units-out-of-order"),
        pytest.param("1m1m", 'not a valid duration string: "1m1m"', id="unit-repeated"),
        pytest.param("5m ", 'unknown unit "m " in duration "5m "', id="trailing-space"),
        pytest.param(
            "99999999999999999999s",
            'not a valid duration string: "99999999999999999999s"',
            id="parse-uint-overflow",
        ),
        pytest.param("293y", "duration out of range", id="unit-overflow"),
        pytest.param("106751d23h47m16s855ms", "duration out of range", id="sum-overflow"),
        pytest.param(
            "5\tm", 'unknown unit "\\tm" in duration "5\\tm"', id="quoted-with-go-escapes"
        ),
    ],
)
def test_parse_prometheus_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_prometheus_duration_ns(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        pytest.param(0, "0s", id="zero"),
        pytest.param(999 * US, "0s", id="below-millisecond"),
        pytest.param(500 * MS, "500ms", id="500ms"),
        pytest.param(5 * M, "5m", id="5m"),
        pytest.param(H + 30 * M, "1h30m", id="1h30m"),
        pytest.param(W, "1w", id="1w"),
        pytest.param(8 * D, "8d", id="weeks-only-when-exact"),
        pytest.param(90 * D, "90d", id="90d"),
        pytest.param(Y, "1y", id="1y"),
        pytest.param(2 * Y + 3 * D, "733d", id="years-only-when-exact"),
        pytest.param(D + H + M + S + MS, "1d1h1m1s1ms", id="every-small-unit"),
        pytest.param(-5 * M, "-5m", id="negative"),
        pytest.param(-(MS - 1), "0s", id="negative-truncates-to-zero"),
    ],
)
def test_format_prometheus_duration(ns: int, expected: str) -> None:
    assert format_prometheus_duration_ns(ns) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(300, "5m", id="5m"),
        pytest.param(5400.0, "1h30m", id="1h30m"),
        pytest.param(0, "0s", id="0s"),
        pytest.param(604800, "1w", id="1w"),
        pytest.param(0.5, "500ms", id="500ms"),
        pytest.param(0.3, "300ms", id="float-0.3-no-drift"),
    ],
)
def test_format_prometheus_duration_seconds(seconds: float, expected: str) -> None:
    assert format_prometheus_duration(seconds) == expected


@pytest.mark.parametrize(
    "text",
    ["5m", "1h30m", "1w", "500ms", "1y", "8d", "1d1h1m1s1ms", "0s"],
)
def test_prometheus_round_trip(text: str) -> None:
    assert format_prometheus_duration(parse_prometheus_duration(text)) == text


# --- Go time.ParseDuration / Duration.String (table tests from time_test.go) ---------


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        # simple
        pytest.param("0", 0, id="0"),
        pytest.param("5s", 5 * S, id="5s"),
        pytest.param("30s", 30 * S, id="30s"),
        pytest.param("1478s", 1478 * S, id="1478s"),
        # sign
        pytest.param("-5s", -5 * S, id="-5s"),
        pytest.param("+5s", 5 * S, id="+5s"),
        pytest.param("-0", 0, id="-0"),
        pytest.param("+0", 0, id="+0"),
        # decimal
        pytest.param("5.0s", 5 * S, id="5.0s"),
        pytest.param("5.6s", 5 * S + 600 * MS, id="5.6s"),
        pytest.param("5.s", 5 * S, id="5.s"),
        pytest.param(".5s", 500 * MS, id=".5s"),
        pytest.param("1.0s", S, id="1.0s"),
        pytest.param("1.00s", S, id="1.00s"),
        pytest.param("1.004s", S + 4 * MS, id="1.004s"),
        pytest.param("1.0040s", S + 4 * MS, id="1.0040s"),
        pytest.param("100.00100s", 100 * S + MS, id="100.00100s"),
        # different units
        pytest.param("10ns", 10 * NS, id="10ns"),
        pytest.param("11us", 11 * US, id="11us"),
        pytest.param("12\u00b5s", 12 * US, id="12-micro-sign-s"),
        pytest.param("12\u03bcs", 12 * US, id="12-greek-mu-s"),
        pytest.param("13ms", 13 * MS, id="13ms"),
        pytest.param("14s", 14 * S, id="14s"),
        pytest.param("15m", 15 * M, id="15m"),
        pytest.param("16h", 16 * H, id="16h"),
        # composite durations
        pytest.param("3h30m", 3 * H + 30 * M, id="3h30m"),
        pytest.param("10.5s4m", 4 * M + 10 * S + 500 * MS, id="10.5s4m"),
        pytest.param("-2m3.4s", -(2 * M + 3 * S + 400 * MS), id="-2m3.4s"),
        pytest.param(
            "1h2m3s4ms5us6ns", H + 2 * M + 3 * S + 4 * MS + 5 * US + 6 * NS, id="1h2m3s4ms5us6ns"
        ),
        pytest.param("39h9m14.425s", 39 * H + 9 * M + 14 * S + 425 * MS, id="39h9m14.425s"),
        # large value
        pytest.param("52763797000ns", 52763797000 * NS, id="52763797000ns"),
        # more than 9 digits after decimal point, golang.org/issue/6617
        pytest.param("0.3333333333333333333h", 20 * M, id="many-fraction-digits"),
        # 1<<53+1 cannot be stored precisely in a float64
        pytest.param("9007199254740993ns", (1 << 53) + 1, id="2-53-plus-1"),
        # largest duration that can be represented by int64 in nanoseconds
        pytest.param("9223372036854775807ns", INT64_MAX, id="max-ns"),
        pytest.param("9223372036854775.807us", INT64_MAX, id="max-us"),
        pytest.param("9223372036s854ms775us807ns", INT64_MAX, id="max-composite"),
        pytest.param("-9223372036854775808ns", INT64_MIN, id="min-ns"),
        pytest.param("-9223372036854775.808us", INT64_MIN, id="min-us"),
        pytest.param("-9223372036s854ms775us808ns", INT64_MIN, id="min-composite"),
        # largest negative round trip value, golang.org/issue/48629
        pytest.param("-2562047h47m16.854775808s", INT64_MIN, id="min-round-trip"),
        # huge string; golang.org/issue/15011
        pytest.param("0.100000000000000000000h", 6 * M, id="huge-fraction"),
        # the first overflow check in leadingFraction
        pytest.param(
            "0.830103483285477580700h",
            49 * M + 48 * S + 372539827 * NS,
            id="leading-fraction-overflow",
        ),
    ],
)
def test_parse_go_duration(text: str, expected_ns: int) -> None:
    assert parse_go_duration_ns(text) == expected_ns
    assert parse_go_duration(text) == expected_ns / S


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # invalid
        pytest.param("", 'time: invalid duration ""', id="empty"),
        pytest.param("3", 'time: missing unit in duration "3"', id="3"),
        pytest.param("1", 'time: missing unit in duration "1"', id="1"),
        pytest.param("-", 'time: invalid duration "-"', id="-"),
        pytest.param("s", 'time: invalid duration "s"', id="s"),
        pytest.param("x", 'time: invalid duration "x"', id="x"),
        pytest.param(".", 'time: invalid duration "."', id="."),
        pytest.param("-.", 'time: invalid duration "-."', id="-."),
        pytest.param(".s", 'time: invalid duration ".s"', id=".s"),
        pytest.param("+.s", 'time: invalid duration "+.s"', id="+.s"),
        pytest.param("1d", 'time: unknown unit "d" in duration "1d"', id="1d"),
        pytest.param("1x", 'time: unknown unit "x" in duration "1x"', id="1x"),
        pytest.param("1.5", 'time: missing unit in duration "1.5"', id="fraction-no-unit"),
        # time's own quote escapes every non-ASCII byte
        pytest.param("\udc85\udc85", 'time: invalid duration "\\x85\\x85"', id="raw-bytes"),
        pytest.param("\udcffff", 'time: invalid duration "\\xffff"', id="raw-byte-ff"),
        pytest.param(
            "hello \udcffff world",
            'time: invalid duration "hello \\xffff world"',
            id="raw-byte-in-text",
        ),
        pytest.param("\ufffd", 'time: invalid duration "\\xef\\xbf\\xbd"', id="rune-error"),
        pytest.param(
            "\ufffd hello \ufffd world",
            'time: invalid duration "\\xef\\xbf\\xbd hello \\xef\\xbf\\xbd world"',
            id="rune-errors",
        ),
        pytest.param(
            "1\u00e9",
            'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"',
            id="non-ascii-unit",
        ),
        pytest.param('1"', 'time: unknown unit "\\"" in duration "1\\""', id="quote-escaped"),
        # overflow
        pytest.param("9223372036854775810ns", 'time: invalid duration "9223372036854775810ns"'),
        pytest.param("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        pytest.param("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        pytest.param("9223372036854776us", 'time: invalid duration "9223372036854776us"'),
        pytest.param("3000000h", 'time: invalid duration "3000000h"'),
        pytest.param("9223372036854775.808us", 'time: invalid duration "9223372036854775.808us"'),
        pytest.param(
            "9223372036854ms775us808ns", 'time: invalid duration "9223372036854ms775us808ns"'
        ),
    ],
)
def test_parse_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_go_duration_ns(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        # time_test.go durationTests
        pytest.param(0, "0s", id="0s"),
        pytest.param(1 * NS, "1ns", id="1ns"),
        pytest.param(1100 * NS, "1.1\u00b5s", id="1.1us"),
        pytest.param(2200 * US, "2.2ms", id="2.2ms"),
        pytest.param(3300 * MS, "3.3s", id="3.3s"),
        pytest.param(4 * M + 5 * S, "4m5s", id="4m5s"),
        pytest.param(4 * M + 5001 * MS, "4m5.001s", id="4m5.001s"),
        pytest.param(5 * H + 6 * M + 7001 * MS, "5h6m7.001s", id="5h6m7.001s"),
        pytest.param(8 * M + 1 * NS, "8m0.000000001s", id="8m0.000000001s"),
        pytest.param(INT64_MAX, "2562047h47m16.854775807s", id="max"),
        pytest.param(INT64_MIN, "-2562047h47m16.854775808s", id="min"),
        # the forms the adapter prints
        pytest.param(5 * M, "5m0s", id="5m0s"),
        pytest.param(H + 30 * M, "1h30m0s", id="1h30m0s"),
        pytest.param(30 * S, "30s", id="30s"),
        pytest.param(1500 * MS, "1.5s", id="1.5s"),
        pytest.param(500 * MS, "500ms", id="500ms"),
        pytest.param(US, "1\u00b5s", id="1us"),
        pytest.param(H, "1h0m0s", id="1h0m0s"),
        pytest.param(-1500 * MS, "-1.5s", id="negative"),
    ],
)
def test_format_go_duration(ns: int, expected: str) -> None:
    assert format_go_duration_ns(ns) == expected
    assert parse_go_duration_ns(expected) == ns


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(300, "5m0s", id="5m0s"),
        pytest.param(5400, "1h30m0s", id="1h30m0s"),
        pytest.param(30.0, "30s", id="30s"),
        pytest.param(1.5, "1.5s", id="1.5s"),
        pytest.param(0.5, "500ms", id="500ms"),
        pytest.param(0, "0s", id="0s"),
        pytest.param(1e-6, "1\u00b5s", id="1us"),
        pytest.param(0.3, "300ms", id="float-0.3-no-drift"),
        pytest.param(0.1 + 0.2, "300ms", id="float-sum-rounds-to-nanosecond"),
    ],
)
def test_format_go_duration_seconds(seconds: float, expected: str) -> None:
    assert format_go_duration(seconds) == expected


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param(-math.inf, id="negative-inf"),
        pytest.param(1e10, id="beyond-int64-nanoseconds"),
    ],
)
def test_format_rejects_unrepresentable_seconds(seconds: float) -> None:
    with pytest.raises(DurationError):
        format_go_duration(seconds)
    with pytest.raises(DurationError):
        format_prometheus_duration(seconds)


def test_duration_error_is_value_error() -> None:
    assert issubclass(DurationError, ValueError)
