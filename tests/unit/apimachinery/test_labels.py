"""Tests for the port of apimachinery's label selectors.

Most tables are ported from k8s.io/apimachinery `pkg/labels/selector_test.go`; the expected
error messages are the text Go v0.30 produces.
"""

import contextlib
import json

import pytest

from adapter.apimachinery.labels import (
    EVERYTHING,
    Lexer,
    Operator,
    Parser,
    ParserContext,
    Requirement,
    Selector,
    SelectorError,
    Token,
    new_requirement,
    parse_selector,
    to_label_selector,
)

# Go's messages, spelled out here rather than imported so that a typo in the module shows up.
NAME_PART_REGEX = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
QUALIFIED_NAME_SLASHES = (
    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
    "subdomain prefix and '/' (e.g. 'example.com/MyName')"
)
PREFIX_PART_REGEX = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
    "characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_VALUE_REGEX = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
NOT_AN_INTEGER = "for 'Gt', 'Lt' operators, the value must be an integer"
EXPECTED_OPERATORS = "in, notin, =, ==, !=, gt, lt"
PARSE = "unable to parse requirement: "


def req(key: str, op: Operator, *values: str) -> Requirement:
    return new_requirement(key, op, values)


# --- TestSelectorParse ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("x=a,y=b,z=c", id="three-equals"),
        pytest.param("", id="empty"),
        pytest.param("x!=a,y=b", id="not-equals"),
        pytest.param("x=", id="empty-value"),
        pytest.param("x= ", id="empty-value-space"),
        pytest.param("x=,z= ", id="two-empty-values"),
        pytest.param("x= ,z= ", id="two-empty-values-spaces"),
        pytest.param("!x", id="does-not-exist"),
        pytest.param("x>1", id="greater-than"),
        pytest.param("x>1,z<5", id="greater-and-less"),
    ],
)
def test_selector_parse_good_strings_round_trip(text: str) -> None:
    assert str(parse_selector(text)) == text.replace(" ", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "x=a||y=b",
            PARSE + f'values[0][x]: Invalid value: "a||y": {LABEL_VALUE_REGEX}',
            id="or-operator",
        ),
        pytest.param("x==a==b", "found '==', expected: ',' or 'end of string'", id="chained-eq"),
        pytest.param("!x=a", "found '=', expected: ',' or 'end of string'", id="not-with-value"),
        pytest.param("x<a", PARSE + f'values[0]: Invalid value: "a": {NOT_AN_INTEGER}', id="lt-a"),
    ],
)
def test_selector_parse_bad_strings(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert str(info.value) == message


def test_deterministic_parse() -> None:
    assert str(parse_selector("x=a,a=x")) == str(parse_selector("a=x,x=a")) == "a=x,x=a"


def test_everything() -> None:
    assert EVERYTHING.matches({"x": "y"})
    assert EVERYTHING.empty()
    assert str(EVERYTHING) == ""
    assert parse_selector("") == EVERYTHING
    assert parse_selector(" \t\r\n") == EVERYTHING


# --- TestSelectorMatches -------------------------------------------------------------------------

LABELSET = {"foo": "bar", "baz": "blah"}


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        pytest.param("", {"x": "y"}, True, id="empty"),
        pytest.param("x=y", {"x": "y"}, True, id="eq"),
        pytest.param("x=y,z=w", {"x": "y", "z": "w"}, True, id="eq-eq"),
        pytest.param("x!=y,z!=w", {"x": "z", "z": "a"}, True, id="ne-ne"),
        pytest.param("notin=in", {"notin": "in"}, True, id="keywords-as-key-and-value"),
        pytest.param("x", {"x": "z"}, True, id="exists"),
        pytest.param("!x", {"y": "z"}, True, id="does-not-exist"),
        pytest.param("x>1", {"x": "2"}, True, id="gt"),
        pytest.param("x<1", {"x": "0"}, True, id="lt"),
        pytest.param("x=z", {}, False, id="eq-absent"),
        pytest.param("x=y", {"x": "z"}, False, id="eq-other"),
        pytest.param("x=y,z=w", {"x": "w", "z": "w"}, False, id="eq-eq-one-off"),
        pytest.param("x!=y,z!=w", {"x": "z", "z": "w"}, False, id="ne-ne-one-off"),
        pytest.param("x", {"y": "z"}, False, id="exists-absent"),
        pytest.param("!x", {"x": "z"}, False, id="does-not-exist-present"),
        pytest.param("x>1", {"x": "0"}, False, id="gt-smaller"),
        pytest.param("x<1", {"x": "2"}, False, id="lt-bigger"),
        pytest.param("foo=bar", LABELSET, True, id="labelset-foo"),
        pytest.param("baz=blah", LABELSET, True, id="labelset-baz"),
        pytest.param("foo=bar,baz=blah", LABELSET, True, id="labelset-both"),
        pytest.param("foo=blah", LABELSET, False, id="labelset-foo-wrong"),
        pytest.param("baz=bar", LABELSET, False, id="labelset-baz-wrong"),
        pytest.param("foo=bar,foobar=bar,baz=blah", LABELSET, False, id="labelset-extra"),
    ],
)
def test_selector_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


# --- TestLexer, TestLexerSequence, TestParserLookahead -------------------------------------------


@pytest.mark.parametrize(
    ("text", "token"),
    [
        pytest.param("", Token.END_OF_STRING, id="empty"),
        pytest.param(",", Token.COMMA, id="comma"),
        pytest.param("notin", Token.NOT_IN, id="notin"),
        pytest.param("in", Token.IN, id="in"),
        pytest.param("=", Token.EQUALS, id="equals"),
        pytest.param("==", Token.DOUBLE_EQUALS, id="double-equals"),
        pytest.param(">", Token.GREATER_THAN, id="gt"),
        pytest.param("<", Token.LESS_THAN, id="lt"),
        # Lex returns the longest valid token found.
        pytest.param("!", Token.DOES_NOT_EXIST, id="bang"),
        pytest.param("!=", Token.NOT_EQUALS, id="not-equals"),
        pytest.param("(", Token.OPEN_PAR, id="open-par"),
        pytest.param(")", Token.CLOSED_PAR, id="closed-par"),
        # Non-special characters are part of an identifier.
        pytest.param("~", Token.IDENTIFIER, id="tilde"),
        pytest.param("||", Token.IDENTIFIER, id="pipes"),
    ],
)
def test_lexer(text: str, token: Token) -> None:
    assert Lexer(text).lex() == (token, text)


T = Token
LEXER_SEQUENCES = [
    pytest.param(
        "key in ( value )",
        [T.IDENTIFIER, T.IN, T.OPEN_PAR, T.IDENTIFIER, T.CLOSED_PAR],
        id="in",
    ),
    pytest.param(
        "key notin ( value )",
        [T.IDENTIFIER, T.NOT_IN, T.OPEN_PAR, T.IDENTIFIER, T.CLOSED_PAR],
        id="notin",
    ),
    pytest.param(
        "key in ( value1, value2 )",
        [T.IDENTIFIER, T.IN, T.OPEN_PAR, T.IDENTIFIER, T.COMMA, T.IDENTIFIER, T.CLOSED_PAR],
        id="in-two",
    ),
    pytest.param("key", [T.IDENTIFIER], id="key"),
    pytest.param("!key", [T.DOES_NOT_EXIST, T.IDENTIFIER], id="not-key"),
    pytest.param("()", [T.OPEN_PAR, T.CLOSED_PAR], id="parens"),
    pytest.param(
        "x in (),y",
        [T.IDENTIFIER, T.IN, T.OPEN_PAR, T.CLOSED_PAR, T.COMMA, T.IDENTIFIER],
        id="empty-set-then-key",
    ),
    pytest.param(
        "== != (), = notin",
        [T.DOUBLE_EQUALS, T.NOT_EQUALS, T.OPEN_PAR, T.CLOSED_PAR, T.COMMA, T.EQUALS, T.NOT_IN],
        id="operators",
    ),
    pytest.param("key>2", [T.IDENTIFIER, T.GREATER_THAN, T.IDENTIFIER], id="gt"),
    pytest.param("key<1", [T.IDENTIFIER, T.LESS_THAN, T.IDENTIFIER], id="lt"),
    pytest.param("a!==b", [T.IDENTIFIER, T.NOT_EQUALS, T.EQUALS, T.IDENTIFIER], id="longest"),
    pytest.param("a===b", [T.IDENTIFIER, T.DOUBLE_EQUALS, T.EQUALS, T.IDENTIFIER], id="eq3"),
    pytest.param("!!a", [T.DOES_NOT_EXIST, T.DOES_NOT_EXIST, T.IDENTIFIER], id="bang-bang"),
]


@pytest.mark.parametrize(("text", "tokens"), LEXER_SEQUENCES)
def test_lexer_sequence(text: str, tokens: list[Token]) -> None:
    lexer = Lexer(text)
    got: list[Token] = []
    while (token := lexer.lex()[0]) != Token.END_OF_STRING:
        got.append(token)
    assert got == tokens


@pytest.mark.parametrize(("text", "tokens"), [*LEXER_SEQUENCES, pytest.param("", [], id="empty")])
def test_parser_lookahead(text: str, tokens: list[Token]) -> None:
    parser = Parser(text)
    items = parser.scan()
    assert [token for token, _ in items] == [*tokens, Token.END_OF_STRING]
    while True:
        ahead = parser.lookahead(ParserContext.KEY_AND_OPERATOR)
        consumed = parser.consume(ParserContext.KEY_AND_OPERATOR)
        if ahead[0] == Token.END_OF_STRING:
            break
        assert ahead == consumed


def test_values_context_turns_keywords_into_identifiers() -> None:
    parser = Parser("in notin")
    parser.scan()
    assert parser.lookahead(ParserContext.KEY_AND_OPERATOR) == (Token.IN, "in")
    assert parser.consume(ParserContext.VALUES) == (Token.IDENTIFIER, "in")
    assert parser.lookahead(ParserContext.VALUES) == (Token.IDENTIFIER, "notin")


@pytest.mark.parametrize(
    ("text", "items"),
    [
        pytest.param(
            "a\x00,b",
            [(T.IDENTIFIER, "a"), (T.COMMA, ","), (T.IDENTIFIER, "b")],
            id="nul-after-identifier-is-consumed",
        ),
        pytest.param(
            "a,\x00b",
            [(T.IDENTIFIER, "a"), (T.COMMA, ","), (T.IDENTIFIER, "b")],
            id="nul-after-comma-is-consumed",
        ),
        pytest.param("a, \x00b", [(T.IDENTIFIER, "a"), (T.COMMA, ",")], id="nul-ends-input"),
        pytest.param(
            "a=\x00b",
            [(T.IDENTIFIER, "a"), (T.EQUALS, "="), (T.IDENTIFIER, "b")],
            id="nul-after-symbol-is-consumed",
        ),
        pytest.param(
            "a\tin\r\n(b)",
            [(T.IDENTIFIER, "a"), (T.IN, "in"), (T.OPEN_PAR, "("), (T.IDENTIFIER, "b"),
             (T.CLOSED_PAR, ")")],
            id="go-whitespace",
        ),
        pytest.param("a\u00a0b", [(T.IDENTIFIER, "a\u00a0b")], id="nbsp-is-not-whitespace"),
        pytest.param("a\vb", [(T.IDENTIFIER, "a\vb")], id="vtab-is-not-whitespace"),
    ],
)  # fmt: skip
def test_lexer_quirks(text: str, items: list[tuple[Token, str]]) -> None:
    assert Parser(text).scan() == [*items, (Token.END_OF_STRING, "")]


# --- TestRequirementConstructor ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "op", "values", "message"),
    [
        pytest.param(
            "x",
            Operator.IN,
            [],
            "values: Invalid value: []string(nil): "
            "for 'in', 'notin' operators, values set can't be empty",
            id="in-no-values",
        ),
        pytest.param(
            "x",
            Operator.NOT_IN,
            [],
            "values: Invalid value: []string(nil): "
            "for 'in', 'notin' operators, values set can't be empty",
            id="notin-no-values",
        ),
        pytest.param("x", Operator.IN, ["foo"], None, id="in-foo"),
        pytest.param("x", Operator.NOT_IN, ["foo"], None, id="notin-foo"),
        pytest.param("x", Operator.EXISTS, [], None, id="exists"),
        pytest.param("x", Operator.DOES_NOT_EXIST, [], None, id="does-not-exist"),
        pytest.param("1foo", Operator.IN, ["bar"], None, id="digit-first-key"),
        pytest.param("1234", Operator.IN, ["bar"], None, id="numeric-key"),
        pytest.param("y", Operator.GREATER_THAN, ["1"], None, id="gt-1"),
        pytest.param("z", Operator.LESS_THAN, ["6"], None, id="lt-6"),
        pytest.param(
            "foo",
            Operator.GREATER_THAN,
            ["bar"],
            f'values[0]: Invalid value: "bar": {NOT_AN_INTEGER}',
            id="gt-not-integer",
        ),
        pytest.param(
            "barz",
            Operator.LESS_THAN,
            ["blah"],
            f'values[0]: Invalid value: "blah": {NOT_AN_INTEGER}',
            id="lt-not-integer",
        ),
        pytest.param(
            "a" * 254,
            Operator.EXISTS,
            [],
            f'key: Invalid value: "{"a" * 254}": name part must be no more than 63 characters',
            id="key-too-long",
        ),
        pytest.param(
            "x",
            Operator.EQUALS,
            ["a", "b"],
            'values: Invalid value: []string{"a", "b"}: '
            "exact-match compatibility requires one single value",
            id="equals-two-values",
        ),
        pytest.param(
            "x",
            Operator.NOT_EQUALS,
            [],
            "values: Invalid value: []string(nil): "
            "exact-match compatibility requires one single value",
            id="not-equals-no-value",
        ),
        pytest.param(
            "x",
            Operator.EXISTS,
            ["a"],
            'values: Invalid value: []string{"a"}: '
            "values set must be empty for exists and does not exist",
            id="exists-with-value",
        ),
        pytest.param(
            "x",
            Operator.GREATER_THAN,
            ["1", "2"],
            'values: Invalid value: []string{"1", "2"}: '
            "for 'Gt', 'Lt' operators, exactly one value is required",
            id="gt-two-values",
        ),
        pytest.param(
            "x",
            "foo",
            ["a"],
            'operator: Unsupported value: "foo": supported values: '
            '"in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"',
            id="unknown-operator",
        ),
        pytest.param(
            "a b",
            Operator.IN,
            ["ok", "not ok"],
            f'[key: Invalid value: "a b": {NAME_PART_REGEX}, '
            f'values[1][a b]: Invalid value: "not ok": {LABEL_VALUE_REGEX}]',
            id="aggregated",
        ),
        pytest.param(
            "x",
            Operator.GREATER_THAN,
            ["a", "a"],
            '[values: Invalid value: []string{"a", "a"}: '
            "for 'Gt', 'Lt' operators, exactly one value is required, "
            f'values[0]: Invalid value: "a": {NOT_AN_INTEGER}, '
            f'values[1]: Invalid value: "a": {NOT_AN_INTEGER}]',
            id="gt-two-bad-values",
        ),
        pytest.param("x", "in", ["a"], None, id="operator-as-string"),
    ],
)
def test_requirement_constructor(
    key: str, op: Operator | str, values: list[str], message: str | None
) -> None:
    if message is None:
        requirement = new_requirement(key, op, values)
        assert requirement.key == key
        assert requirement.operator == Operator(op)
        assert requirement.values == tuple(sorted(set(values)))
        return
    with pytest.raises(SelectorError) as info:
        new_requirement(key, op, values)
    assert str(info.value) == message


def test_new_requirement_sorts_and_deduplicates_values() -> None:
    requirement = new_requirement("x", Operator.IN, iter(["b", "a", "b", ""]))
    assert requirement == Requirement("x", Operator.IN, ("", "a", "b"))
    assert str(requirement) == "x in (,a,b)"


# --- key and value validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "app:monolith",
            PARSE + f'<nil>: Invalid value: "app:monolith": {NAME_PART_REGEX}',
            id="colon-in-key",
        ),
        pytest.param(
            "a/b/c ?=? def",
            PARSE + f'<nil>: Invalid value: "a/b/c": {QUALIFIED_NAME_SLASHES}',
            id="two-slashes",
        ),
        pytest.param(
            "app.kubernetes_io/name=x",
            PARSE + f'<nil>: Invalid value: "app.kubernetes_io/name": {PREFIX_PART_REGEX}',
            id="underscore-in-prefix",
        ),
        pytest.param(
            "/a",
            PARSE + '<nil>: Invalid value: "/a": prefix part must be non-empty',
            id="no-prefix",
        ),
        pytest.param(
            "example.com/",
            PARSE
            + '<nil>: Invalid value: "example.com/": name part must be non-empty; '
            + NAME_PART_REGEX,
            id="no-name",
        ),
        pytest.param(
            "-x", PARSE + f'<nil>: Invalid value: "-x": {NAME_PART_REGEX}', id="leading-dash"
        ),
        pytest.param(
            "x_", PARSE + f'<nil>: Invalid value: "x_": {NAME_PART_REGEX}', id="trailing-underscore"
        ),
        pytest.param(
            "!*bar", PARSE + f'<nil>: Invalid value: "*bar": {NAME_PART_REGEX}', id="star"
        ),
        pytest.param(
            "k" * 64,
            PARSE + f'<nil>: Invalid value: "{"k" * 64}": name part must be no more than 63 '
            "characters",
            id="name-64",
        ),
        pytest.param(
            "a" * 254 + "/b",
            PARSE + f'<nil>: Invalid value: "{"a" * 254}/b": prefix part must be no more than '
            "253 characters",
            id="prefix-254",
        ),
        pytest.param(
            "é=x",
            PARSE + f'<nil>: Invalid value: "é": {NAME_PART_REGEX}',
            id="non-ascii-key",
        ),
        pytest.param(
            "x=" + "v" * 64,
            PARSE + f'values[0][x]: Invalid value: "{"v" * 64}": must be no more than 63 '
            "characters",
            id="value-64",
        ),
        pytest.param(
            "x=" + "é" * 32,
            PARSE + f'values[0][x]: Invalid value: "{"é" * 32}": must be no more than 63 '
            f"characters; {LABEL_VALUE_REGEX}",
            id="value-length-counts-bytes",
        ),
        pytest.param(
            "x=-a",
            PARSE + f'values[0][x]: Invalid value: "-a": {LABEL_VALUE_REGEX}',
            id="value-leading-dash",
        ),
        pytest.param(
            'x=a"b',
            PARSE + f'values[0][x]: Invalid value: "a\\"b": {LABEL_VALUE_REGEX}',
            id="value-quoted-like-go",
        ),
        pytest.param(
            "x in (ok,-bad,_worse)",
            PARSE + f'[values[0][x]: Invalid value: "-bad": {LABEL_VALUE_REGEX}, '
            f'values[1][x]: Invalid value: "_worse": {LABEL_VALUE_REGEX}]',
            id="values-indexed-in-sorted-order",
        ),
        pytest.param(
            "x>a-",
            PARSE + f'[values[0]: Invalid value: "a-": {NOT_AN_INTEGER}, '
            f'values[0][x]: Invalid value: "a-": {LABEL_VALUE_REGEX}]',
            id="gt-bad-value-two-errors",
        ),
        pytest.param(
            "x>",
            PARSE + f'values[0]: Invalid value: "": {NOT_AN_INTEGER}',
            id="gt-empty",
        ),
        pytest.param(
            "x>-1",
            PARSE + f'values[0][x]: Invalid value: "-1": {LABEL_VALUE_REGEX}',
            id="gt-negative-is-not-a-label-value",
        ),
        pytest.param(
            "x<9223372036854775808",
            PARSE + f'values[0]: Invalid value: "9223372036854775808": {NOT_AN_INTEGER}',
            id="lt-overflows-int64",
        ),
    ],
)
def test_invalid_keys_and_values(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("k" * 63, id="name-63"),
        pytest.param("a" * 253 + "/b", id="prefix-253"),
        pytest.param("example.com/My_Name.x-1", id="prefixed"),
        pytest.param("x=" + "v" * 63, id="value-63"),
        pytest.param("x=A.b_c-1", id="value-punctuation"),
        pytest.param("x<9223372036854775807", id="lt-max-int64"),
        pytest.param("x>000000000000000000000000000001", id="gt-leading-zeros"),
    ],
)
def test_valid_edge_keys_and_values(text: str) -> None:
    parse_selector(text)


# --- TestToString --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        pytest.param(
            Selector(
                (
                    req("x", Operator.IN, "abc", "def"),
                    req("y", Operator.NOT_IN, "jkl"),
                    req("z", Operator.EXISTS),
                )
            ),
            "x in (abc,def),y notin (jkl),z",
            id="in-notin-exists",
        ),
        pytest.param(
            Selector(
                (
                    req("x", Operator.NOT_IN, "abc", "def"),
                    req("y", Operator.NOT_EQUALS, "jkl"),
                    req("z", Operator.DOES_NOT_EXIST),
                )
            ),
            "x notin (abc,def),y!=jkl,!z",
            id="notin-ne-dne",
        ),
        pytest.param(
            Selector(
                (
                    req("x", Operator.NOT_IN, "abc"),
                    req("y", Operator.IN, "jkl", "mno"),
                    req("z", Operator.NOT_IN, ""),
                )
            ),
            "x notin (abc),y in (jkl,mno),z notin ()",
            id="empty-value-set",
        ),
        pytest.param(
            Selector(
                (
                    req("x", Operator.EQUALS, "abc"),
                    req("y", Operator.DOUBLE_EQUALS, "jkl"),
                    req("z", Operator.NOT_EQUALS, "a"),
                    req("z", Operator.EXISTS),
                )
            ),
            "x=abc,y==jkl,z!=a,z",
            id="equals-kinds",
        ),
        pytest.param(
            Selector(
                (
                    req("x", Operator.GREATER_THAN, "2"),
                    req("y", Operator.LESS_THAN, "8"),
                    req("z", Operator.EXISTS),
                )
            ),
            "x>2,y<8,z",
            id="gt-lt",
        ),
        pytest.param(
            Selector((Requirement("x", Operator.IN, ("b", "a")),)),
            "x in (a,b)",
            id="unsorted-values-sorted-on-output",
        ),
        pytest.param(parse_selector("a=b,c in (y,x),!d"), "a=b,c in (x,y),!d", id="parsed"),
    ],
)
def test_to_string(selector: Selector, expected: str) -> None:
    assert str(selector) == expected


# --- TestRequirementSelectorMatching -------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "requirements", "expected"),
    [
        pytest.param(
            {"x": "foo", "y": "baz"},
            (req("x", Operator.IN, "foo"), req("y", Operator.NOT_IN, "alpha")),
            True,
            id="in-and-notin",
        ),
        pytest.param(
            {"x": "foo", "y": "baz"},
            (req("x", Operator.IN, "foo"), req("y", Operator.IN, "alpha")),
            False,
            id="in-and-in-miss",
        ),
        pytest.param(
            {"y": ""},
            (req("x", Operator.NOT_IN, ""), req("y", Operator.EXISTS)),
            True,
            id="notin-absent-and-exists",
        ),
        pytest.param(
            {"y": ""},
            (req("x", Operator.DOES_NOT_EXIST), req("y", Operator.EXISTS)),
            True,
            id="dne-and-exists",
        ),
        pytest.param(
            {"y": ""},
            (req("x", Operator.NOT_IN, ""), req("y", Operator.DOES_NOT_EXIST)),
            False,
            id="notin-and-dne-miss",
        ),
        pytest.param({"y": "baz"}, (req("x", Operator.IN, ""),), False, id="in-empty-absent"),
        pytest.param({"z": "2"}, (req("z", Operator.GREATER_THAN, "1"),), True, id="gt-int"),
        pytest.param({"z": "v2"}, (req("z", Operator.GREATER_THAN, "1"),), False, id="gt-non-int"),
    ],
)
def test_requirement_selector_matching(
    labels: dict[str, str], requirements: tuple[Requirement, ...], expected: bool
) -> None:
    assert Selector(requirements).matches(labels) is expected


# --- TestSetSelectorParser -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", (), id="empty"),
        pytest.param("\rx", (req("x", Operator.EXISTS),), id="carriage-return"),
        pytest.param(
            "this-is-a-dns.domain.com/key-with-dash",
            (req("this-is-a-dns.domain.com/key-with-dash", Operator.EXISTS),),
            id="prefixed-key",
        ),
        pytest.param(
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            (req("this-is-another-dns.domain.com/key-with-dash", Operator.IN, "so", "what"),),
            id="prefixed-key-in",
        ),
        pytest.param(
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            (req("0.1.2.domain/99", Operator.NOT_IN, "10.10.100.1", "tick.tack.clock"),),
            id="dotted-values",
        ),
        pytest.param("foo  in\t (abc)", (req("foo", Operator.IN, "abc"),), id="tab"),
        pytest.param("x notin\n (abc)", (req("x", Operator.NOT_IN, "abc"),), id="newline"),
        pytest.param(
            "x  notin\t\t\t(abc,def)", (req("x", Operator.NOT_IN, "abc", "def"),), id="tabs"
        ),
        pytest.param("x in (abc,def)", (req("x", Operator.IN, "abc", "def"),), id="in-two"),
        pytest.param("x in (abc,)", (req("x", Operator.IN, "abc", ""),), id="trailing-comma"),
        pytest.param("x in ()", (req("x", Operator.IN, ""),), id="empty-set"),
        pytest.param(
            "x notin (abc,,def),bar,z in (),w",
            (
                req("bar", Operator.EXISTS),
                req("w", Operator.EXISTS),
                req("x", Operator.NOT_IN, "abc", "", "def"),
                req("z", Operator.IN, ""),
            ),
            id="mixed-sorted-by-key",
        ),
        pytest.param(
            "x,y in (a)", (req("x", Operator.EXISTS), req("y", Operator.IN, "a")), id="x-y"
        ),
        pytest.param("x=a", (req("x", Operator.EQUALS, "a"),), id="equals"),
        pytest.param("x>1", (req("x", Operator.GREATER_THAN, "1"),), id="gt"),
        pytest.param("x<7", (req("x", Operator.LESS_THAN, "7"),), id="lt"),
        pytest.param(
            "x=a,y!=b",
            (req("x", Operator.EQUALS, "a"), req("y", Operator.NOT_EQUALS, "b")),
            id="eq-ne",
        ),
        pytest.param(
            "x=a,y!=b,z in (h,i,j)",
            (
                req("x", Operator.EQUALS, "a"),
                req("y", Operator.NOT_EQUALS, "b"),
                req("z", Operator.IN, "h", "i", "j"),
            ),
            id="eq-ne-in",
        ),
        pytest.param("x notin ( )", (req("x", Operator.NOT_IN, ""),), id="notin-space"),
        pytest.param("x notin (, a)", (req("x", Operator.NOT_IN, "", "a"),), id="leading-comma"),
        pytest.param("a ", (req("a", Operator.EXISTS),), id="trailing-space"),
        pytest.param(
            "a in (x,y,notin, z,in)",
            (req("a", Operator.IN, "in", "notin", "x", "y", "z"),),
            id="keywords-as-values",
        ),
        pytest.param("x==a", (req("x", Operator.DOUBLE_EQUALS, "a"),), id="double-equals"),
        pytest.param("x in (,)", (req("x", Operator.IN, ""),), id="lone-comma"),
        pytest.param("x in (a,,b)", (req("x", Operator.IN, "", "a", "b"),), id="double-comma"),
        pytest.param("x in (a,a)", (req("x", Operator.IN, "a"),), id="duplicate-values"),
        pytest.param("in in (in)", (req("in", Operator.IN, "in"),), id="in-everywhere"),
        pytest.param("!in", (req("in", Operator.DOES_NOT_EXIST),), id="not-in-key"),
        pytest.param(
            "x=1,x=2",
            (req("x", Operator.EQUALS, "1"), req("x", Operator.EQUALS, "2")),
            id="same-key-keeps-input-order",
        ),
    ],
)
def test_set_selector_parser(text: str, expected: tuple[Requirement, ...]) -> None:
    assert parse_selector(text).requirements == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("x=a||y=b", None, id="or"),
        pytest.param("x,,y", "found ',', expected: identifier after ','", id="double-comma"),
        pytest.param(
            ",x,y", "found ',', expected: !, identifier, or 'end of string'", id="leading-comma"
        ),
        pytest.param(
            "x nott in (y)",
            PARSE + f"found 'nott', expected: {EXPECTED_OPERATORS}",
            id="bad-operator",
        ),
        pytest.param("a in (xyz),", "found '', expected: identifier after ','", id="dangling"),
        pytest.param(
            "a in (xyz)b notin ()",
            "found 'b', expected: ',' or 'end of string'",
            id="missing-comma",
        ),
        pytest.param(
            "a in (xyz abc)", PARSE + "found 'abc', expected: ',' or ')'", id="no-comma-in-set"
        ),
        pytest.param(
            "a notin(",
            PARSE + "found '', expected: ',', ')' or identifier",
            id="unterminated",
        ),
        pytest.param(
            "a (", PARSE + f"found '(', expected: {EXPECTED_OPERATORS}", id="paren-after-key"
        ),
        pytest.param("(", "found '(', expected: !, identifier, or 'end of string'", id="paren"),
        pytest.param("!", PARSE + "found '', expected: identifier", id="bang-only"),
        pytest.param("x in", PARSE + "found '' expected: '('", id="in-without-set"),
        pytest.param("x in a", PARSE + "found 'a' expected: '('", id="in-without-parens"),
        pytest.param(
            "x in (a,b", PARSE + "found '', expected: ',' or ')'", id="unclosed-after-value"
        ),
        pytest.param(
            "x in (=)", PARSE + "found '=', expected: ',', ')' or identifier", id="operator-in-set"
        ),
        pytest.param(
            "x in (a,=)", PARSE + "found '=', expected: ',', or identifier", id="operator-in-list"
        ),
        pytest.param(
            "x in (,,)", PARSE + "found ')', expected: ',', or identifier", id="three-empties"
        ),
        pytest.param("x=(", PARSE + "found '(', expected: identifier", id="paren-as-value"),
        pytest.param(
            "x!", PARSE + f"found '!', expected: {EXPECTED_OPERATORS}", id="bang-as-operator"
        ),
        pytest.param(
            "!x in (a)", "found 'in', expected: ',' or 'end of string'", id="not-with-set"
        ),
        pytest.param("a, \x00b", "found '', expected: identifier after ','", id="nul-ends-input"),
    ],
)
def test_set_selector_parser_errors(text: str, message: str | None) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    if message is not None:
        assert str(info.value) == message


def test_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^found"):
        parse_selector(",")


# --- prometheus-adapter cases --------------------------------------------------------------------


def test_adapter_single_equality() -> None:
    selector = parse_selector("metric1=value1")
    assert selector.requirements == (Requirement("metric1", Operator.EQUALS, ("value1",)),)
    assert str(selector) == "metric1=value1"


def test_adapter_equality_and_set() -> None:
    selector = parse_selector("foo=bar,qux in (bar,baz)")
    assert selector.requirements == (
        Requirement("foo", Operator.EQUALS, ("bar",)),
        Requirement("qux", Operator.IN, ("bar", "baz")),
    )
    assert str(selector) == "foo=bar,qux in (bar,baz)"
    assert selector.matches({"foo": "bar", "qux": "baz"})
    assert not selector.matches({"foo": "bar", "qux": "quux"})


def test_keys_sorted() -> None:
    selector = parse_selector("b=1,a=2")
    assert [r.key for r in selector.requirements] == ["a", "b"]
    assert str(selector) == "a=2,b=1"


def test_values_sorted() -> None:
    selector = parse_selector("x in (c,a,b)")
    assert selector.requirements[0].values == ("a", "b", "c")
    assert str(selector) == "x in (a,b,c)"


def test_nul_after_identifier_acts_as_separator() -> None:
    assert str(parse_selector("a\x00,b")) == "a,b"


# --- to_label_selector (metav1.ParseToLabelSelector) ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", None, id="empty"),
        pytest.param("a=b", {"matchLabels": {"a": "b"}}, id="equals"),
        pytest.param("a==b", {"matchLabels": {"a": "b"}}, id="double-equals"),
        pytest.param("a=", {"matchLabels": {"a": ""}}, id="equals-empty"),
        pytest.param("b=2,a=1", {"matchLabels": {"a": "1", "b": "2"}}, id="match-labels-sorted"),
        pytest.param("a=1,a=2", {"matchLabels": {"a": "2"}}, id="last-equality-wins"),
        pytest.param(
            "a in (y,x)",
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["x", "y"]}]},
            id="in",
        ),
        pytest.param(
            "a notin (x)",
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]},
            id="notin",
        ),
        pytest.param(
            "a in ()",
            {"matchExpressions": [{"key": "a", "operator": "In", "values": [""]}]},
            id="in-empty-value",
        ),
        pytest.param("a", {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, id="exists"),
        pytest.param(
            "!a", {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, id="dne"
        ),
        pytest.param(
            "z=1,!d,c in (x,y),a",
            {
                "matchLabels": {"z": "1"},
                "matchExpressions": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "c", "operator": "In", "values": ["x", "y"]},
                    {"key": "d", "operator": "DoesNotExist"},
                ],
            },
            id="mixed",
        ),
    ],
)
def test_to_label_selector(text: str, expected: dict[str, object] | None) -> None:
    assert to_label_selector(parse_selector(text)) == expected


def test_to_label_selector_json_matches_go() -> None:
    result = to_label_selector(parse_selector("b=2,a=1,c notin (y,x),!d"))
    assert json.dumps(result, separators=(",", ":")) == (
        '{"matchLabels":{"a":"1","b":"2"},"matchExpressions":['
        '{"key":"c","operator":"NotIn","values":["x","y"]},'
        '{"key":"d","operator":"DoesNotExist"}]}'
    )


def test_to_label_selector_can_write_not_equals_as_not_in() -> None:
    result = to_label_selector(parse_selector("b!=2,a=1"), not_equals_as_not_in=True)
    assert result == {
        "matchLabels": {"a": "1"},
        "matchExpressions": [{"key": "b", "operator": "NotIn", "values": ["2"]}],
    }
    with pytest.raises(SelectorError, match="isn't supported"):
        to_label_selector(parse_selector("a!=b,c>1"), not_equals_as_not_in=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a!=b", '"!=" is not a valid label selector operator', id="not-equals"),
        pytest.param("a>1", '"gt" isn\'t supported in label selectors', id="gt"),
        pytest.param("a<1", '"lt" isn\'t supported in label selectors', id="lt"),
        pytest.param(
            "b>1,a!=2", '"!=" is not a valid label selector operator', id="first-by-key-wins"
        ),
    ],
)
def test_to_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        to_label_selector(parse_selector(text))
    assert str(info.value) == message


# --- matches() truth tables ----------------------------------------------------------------------

LABEL_CASES: list[tuple[str, dict[str, str]]] = [
    ("absent", {}),
    ("other-key", {"y": "a"}),
    ("a", {"x": "a"}),
    ("b", {"x": "b"}),
    ("empty", {"x": ""}),
    ("five", {"x": "5"}),
    ("minus-five", {"x": "-5"}),
    ("not-int", {"x": "v2"}),
    ("huge", {"x": "99999999999999999999"}),
]


MATCHING_CASES: list[tuple[Requirement, set[str]]] = [
    (req("x", Operator.EQUALS, "a"), {"a"}),
    (req("x", Operator.DOUBLE_EQUALS, "a"), {"a"}),
    (req("x", Operator.EQUALS, ""), {"empty"}),
    (
        req("x", Operator.NOT_EQUALS, "a"),
        {"absent", "other-key", "b", "empty", "five", "minus-five", "not-int", "huge"},
    ),
    (req("x", Operator.IN, "a", "b"), {"a", "b"}),
    (req("x", Operator.IN, ""), {"empty"}),
    (
        req("x", Operator.NOT_IN, "a", "b"),
        {"absent", "other-key", "empty", "five", "minus-five", "not-int", "huge"},
    ),
    (req("x", Operator.EXISTS), {"a", "b", "empty", "five", "minus-five", "not-int", "huge"}),
    (req("x", Operator.DOES_NOT_EXIST), {"absent", "other-key"}),
    (req("x", Operator.GREATER_THAN, "4"), {"five"}),
    (req("x", Operator.GREATER_THAN, "5"), set()),
    (req("x", Operator.LESS_THAN, "5"), {"minus-five"}),
    (req("x", Operator.LESS_THAN, "6"), {"five", "minus-five"}),
    # Built directly, bypassing validation: Go refuses to match these, and so do we.
    (Requirement("x", Operator.GREATER_THAN, ("a",)), set()),
    (Requirement("x", Operator.LESS_THAN, ("1", "2")), set()),
]

TRUTH_TABLES = [
    pytest.param(requirement, labels, name in matching, id=f"{requirement}|{name}")
    for requirement, matching in MATCHING_CASES
    for name, labels in LABEL_CASES
]


@pytest.mark.parametrize(("requirement", "labels", "expected"), TRUTH_TABLES)
def test_requirement_matches(
    requirement: Requirement, labels: dict[str, str], expected: bool
) -> None:
    assert requirement.matches(labels) is expected
    assert Selector((requirement,)).matches(labels) is expected


def test_matches_accepts_any_mapping() -> None:
    class Labels(dict[str, str]):
        pass

    assert parse_selector("x=a,!y").matches(Labels(x="a"))


# --- linear behaviour on long inputs -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(",".join(f"k{i}=v{i}" for i in range(5000)), id="many-requirements"),
        pytest.param("x in (" + ",".join(f"v{i}" for i in range(20000)) + ")", id="big-set"),
        pytest.param("a" + "-" * 100_000 + "!", id="long-bad-key"),
        pytest.param("ab." * 30_000 + "-/x", id="long-bad-prefix"),
        pytest.param("x>" + "0" * 100_000 + "1", id="long-number"),
        pytest.param("/" * 100_000, id="many-slashes"),
    ],
)
def test_long_inputs_finish(text: str) -> None:
    with contextlib.suppress(SelectorError):
        parse_selector(text)
