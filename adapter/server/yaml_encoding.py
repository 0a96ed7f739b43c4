"""YAML exactly as k8s.io/apimachinery's YAML serializer writes a response object.

The Go serializer runs `json.Marshal(obj)` and then sigs.k8s.io/yaml's `JSONToYAML`, which
decodes that JSON with go-yaml v2 into `interface{}` and encodes it again with go-yaml v2
(sigs.k8s.io/yaml v1.4 vendors it as goyaml.v2, a copy of gopkg.in/yaml.v2 v2.4.0). This module
reproduces both halves for the JSON-like values our handlers build:

- the JSON round trip: Go's number formatting and re-typing (a JSON number without fraction or
  exponent comes back as an int, anything else as a float64), lone surrogates become U+FFFD, and
  a raw U+0085 (NEL), which `json.Marshal` leaves unescaped, is folded as a line break by
  go-yaml's double-quoted scalar scanner;
- go-yaml v2's encoder (encode.go): map keys ordered by `keyList.Less` (sorter.go), and each
  string's style chosen by `stringv`: literal block when it holds "\\n", plain when `resolve()`
  (resolve.go) reads it back as a string and it is no base-60 float, double-quoted otherwise;
- go-yaml v2's emitter (emitterc.go), ported for the events that encoder produces: block
  mappings and sequences (sequences in maps not indented), `{}` and `[]` for empty ones, the
  emitter's own fallback from plain to single to double quotes, "? " keys for multi-line or
  over-128-byte keys, two-space indentation, line width 80, non-ASCII printable characters raw
  (unicode on), and its quirks: a string starting with U+FEFF has every character escaped
  (is_bom looks at the value's first bytes), no indentation before the closing quote of a
  single-quoted scalar ending in a line break, and no "..." after a `|+` scalar. libyaml 0.2
  (PyYAML's C emitter) differs from go-yaml in these (found by differential testing against
  go-yaml), hence the port rather than PyYAML's emitter.

Known differences, where Go fails instead of writing YAML and we write valid YAML: a string
holding U+007F, C1 controls other than NEL, U+FFFE or U+FFFF (go-yaml's reader refuses them),
a map key holding NEL or longer than 1024 bytes (go-yaml's flow-context simple-key limits), NEL
directly followed by "---" or "..." and a space (a document marker), and NaN or infinite floats
(json.Marshal refuses them; written as go-yaml writes a float64: .nan, .inf, -.inf). Where
keyList.Less is not transitive over a map's keys (e.g. "v1beta1" < "v2" < "v10" < "v1beta1"),
Go's order depends on its random map iteration order; ours is deterministic.
"""

import functools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["encode_yaml"]

_BEST_INDENT: Final = 2
_BEST_WIDTH: Final = 80
_SIMPLE_KEY_MAX_BYTES: Final = 128

_INT64_MIN: Final = -(1 << 63)
_UINT64_MAX: Final = (1 << 64) - 1
_INT64_MASK: Final = (1 << 64) - 1

# Plain scalars resolve.go maps to a bool, null, float or merge tag (resolveMapList).
_RESOLVE_MAP: Final = frozenset(
    {
        *("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"),
        *("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"),
        *("", "~", "null", "Null", "NULL"),
        *(".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"),
        *("-.inf", "-.Inf", "-.INF", "<<"),
    }
)
# resolveTable hints: 'M' (only the map can match), '.' (float), 'S' / 'D' (sign, digit).
_MAP_HINTS: Final = frozenset("yYnNtTfFoO~")
_NUMBER_HINTS: Final = frozenset("+-0123456789")

_YAML_STYLE_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_BASE60_FLOAT: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
# Characters the JSON round trip changes: NEL (folded by the YAML scanner), lone surrogates.
_ROUND_TRIP_CHANGES: Final = re.compile("[\x85\ud800-\udfff]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

_DIGITS: Final = frozenset(b"0123456789")

# --- emitterc.go character classes (yamlprivateh.go), on code points ---------------------
_BREAKS: Final = "\r\n\x85\u2028\u2029"
# Not is_printable: printable is \n, 0x20-0x7E, 0xA0-0xD7FF, 0xE000-0xFFFD but 0xFEFF; a
# character beyond U+FFFF (four UTF-8 bytes) is not printable either.
_NOT_PRINTABLE: Final = re.compile(r"[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
_LINE_BREAK: Final = re.compile(f"[{_BREAKS}]")
_BREAK_THEN_SPACE: Final = re.compile(f"[{_BREAKS}] ")
_SPACE_THEN_BREAK: Final = re.compile(f" [{_BREAKS}]")
# Block indicators: ": " or ":" at the end, and "#" after a blank, break or NUL (is_blankz).
_BLOCK_INDICATOR: Final = re.compile(r":(?:[ \t]|\Z)|[ \t\x00\r\n\x85\u2028\u2029]#")
_FIRST_CHAR_INDICATORS: Final = frozenset("#,[]{}&*!|>'\"%@`")
# What write_double_quoted_scalar escapes: not printable, a break, '"' or '\\'.
_DOUBLE_QUOTED_ESCAPED: Final = re.compile(
    r"[^\x20\x21\x23-\x5b\x5d-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]"
)
_NAMED_ESCAPES: Final = {
    "\x00": "0",
    "\x07": "a",
    "\x08": "b",
    "\t": "t",
    "\n": "n",
    "\x0b": "v",
    "\x0c": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}

# Scalar styles (yaml_*_SCALAR_STYLE).
_PLAIN: Final = "plain"
_SINGLE_QUOTED: Final = "single"
_DOUBLE_QUOTED: Final = "double"
_LITERAL: Final = "literal"


def encode_yaml(obj: object) -> bytes:
    """The bytes k8s.io/apimachinery's YAML serializer writes for the JSON-like `obj` (dicts
    with str keys, lists, str, int, float, bool, None). Never fails for such values; raises
    TypeError for anything else."""
    emitter = _Emitter()
    emitter.node(obj, mapping_context=False)
    emitter.write_indent()  # yaml_emitter_emit_document_end (implicit: no "...")
    return "".join(emitter.chunks).encode()


def _requested_style(text: str) -> str:
    """encode.go stringv: literal block for multi-line text, plain when the text reads back as
    the same string, double-quoted otherwise."""
    if "\n" in text:
        return _LITERAL
    if _resolves_to_string(text) and not _is_base60_float(text):
        return _PLAIN
    return _DOUBLE_QUOTED


class _ScalarAnalysis:
    """yaml_emitter_analyze_scalar's verdicts that matter outside flow collections."""

    __slots__ = ("block_allowed", "multiline", "plain_allowed", "single_quoted_allowed")

    def __init__(self, text: str) -> None:
        if not text:
            self.multiline = False
            self.plain_allowed = True
            self.single_quoted_allowed = True
            self.block_allowed = False
            return
        first = text[0]
        followed_by_blank = text[1:2] in ("", " ", "\t")
        block_indicators = (
            text.startswith(("---", "..."))
            or first in _FIRST_CHAR_INDICATORS
            or (first in "?:-" and followed_by_blank)
            or _BLOCK_INDICATOR.search(text) is not None
        )
        special_characters = _NOT_PRINTABLE.search(text) is not None
        line_breaks = _LINE_BREAK.search(text) is not None
        break_space = line_breaks and _BREAK_THEN_SPACE.search(text) is not None
        space_break = line_breaks and _SPACE_THEN_BREAK.search(text) is not None
        self.multiline = line_breaks
        self.plain_allowed = not (
            first in " " + _BREAKS  # leading space or break
            or text[-1] in " " + _BREAKS  # trailing space or break
            or line_breaks
            or special_characters
            or block_indicators
        )
        self.single_quoted_allowed = not (break_space or space_break or special_characters)
        self.block_allowed = not (text[-1] == " " or space_break or special_characters)


def _select_style(text: str, style: str, analysis: _ScalarAnalysis, *, simple_key: bool) -> str:
    """yaml_emitter_select_scalar_style outside flow collections, for untagged scalars."""
    if simple_key and analysis.multiline:
        style = _DOUBLE_QUOTED
    if style == _PLAIN and (not analysis.plain_allowed or (simple_key and not text)):
        style = _SINGLE_QUOTED
    if style == _SINGLE_QUOTED and not analysis.single_quoted_allowed:
        style = _DOUBLE_QUOTED
    if style == _LITERAL and (not analysis.block_allowed or simple_key):
        style = _DOUBLE_QUOTED
    return style


def _context_free_rendering(text: str, style: str, *, allow_breaks: bool) -> str | None:
    """The scalar as the writer for `style` writes it, when that does not depend on the
    column: the writers only break lines at spaces, and block scalars follow the indent."""
    if style == _DOUBLE_QUOTED:
        if text.startswith("\ufeff"):
            # emitterc.go's is_bom(value, i) reads value[0:3] whatever i is: after a leading
            # BOM every character is escaped, spaces too, so no line is ever broken.
            return '"' + "".join(_escape(char) for char in text) + '"'
        if allow_breaks and " " in text:
            return None
        return '"' + _DOUBLE_QUOTED_ESCAPED.sub(_escape_match, text) + '"'
    if style == _LITERAL or (allow_breaks and " " in text) or _LINE_BREAK.search(text):
        return None
    if style == _SINGLE_QUOTED:
        return "'" + text.replace("'", "''") + "'"
    return text


class _StringPlan:
    """How go-yaml writes one string of the object, as a value and as a map key."""

    __slots__ = ("key_rendering", "simple_key", "text", "value_rendering", "value_style")

    def __init__(self, raw: str) -> None:
        text = _round_trip_string(raw)
        requested = _requested_style(text)
        analysis = _ScalarAnalysis(text)
        self.text = text
        self.value_style = _select_style(text, requested, analysis, simple_key=False)
        self.value_rendering = _context_free_rendering(text, self.value_style, allow_breaks=True)
        # yaml_emitter_check_simple_key: one line of at most 128 bytes; a simple key is
        # written without line breaks, so its rendering never depends on the column.
        self.simple_key = not analysis.multiline and (
            len(text) * 4 <= _SIMPLE_KEY_MAX_BYTES or len(text.encode()) <= _SIMPLE_KEY_MAX_BYTES
        )
        self.key_rendering = ""
        if self.simple_key:
            key_style = _select_style(text, requested, analysis, simple_key=True)
            rendering = _context_free_rendering(text, key_style, allow_breaks=False)
            assert rendering is not None  # one line, and a simple key never breaks lines
            self.key_rendering = rendering


class _Emitter:
    """The parts of go-yaml v2's emitterc.go its encoder reaches, writing as it goes: block
    collections, empty flow collections and the four scalar styles, in one implicit document.
    Columns count characters, as emitterc.go's write() does."""

    __slots__ = (
        "chunks",
        "column",
        "indent",
        "indention",
        "indents",
        "plans",
        "sort_keys",
        "whitespace",
    )

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.column = 0
        self.indent = -1
        self.indents: list[int] = []
        self.whitespace = True
        self.indention = True
        # Keys and many values repeat across a list's items: plan each string once.
        self.plans: dict[str, _StringPlan] = {}
        self.sort_keys: dict[str, str | None] = {}

    def plan(self, raw: str) -> _StringPlan:
        plan = self.plans.get(raw)
        if plan is None:
            plan = self.plans[raw] = _StringPlan(raw)
        return plan

    # - emitter state machine -------------------------------------------------------------

    def node(self, value: object, *, mapping_context: bool) -> None:
        """yaml_emitter_emit_node for a value (never a simple key: those are map keys)."""
        if isinstance(value, str):
            plan = self.plan(value)
            if plan.value_rendering is not None:
                self.put_scalar(plan.value_rendering)
            else:
                self.scalar(plan.text, plan.value_style)
        elif value is None:
            self.put_scalar("null")
        elif value is True:
            self.put_scalar("true")
        elif value is False:
            self.put_scalar("false")
        elif isinstance(value, int):
            self.put_scalar(_format_json_integer(value))
        elif isinstance(value, float):
            self.put_scalar(_format_json_float(value))
        elif isinstance(value, Mapping):
            if value:
                self.block_mapping(self.sorted_items(value))
            else:
                self.empty_flow_collection("{}")
        elif isinstance(value, list | tuple):
            if value:
                self.block_sequence(value, mapping_context=mapping_context)
            else:
                self.empty_flow_collection("[]")
        else:
            raise TypeError(f"cannot encode {type(value).__name__} as YAML")

    def sorted_items(self, mapping: Mapping[object, object]) -> list[tuple[_StringPlan, object]]:
        """The decoded map's entries in keyList order."""
        keys = [_require_str(key) for key in mapping]
        decoded = {self.plan(key).text: key for key in keys}
        if len(decoded) < len(keys):
            # Keys the round trip made equal: json.Marshal writes keys in byte order and the
            # YAML decoder keeps the later of equal keys.
            decoded = {self.plan(key).text: key for key in sorted(keys, key=_go_string)}
        items = [(self.plan(key), mapping[key]) for key in decoded.values()]
        sort_keys = [self.sort_key(plan.text) for plan, _ in items]
        digitless = [sort_key for sort_key in sort_keys if sort_key is not None]
        if len(digitless) == len(items):
            pairs = sorted(zip(digitless, items, strict=True), key=lambda pair: pair[0])
            return [item for _, item in pairs]
        items.sort(key=lambda item: _KEY_ORDER(item[0].text))
        return items

    def sort_key(self, text: str) -> str | None:
        if text not in self.sort_keys:
            self.sort_keys[text] = _digitless_sort_key(text)
        return self.sort_keys[text]

    def block_mapping(self, items: list[tuple[_StringPlan, object]]) -> None:
        self.increase_indent(flow=False, indentless=False)
        for key, value in items:
            self.write_indent()
            if key.simple_key:
                self.put_scalar(key.key_rendering)
                self.write_indicator(":", need_whitespace=False, is_whitespace=False)
            else:
                self.write_indicator(
                    "?", need_whitespace=True, is_whitespace=False, is_indention=True
                )
                if key.value_rendering is not None:
                    self.put_scalar(key.value_rendering)
                else:
                    self.scalar(key.text, key.value_style)
                self.write_indent()
                self.write_indicator(
                    ":", need_whitespace=True, is_whitespace=False, is_indention=True
                )
            self.node(value, mapping_context=True)
        self.indent = self.indents.pop()

    def block_sequence(self, items: Sequence[object], *, mapping_context: bool) -> None:
        # A sequence that is a map's value stays at the key's indentation.
        self.increase_indent(flow=False, indentless=mapping_context and not self.indention)
        for item in items:
            self.write_indent()
            self.write_indicator("-", need_whitespace=True, is_whitespace=False, is_indention=True)
            self.node(item, mapping_context=False)
        self.indent = self.indents.pop()

    def empty_flow_collection(self, brackets: str) -> None:
        # yaml_emitter_emit_flow_{sequence_item,mapping_key} for a collection without items;
        # the indentation they push is popped again.
        self.write_indicator(brackets[0], need_whitespace=True, is_whitespace=True)
        self.write_indicator(brackets[1], need_whitespace=False, is_whitespace=False)

    def put_scalar(self, rendering: str) -> None:
        """A scalar whose rendering does not depend on the column (no line breaks in it)."""
        if not self.whitespace:
            self.chunks.append(" ")
            self.column += 1
        self.chunks.append(rendering)
        self.column += len(rendering)
        self.whitespace = False
        self.indention = False

    def scalar(self, text: str, style: str) -> None:
        """yaml_emitter_emit_scalar for a value or "? " key whose lines may break."""
        self.increase_indent(flow=True, indentless=False)
        if style == _PLAIN:
            self.write_plain(text)
        elif style == _SINGLE_QUOTED:
            self.write_single_quoted(text)
        elif style == _DOUBLE_QUOTED:
            self.write_double_quoted(text)
        else:
            self.write_literal(text)
        self.indent = self.indents.pop()

    def increase_indent(self, *, flow: bool, indentless: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _BEST_INDENT if flow else 0
        elif not indentless:
            self.indent += _BEST_INDENT

    # - writers for scalars whose lines may break (simple keys never get here) -------------

    def put(self, text: str) -> None:
        """Characters that are no line break."""
        self.chunks.append(text)
        self.column += len(text)

    def write_break(self, char: str) -> None:
        """put_break for "\n", write_break for any other break character: written as it is."""
        self.chunks.append(char)
        self.column = 0

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.chunks.append("\n")
            self.column = 0
        if self.column < indent:
            self.chunks.append(" " * (indent - self.column))
            self.column = indent
        self.whitespace = True
        self.indention = True

    def write_indicator(
        self,
        indicator: str,
        *,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool = False,
    ) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    def write_plain(self, text: str) -> None:
        if not self.whitespace:
            self.put(" ")
        spaces = breaks = False
        last = len(text) - 1
        for index, char in enumerate(text):
            if char == " ":
                next_is_space = index < last and text[index + 1] == " "
                if not spaces and self.column > _BEST_WIDTH and not next_is_space:
                    self.write_indent()
                else:
                    self.put(char)
                spaces = True
            elif char in _BREAKS:
                if not breaks and char == "\n":
                    self.write_break("\n")
                self.write_break(char)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(char)
                self.indention = False
                spaces = breaks = False
        self.whitespace = False
        self.indention = False

    def write_single_quoted(self, text: str) -> None:
        self.write_indicator("'", need_whitespace=True, is_whitespace=False)
        spaces = breaks = False
        last = len(text) - 1
        for index, char in enumerate(text):
            if char == " ":
                if (
                    not spaces
                    and self.column > _BEST_WIDTH
                    and 0 < index < last
                    and text[index + 1] != " "
                ):
                    self.write_indent()
                else:
                    self.put(char)
                spaces = True
            elif char in _BREAKS:
                if not breaks and char == "\n":
                    self.write_break("\n")
                self.write_break(char)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put("''" if char == "'" else char)
                self.indention = False
                spaces = breaks = False
        # Unlike libyaml 0.2, no indentation before the closing quote after a final break.
        self.write_indicator("'", need_whitespace=False, is_whitespace=False)
        self.whitespace = False
        self.indention = False

    def write_double_quoted(self, text: str) -> None:
        self.write_indicator('"', need_whitespace=True, is_whitespace=False)
        spaces = False
        last = len(text) - 1
        for index, char in enumerate(text):
            if _DOUBLE_QUOTED_ESCAPED.match(char):
                self.put(_escape(char))
                spaces = False
            elif char == " ":
                if not spaces and self.column > _BEST_WIDTH and 0 < index < last:
                    self.write_indent()
                    if text[index + 1] == " ":
                        self.put("\\")
                else:
                    self.put(char)
                spaces = True
            else:
                self.put(char)
                spaces = False
        self.write_indicator('"', need_whitespace=False, is_whitespace=False)
        self.whitespace = False
        self.indention = False

    def write_literal(self, text: str) -> None:
        self.write_indicator("|", need_whitespace=True, is_whitespace=False)
        # yaml_emitter_write_block_scalar_hints: an indentation indicator when the text starts
        # with a space or break, "-" to strip a missing final break, "+" to keep several.
        if text[0] in " " + _BREAKS:
            self.write_indicator(str(_BEST_INDENT), need_whitespace=False, is_whitespace=False)
        if text[-1] not in _BREAKS:
            chomping = "-"
        elif len(text) == 1 or text[-2] in _BREAKS:
            chomping = "+"
        else:
            chomping = ""
        if chomping:
            self.write_indicator(chomping, need_whitespace=False, is_whitespace=False)
        self.write_break("\n")
        self.indention = True
        self.whitespace = True
        breaks = True
        for part in _LINE_PARTS.findall(text):
            if part in _BREAKS:
                self.write_break(part)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(part)
                self.indention = False
                breaks = False


# A literal scalar's text as runs of non-break characters and single break characters.
_LINE_PARTS: Final = re.compile(f"[^{_BREAKS}]+|[{_BREAKS}]")


def _escape(char: str) -> str:
    """write_double_quoted_scalar's escape sequence for one character."""
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return "\\" + named
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _escape_match(match: re.Match[str]) -> str:
    return _escape(match.group())


def _require_str(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"map keys must be str, not {type(key).__name__}")
    return key


# --- the JSON round trip ------------------------------------------------------------------


def _go_string(text: str) -> str:
    # A Go string holds valid UTF-8 once json.Marshal has replaced what was invalid by U+FFFD.
    return _SURROGATE.sub("\ufffd", text)


def _round_trip_string(text: str) -> str:
    """The string go-yaml decodes from json.Marshal's double-quoted form of `text`."""
    if _ROUND_TRIP_CHANGES.search(text) is None:
        return text
    return _fold_line_breaks(_go_string(text))


def _fold_line_breaks(text: str) -> str:
    """yaml_parser_scan_flow_scalar's line folding (scannerc.go), on the raw characters of a
    JSON string: json.Marshal escapes every other break and every tab, so the only blank is a
    raw space and the only break a raw NEL, which read_line turns into "\\n". Spaces around a
    break are dropped; one break becomes a space, n + 1 breaks become n newlines."""
    folded: list[str] = []
    position = 0
    length = len(text)
    while True:
        start = position
        while position < length and text[position] not in " \x85":
            position += 1
        folded.append(text[start:position])
        if position == length:
            return "".join(folded)
        spaces = 0
        broken = False
        trailing_breaks = 0
        while position < length and text[position] in " \x85":
            if text[position] == " ":
                if not broken:
                    spaces += 1
            elif not broken:
                broken = True
            else:
                trailing_breaks += 1
            position += 1
        if not broken:
            folded.append(" " * spaces)
        elif trailing_breaks:
            folded.append("\n" * trailing_breaks)
        else:
            folded.append(" ")


def _format_json_integer(value: int) -> str:
    """How go-yaml re-reads and writes the JSON number `value`: resolve() tries ParseInt,
    ParseUint, then ParseFloat; a number beyond float64 stays the string of its digits."""
    if _INT64_MIN <= value <= _UINT64_MAX:
        return str(value)
    try:
        return _format_go_float(float(value))
    except OverflowError:
        return str(value)


def _format_json_float(value: float) -> str:
    if not math.isfinite(value):
        return _format_go_float(value)
    if value == 0:
        return "0"  # json.Marshal's "0" or "-0", read back as the integer 0
    if value.is_integer() and abs(value) < 1e21:
        # json.Marshal writes it in 'f' format: its shortest digits padded with zeros, which
        # go-yaml reads back as an integer when it fits 64 bits.
        digits, point = _shortest_digits(value)
        return _format_json_integer(int(digits + "0" * (point - len(digits))) * _sign(value))
    return _format_go_float(value)


def _sign(value: float) -> int:
    return -1 if value < 0 else 1


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits that read back as abs(`value`) (what Go's shortest
    formatting picks, and Python's repr), without leading or trailing zeros, and the
    position of the decimal point: abs(value) == 0.DIGITS * 10**point. `value` is not 0."""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent or 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    return stripped.rstrip("0"), point


def _format_go_float(value: float) -> str:
    """encode.go floatv: strconv.FormatFloat(f, 'g', -1, 64), with .inf, -.inf and .nan."""
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, point = _shortest_digits(value)
    decimal_exponent = point - 1
    # %e when the exponent is < -4 or >= the precision, which is 6 for shortest formatting.
    if decimal_exponent < -4 or decimal_exponent >= 6:
        fraction_part = "." + digits[1:] if len(digits) > 1 else ""
        exponent_sign = "-" if decimal_exponent < 0 else "+"
        return f"{sign}{digits[0]}{fraction_part}e{exponent_sign}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


# --- resolve.go ---------------------------------------------------------------------------


def _resolves_to_string(text: str) -> bool:
    """resolve("", text) returns the !!str tag: a plain scalar `text` reads back as a string."""
    if not text:
        return False  # resolves to null
    hint = text[0]
    if hint in _MAP_HINTS:
        return text not in _RESOLVE_MAP
    if hint == ".":
        return text not in _RESOLVE_MAP and not _go_parse_float_ok(text)
    if hint not in _NUMBER_HINTS:
        return True
    if text in _RESOLVE_MAP or _is_yaml_timestamp(text):
        return False
    plain = text.replace("_", "")
    if _go_parse_int_ok(plain, 0) or _go_parse_uint(plain, 0) is not None:
        return False
    if _YAML_STYLE_FLOAT.fullmatch(plain) and _go_parse_float_ok(plain):
        return False
    if plain.startswith("0b"):
        return not (_go_parse_int_ok(plain[2:], 2) or _go_parse_uint(plain[2:], 2) is not None)
    if plain.startswith("-0b"):
        return not _go_parse_int_ok("-" + plain[3:], 2)
    return True


def _is_base60_float(text: str) -> bool:
    """encode.go isBase60Float: YAML 1.1 sexagesimal numbers such as 1:20 get quoted."""
    return text[:1] in _NUMBER_HINTS and ":" in text and _BASE60_FLOAT.fullmatch(text) is not None


def _go_parse_uint(text: str, base: int) -> int | None:
    """strconv.ParseUint(text, base, 64) for `text` without underscores; None on error."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower() if len(text) >= 3 else ""
            if prefix in ("b", "o", "x"):
                base = {"b": 2, "o": 8, "x": 16}[prefix]
                text = text[2:]
            else:
                base = 8
                text = text[1:]
    value = 0
    for char in text:
        if "0" <= char <= "9":
            digit = ord(char) - ord("0")
        elif char.isascii() and "a" <= char.lower() <= "z":
            digit = ord(char.lower()) - ord("a") + 10
        else:
            return None
        if digit >= base:
            return None
        value = value * base + digit
        if value > _UINT64_MAX:
            return None
    return value


def _go_parse_int_ok(text: str, base: int) -> bool:
    """strconv.ParseInt(text, base, 64) succeeds (for `text` without underscores)."""
    negative = text[:1] == "-"
    if text[:1] in ("+", "-"):
        text = text[1:]
    magnitude = _go_parse_uint(text, base)
    if magnitude is None:
        return False
    return magnitude <= 1 << 63 if negative else magnitude < 1 << 63


def _go_parse_float_ok(text: str) -> bool:
    """strconv.ParseFloat(text, 64) succeeds, for decimal `text` (resolve() only asks about
    text starting with "." or matching yamlStyleFloat): readFloat's syntax, underscoreOK, and
    no overflow to infinity (ErrRange); underflow to zero is no error."""
    length = len(text)
    position = 0
    if position < length and text[position] in "+-":
        position += 1
    saw_dot = saw_digits = underscores = False
    while position < length:
        char = text[position]
        if char == "_":
            underscores = True
        elif char == ".":
            if saw_dot:
                break
            saw_dot = True
        elif "0" <= char <= "9":
            saw_digits = True
        else:
            break
        position += 1
    if not saw_digits:
        return False
    if position < length and text[position] in "eE":
        position += 1
        if position < length and text[position] in "+-":
            position += 1
        if position >= length or not "0" <= text[position] <= "9":
            return False
        while position < length and ("0" <= text[position] <= "9" or text[position] == "_"):
            underscores = underscores or text[position] == "_"
            position += 1
    if position != length:
        return False
    if underscores and not _underscores_ok(text):
        return False
    return not math.isinf(float(text.replace("_", "")))


def _underscores_ok(text: str) -> bool:
    """strconv.underscoreOK for decimal text: each underscore sits between two digits."""
    previous = "^"  # ^ start, 0 digit, _ underscore, ! anything else
    if text[:1] in ("+", "-"):
        text = text[1:]
    for char in text:
        if "0" <= char <= "9":
            previous = "0"
        elif char == "_":
            if previous != "0":
                return False
            previous = "_"
        elif previous == "_":
            return False
        else:
            previous = "!"
    return previous != "_"


# --- resolve.go parseTimestamp: time.Parse (Go 1.22) with go-yaml's four layouts --------

_DATE_TIME_T: Final = ("Y", "-", "M", "-", "D", "T", "h", ":", "m", ":", "s", "f", "z")
_DATE_TIME_LOWER_T: Final = ("Y", "-", "M", "-", "D", "t", "h", ":", "m", ":", "s", "f", "z")
_DATE_SPACE_TIME: Final = ("Y", "-", "M", "-", "D", " ", "h", ":", "m", ":", "s", "f")
_DATE: Final = ("Y", "-", "M", "-", "D")
# "2006-1-2T15:4:5.999999999Z07:00", the same with "t", "2006-1-2 15:4:5.999999999",
# "2006-1-2": Y year, M month, D day, h hour, m minute, s second, f optional fraction, z zone.
_TIMESTAMP_LAYOUTS: Final = (_DATE_TIME_T, _DATE_TIME_LOWER_T, _DATE_SPACE_TIME, _DATE)


def _is_yaml_timestamp(text: str) -> bool:
    """resolve.go parseTimestamp: four digits and a dash, then one of the layouts parses."""
    value = text.encode()  # time.Parse works on bytes
    if len(value) < 5 or not all(byte in _DIGITS for byte in value[:4]) or value[4:5] != b"-":
        return False
    return any(_go_time_parses(layout, value) for layout in _TIMESTAMP_LAYOUTS)


def _go_number(value: bytes, fixed: bool) -> tuple[int, bytes] | None:
    """time.getnum: one or two digits (exactly two when fixed)."""
    if value[:1] == b"" or value[0] not in _DIGITS:
        return None
    if value[1:2] == b"" or value[1] not in _DIGITS:
        return None if fixed else (value[0] - 48, value[1:])
    return (value[0] - 48) * 10 + value[1] - 48, value[2:]


def _go_time_parses(layout: tuple[str, ...], value: bytes) -> bool:
    """time.parse for these layouts: a literal space matches a run of spaces, numbers are
    range-checked, any fraction length is taken (Go >= 1.20), the zone is Z or ±hh:mm with
    two digits each (Go 1.20 to 1.22: no range check), and the day must exist in the month."""
    year = month = day = 0
    for element in layout:
        number: tuple[int, bytes] | None
        if element == "Y":
            year, value = int(value[:4]), value[4:]  # the caller checked the four digits
        elif element in ("M", "D", "h", "m", "s"):
            number = _go_number(value, fixed=False)
            if number is None:
                return False
            parsed, value = number
            limit = {"M": 13, "D": 100, "h": 24, "m": 60, "s": 60}[element]
            if parsed >= limit or (element == "M" and parsed == 0):
                return False
            if element == "M":
                month = parsed
            elif element == "D":
                day = parsed
        elif element == "f":
            if len(value) >= 2 and value[:1] in (b".", b",") and value[1] in _DIGITS:
                end = 2
                while end < len(value) and value[end] in _DIGITS:
                    end += 1
                value = value[end:]
        elif element == "z":
            if value[:1] == b"Z":
                value = value[1:]
            elif (
                len(value) >= 6
                and value[:1] in (b"+", b"-")
                and value[3:4] == b":"
                and _go_number(value[1:3], fixed=True) is not None
                and _go_number(value[4:6], fixed=True) is not None
            ):
                value = value[6:]
            else:
                return False
        elif element == " ":
            if value and value[:1] != b" ":
                return False
            value = value.lstrip(b" ")
        elif value[:1] == element.encode():
            value = value[1:]
        else:
            return False
    return not value and 1 <= day <= _days_in(month, year)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


# --- sorter.go ----------------------------------------------------------------------------


def _wrap_int64(value: int) -> int:
    value &= _INT64_MASK
    return value - (1 << 64) if value >= 1 << 63 else value


def _go_key_less(left: str, right: str) -> bool:
    """keyList.Less for two string keys, at their first difference: letters by code point,
    a character that is no letter before a letter, runs of digits by value (then the shorter
    run), anything else by code point; else the shorter key first."""
    for index in range(min(len(left), len(right))):
        left_char, right_char = left[index], right[index]
        if left_char == right_char:
            continue
        left_letter, right_letter = left_char.isalpha(), right_char.isalpha()
        if left_letter and right_letter:
            return left_char < right_char
        if left_letter or right_letter:
            return right_letter
        left_number = right_number = 0
        if left_char == "0" or right_char == "0":
            # A zero continuing a number with a non-zero digit is significant.
            back = index - 1
            while back >= 0 and left[back].isdecimal():
                if left[back] != "0":
                    left_number = right_number = 1
                    break
                back -= 1
        left_end = index
        while left_end < len(left) and left[left_end].isdecimal():
            left_number = _wrap_int64(left_number * 10 + ord(left[left_end]) - ord("0"))
            left_end += 1
        right_end = index
        while right_end < len(right) and right[right_end].isdecimal():
            right_number = _wrap_int64(right_number * 10 + ord(right[right_end]) - ord("0"))
            right_end += 1
        if left_number != right_number:
            return left_number < right_number
        if left_end != right_end:
            return left_end < right_end
        return left_char < right_char
    return len(left) < len(right)


def _go_key_compare(left: str, right: str) -> int:
    if _go_key_less(left, right):
        return -1
    return 1 if _go_key_less(right, left) else 0


_KEY_ORDER: Final = functools.cmp_to_key(_go_key_compare)
_DECIMAL_DIGIT: Final = re.compile(r"\d")  # unicode.IsDigit: category Nd


def _digitless_sort_key(text: str) -> str | None:
    """A sort key that orders text without digits as keyList.Less does: at the first
    difference, a character that is no letter before a letter, otherwise by code point, and a
    prefix first. None for text with digits, whose runs Less compares as numbers."""
    if _DECIMAL_DIGIT.search(text):
        return None
    return "".join(("\x01" if char.isalpha() else "\x00") + char for char in text)
