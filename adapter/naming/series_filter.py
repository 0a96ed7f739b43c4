"""`seriesFilters`: keep a series only if its name matches (`is`) or does not match (`isNot`)."""

from dataclasses import dataclass

from adapter.golang.quote import go_quote
from adapter.golang.regexp import GoRegexp, GoRegexpError, compile_go_regexp
from adapter.naming.errors import NamingError

__all__ = ["SeriesFilter", "new_series_filter"]


@dataclass(frozen=True, slots=True)
class SeriesFilter:
    regex: GoRegexp
    positive: bool  # `is` when true, `isNot` when false

    def matches(self, series_name: str) -> bool:
        # Unanchored, as Go's MatchString.
        return self.regex.search(series_name) == self.positive

    def describe(self) -> str:
        return f"{'is' if self.positive else 'isNot'} {self.regex.pattern}"


def new_series_filter(is_: str, is_not: str) -> SeriesFilter:
    """Go's `NewReMatcher`: exactly one of `is`/`isNot`, compiled as a Go regexp."""
    if is_ and is_not:
        raise NamingError(
            f"cannot have both an `is` ({go_quote(is_)}) and `isNot` ({go_quote(is_not)}) "
            "expression in a single filter"
        )
    if not is_ and not is_not:
        raise NamingError("must have either an `is` or `isNot` expression in a filter")
    try:
        return SeriesFilter(compile_go_regexp(is_ or is_not), positive=bool(is_))
    except GoRegexpError as exc:
        raise NamingError(str(exc)) from None
