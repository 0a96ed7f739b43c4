import pytest

from adapter.naming.errors import NamingError
from adapter.naming.series_filter import new_series_filter


@pytest.mark.parametrize(
    ("is_", "is_not", "name", "expected"),
    [
        pytest.param("my_.*", "", "my_label", True, id="is-match"),
        pytest.param("my_.*", "", "your_label", False, id="is-no-match"),
        pytest.param("", "my_.*", "my_label", False, id="isnot-match"),
        pytest.param("", "my_.*", "your_label", True, id="isnot-no-match"),
        pytest.param("total", "", "http_requests_total", True, id="unanchored-search"),
        pytest.param(
            "", "^container_.*_seconds_total$", "container_cpu_seconds_total", False, id="anchored"
        ),
    ],
)
def test_filter_matches(is_: str, is_not: str, name: str, expected: bool) -> None:
    assert new_series_filter(is_, is_not).matches(name) is expected


@pytest.mark.parametrize(
    ("is_", "is_not", "message"),
    [
        pytest.param(
            "my_.*",
            "your_.*",
            'cannot have both an `is` ("my_.*") and `isNot` ("your_.*") expression in a single filter',
            id="both",
        ),
        pytest.param(
            "", "", "must have either an `is` or `isNot` expression in a filter", id="neither"
        ),
        pytest.param("(a", "", "error parsing regexp: missing closing ): `(a`", id="bad-regex"),
    ],
)
def test_filter_errors(is_: str, is_not: str, message: str) -> None:
    with pytest.raises(NamingError) as excinfo:
        new_series_filter(is_, is_not)
    assert str(excinfo.value) == message
