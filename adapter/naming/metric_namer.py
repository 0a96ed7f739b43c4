"""`name.matches`/`name.as`: the API name of a metric from its Prometheus series name."""

import re
from dataclasses import dataclass

from adapter.golang.quote import go_quote
from adapter.golang.regexp import GoRegexp, GoRegexpError, compile_go_regexp
from adapter.naming.errors import NamingError

__all__ = ["MetricNamer", "new_metric_namer"]

# `$name` / `${name}` references in an `as` template, as Go's Regexp.Expand reads them.
_EXPAND_REFERENCE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


@dataclass(frozen=True, slots=True)
class MetricNamer:
    matches: GoRegexp
    as_: str  # the effective template, defaults applied
    default_as: bool  # whether `as_` was chosen by default

    def metric_name_for_series(self, series_name: str) -> str:
        name = self.matches.expand(self.as_, series_name)
        if name is None:
            raise NamingError(
                f"series name {go_quote(series_name)} did not match expected pattern "
                f"{go_quote(self.matches.pattern)}"
            )
        return name

    def unknown_references(self) -> list[str]:
        """Group references in `as` that `matches` does not define; Go expands them to ""
        silently (`$1_per_second` names the group "1_per_second"), which is rarely meant."""
        names = set(self.matches.subexp_names()) - {""}
        count = self.matches.num_subexp()
        unknown = []
        for braced, bare in _EXPAND_REFERENCE.findall(self.as_.replace("$$", "")):
            ref = braced or bare
            if ref.isdigit() and int(ref) <= count:
                continue
            if ref not in names:
                unknown.append(ref)
        return unknown


def new_metric_namer(matches: str, as_: str) -> MetricNamer:
    """Go's rules: empty `matches` means `.*`; empty `as` means `$0` without capture groups,
    `$1` with one, and is an error with more."""
    try:
        regex = compile_go_regexp(matches or ".*")
    except GoRegexpError as exc:
        raise NamingError(str(exc)) from None
    if as_:
        return MetricNamer(regex, as_, default_as=False)
    groups = regex.num_subexp()
    if groups == 0:
        return MetricNamer(regex, "$0", default_as=True)
    if groups == 1:
        return MetricNamer(regex, "$1", default_as=True)
    raise NamingError(
        f"must specify an 'as' value for name matcher {go_quote(matches)} ({groups} capture groups)"
    )
