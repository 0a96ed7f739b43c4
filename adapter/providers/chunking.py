"""Splitting the objects of one `*` request so that no object matcher is too long.

A `pods/*` request over thousands of pods renders `pod=~"p1|p2|…"`, which long-query limits
reject (VictoriaMetrics' 16 KiB `-search.maxQueryLen`, Go adapter issue #668). The custom
provider sends one query per chunk of names instead and merges the per-object values; see
`CustomMetricsProvider`. Not in the Go adapter.

The length measured is that of the quoted alternation as the matcher renders it: Go `%q` of
`"|".join(names)`, quotes included, so `"` and `\\` in a name count twice.
"""

from collections.abc import Sequence

from adapter.golang.quote import go_quote

__all__ = ["chunk_names", "matcher_length"]


def _quoted_body_length(name: str) -> int:
    # strconv.Quote escapes rune by rune, so the quoted alternation's length is the sum of its
    # parts: each name's quoted body plus one character per "|" plus the two quotes.
    return len(go_quote(name)) - 2


def matcher_length(names: Sequence[str]) -> int:
    """Length of `go_quote("|".join(names))`, the value part of the object matcher."""
    return len(go_quote("|".join(names)))


def chunk_names(names: Sequence[str], max_length: int) -> list[list[str]]:
    """Split `names`, in order, into the fewest consecutive chunks whose quoted alternation
    stays within `max_length` characters.

    A name too long on its own is a chunk by itself (it cannot be split further).
    `max_length <= 0` disables splitting: one chunk with every name. No names, no chunks.
    """
    if not names:
        return []
    if max_length <= 0:
        return [list(names)]
    chunks: list[list[str]] = []
    current: list[str] = []
    length = 0  # of `current` rendered, quotes included
    for name in names:
        body = _quoted_body_length(name)
        if current and length + 1 + body > max_length:
            chunks.append(current)
            current, length = [], 0
        if current:
            length += 1 + body
        else:
            length = 2 + body
        current.append(name)
    chunks.append(current)
    return chunks
