"""Go's `text/template` lexer and literal decoding, ported from `text/template/parse/lex.go`.

The lexer is a generator yielding Go's items one at a time, so that, as in Go, a parse
error before a lexical error is the one reported. Numbers, strings and character
constants are decoded as Go's `strconv` and `parse.newNumber` do.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from adapter.golang.quote import go_quote
from adapter.gotemplate.errors import TemplateError

__all__ = ["LiteralSyntaxError", "Token", "TokenType", "lex", "parse_number", "unquote"]


class TokenType(enum.IntEnum):
    """Go's itemType; the order matters: types after KEYWORD print as `<word>`."""

    ERROR = 0
    BOOL = enum.auto()
    CHAR = enum.auto()
    CHAR_CONSTANT = enum.auto()
    COMPLEX = enum.auto()
    ASSIGN = enum.auto()
    DECLARE = enum.auto()
    EOF = enum.auto()
    FIELD = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_DELIM = enum.auto()
    LEFT_PAREN = enum.auto()
    NUMBER = enum.auto()
    PIPE = enum.auto()
    RAW_STRING = enum.auto()
    RIGHT_DELIM = enum.auto()
    RIGHT_PAREN = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TEXT = enum.auto()
    VARIABLE = enum.auto()
    KEYWORD = enum.auto()  # Everything after this is a keyword, printed as <word>.
    BLOCK = enum.auto()
    BREAK = enum.auto()
    CONTINUE = enum.auto()
    DOT = enum.auto()
    DEFINE = enum.auto()
    ELSE = enum.auto()
    END = enum.auto()
    IF = enum.auto()
    NIL = enum.auto()
    RANGE = enum.auto()
    TEMPLATE = enum.auto()
    WITH = enum.auto()


_KEYWORDS = {
    ".": TokenType.DOT,
    "block": TokenType.BLOCK,
    "break": TokenType.BREAK,
    "continue": TokenType.CONTINUE,
    "define": TokenType.DEFINE,
    "else": TokenType.ELSE,
    "end": TokenType.END,
    "if": TokenType.IF,
    "range": TokenType.RANGE,
    "nil": TokenType.NIL,
    "template": TokenType.TEMPLATE,
    "with": TokenType.WITH,
}

_SPACE_CHARS = " \t\r\n"
_TERMINATORS = " \t\r\n.,|:)("


@dataclass(frozen=True, slots=True)
class Token:
    """Go's item: a token, its position (str index), text and line; str() as Go's."""

    typ: TokenType
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.typ is TokenType.EOF:
            return "EOF"
        if self.typ is TokenType.ERROR:
            return self.val
        if self.typ > TokenType.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def _is_alnum(ch: str) -> bool:
    # Go's unicode.IsLetter and unicode.IsDigit (category Nd).
    return ch == "_" or ch.isalpha() or ch.isdecimal()


def _rune_desc(ch: str) -> str:
    """Go's `%#U`: `U+0041 'A'`, without the quoted rune when it is not printable."""
    if ch.isprintable():
        return f"U+{ord(ch):04X} '{ch}'"
    return f"U+{ord(ch):04X}"


def lex(src: str, left: str, right: str, line_of: Callable[[int], int]) -> Iterator[Token]:
    """Go's lexer as a generator; after EOF or an error it yields EOF forever."""
    n = len(src)
    pos = 0

    def at_terminator(i: int) -> bool:
        return i >= n or src[i] in _TERMINATORS or src.startswith(right, i)

    def has_left_trim(i: int) -> bool:
        return i + 1 < n and src[i] == "-" and src[i + 1] in _SPACE_CHARS

    def has_right_trim(i: int) -> bool:
        return i + 1 < n and src[i] in _SPACE_CHARS and src[i + 1] == "-"

    def at_right_delim(i: int) -> tuple[bool, bool]:
        if has_right_trim(i) and src.startswith(right, i + 2):
            return True, True
        return src.startswith(right, i), False

    def token(typ: TokenType, start: int, end: int) -> Token:
        return Token(typ, start, src[start:end], line_of(start))

    def error(message: str, start: int) -> Token:
        return Token(TokenType.ERROR, start, message, line_of(start))

    def lex_action() -> Iterator[Token]:
        """Tokens from just after a left delimiter up to and including the right one."""
        nonlocal pos
        depth = 0
        while True:
            if at_right_delim(pos)[0]:
                if depth != 0:
                    yield error("unclosed left paren", pos)
                    return
                yield from lex_right_delim()
                return
            if pos >= n:
                yield error("unclosed action", pos)
                return
            start = pos
            ch = src[pos]
            if ch in _SPACE_CHARS:
                end = pos
                while end < n and src[end] in _SPACE_CHARS:
                    end += 1
                # The last space may belong to a " -" trim marker before the delimiter.
                if has_right_trim(end - 1) and src.startswith(right, end + 1):
                    end -= 1
                    if end == start:
                        yield from lex_right_delim()
                        return
                pos = end
                yield token(TokenType.SPACE, start, end)
            elif ch == "=":
                pos += 1
                yield token(TokenType.ASSIGN, start, pos)
            elif ch == ":":
                if not src.startswith(":=", pos):
                    yield error("expected :=", start)
                    return
                pos += 2
                yield token(TokenType.DECLARE, start, pos)
            elif ch == "|":
                pos += 1
                yield token(TokenType.PIPE, start, pos)
            elif ch in "\"'":
                quote = ch
                end = pos + 1
                while True:
                    c = src[end] if end < n else ""
                    end += 1
                    escaped = c == "\\"
                    if escaped:
                        c = src[end] if end < n else ""
                        end += 1
                    if c in ("", "\n"):
                        what = "quoted string" if quote == '"' else "character constant"
                        yield error(f"unterminated {what}", start)
                        return
                    if c == quote and not escaped:
                        break
                pos = end
                yield token(
                    TokenType.STRING if quote == '"' else TokenType.CHAR_CONSTANT, start, end
                )
            elif ch == "`":
                end = src.find("`", pos + 1)
                if end < 0:
                    yield error("unterminated raw quoted string", start)
                    return
                pos = end + 1
                yield token(TokenType.RAW_STRING, start, pos)
            elif ch == "$" or (ch == "." and pos + 1 < n and not "0" <= src[pos + 1] <= "9"):
                typ = TokenType.VARIABLE if ch == "$" else TokenType.FIELD
                end = pos + 1
                if at_terminator(end):
                    pos = end
                    yield token(typ if ch == "$" else TokenType.DOT, start, end)
                    continue
                while end < n and _is_alnum(src[end]):
                    end += 1
                if not at_terminator(end):
                    yield error(f"bad character {_rune_desc(src[end])}", start)
                    return
                pos = end
                yield token(typ, start, end)
            elif ch in "+-." or "0" <= ch <= "9":
                ok, end = _scan_number(src, pos)
                if ok and end < n and src[end] in "+-":
                    ok, end = _scan_number(src, end)
                    if not ok or src[end - 1] != "i":
                        yield error(f"bad number syntax: {go_quote(src[start:end])}", start)
                        return
                    pos = end
                    yield token(TokenType.COMPLEX, start, end)
                    continue
                if not ok:
                    yield error(f"bad number syntax: {go_quote(src[start:end])}", start)
                    return
                pos = end
                yield token(TokenType.NUMBER, start, end)
            elif _is_alnum(ch):
                end = pos
                while end < n and _is_alnum(src[end]):
                    end += 1
                if not at_terminator(end):
                    yield error(f"bad character {_rune_desc(src[end])}", start)
                    return
                word = src[start:end]
                pos = end
                if word in _KEYWORDS:
                    yield token(_KEYWORDS[word], start, end)
                elif word in ("true", "false"):
                    yield token(TokenType.BOOL, start, end)
                else:
                    yield token(TokenType.IDENTIFIER, start, end)
            elif ch == "(":
                depth += 1
                pos += 1
                yield token(TokenType.LEFT_PAREN, start, pos)
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    yield error("unexpected right paren", start)
                    return
                pos += 1
                yield token(TokenType.RIGHT_PAREN, start, pos)
            elif " " <= ch <= "~":
                pos += 1
                yield token(TokenType.CHAR, start, pos)
            else:
                yield error(f"unrecognized character in action: {_rune_desc(ch)}", start)
                return

    def lex_right_delim() -> Iterator[Token]:
        nonlocal pos
        _, trim = at_right_delim(pos)
        if trim:
            pos += 2
        start = pos
        pos += len(right)
        yield token(TokenType.RIGHT_DELIM, start, pos)
        if trim:
            while pos < n and src[pos] in _SPACE_CHARS:
                pos += 1

    while True:
        x = src.find(left, pos)
        if x < 0:
            if pos < n:
                yield token(TokenType.TEXT, pos, n)
            break
        text_end = x
        if has_left_trim(x + len(left)):
            text_end = pos + len(src[pos:x].rstrip(_SPACE_CHARS))
        if text_end > pos:
            yield token(TokenType.TEXT, pos, text_end)
        pos = x + len(left)
        after_marker = 2 if has_left_trim(pos) else 0
        if src.startswith("/*", pos + after_marker):
            start = pos + after_marker
            close = src.find("*/", start + 2)
            if close < 0:
                yield error("unclosed comment", start)
                break
            pos = close + 2
            delim, trim = at_right_delim(pos)
            if not delim:
                yield error("comment ends before closing delimiter", start)
                break
            pos += (2 if trim else 0) + len(right)
            if trim:
                while pos < n and src[pos] in _SPACE_CHARS:
                    pos += 1
            continue
        yield token(TokenType.LEFT_DELIM, x, pos)
        pos += after_marker
        failed = False
        for tok in lex_action():
            failed = tok.typ is TokenType.ERROR
            yield tok
        if failed:
            break
    eof = Token(TokenType.EOF, n, "", line_of(n))
    while True:
        yield eof


def _scan_number(src: str, pos: int) -> tuple[bool, int]:
    """Go's `scanNumber`: a loose scan; the parser rejects what is not a real number."""
    n = len(src)
    i = pos
    if i < n and src[i] in "+-":
        i += 1
    digits = "0123456789_"
    if i < n and src[i] == "0":
        i += 1
        if i < n and src[i] in "xX":
            i, digits = i + 1, "0123456789abcdefABCDEF_"
        elif i < n and src[i] in "oO":
            i, digits = i + 1, "01234567_"
        elif i < n and src[i] in "bB":
            i, digits = i + 1, "01_"
    while i < n and src[i] in digits:
        i += 1
    if i < n and src[i] == ".":
        i += 1
        while i < n and src[i] in digits:
            i += 1
    if (len(digits) == 11 and i < n and src[i] in "eE") or (
        len(digits) == 23 and i < n and src[i] in "pP"
    ):
        i += 1
        if i < n and src[i] in "+-":
            i += 1
        while i < n and src[i] in "0123456789_":
            i += 1
    if i < n and src[i] == "i":
        i += 1
    if i < n and _is_alnum(src[i]):
        return False, i + 1
    return True, i


# ---------------------------------------------------------------------------------------
# Literals


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}
_OCTAL_LEGACY = re.compile(r"[+-]?0[0-7_]+")


class LiteralSyntaxError(Exception):
    """strconv.ErrSyntax: the parser reports it as `invalid syntax`."""


def _unquote_char(s: str, i: int, quote: str) -> tuple[int, bool, int]:
    """strconv.UnquoteChar at s[i]: (code, is_byte, next index); raises on bad syntax."""
    c = s[i]
    if c == quote and quote in "'\"":
        raise LiteralSyntaxError
    if c != "\\":
        return ord(c), False, i + 1
    if i + 1 >= len(s):
        raise LiteralSyntaxError
    c = s[i + 1]
    i += 2
    if c in _SIMPLE_ESCAPES:
        return ord(_SIMPLE_ESCAPES[c]), False, i
    if c in "xuU":
        size = {"x": 2, "u": 4, "U": 8}[c]
        digits = s[i : i + size]
        if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
            raise LiteralSyntaxError
        value = int(digits, 16)
        if c == "x":
            return value, quote != "'", i + size
        if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            raise LiteralSyntaxError
        return value, False, i + size
    if "0" <= c <= "7":
        digits = s[i - 1 : i + 2]
        if len(digits) != 3 or any(d not in "01234567" for d in digits):
            raise LiteralSyntaxError
        value = int(digits, 8)
        if value > 255:
            raise LiteralSyntaxError
        return value, quote != "'", i + 2
    if c in "'\"" and c == quote:
        return ord(c), False, i
    raise LiteralSyntaxError


def unquote(quoted: str) -> str:
    """strconv.Unquote for a lexed string token; `\\x`/octal bytes may form non-UTF-8."""
    if quoted[0] == "`":
        # Go drops carriage returns from raw strings.
        return quoted[1:-1].replace("\r", "")
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        value, is_byte, i = _unquote_char(body, i, '"')
        if is_byte:
            out.append(value)
        else:
            out += chr(value).encode("utf-8", "surrogatepass")
    return out.decode("utf-8", "surrogateescape")


def parse_number(text: str, is_char: bool) -> int | float:
    """Go's `newNumber` plus exec's `idealConstant`: the int or float64 a literal denotes."""
    if is_char:
        try:
            value, _, end = _unquote_char(text, 1, "'")
        except (LiteralSyntaxError, IndexError):
            raise LiteralSyntaxError from None
        if text[end:] != "'":
            raise TemplateError(f"malformed character constant: {text}")
        return value
    if text.endswith("i"):
        raise TemplateError(f"complex constants are not supported: {text}")
    as_int: int | None = None
    try:
        if _OCTAL_LEGACY.fullmatch(text) and "__" not in text and not text.endswith("_"):
            as_int = int(text.replace("_", ""), 8)
        else:
            as_int = int(text, 0)
    except ValueError:
        as_int = None
    lowered = text.lower()
    is_hex = lowered.lstrip("+-").startswith("0x")
    if as_int is not None and not (is_hex and "p" in lowered):
        if as_int >= 2**63:
            if as_int < 2**64 and not text.startswith("-"):
                raise TemplateError(f"{text} overflows int")
            as_int = None
        elif as_int < -(2**63):
            as_int = None
        else:
            return as_int
    try:
        if is_hex and "p" not in lowered:
            raise ValueError
        as_float = float.fromhex(text.replace("_", "")) if is_hex else float(text)
    except ValueError:
        raise TemplateError(f"illegal number syntax: {go_quote(text)}") from None
    if math.isinf(as_float) or math.isnan(as_float):
        raise TemplateError(f"illegal number syntax: {go_quote(text)}")
    if not any(c in text for c in ".eEpP"):
        raise TemplateError(f"integer overflow: {text}")
    return as_float
