import math

import pytest

from adapter.apimachinery.quantity import (
    INT64_MAX,
    INT64_MIN,
    binary_si_quantity,
    decimal_si_quantity,
    format_binary_si,
    format_decimal_si,
    milli_from_float,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.016, "16m", id="16m"),
        pytest.param(0.0166, "16m", id="truncates-milli"),
        pytest.param(0.0004, "0", id="below-milli-is-zero"),
        pytest.param(0.5, "500m", id="half"),
        pytest.param(0.1, "100m", id="tenth"),
        pytest.param(1, "1", id="one"),
        pytest.param(10, "10", id="ten"),
        pytest.param(100, "100", id="hundred"),
        pytest.param(1000, "1k", id="1k"),
        pytest.param(1500, "1500", id="1500-no-fraction-of-k"),
        pytest.param(2000, "2k", id="2k"),
        pytest.param(2500000, "2500k", id="2500k"),
        pytest.param(1e6, "1M", id="1M"),
        pytest.param(1e9, "1G", id="1G"),
        pytest.param(1e12, "1T", id="1T"),
        pytest.param(1e15, "1P", id="1P"),
        pytest.param(20.5, "20500m", id="20.5"),
        pytest.param(16.5, "16500m", id="16.5"),
        pytest.param(2.5, "2500m", id="2.5"),
        pytest.param(1234.5, "1234500m", id="1234.5"),
        pytest.param(1234567.891, "1234567891m", id="many-digits"),
        pytest.param(0, "0", id="zero"),
        pytest.param(-0.0, "0", id="negative-zero"),
        pytest.param(-0.5, "-500m", id="negative-half"),
        pytest.param(-2000, "-2k", id="negative-2k"),
        pytest.param(1.001, "1", id="1.001-double-rounding"),
        pytest.param(1.003, "1002m", id="1.003-double-rounding"),
        pytest.param(-1.003, "-1002m", id="negative-truncates-toward-zero"),
    ],
)
def test_decimal_si_quantity(value: float, expected: str) -> None:
    assert decimal_si_quantity(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0, "0", id="zero"),
        pytest.param(0.5, "500m", id="fraction-below-1024"),
        pytest.param(5, "5", id="small-integer"),
        pytest.param(1000, "1k", id="below-1024-is-decimal"),
        pytest.param(1023, "1023", id="1023"),
        pytest.param(1023.5, "1023500m", id="1023.5"),
        pytest.param(1024, "1Ki", id="1Ki"),
        pytest.param(-1024, "-1Ki", id="negative-1Ki"),
        pytest.param(1025, "1025", id="1025"),
        pytest.param(1536, "1536", id="1536-not-divisible"),
        pytest.param(2048, "2Ki", id="2Ki"),
        pytest.param(-2048, "-2Ki", id="negative-2Ki"),
        pytest.param(3100, "3100", id="3100"),
        pytest.param(1048576, "1Mi", id="1Mi"),
        pytest.param(1e6, "1000000", id="1e6-stays-integer"),
        pytest.param(4200.5, "4200500m", id="non-integral-is-decimal-milli"),
        pytest.param(1024 * 1024 * 1024, "1Gi", id="1Gi"),
        pytest.param(300 * 1024 * 1024, "300Mi", id="300Mi"),
        pytest.param(1001 * 1024**3, "1001Gi", id="1001Gi"),
        pytest.param(1024**4, "1Ti", id="1Ti"),
        pytest.param(1024**5, "1Pi", id="1Pi"),
    ],
)
def test_binary_si_quantity(value: float, expected: str) -> None:
    assert binary_si_quantity(value) == expected


@pytest.mark.parametrize(
    ("milli", "expected"),
    [
        # quantity_test.go TestMilliNewSet (DecimalSI rows).
        pytest.param(1, "1m", id="milli-new-set-1m"),
        pytest.param(1000, "1", id="milli-new-set-1"),
        pytest.param(1234000, "1234", id="milli-new-set-1234"),
        # quantity_test.go TestQuantityString rows expressible as milli values.
        pytest.param(10**12, "1G", id="string-1G"),
        pytest.param(1080, "1080m", id="string-1080m"),
        pytest.param(80, "80m", id="string-80m"),
        pytest.param(300 * 10**9, "300M", id="string-300M"),
        pytest.param(10**15, "1T", id="string-1T"),
        pytest.param(1234567 * 10**9, "1234567M", id="string-1234567M"),
        pytest.param(3 * 10**6, "3k", id="string-3k"),
        pytest.param(0, "0", id="string-0"),
        # Exponent normalisation: factors of ten move into the suffix by threes only.
        pytest.param(10, "10m", id="one-factor-of-ten"),
        pytest.param(100, "100m", id="two-factors-of-ten"),
        pytest.param(10_000, "10", id="four-factors-of-ten"),
        pytest.param(100_000_000, "100k", id="eight-factors-of-ten"),
        pytest.param(10**18, "1P", id="largest-suffix-reachable"),
        # int64 edges: INT64_MIN has no factor of ten, so Go's negation wrap-around in
        # removeInt64Factors hands the value back unchanged.
        pytest.param(INT64_MAX, "9223372036854775807m", id="int64-max"),
        pytest.param(INT64_MIN, "-9223372036854775808m", id="int64-min"),
        pytest.param(INT64_MIN + 8, "-9223372036854775800m", id="int64-min-plus-8"),
        pytest.param(9223372036854775000, "9223372036854775", id="int64-max-rounded-down"),
    ],
)
def test_format_decimal_si(milli: int, expected: str) -> None:
    assert format_decimal_si(milli) == expected
    if milli > 0:
        assert format_decimal_si(-milli) == "-" + expected


@pytest.mark.parametrize(
    ("milli", "expected"),
    [
        # quantity_test.go TestMilliNewSet (BinarySI rows: the format changes).
        pytest.param(1024, "1024m", id="milli-new-set-1024m"),
        pytest.param(1024 * 1024, "1048576m", id="milli-new-set-1048576m"),
        # quantity_test.go TestQuantityString, BinarySI rows.
        pytest.param(6 * 1024 * 1000, "6Ki", id="string-6Ki"),
        pytest.param(5000, "5", id="string-5"),
        pytest.param(500, "500m", id="string-500m"),
        pytest.param(1234567, "1234567m", id="string-1234567m"),
        pytest.param(1025 * 1000, "1025", id="string-1025"),
        pytest.param(1024 * 1000 + 1, "1024001m", id="just-above-1Ki"),
        pytest.param(1023 * 1000 + 999, "1023999m", id="just-below-1Ki"),
        pytest.param(INT64_MAX, "9223372036854775807m", id="int64-max"),
        pytest.param(INT64_MIN, "-9223372036854775808m", id="int64-min"),
        pytest.param(9223372036854775000, "9223372036854775", id="largest-integral"),
        pytest.param(2**50 * 1000, "1Pi", id="1Pi"),
    ],
)
def test_format_binary_si(milli: int, expected: str) -> None:
    assert format_binary_si(milli) == expected
    if milli > 0:
        assert format_binary_si(-milli) == "-" + expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.0, 0, id="zero"),
        pytest.param(1.001, 1000, id="1.001-is-1000.9999999999999"),
        pytest.param(-1.001, -1000, id="truncates-toward-zero"),
        pytest.param(0.0166, 16, id="truncates"),
        pytest.param(math.nan, 0, id="nan-is-zero"),
        pytest.param(math.inf, INT64_MAX, id="inf-saturates"),
        pytest.param(-math.inf, INT64_MIN, id="negative-inf-saturates"),
        pytest.param(1e300, INT64_MAX, id="huge-saturates"),
        pytest.param(-1e300, INT64_MIN, id="negative-huge-saturates"),
        pytest.param(2.0**63 / 1000, INT64_MAX, id="exactly-2-63-saturates"),
        pytest.param(-(2.0**63) / 1000, INT64_MIN, id="exactly-minus-2-63-fits"),
    ],
)
def test_milli_from_float(value: float, expected: int) -> None:
    assert milli_from_float(value) == expected


def test_milli_from_float_just_below_range_does_not_saturate() -> None:
    value = math.nextafter(2.0**63 / 1000, 0.0)
    scaled = value * 1000.0
    assert scaled < 2.0**63
    assert milli_from_float(value) == int(scaled) < INT64_MAX


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(math.nan, "0", id="nan"),
        pytest.param(math.inf, "9223372036854775807m", id="inf"),
        pytest.param(-math.inf, "-9223372036854775808m", id="negative-inf"),
    ],
)
def test_non_finite_values_saturate(value: float, expected: str) -> None:
    assert decimal_si_quantity(value) == expected
    assert binary_si_quantity(value) == expected


@pytest.mark.parametrize(
    "milli",
    [pytest.param(INT64_MAX + 1, id="above"), pytest.param(INT64_MIN - 1, id="below")],
)
def test_out_of_int64_range_is_rejected(milli: int) -> None:
    with pytest.raises(ValueError, match="int64"):
        format_decimal_si(milli)
    with pytest.raises(ValueError, match="int64"):
        format_binary_si(milli)
