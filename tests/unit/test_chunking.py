"""`chunk_names`: splitting object names so each quoted alternation fits a length limit."""

import itertools

import pytest

from adapter.golang.quote import go_quote
from adapter.providers.chunking import chunk_names, matcher_length


def rendered(chunk: list[str]) -> str:
    return go_quote("|".join(chunk))


def test_empty_and_disabled() -> None:
    assert chunk_names([], 10) == []
    assert chunk_names([], 0) == []
    names = ["a", "b", "c"]
    assert chunk_names(names, 0) == [names]
    assert chunk_names(names, -5) == [names]


def test_exact_boundary() -> None:
    # '"aa|bb"' is 7 characters: fits 7, not 6.
    assert chunk_names(["aa", "bb"], 7) == [["aa", "bb"]]
    assert chunk_names(["aa", "bb"], 6) == [["aa"], ["bb"]]
    assert chunk_names(["aa", "bb", "cc"], 10) == [["aa", "bb", "cc"]]
    assert chunk_names(["aa", "bb", "cc"], 9) == [["aa", "bb"], ["cc"]]


def test_single_over_long_name_is_sent_alone() -> None:
    assert chunk_names(["a", "very-long-name", "b", "c"], 5) == [
        ["a"],
        ["very-long-name"],
        ["b", "c"],
    ]
    assert chunk_names(["very-long-name"], 1) == [["very-long-name"]]


@pytest.mark.parametrize(
    ("names", "limit", "expected"),
    [
        # `"` and `\` are escaped by %q, so they count twice.
        (['a"', "b"], 6, [['a"'], ["b"]]),
        (['a"', "b"], 7, [['a"', "b"]]),
        (["a\\", "b"], 6, [["a\\"], ["b"]]),
        (["a\\", "b"], 7, [["a\\", "b"]]),
        # A control character becomes \x01 (4 characters).
        (["a\x01", "b"], 9, [["a\x01", "b"]]),
        (["a\x01", "b"], 8, [["a\x01"], ["b"]]),
    ],
)
def test_quoting_is_counted(names: list[str], limit: int, expected: list[list[str]]) -> None:
    assert chunk_names(names, limit) == expected


@pytest.mark.parametrize("limit", [1, 8, 9, 30, 100, 257, 4096])
def test_order_preserved_and_each_chunk_fits(limit: int) -> None:
    names = [f"pod-{i}" for i in range(500)] + ['quote"d', "back\\slash", "ünïcode", "x" * 50]
    chunks = chunk_names(names, limit)
    assert [name for chunk in chunks for name in chunk] == names
    for chunk in chunks:
        assert chunk
        assert len(rendered(chunk)) <= limit or len(chunk) == 1
        assert matcher_length(chunk) == len(rendered(chunk))
    # Greedy, so as few chunks as possible: no chunk could take the next one's first name.
    for chunk, following in itertools.pairwise(chunks):
        assert len(rendered([*chunk, following[0]])) > limit


def test_two_thousand_pods_fit_the_default() -> None:
    names = [f"pod-{i}" for i in range(2000)]
    chunks = chunk_names(names, 4096)
    assert len(rendered(names)) > 4096
    assert len(chunks) == 5  # about 18,000 characters in all
    assert all(len(rendered(chunk)) <= 4096 for chunk in chunks)
