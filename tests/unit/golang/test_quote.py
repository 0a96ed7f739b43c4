import pytest

from adapter.golang.quote import go_quote


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("bar", '"bar"', id="plain"),
        pytest.param("", '""', id="empty"),
        pytest.param('a"b', '"a\\"b"', id="double-quote"),
        pytest.param("a\\b", '"a\\\\b"', id="backslash"),
        pytest.param("a\nb\tc", '"a\\nb\\tc"', id="short-escapes"),
        pytest.param("\x00\x1b\x7f", '"\\x00\\x1b\\x7f"', id="control-bytes"),
        pytest.param("héllo ☃", '"héllo ☃"', id="printable-unicode-kept"),
        pytest.param("\u00a0", '"\\u00a0"', id="nbsp-not-printable"),
        pytest.param("\u200b", '"\\u200b"', id="format-char"),
        pytest.param("\U000e0001", '"\\U000e0001"', id="astral-non-printable"),
        pytest.param("a|b.c", '"a|b.c"', id="regex-chars-not-escaped"),
    ],
)
def test_go_quote(value: str, expected: str) -> None:
    assert go_quote(value) == expected
