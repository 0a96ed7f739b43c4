import pytest

from adapter.golang.regexp import GoRegexp, GoRegexpError, compile_go_regexp, expand_template

# --- compiling -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        # regexp/all_test.go goodRe
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("^.$", id="anchored-dot"),
        pytest.param("a", id="a"),
        pytest.param("a*", id="star"),
        pytest.param("a+", id="plus"),
        pytest.param("a?", id="question"),
        pytest.param("a|b", id="alternation"),
        pytest.param("a*|b*", id="alternation-of-stars"),
        pytest.param("(a*|b)(c*|d)", id="groups"),
        pytest.param("[a-z]", id="range"),
        pytest.param("[a-abc-c\\-\\]\\[]", id="class-escapes"),
        pytest.param("[a-z]+", id="range-plus"),
        pytest.param("[abc]", id="class"),
        pytest.param("[^1234]", id="negated-class"),
        pytest.param("[^\\n]", id="negated-newline"),
        pytest.param("\\!\\\\", id="escaped-punctuation"),
        # RE2 syntax Go accepts and Python's re would not, or would read differently
        pytest.param("[[:alpha:]]+", id="posix-class"),
        pytest.param("\\pL", id="unicode-class-short"),
        pytest.param("\\p{Greek}", id="unicode-script"),
        pytest.param("\\PL", id="negated-unicode-class"),
        pytest.param("a\\z", id="end-of-text"),
        pytest.param("\\Aa", id="start-of-text"),
        pytest.param("\\Q*+?\\E", id="quoted-literal"),
        pytest.param("(?U)a*", id="ungreedy-flag"),
        pytest.param("(?i:a)b", id="flag-group"),
        pytest.param("(?P<name>a)", id="python-named-group"),
        pytest.param("(?<name>a)", id="dotnet-named-group"),
        pytest.param("(?P<x>a)|(?P<x>b)", id="duplicate-names"),
        pytest.param("(?P<1>a)", id="digit-name"),
        pytest.param("a{1000}", id="max-repeat"),
        pytest.param("a{,5}", id="literal-brace"),
        pytest.param("\\x{65e5}\\101\\0", id="hex-and-octal"),
    ],
)
def test_compiles(pattern: str) -> None:
    assert compile_go_regexp(pattern).pattern == pattern


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        # regexp/all_test.go badRe, with the full Go message
        pytest.param("*", "missing argument to repetition operator: `*`", id="star"),
        pytest.param("+", "missing argument to repetition operator: `+`", id="plus"),
        pytest.param("?", "missing argument to repetition operator: `?`", id="question"),
        pytest.param("(abc", "missing closing ): `(abc`", id="missing-paren"),
        pytest.param("abc)", "unexpected ): `abc)`", id="unexpected-paren"),
        pytest.param("x[a-z", "missing closing ]: `[a-z`", id="missing-bracket"),
        pytest.param("[z-a]", "invalid character class range: `z-a`", id="bad-range"),
        pytest.param("abc\\", "trailing backslash at end of expression: ``", id="trailing-bs"),
        pytest.param("a**", "invalid nested repetition operator: `**`", id="nested-star"),
        pytest.param("a*+", "invalid nested repetition operator: `*+`", id="possessive"),
        pytest.param("\\x", "invalid escape sequence: `\\x`", id="bad-hex-escape"),
        # more of Go's error codes
        pytest.param("(a", "missing closing ): `(a`", id="missing-paren-short"),
        pytest.param("(?P<n>a", "missing closing ): `(?P<n>a`", id="missing-paren-named"),
        pytest.param("[a", "missing closing ]: `[a`", id="missing-bracket-short"),
        pytest.param("\\8", "invalid escape sequence: `\\8`", id="bad-escape"),
        pytest.param("\\Z", "invalid escape sequence: `\\Z`", id="python-end-anchor"),
        pytest.param("a{1001}", "invalid repeat count: `{1001}`", id="repeat-too-big"),
        pytest.param("a{2,1}", "invalid repeat count: `{2,1}`", id="repeat-reversed"),
        pytest.param(
            "(a{1000}){1000}", "invalid repeat count: `{1000}`", id="nested-repeat-too-big"
        ),
        pytest.param("(?P<>a)", "invalid named capture: `(?P<>`", id="empty-name"),
        pytest.param("(?P<a-b>x)", "invalid named capture: `(?P<a-b>`", id="bad-name"),
        pytest.param("(?<n", "invalid named capture: `(?<n`", id="unterminated-name"),
        pytest.param("(?P<n", "invalid named capture: `(?P<n`", id="unterminated-p-name"),
        pytest.param("[[:foo:]]", "invalid character class range: `[:foo:]`", id="posix-name"),
        pytest.param("\\pX", "invalid character class range: `\\pX`", id="unicode-name"),
        pytest.param("[a-\\d]", "invalid escape sequence: `\\d`", id="class-range-perl"),
        pytest.param("(?z)", "invalid or unsupported Perl syntax: `(?z`", id="bad-flag"),
        pytest.param("(?#c)", "invalid or unsupported Perl syntax: `(?#`", id="comment"),
        pytest.param("(?P=n)", "invalid or unsupported Perl syntax: `(?P`", id="python-backref"),
        # Perl features RE2 (and Go) leave out
        pytest.param("(?=a)", "invalid or unsupported Perl syntax: `(?=`", id="lookahead"),
        pytest.param("(?!a)", "invalid or unsupported Perl syntax: `(?!`", id="neg-lookahead"),
        pytest.param("(a)\\1", "invalid escape sequence: `\\1`", id="backreference"),
        # Go-specific: RE2 accepts or words these differently
        pytest.param("(?<=a)b", "invalid named capture: `(?<=a)b`", id="lookbehind"),
        pytest.param("(?<!a)>b", "invalid named capture: `(?<!a)>`", id="neg-lookbehind"),
        pytest.param("a\\C", "invalid escape sequence: `\\C`", id="any-byte"),
        pytest.param("(?P<名>a)", "invalid named capture: `(?P<名>`", id="non-ascii-name"),
        pytest.param("(?<é>a)", "invalid named capture: `(?<é>`", id="non-ascii-short-name"),
        # whichever error Go reaches first wins
        pytest.param("(a\\C", "invalid escape sequence: `\\C`", id="go-only-error-first"),
        pytest.param("a)\\C", "unexpected ): `a)\\C`", id="re2-error-first"),
        pytest.param("(?=a)(?<=b)", "invalid or unsupported Perl syntax: `(?=`", id="both"),
        pytest.param("a\udc80", "invalid UTF-8: `\ufffd`", id="lone-surrogate"),
    ],
)
def test_compile_errors(pattern: str, message: str) -> None:
    with pytest.raises(GoRegexpError) as info:
        compile_go_regexp(pattern)
    assert str(info.value) == "error parsing regexp: " + message


def test_bad_pattern_prints_nothing(capfd: pytest.CaptureFixture[str]) -> None:
    for pattern in ("(a", "(?=a)", "(a)\\1", "[z-a]", "a**"):
        with pytest.raises(GoRegexpError):
            compile_go_regexp(pattern)
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_error_is_value_error() -> None:
    assert issubclass(GoRegexpError, ValueError)


def test_value_semantics() -> None:
    assert compile_go_regexp("a+") == GoRegexp("a+")
    assert hash(compile_go_regexp("a+")) == hash(GoRegexp("a+"))
    assert compile_go_regexp("a+") != compile_go_regexp("a*")
    assert repr(compile_go_regexp("a+")) == "GoRegexp(pattern='a+')"


# --- matching --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        pytest.param("requests", "http_requests_total", True, id="unanchored"),
        pytest.param("^container_.*_seconds_total$", "container_cpu_seconds_total", True),
        pytest.param("^container_.*_seconds_total$", "xcontainer_cpu_seconds_total", False),
        pytest.param("_total$", "http_requests_total", True, id="suffix"),
        pytest.param("a$", "a\n", False, id="dollar-is-end-of-text"),
        pytest.param("(?m)a$", "a\nb", True, id="multiline-flag"),
        pytest.param("a.b", "a\nb", False, id="dot-excludes-newline"),
        pytest.param("(?s)a.b", "a\nb", True, id="dot-all-flag"),
        pytest.param("[^a]", "\n", True, id="negated-class-matches-newline"),
        pytest.param("^[[:alpha:]]+$", "abcXYZ", True, id="posix-class"),
        pytest.param("^[[:alpha:]]+$", "abc1", False, id="posix-class-rejects-digit"),
        pytest.param("^\\pL+$", "日本語", True, id="unicode-letters"),
        pytest.param("a\\z", "ba", True, id="end-of-text-escape"),
        pytest.param("a\\z", "ab", False, id="end-of-text-escape-no-match"),
        pytest.param("(?i)HTTP", "http_requests", True, id="case-insensitive"),
        pytest.param("x", "\udc80x", True, id="surrogate-in-text"),
        pytest.param("^.$", "\udc80", True, id="surrogate-is-one-rune"),
    ],
)
def test_search(pattern: str, text: str, expected: bool) -> None:
    assert compile_go_regexp(pattern).search(text) is expected


@pytest.mark.parametrize(
    ("pattern", "num", "names"),
    [
        # regexp/all_test.go subexpCases
        pytest.param("", 0, ("",), id="empty"),
        pytest.param(".*", 0, ("",), id="dot-star"),
        pytest.param("abba", 0, ("",), id="literal"),
        pytest.param("ab(b)a", 1, ("", ""), id="one"),
        pytest.param("ab(.*)a", 1, ("", ""), id="one-dot-star"),
        pytest.param("(.*)ab(.*)a", 2, ("", "", ""), id="two"),
        pytest.param("(.*)(ab)(.*)a", 3, ("", "", "", ""), id="three"),
        pytest.param("(.*)((a)b)(.*)a", 4, ("", "", "", "", ""), id="nested"),
        pytest.param("(.*)(\\(ab)(.*)a", 3, ("", "", "", ""), id="escaped-paren"),
        pytest.param("(.*)(\\(a\\)b)(.*)a", 3, ("", "", "", ""), id="escaped-parens"),
        pytest.param(
            "(?P<foo>.*)(?P<bar>(a)b)(?P<foo>.*)a",
            4,
            ("", "foo", "bar", "", "foo"),
            id="named-duplicate",
        ),
        # parentheses the parser must not count
        pytest.param("[(](a)", 1, ("", ""), id="paren-in-class"),
        pytest.param("[]()](a)", 1, ("", ""), id="bracket-first-in-class"),
        pytest.param("[^](](a)", 1, ("", ""), id="bracket-first-in-negated-class"),
        pytest.param("[[:alpha:](](a)", 1, ("", ""), id="paren-after-posix-class"),
        pytest.param("\\Q((\\E(a)", 1, ("", ""), id="quoted-parens"),
        pytest.param("\\Q((", 0, ("",), id="quoted-to-end"),
        pytest.param("(?i)(?:a)(?i:b)(c)", 1, ("", ""), id="non-capturing"),
        pytest.param("(?<x>a)(?P<y>b)(c)", 3, ("", "x", "y", ""), id="both-name-forms"),
    ],
)
def test_subexp(pattern: str, num: int, names: tuple[str, ...]) -> None:
    regexp = compile_go_regexp(pattern)
    assert regexp.num_subexp() == num
    assert regexp.subexp_names() == names


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        pytest.param("a(b)c", "xabcx", ("abc", "b"), id="simple"),
        pytest.param("a|ab", "ab", ("a",), id="leftmost-first-not-longest"),
        pytest.param("(a)|(b)", "b", ("b", None, "b"), id="non-participating-is-none"),
        pytest.param("(a*)", "b", ("", ""), id="empty-group"),
        pytest.param("日(本)", "x日本語", ("日本", "本"), id="unicode-offsets"),
        pytest.param("x", "y", None, id="no-match"),
    ],
)
def test_find_submatch(pattern: str, text: str, expected: tuple[str | None, ...] | None) -> None:
    assert compile_go_regexp(pattern).find_submatch(text) == expected


# --- expanding -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "template", "text", "expected"),
    [
        # the adapter's naming rules
        pytest.param(
            "^container_(.*)_seconds_total$",
            "$1",
            "container_cpu_usage_seconds_total",
            "cpu_usage",
            id="container-seconds",
        ),
        pytest.param("requests", "$0", "http_requests_total", "requests", id="dollar-zero"),
        pytest.param(
            "^(.*)_total",
            "${1}_per_second",
            "http_requests_total",
            "http_requests_per_second",
            id="braced-number",
        ),
        pytest.param("^(.*)_total", "$1_per_second", "http_requests_total", "", id="greedy-name"),
        pytest.param("^(.*)_total$", "$$", "a_total", "$", id="dollar-dollar"),
        pytest.param(
            "^(?P<base>.*)_seconds_total$",
            "${base}_per_second",
            "cpu_seconds_total",
            "cpu_per_second",
            id="named",
        ),
        pytest.param(
            "^(?<base>.*)_total$", "$base", "http_requests_total", "http_requests", id="short-named"
        ),
        # regexp/all_test.go replaceTests substitutions, applied to the first match
        pytest.param("a+", "($0)", "banana", "(a)", id="zero"),
        pytest.param("a+", "(${0})", "banana", "(a)", id="braced-zero"),
        pytest.param("a+", "(${0})$0", "banana", "(a)a", id="zero-twice"),
        pytest.param("hello, (.+)", "goodbye, ${1}", "hello, world", "goodbye, world"),
        pytest.param("hello, (.+)", "goodbye, $1x", "hello, world", "goodbye, ", id="1x"),
        pytest.param("hello, (.+)", "goodbye, ${1}x", "hello, world", "goodbye, worldx"),
        pytest.param(
            "hello, (.+)", "<$0><$1><$2><$3>", "hello, world", "<hello, world><world><><>"
        ),
        pytest.param("hello, (?P<noun>.+)", "goodbye, $noun!", "hello, world", "goodbye, world!"),
        pytest.param("hello, (?P<noun>.+)", "goodbye, ${noun}", "hello, world", "goodbye, world"),
        pytest.param("(?P<x>hi)|(?P<x>bye)", "$x$x$x", "hi", "hihihi", id="dup-name-first"),
        pytest.param("(?P<x>hi)|(?P<x>bye)", "$x$x$x", "bye", "byebyebye", id="dup-name-second"),
        pytest.param("(?P<x>hi)|(?P<x>bye)", "$xyz", "hi", "", id="unknown-name"),
        pytest.param("(?P<x>hi)|(?P<x>bye)", "${x}yz", "hi", "hiyz", id="braced-name"),
        pytest.param("(?P<x>hi)|(?P<x>bye)", "hello $$x", "hi", "hello $x", id="escaped-dollar"),
        pytest.param("a+", "${oops", "aaa", "${oops", id="unclosed-brace"),
        pytest.param("a+", "$$", "aaa", "$", id="only-dollar-dollar"),
        pytest.param("a+", "$", "aaa", "$", id="lone-dollar"),
        pytest.param("(x)?", "$1", "123", "", id="non-participating"),
        pytest.param("(a)(b){0}(c)", ".$1|$3.", "xacxacx", ".a|c.", id="zero-repeat"),
        pytest.param("(a)(((b))){0}c", ".$1.", "xacxacx", ".a.", id="zero-repeat-nested"),
        pytest.param(
            "((a(b){0}){3}){5}(h)", "y caramb$2", "say aaaaaaaaaaaaaaaah", "y caramba", id="ay"
        ),
        pytest.param(
            "((a(b){0}){3}){5}h", "y caramb$2", "say aaaaaaaaaaaaaaaah", "y caramba", id="ay-no-h"
        ),
        # regexp/example_test.go ExampleRegexp_ExpandString, first match
        pytest.param(
            "(?m)(?P<key>\\w+):\\s+(?P<value>\\w+)$",
            "$key=$value\n",
            "\n\t# comment line\n\toption1: value1\n\toption2: value2\n",
            "option1=value1\n",
            id="example-expand-string",
        ),
    ],
)
def test_expand(pattern: str, template: str, text: str, expected: str) -> None:
    assert compile_go_regexp(pattern).expand(template, text) == expected


def test_expand_without_match_is_none() -> None:
    assert compile_go_regexp("abc").expand("$1", "123") is None
    assert compile_go_regexp("^(.*)_total$").expand("$1", "http_requests") is None


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("plain", "plain", id="no-dollars"),
        pytest.param("$0|$1|$2", "abc|a|", id="numbers"),
        pytest.param("$3", "", id="out-of-range"),
        pytest.param("${3}", "", id="braced-out-of-range"),
        pytest.param("$x", "a", id="name"),
        pytest.param("$y", "", id="non-participating-name"),
        pytest.param("$x_1", "", id="name-takes-underscores-and-digits"),
        pytest.param("${x}_1", "a_1", id="braced-name-stops"),
        pytest.param("$01", "", id="leading-zero-is-a-name"),
        pytest.param("${01}", "", id="braced-leading-zero"),
        pytest.param("$00", "", id="double-zero-is-a-name"),
        pytest.param("$100000000", "", id="huge-number-is-a-name"),
        pytest.param("$-1", "$-1", id="no-name-after-dollar"),
        pytest.param("${}", "${}", id="empty-braces"),
        pytest.param("${1", "${1", id="missing-closing-brace"),
        pytest.param("${1 }", "${1 }", id="space-before-brace"),
        pytest.param("${x-y}", "${x-y}", id="bad-char-in-braces"),
        pytest.param("$", "$", id="trailing-dollar"),
        pytest.param("a$", "a$", id="trailing-dollar-after-text"),
        pytest.param("$$1", "$1", id="escaped-then-digit"),
        pytest.param("$$$1", "$a", id="escaped-then-reference"),
        pytest.param("$é", "", id="unicode-letter-name"),
        pytest.param("$1.$x", "a.a", id="dot-ends-name"),
        pytest.param("$日本", "", id="unicode-name-unknown"),
        pytest.param("$\u0663", "", id="non-ascii-digit-is-a-name"),
    ],
)
def test_expand_template(template: str, expected: str) -> None:
    groups = ("abc", "a", None)
    names = ("", "x", "y")
    assert expand_template(template, groups, names) == expected


def test_expand_template_prefers_participating_duplicate() -> None:
    assert expand_template("$n", ("b", None, "b"), ("", "n", "n")) == "b"
    assert expand_template("$n", ("a", "a", None), ("", "n", "n")) == "a"


def test_expand_template_digit_named_group_is_by_number() -> None:
    # `(?P<1>a)(b)`: "$1" is group 1 by number, never looked up by name.
    assert expand_template("$1|$2", ("ab", "a", "b"), ("", "1", "")) == "a|b"
