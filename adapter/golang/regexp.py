"""Go `regexp` semantics on top of RE2 (the `google-re2` package).

The adapter's config regexes (`seriesFilters`, `name.matches`) are Go regexps, which
are RE2 syntax with leftmost-first (Perl) matching; `name.as` is expanded with Go's
`Regexp.ExpandString`. RE2 gives us the syntax and matching; this module adds what
the C++ library does differently from Go's `regexp/syntax`:

* error messages in Go's wording (`error parsing regexp: missing closing ): `(a``);
* rejecting the few things RE2 accepts but Go does not: `\\C`, capture names outside
  `[A-Za-z0-9_]`, and `(?<=`/`(?<!`, which Go parses as a (bad) named capture;
* `SubexpNames()` with duplicate names, which RE2's name map cannot express;
* Go's `$name`/`${name}` template expansion (`regexp.go` `expand`/`extract`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

__all__ = ["GoRegexp", "GoRegexpError", "compile_go_regexp", "expand_template"]

_PREFIX = "error parsing regexp: "

# RE2's ErrorCode texts mapped to Go's syntax.ErrorCode texts.
_RE2_TO_GO_CODES: dict[str, str] = {
    "unexpected error": "regexp/syntax: internal error",
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class": "invalid character class",
    "invalid character class range": "invalid character class range",
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid UTF-8": "invalid UTF-8",
    "invalid named capture group": "invalid named capture",
    "pattern too large - compile failed": "expression too large",
}
# Longest first, so "invalid character class range" wins over "invalid character class".
_RE2_CODES_BY_LENGTH = sorted(_RE2_TO_GO_CODES, key=len, reverse=True)

_ASCII_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def _options() -> Any:
    options = re2.Options()
    # Otherwise RE2 logs every bad pattern to stderr.
    options.log_errors = False
    return options


_OPTIONS = _options()


class GoRegexpError(ValueError):
    """A pattern Go's `regexp.Compile` rejects; the message follows Go's wording."""


@dataclass(frozen=True)
class GoRegexp:
    """A compiled Go regexp. Construct with `compile_go_regexp` (or directly)."""

    pattern: str
    _regex: Any = field(init=False, repr=False, compare=False)
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex, names = _compile(self.pattern)
        object.__setattr__(self, "_regex", regex)
        object.__setattr__(self, "_names", names)

    def search(self, text: str) -> bool:
        """Go's `MatchString`: whether the pattern matches anywhere in `text`."""
        return self._search(text) is not None

    def num_subexp(self) -> int:
        """Go's `NumSubexp`: the number of capturing groups."""
        return len(self._names) - 1

    def subexp_names(self) -> tuple[str, ...]:
        """Go's `SubexpNames`: index 0 and unnamed groups are ""."""
        return self._names

    def find_submatch(self, text: str) -> tuple[str | None, ...] | None:
        """Go's `FindStringSubmatch` for the leftmost match, or None without a match.

        Unlike Go, which reports "" for both, a group that did not participate in the
        match is None here, so callers can tell it from a group that matched "".
        """
        match = self._search(text)
        if match is None:
            return None
        return tuple(_group(match, i) for i in range(len(self._names)))

    def expand(self, template: str, text: str) -> str | None:
        """Expand `template` against the leftmost match in `text`, None without one.

        This is what the Go adapter does for `name.as`: `FindStringSubmatchIndex`
        followed by `ExpandString(nil, template, text, match)`.
        """
        groups = self.find_submatch(text)
        if groups is None:
            return None
        return expand_template(template, groups, self._names)

    def _search(self, text: str) -> Any:
        try:
            return self._regex.search(text)
        except UnicodeEncodeError:
            # Lone surrogates cannot be UTF-8 encoded; Go would see invalid UTF-8
            # there, which never matches anything but itself as U+FFFD.
            return self._regex.search(_replace_surrogates(text))


def compile_go_regexp(pattern: str) -> GoRegexp:
    """Go's `regexp.Compile`; raises GoRegexpError with Go's message on bad syntax."""
    return GoRegexp(pattern)


def expand_template(template: str, groups: Sequence[str | None], names: Sequence[str]) -> str:
    """Go's `Regexp.expand`: substitute `$1`, `${1}`, `$name`, `${name}` and `$$`.

    `groups[i]` is the text of group i (0 is the whole match), None if it did not
    participate; `names` is `SubexpNames()`. References to missing, unknown or
    non-participating groups expand to "". In the `$name` form the name is as long as
    possible (`$1x` is `${1x}`, not `${1}x`); a `$` that starts no valid reference is
    copied literally.
    """
    out: list[str] = []
    while template:
        i = template.find("$")
        if i < 0:
            break
        out.append(template[:i])
        template = template[i:]
        if len(template) > 1 and template[1] == "$":
            out.append("$")
            template = template[2:]
            continue
        ref = _extract(template)
        if ref is None:
            out.append("$")
            template = template[1:]
            continue
        name, num, template = ref
        if num >= 0:
            if num < len(groups):
                value = groups[num]
                if value is not None:
                    out.append(value)
        else:
            for index, group_name in enumerate(names):
                if name == group_name and index < len(groups):
                    value = groups[index]
                    if value is not None:
                        out.append(value)
                        break
    out.append(template)
    return "".join(out)


def _extract(text: str) -> tuple[str, int, str] | None:
    """Go's `extract`: (name, number or -1, rest) from a leading `$name`/`${name}`."""
    if len(text) < 2 or text[0] != "$":
        return None
    brace = text[1] == "{"
    text = text[2:] if brace else text[1:]
    i = 0
    # unicode.IsLetter is Python's isalpha (categories L*); unicode.IsDigit is Nd.
    while i < len(text) and (text[i].isalpha() or text[i].isdecimal() or text[i] == "_"):
        i += 1
    if i == 0:
        return None
    name = text[:i]
    if brace:
        if i >= len(text) or text[i] != "}":
            return None
        i += 1
    num = 0
    for ch in name:
        if not "0" <= ch <= "9" or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(ch) - ord("0")
    if name[0] == "0" and len(name) > 1:
        # Leading zeros make it a name, not a number.
        num = -1
    return name, num, text[i:]


def _group(match: Any, index: int) -> str | None:
    value = match.group(index)
    return None if value is None else str(value)


def _compile(pattern: str) -> tuple[Any, tuple[str, ...]]:
    bad_utf8 = _first_surrogate(pattern)
    if bad_utf8 >= 0:
        # Go would quote the raw bytes; a lone surrogate would break logging, so U+FFFD.
        rest = _replace_surrogates(pattern[bad_utf8:])
        raise GoRegexpError(f"{_PREFIX}invalid UTF-8: `{rest}`")
    names, go_error = _scan(pattern)
    try:
        regex = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        if go_error is not None and _go_error_comes_first(pattern, go_error[1]):
            raise GoRegexpError(go_error[0]) from None
        raise GoRegexpError(_PREFIX + _translate(_error_text(exc), pattern)) from None
    if go_error is not None:
        raise GoRegexpError(go_error[0])
    groups = int(regex.groups)
    if len(names) != groups + 1:
        # The scanner and RE2 disagree (should not happen); trust RE2's name map.
        names = [""] * (groups + 1)
        for name, index in dict(regex.groupindex).items():
            names[int(index)] = str(name)
    return regex, tuple(names)


def _go_error_comes_first(pattern: str, position: int) -> bool:
    """Whether Go, parsing left to right, reaches the Go-only error before RE2's error.

    RE2 stops at its first error too, so it is enough to parse the text before the
    Go-only construct: if that already fails (other than for the parentheses the cut
    left open), RE2's error is the earlier one.
    """
    try:
        re2.compile(pattern[:position], _OPTIONS)
    except re2.error as exc:
        return _error_text(exc).startswith("missing ): ")
    return True


def _error_text(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else ""
    if isinstance(arg, bytes):
        return arg.decode("utf-8", "replace")
    return str(arg)


def _translate(message: str, pattern: str) -> str:
    """Turn RE2's "code: arg" into Go's "code: `arg`"."""
    for code in _RE2_CODES_BY_LENGTH:
        if message == code:
            arg = ""
        elif message.startswith(code + ": "):
            arg = message[len(code) + 2 :]
        else:
            continue
        if code == "pattern too large - compile failed":
            arg = pattern
        return f"{_RE2_TO_GO_CODES[code]}: `{arg}`"
    return message


def _go_error(code: str, expr: str) -> str:
    return f"{_PREFIX}{code}: `{expr}`"


def _scan(pattern: str) -> tuple[list[str], tuple[str, int] | None]:
    """Walk the pattern as Go's parser does, for capture names and Go-only errors.

    Returns `SubexpNames()` and, for the first construct Go rejects but RE2 accepts
    or words differently (`\\C`, a non-ASCII capture name, `(?<=`), Go's message and
    the construct's position. The names are only meaningful if RE2 accepts the pattern.
    """
    names = [""]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                break
            nxt = pattern[i + 1]
            if nxt == "Q":
                # \Q...\E is literal text; without \E it runs to the end.
                end = pattern.find("\\E", i + 2)
                if end < 0:
                    break
                i = end + 2
                continue
            if nxt == "C":
                return names, (_go_error("invalid escape sequence", "\\C"), i)
            i += 2
            continue
        if ch == "[":
            i = _skip_class(pattern, i)
            continue
        if ch == "(":
            t = pattern[i:]
            starts_with_p = len(t) > 4 and t[1] == "?" and t[2] == "P" and t[3] == "<"
            starts_with_name = len(t) > 3 and t[1] == "?" and t[2] == "<"
            if starts_with_p or starts_with_name:
                end = t.find(">")
                if end < 0:
                    return names, (_go_error("invalid named capture", t), i)
                capture = t[: end + 1]
                name = t[(4 if starts_with_p else 3) : end]
                if not name or not set(name) <= _ASCII_ALNUM:
                    return names, (_go_error("invalid named capture", capture), i)
                names.append(name)
                i += end + 1
                continue
            if t.startswith("(?"):
                i += 2
                continue
            names.append("")
        i += 1
    return names, None


def _skip_class(pattern: str, start: int) -> int:
    """Index just past the character class opening at `start` (Go's parseClass)."""
    n = len(pattern)
    j = start + 1
    if j < n and pattern[j] == "^":
        j += 1
    first = True  # "]" is a literal as the first character of a class
    while j < n and (pattern[j] != "]" or first):
        first = False
        if pattern.startswith("[:", j):
            end = pattern.find(":]", j + 2)
            if end >= 0:
                j = end + 2
                continue
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def _first_surrogate(text: str) -> int:
    for index, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            return index
    return -1


def _replace_surrogates(text: str) -> str:
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
