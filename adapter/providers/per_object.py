"""Whether a query's value for one object is independent of which other objects it selects.

`--namespace-query-ttl` answers a request for some objects of a namespace from one query over
every object of the namespace. That gives the same per-object values only when the query
computes each object's value from that object's series alone, as the common
`sum(rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)` does. This module checks a
rendered query for that, conservatively (a false "unsafe" only costs the sharing):

- every selector that carries the object matcher sits inside at least one aggregation, and
  every aggregation around it groups `by` a list naming the object label;
- nothing compares or relabels across series: no `without`, vector matching modifiers
  (`on`, `ignoring`, `group_left`, `group_right`) or functions such as `topk`, `scalar`,
  `sort`, `label_replace`, `absent`.

This is a scanner, not a PromQL parser: strings, selectors and parentheses are tracked, which
is all the checks need.
"""

import re
from dataclasses import dataclass

__all__ = ["shared_query_problem"]

_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count"}
    | {"count_values", "topk", "bottomk", "quantile", "limitk", "limit_ratio"}
)
# Functions and keywords whose result for one series depends on other series.
_CROSS_SERIES = frozenset(
    {"count_values", "topk", "bottomk", "quantile", "limitk", "limit_ratio"}
    | {"scalar", "sort", "sort_desc", "sort_by_label", "sort_by_label_desc"}
    | {"label_replace", "label_join", "absent", "absent_over_time"}
    | {"without", "on", "ignoring", "group_left", "group_right"}
)
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "ident", "(", ")", "selector", "other"
    text: str
    start: int


def _string_end(text: str, start: int) -> int:
    """Index after the string literal opening at `start`."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return len(text)


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "\"'`":
            i = _string_end(text, i)
        elif char == "{":  # a selector's matchers; strings inside may hold braces
            start = i
            i += 1
            while i < len(text) and text[i] != "}":
                i = _string_end(text, i) if text[i] in "\"'`" else i + 1
            tokens.append(_Token("selector", text[start : i + 1], start))
            i += 1
        elif char == "[":  # a range or subquery: durations only
            end = text.find("]", i)
            i = len(text) if end < 0 else end + 1
        elif char in "()":
            tokens.append(_Token(char, char, i))
            i += 1
        elif match := _IDENT.match(text, i):
            tokens.append(_Token("ident", match.group(), i))
            i = match.end()
        else:
            if not char.isspace():
                tokens.append(_Token("other", char, i))
            i += 1
    return tokens


@dataclass(frozen=True, slots=True)
class _Aggregation:
    start: int  # of the argument's "("
    end: int  # of its ")"
    by: frozenset[str] | None  # None: no `by` clause


def _closing(tokens: list[_Token], open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(tokens)):
        if tokens[index].kind == "(":
            depth += 1
        elif tokens[index].kind == ")":
            depth -= 1
            if depth == 0:
                return index
    return len(tokens) - 1


def _labels(tokens: list[_Token], open_index: int) -> tuple[frozenset[str], int]:
    """The label list opening at `open_index`, and the index after its ")"."""
    close = _closing(tokens, open_index)
    names = frozenset(t.text for t in tokens[open_index + 1 : close] if t.kind == "ident")
    return names, close + 1


def _by_clause(tokens: list[_Token], index: int) -> tuple[frozenset[str] | None, int]:
    """The labels of a `by (...)` clause at `index` and the index after it, or (None, index)."""
    if (
        index + 1 < len(tokens)
        and tokens[index].text.lower() == "by"
        and tokens[index + 1].kind == "("
    ):
        return _labels(tokens, index + 1)
    return None, index


def _aggregations(tokens: list[_Token]) -> list[_Aggregation]:
    found: list[_Aggregation] = []
    for index, token in enumerate(tokens):
        if token.kind != "ident" or token.text.lower() not in _AGGREGATIONS:
            continue
        by, argument = _by_clause(tokens, index + 1)
        if argument >= len(tokens) or tokens[argument].kind != "(":
            continue  # a metric or label named like an aggregation
        close = _closing(tokens, argument)
        if by is None:
            by, _ = _by_clause(tokens, close + 1)
        found.append(_Aggregation(tokens[argument].start, tokens[close].start, by))
    return found


def shared_query_problem(query: str, object_matcher: str, label: str) -> str | None:
    """Why `query` (rendered for every object, its object matcher being `object_matcher`)
    may give an object a different value than a query for that object alone; None if not."""
    tokens = _tokens(query)
    for token in tokens:
        if token.kind == "ident" and token.text.lower() in _CROSS_SERIES:
            return f"it uses {token.text!r}, which relates series to each other"
    selectors = [t for t in tokens if t.kind == "selector" and object_matcher in t.text]
    if not selectors:
        return "no selector in it carries the object matcher (<<.LabelMatchers>>)"
    aggregations = _aggregations(tokens)
    for selector in selectors:
        around = [a for a in aggregations if a.start < selector.start < a.end]
        if not around:
            return f"it does not aggregate by ({label})"
        if any(a.by is None or label not in a.by for a in around):
            return f"an aggregation around the object's series is not by ({label})"
    return None
