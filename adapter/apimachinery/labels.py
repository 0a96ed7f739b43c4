"""Kubernetes label selectors: `labels.Parse`, `labels.NewRequirement` and friends.

A port of k8s.io/apimachinery v0.30 (the version the Go adapter pins): `pkg/labels/selector.go`
with the validation it relies on (`pkg/util/validation`, `pkg/util/validation/field`) and
`metav1.ParseToLabelSelector` (`pkg/apis/meta/v1/helpers.go`). Parse results, `String()` output
and error text match the Go code byte for byte, because all three are echoed back to users.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from adapter.golang.quote import go_quote

__all__ = [
    "EVERYTHING",
    "Operator",
    "Requirement",
    "Selector",
    "SelectorError",
    "label_selector_as_selector",
    "new_requirement",
    "parse_selector",
    "to_label_selector",
]


class Operator(enum.StrEnum):
    """Go's `selection.Operator`; the values are Go's strings."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


class SelectorError(ValueError):
    """A selector that Go would reject; the message is Go's error text."""


# Order matters: Go lists these in "expected: ..." and "supported values: ..." messages.
_BINARY_OPERATORS = (
    Operator.IN,
    Operator.NOT_IN,
    Operator.EQUALS,
    Operator.DOUBLE_EQUALS,
    Operator.NOT_EQUALS,
    Operator.GREATER_THAN,
    Operator.LESS_THAN,
)
_UNARY_OPERATORS = (Operator.EXISTS, Operator.DOES_NOT_EXIST)
_VALID_REQUIREMENT_OPERATORS = _BINARY_OPERATORS + _UNARY_OPERATORS

# --- validation (pkg/util/validation) ------------------------------------------------------------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_QUALIFIED_NAME_MAX_LENGTH = 63
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MAX_LENGTH = 63
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_ERR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX_LENGTH = 253

# The same languages as Go's patterns, written so that a failing match backtracks only
# linearly (the Go originals are fine under RE2 but nest optional groups).
_QUALIFIED_NAME_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS1123_SUBDOMAIN_RE = re.compile(
    r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
)
_INT_RE = re.compile(r"[+-]?([0-9]+)")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _go_len(value: str) -> int:
    # Go's len() counts UTF-8 bytes, and the length limits are checked against it.
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += f"'{example}', "
    return msg + f"regex used for validation is '{fmt}')"


def _is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if _go_len(value) > _DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len_error(_DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def _is_qualified_name(value: str) -> list[str]:
    """`validation.IsQualifiedName`: the rules for a label key."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + msg for msg in _is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _go_len(name) > _QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + _max_len_error(_QUALIFIED_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_ERR, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def _is_valid_label_value(value: str) -> list[str]:
    """`validation.IsValidLabelValue`."""
    errs: list[str] = []
    if _go_len(value) > _LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len_error(_LABEL_VALUE_MAX_LENGTH))
    if value and not _QUALIFIED_NAME_RE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


def _parse_int64(value: str) -> int | None:
    """Go's `strconv.ParseInt(value, 10, 64)`, or None where Go returns an error."""
    match = _INT_RE.fullmatch(value)
    if match is None:
        return None
    # Go accepts any number of leading zeros; Python's int() refuses very long digit strings,
    # so strip them and bound the rest before converting.
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > 19:
        return None
    number = -int(digits) if value.startswith("-") else int(digits)
    if not _INT64_MIN <= number <= _INT64_MAX:
        return None
    return number


# --- field errors (pkg/util/validation/field) ----------------------------------------------------

# Go's nil *field.Path renders as "<nil>"; labels.Parse passes a nil path.
_NIL_PATH = "<nil>"


def _go_sharp_v(value: str | list[str]) -> str:
    """Go's `%#v` for the bad values v0.30's `field.Error.ErrorBody` falls back to."""
    if isinstance(value, str):
        return go_quote(value)
    if not value:
        # Go callers pass nil here (LabelSelectorAsSelector appends to a nil slice).
        return "[]string(nil)"
    return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"


def _field_invalid(path: str, value: str | list[str], detail: str) -> str:
    return f"{path}: Invalid value: {_go_sharp_v(value)}: {detail}"


def _field_not_supported(path: str, value: str, valid: Iterable[str]) -> str:
    supported = ", ".join(go_quote(str(v)) for v in valid)
    return f"{path}: Unsupported value: {go_quote(value)}: supported values: {supported}"


def _aggregate(errs: list[str]) -> str:
    """`field.ErrorList.ToAggregate().Error()`: de-duplicated, bracketed when several."""
    unique = list(dict.fromkeys(errs))
    if len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


def _validate_label_key(key: str, path: str) -> str | None:
    errs = _is_qualified_name(key)
    if errs:
        return _field_invalid(path, key, "; ".join(errs))
    return None


def _validate_label_value(key: str, value: str, path: str) -> str | None:
    errs = _is_valid_label_value(value)
    if errs:
        return _field_invalid(f"{path}[{key}]", value, "; ".join(errs))
    return None


# --- Requirement and Selector --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key op values` term of a selector (Go's `labels.Requirement`).

    Build it with `new_requirement` (or `parse_selector`) to get Go's validation.
    """

    key: str
    operator: Operator
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Go's `Requirement.Matches`."""
        value = labels.get(self.key)
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return value is not None and value in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            return value is None or value not in self.values
        if op == Operator.EXISTS:
            return value is not None
        if op == Operator.DOES_NOT_EXIST:
            return value is None
        # GREATER_THAN and LESS_THAN: both sides must parse as int64, or nothing matches.
        if value is None:
            return False
        label_number = _parse_int64(value)
        if label_number is None or len(self.values) != 1:
            return False
        bound = _parse_int64(self.values[0])
        if bound is None:
            return False
        if op == Operator.GREATER_THAN:
            return label_number > bound
        return label_number < bound

    def __str__(self) -> str:
        """Go's `Requirement.String()`."""
        op = self.operator
        if op == Operator.EXISTS:
            return self.key
        if op == Operator.DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if op == Operator.IN:
            return f"{self.key} in ({values})"
        if op == Operator.NOT_IN:
            return f"{self.key} notin ({values})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{values}"


@dataclass(frozen=True, slots=True)
class Selector:
    """An AND of requirements (Go's `internalSelector`), sorted by key."""

    requirements: tuple[Requirement, ...]

    def empty(self) -> bool:
        """Whether the selector places no restriction (matches everything)."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every requirement matches `labels`."""
        return all(req.matches(labels) for req in self.requirements)

    def __str__(self) -> str:
        """Go's `internalSelector.String()`."""
        return ",".join(str(req) for req in self.requirements)


EVERYTHING = Selector(())


def _requirement_errors(key: str, op: str, values: list[str]) -> list[str]:
    """The checks of Go's `NewRequirement`, in Go's order.

    Every caller passes Go's nil field path, whose children render without a parent ("key",
    "values[0]").
    """
    errs: list[str] = []
    key_err = _validate_label_key(key, "key")
    if key_err is not None:
        errs.append(key_err)

    value_path = "values"
    if op in (Operator.IN, Operator.NOT_IN):
        if not values:
            errs.append(
                _field_invalid(
                    value_path, values, "for 'in', 'notin' operators, values set can't be empty"
                )
            )
    elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS):
        if len(values) != 1:
            errs.append(
                _field_invalid(
                    value_path, values, "exact-match compatibility requires one single value"
                )
            )
    elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        if values:
            errs.append(
                _field_invalid(
                    value_path, values, "values set must be empty for exists and does not exist"
                )
            )
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            errs.append(
                _field_invalid(
                    value_path, values, "for 'Gt', 'Lt' operators, exactly one value is required"
                )
            )
        for i, value in enumerate(values):
            if _parse_int64(value) is None:
                errs.append(
                    _field_invalid(
                        f"{value_path}[{i}]",
                        value,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    )
                )
    else:
        errs.append(_field_not_supported("operator", op, _VALID_REQUIREMENT_OPERATORS))

    for i, value in enumerate(values):
        value_err = _validate_label_value(key, value, f"{value_path}[{i}]")
        if value_err is not None:
            errs.append(value_err)
    return errs


def new_requirement(key: str, op: Operator | str, values: Iterable[str]) -> Requirement:
    """Go's `labels.NewRequirement` (without a field path).

    Raises SelectorError with Go's aggregated message when the requirement is invalid. The
    values are stored sorted and de-duplicated, as the parser would produce them.
    """
    vals = list(values)
    errs = _requirement_errors(key, op, vals)
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, Operator(op), tuple(sorted(set(vals))))


# --- lexer and parser ----------------------------------------------------------------------------


class Token(enum.IntEnum):
    """Go's lexer tokens (exposed for tests)."""

    ERROR = 0
    END_OF_STRING = 1
    CLOSED_PAR = 2
    COMMA = 3
    DOES_NOT_EXIST = 4
    DOUBLE_EQUALS = 5
    EQUALS = 6
    GREATER_THAN = 7
    IDENTIFIER = 8
    IN = 9
    LESS_THAN = 10
    NOT_EQUALS = 11
    NOT_IN = 12
    OPEN_PAR = 13


_STRING_TO_TOKEN = {
    ")": Token.CLOSED_PAR,
    ",": Token.COMMA,
    "!": Token.DOES_NOT_EXIST,
    "==": Token.DOUBLE_EQUALS,
    "=": Token.EQUALS,
    ">": Token.GREATER_THAN,
    "in": Token.IN,
    "<": Token.LESS_THAN,
    "!=": Token.NOT_EQUALS,
    "notin": Token.NOT_IN,
    "(": Token.OPEN_PAR,
}
_SPECIAL_SYMBOLS = frozenset("=!(),><")
# Go's isWhitespace: exactly these four, not Unicode spaces.
_WHITESPACE_RUN = re.compile(r"[ \t\r\n]*")
# Go's lexer reads bytes and treats a NUL byte like the end of input, so NUL ends a run too.
_IDENTIFIER_RUN = re.compile(r"[^=!(),>< \t\r\n\x00]*")


def _run_end(run: re.Pattern[str], text: str, pos: int) -> int:
    match = run.match(text, pos)
    return pos if match is None else match.end()


class Lexer:
    """Go's `labels.Lexer` (exposed for tests).

    Go's `read()` returns 0 both at the end and for a NUL byte, but only advances past a real
    NUL; that quirk is kept so that inputs containing NUL tokenise exactly as in Go.
    """

    __slots__ = ("_pos", "_s")

    def __init__(self, text: str) -> None:
        self._s = text
        self._pos = 0

    def _skip_nul(self) -> None:
        if self._pos < len(self._s) and self._s[self._pos] == "\0":
            self._pos += 1

    def _scan_id_or_keyword(self) -> tuple[Token, str]:
        end = _run_end(_IDENTIFIER_RUN, self._s, self._pos)
        literal = self._s[self._pos : end]
        self._pos = end
        self._skip_nul()
        return _STRING_TO_TOKEN.get(literal, Token.IDENTIFIER), literal

    def _scan_special_symbol(self) -> tuple[Token, str]:
        s = self._s
        start = self._pos
        last: tuple[Token, str] | None = None
        while self._pos < len(s):
            ch = s[self._pos]
            self._pos += 1
            if ch == "\0":
                break
            if ch not in _SPECIAL_SYMBOLS:
                self._pos -= 1
                break
            buffer = s[start : self._pos]
            token = _STRING_TO_TOKEN.get(buffer)
            if token is not None:
                last = (token, buffer)
            elif last is not None:
                self._pos -= 1
                break
        if last is None:
            return Token.ERROR, f"error expected: keyword found '{s[start : self._pos]}'"
        return last

    def lex(self) -> tuple[Token, str]:
        """Return the next token and its literal (Go's `Lex`)."""
        self._pos = _run_end(_WHITESPACE_RUN, self._s, self._pos)
        if self._pos >= len(self._s):
            return Token.END_OF_STRING, ""
        ch = self._s[self._pos]
        if ch == "\0":
            self._pos += 1
            return Token.END_OF_STRING, ""
        if ch in _SPECIAL_SYMBOLS:
            return self._scan_special_symbol()
        return self._scan_id_or_keyword()


class ParserContext(enum.Enum):
    """Whether `in`/`notin` are keywords (KEY_AND_OPERATOR) or plain identifiers (VALUES)."""

    KEY_AND_OPERATOR = 0
    VALUES = 1


class Parser:
    """Go's `labels.Parser` (exposed for tests)."""

    __slots__ = ("_items", "_lexer", "_position")

    def __init__(self, text: str) -> None:
        self._lexer = Lexer(text)
        self._items: list[tuple[Token, str]] = []
        self._position = 0

    def scan(self) -> list[tuple[Token, str]]:
        """Tokenise the whole input, up to and including END_OF_STRING."""
        while True:
            item = self._lexer.lex()
            self._items.append(item)
            if item[0] == Token.END_OF_STRING:
                return self._items

    def _item(self, position: int, context: ParserContext) -> tuple[Token, str]:
        # Go would index out of range here; its grammar never gets that far.
        if position >= len(self._items):
            return Token.END_OF_STRING, ""
        token, literal = self._items[position]
        if context == ParserContext.VALUES and token in (Token.IN, Token.NOT_IN):
            token = Token.IDENTIFIER
        return token, literal

    def lookahead(self, context: ParserContext) -> tuple[Token, str]:
        """The current token, without moving on."""
        return self._item(self._position, context)

    def consume(self, context: ParserContext) -> tuple[Token, str]:
        """The current token, moving on past it."""
        self._position += 1
        return self._item(self._position - 1, context)

    def parse(self) -> list[Requirement]:
        """Go's `Parser.parse`: the requirements in input order."""
        self.scan()
        requirements: list[Requirement] = []
        while True:
            token, literal = self.lookahead(ParserContext.VALUES)
            if token in (Token.IDENTIFIER, Token.DOES_NOT_EXIST):
                try:
                    requirement = self._parse_requirement()
                except SelectorError as err:
                    raise SelectorError(f"unable to parse requirement: {err}") from None
                requirements.append(requirement)
                token, literal = self.consume(ParserContext.VALUES)
                if token == Token.END_OF_STRING:
                    return requirements
                if token != Token.COMMA:
                    raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
                token, literal = self.lookahead(ParserContext.VALUES)
                if token not in (Token.IDENTIFIER, Token.DOES_NOT_EXIST):
                    raise SelectorError(f"found '{literal}', expected: identifier after ','")
            elif token == Token.END_OF_STRING:
                return requirements
            else:
                raise SelectorError(
                    f"found '{literal}', expected: !, identifier, or 'end of string'"
                )

    def _parse_requirement(self) -> Requirement:
        key, operator = self._parse_key_and_infer_operator()
        if operator is None:
            operator = self._parse_operator()
            if operator in (Operator.IN, Operator.NOT_IN):
                values = self._parse_values()
            else:
                values = self._parse_exact_value()
            value_list = sorted(values)
        else:
            value_list = []
        errs = _requirement_errors(key, operator, value_list)
        if errs:
            raise SelectorError(_aggregate(errs))
        return Requirement(key, operator, tuple(value_list))

    def _parse_key_and_infer_operator(self) -> tuple[str, Operator | None]:
        operator: Operator | None = None
        token, literal = self.consume(ParserContext.VALUES)
        if token == Token.DOES_NOT_EXIST:
            operator = Operator.DOES_NOT_EXIST
            token, literal = self.consume(ParserContext.VALUES)
        if token != Token.IDENTIFIER:
            raise SelectorError(f"found '{literal}', expected: identifier")
        key_err = _validate_label_key(literal, _NIL_PATH)
        if key_err is not None:
            raise SelectorError(key_err)
        next_token, _ = self.lookahead(ParserContext.VALUES)
        if next_token in (Token.END_OF_STRING, Token.COMMA) and operator is None:
            operator = Operator.EXISTS
        return literal, operator

    def _parse_operator(self) -> Operator:
        token, literal = self.consume(ParserContext.KEY_AND_OPERATOR)
        operator = _TOKEN_TO_OPERATOR.get(token)
        if operator is None:
            expected = ", ".join(_BINARY_OPERATORS)
            raise SelectorError(f"found '{literal}', expected: {expected}")
        return operator

    def _parse_values(self) -> set[str]:
        token, literal = self.consume(ParserContext.VALUES)
        if token != Token.OPEN_PAR:
            raise SelectorError(f"found '{literal}' expected: '('")
        token, literal = self.lookahead(ParserContext.VALUES)
        if token in (Token.IDENTIFIER, Token.COMMA):
            values = self._parse_identifiers_list()
            token, _ = self.consume(ParserContext.VALUES)
            if token != Token.CLOSED_PAR:
                raise SelectorError(f"found '{literal}', expected: ')'")
            return values
        if token == Token.CLOSED_PAR:
            self.consume(ParserContext.VALUES)
            return {""}
        raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")

    def _parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            token, literal = self.consume(ParserContext.VALUES)
            if token == Token.IDENTIFIER:
                values.add(literal)
                next_token, next_literal = self.lookahead(ParserContext.VALUES)
                if next_token == Token.COMMA:
                    continue
                if next_token == Token.CLOSED_PAR:
                    return values
                raise SelectorError(f"found '{next_literal}', expected: ',' or ')'")
            if token == Token.COMMA:
                # Empty entries ("(,", ",,", ",)") stand for the empty value.
                if not values:
                    values.add("")
                next_token, _ = self.lookahead(ParserContext.VALUES)
                if next_token == Token.CLOSED_PAR:
                    values.add("")
                    return values
                if next_token == Token.COMMA:
                    self.consume(ParserContext.VALUES)
                    values.add("")
                continue
            raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def _parse_exact_value(self) -> set[str]:
        token, _ = self.lookahead(ParserContext.VALUES)
        if token in (Token.END_OF_STRING, Token.COMMA):
            return {""}
        token, literal = self.consume(ParserContext.VALUES)
        if token == Token.IDENTIFIER:
            return {literal}
        raise SelectorError(f"found '{literal}', expected: identifier")


_TOKEN_TO_OPERATOR = {
    Token.IN: Operator.IN,
    Token.EQUALS: Operator.EQUALS,
    Token.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    Token.GREATER_THAN: Operator.GREATER_THAN,
    Token.LESS_THAN: Operator.LESS_THAN,
    Token.NOT_IN: Operator.NOT_IN,
    Token.NOT_EQUALS: Operator.NOT_EQUALS,
}


# HPAs and kubectl send the same few selectors again and again; a Selector is immutable, so
# each distinct text is parsed once (bad ones are not cached: lru_cache keeps no exceptions).
@functools.lru_cache(maxsize=4096)
def parse_selector(text: str) -> Selector:
    """Go's `labels.Parse`; raises SelectorError with Go's message."""
    requirements = Parser(text).parse()
    # Go sorts by key only; Python's sort is stable, as Go's is for the short lists it sees.
    requirements.sort(key=lambda req: req.key)
    return Selector(tuple(requirements))


_LABEL_SELECTOR_OPERATORS = {
    Operator.IN: "In",
    Operator.NOT_IN: "NotIn",
    Operator.EXISTS: "Exists",
    Operator.DOES_NOT_EXIST: "DoesNotExist",
}


def to_label_selector(
    selector: Selector, *, not_equals_as_not_in: bool = False
) -> dict[str, object] | None:
    """`metav1.ParseToLabelSelector(selector.String())` as Kubernetes' JSON, None if empty.

    Go refuses `!=`, which a LabelSelector cannot store; `not_equals_as_not_in` writes
    `k!=v` as `k notin (v)` instead, which selects exactly the same labels.
    """
    if selector.empty():
        return None
    text = str(selector)
    try:
        reparsed = parse_selector(text)
    except SelectorError as err:
        raise SelectorError(f'couldn\'t parse the selector string "{text}": {err}') from None

    match_labels: dict[str, str] = {}
    match_expressions: list[dict[str, object]] = []
    for req in reparsed.requirements:
        op = req.operator
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS):
            if len(req.values) != 1:
                raise SelectorError("equals operator must have exactly one value")
            match_labels[req.key] = req.values[0]
            continue
        if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
            raise SelectorError(f"{go_quote(op.value)} isn't supported in label selectors")
        if op == Operator.NOT_EQUALS and not_equals_as_not_in:
            op = Operator.NOT_IN
        label_op = _LABEL_SELECTOR_OPERATORS.get(op)
        if label_op is None:
            raise SelectorError(f"{go_quote(op.value)} is not a valid label selector operator")
        expression: dict[str, object] = {"key": req.key, "operator": label_op}
        if req.values:
            expression["values"] = sorted(set(req.values))
        match_expressions.append(expression)

    result: dict[str, object] = {}
    if match_labels:
        # encoding/json writes map keys sorted.
        result["matchLabels"] = dict(sorted(match_labels.items()))
    if match_expressions:
        result["matchExpressions"] = match_expressions
    return result


_FROM_LABEL_SELECTOR_OPERATORS = {v: k for k, v in _LABEL_SELECTOR_OPERATORS.items()}


def label_selector_as_selector(selector: Mapping[str, Any] | None) -> Selector:
    """Go's `metav1.LabelSelectorAsSelector` on a LabelSelector's JSON.

    `None` selects nothing in Go (`labels.Nothing()`), whose String() is empty like
    Everything's: requests built from either carry no selector, which is all callers here
    need, so both give EVERYTHING. Raises SelectorError with Go's messages.
    """
    if not selector:
        return EVERYTHING
    requirements: list[Requirement] = []
    for key, value in sorted((selector.get("matchLabels") or {}).items()):
        requirements.append(new_requirement(str(key), Operator.EQUALS, [str(value)]))
    for expression in selector.get("matchExpressions") or ():
        op = _FROM_LABEL_SELECTOR_OPERATORS.get(str(expression.get("operator", "")))
        if op is None:
            operator = go_quote(str(expression.get("operator", "")))
            raise SelectorError(f"{operator} is not a valid label selector operator")
        values = [str(v) for v in expression.get("values") or ()]
        requirements.append(new_requirement(str(expression.get("key", "")), op, values))
    # Go's selector.Add sorts by key (stable).
    requirements.sort(key=lambda req: req.key)
    return Selector(tuple(requirements))
