import pytest

from adapter.naming.errors import NamingError
from adapter.naming.metric_namer import new_metric_namer


@pytest.mark.parametrize(
    ("matches", "as_", "series", "expected"),
    [
        pytest.param(
            "^container_(.*)_seconds_total$",
            "",
            "container_cpu_usage_seconds_total",
            "cpu_usage",
            id="one-group-default-$1",
        ),
        pytest.param(
            "", "", "http_requests_total", "http_requests_total", id="empty-matches-whole-name"
        ),
        pytest.param(
            "requests", "", "http_requests_total", "requests", id="no-group-default-$0-is-the-match"
        ),
        pytest.param(
            "^(.*)_total",
            "${1}_per_second",
            "http_requests_total",
            "http_requests_per_second",
            id="braced",
        ),
        pytest.param(
            "^(.*)_total", "$1_per_second", "http_requests_total", "", id="greedy-name-is-empty"
        ),
        pytest.param("^(?P<base>.*)_total$", "${base}_rate", "x_total", "x_rate", id="named"),
        pytest.param("^(?P<base>.*)_total$", "$base", "x_total", "x", id="named-bare"),
        pytest.param("^(.*)_(.*)$", "$2/$1", "a_b", "b/a", id="two-groups-explicit-as"),
        pytest.param("(.*)", "$$1", "x", "$1", id="dollar-escape"),
        pytest.param("", "cheesy_goodness", "cheddar", "cheesy_goodness", id="constant"),
    ],
)
def test_metric_name_for_series(matches: str, as_: str, series: str, expected: str) -> None:
    assert new_metric_namer(matches, as_).metric_name_for_series(series) == expected


def test_defaults_are_reported() -> None:
    assert new_metric_namer("^(.*)$", "").as_ == "$1"
    assert new_metric_namer("x", "").as_ == "$0"
    assert new_metric_namer("x", "").default_as
    assert not new_metric_namer("x", "$0").default_as


def test_two_groups_need_as() -> None:
    with pytest.raises(
        NamingError, match=r"must specify an 'as' value for name matcher \"\^\(\.\*\)_\(\.\*\)\$\""
    ):
        new_metric_namer("^(.*)_(.*)$", "")


def test_series_that_does_not_match() -> None:
    with pytest.raises(NamingError, match='series name "b" did not match expected pattern "a"'):
        new_metric_namer("a", "").metric_name_for_series("b")


@pytest.mark.parametrize(
    ("matches", "as_", "unknown"),
    [
        pytest.param("^(.*)_total", "$1_per_second", ["1_per_second"], id="greedy"),
        pytest.param("^(.*)_total", "${1}_per_second", [], id="braced-ok"),
        pytest.param("^(.*)$", "$2", ["2"], id="index-out-of-range"),
        pytest.param("^(?P<a>.*)$", "${a}$b", ["b"], id="unknown-name"),
        pytest.param("^(.*)$", "$$1", [], id="escaped-dollar"),
    ],
)
def test_unknown_references(matches: str, as_: str, unknown: list[str]) -> None:
    assert new_metric_namer(matches, as_).unknown_references() == unknown
