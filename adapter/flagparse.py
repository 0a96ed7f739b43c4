"""The command line parsed as spf13/pflag v1.0.5 parses it (the Go adapter v0.12.0's parser).

The Go adapter calls `pflag.CommandLine.Parse(os.Args)`. What that means, ported here:

- Words that are not flags are positional and ignored by the adapter (its own path, the
  `/adapter` the Helm chart puts first in `args:`); `--` ends the flags; a lone `-` is a word.
- `--flag=value`, `--flag value`, `--flag=` (empty). A bool takes no separate value:
  `--flag` is true, `--flag=false` sets it, and in `--flag false` the `false` is a word.
- One-letter flags (klog's `v`, registered through pflag.PFlagFromGoFlag) also have a
  shorthand: `-v 4`, `-v=4`, `-v4`. No abbreviations, no `_`/`-` normalisation.
- Values are parsed by the Go function behind each flag type (`kind`), so they accept and
  reject exactly what Go does: strconv.ParseBool; strconv.ParseInt base 0 for pflag ints
  (`0x10`, `0o17`, `0_100`) and base 10, 32 bits for klog's Level; strconv.ParseFloat 32 bits
  (the Go flags of kind float are float32); time.ParseDuration; encoding/csv for string
  slices (the first use replaces the default, later uses append); a string array appends each
  whole value.
- Errors carry pflag's messages (`unknown flag: --x`, `flag needs an argument: --config`,
  `invalid argument "abc" for "--secure-port" flag: strconv.ParseInt: ...`).
"""

import math
import re
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adapter.golang.duration import DurationError, parse_go_duration
from adapter.golang.quote import go_quote

__all__ = ["FlagDefinition", "FlagError", "HelpRequested", "ParseResult", "parse", "parse_value"]


class FlagDefinition(Protocol):
    """What the parser needs of a flag (adapter.options.FlagSpec is one)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def default(self) -> Any: ...


class FlagError(ValueError):
    """A command line pflag rejects; the message is pflag's."""


class HelpRequested(Exception):
    """`--help` or `-h`, which no flag defines (pflag's ErrHelp)."""


@dataclass(frozen=True, slots=True)
class ParseResult:
    values: Mapping[str, Any]  # every flag's value by name; its default when not given
    changed: frozenset[str]  # the names of the flags given (pflag's Flag.Changed)
    positional: tuple[str, ...]  # the other words, in order (pflag's Args())


class _ValueError(ValueError):
    """A value the flag's Go type rejects; the message is Go's error text."""


def parse(argv: Sequence[str], flags: Sequence[FlagDefinition]) -> ParseResult:
    """Parse `argv` (without the program name) as pflag's FlagSet.Parse would."""
    return _Parser(flags).run(list(argv))


class _Parser:
    def __init__(self, flags: Sequence[FlagDefinition]) -> None:
        self.by_name = {flag.name: flag for flag in flags}
        # pflag.PFlagFromGoFlag gives one-letter Go flags a shorthand; pflag's own flags
        # here have none.
        self.by_shorthand = {flag.name: flag for flag in flags if len(flag.name) == 1}
        self.values: dict[str, Any] = {
            flag.name: list(flag.default) if isinstance(flag.default, list) else flag.default
            for flag in flags
        }
        self.changed: set[str] = set()
        self.positional: list[str] = []

    def run(self, args: list[str]) -> ParseResult:
        # FlagSet.parseArgs, with interspersed words (pflag's default).
        while args:
            word, args = args[0], args[1:]
            if len(word) < 2 or word[0] != "-":
                self.positional.append(word)
            elif word == "--":
                self.positional.extend(args)
                break
            elif word[1] == "-":
                args = self._long(word, args)
            else:
                args = self._short(word, args)
        return ParseResult(self.values, frozenset(self.changed), tuple(self.positional))

    def _long(self, word: str, args: list[str]) -> list[str]:
        # FlagSet.parseLongArg.
        name = word[2:]
        if name[0] in "-=":
            raise FlagError(f"bad flag syntax: {word}")
        name, has_value, value = name.partition("=")
        flag = self.by_name.get(name)
        if flag is None:
            if name == "help":
                raise HelpRequested
            raise FlagError(f"unknown flag: --{name}")
        if not has_value:
            if flag.kind == "bool":  # NoOptDefVal "true"
                value = "true"
            elif args:
                value, args = args[0], args[1:]
            else:
                raise FlagError(f"flag needs an argument: {word}")
        self._set(flag, value)
        return args

    def _short(self, word: str, args: list[str]) -> list[str]:
        # FlagSet.parseShortArg and parseSingleShortArg: a run of shorthand letters.
        shorthands = word[1:]
        while shorthands:
            if shorthands.startswith("test."):
                return args  # pflag skips `go test`'s own flags (-test.v) without a word
            letter = shorthands[0]
            flag = self.by_shorthand.get(letter)
            if flag is None:
                if letter == "h":
                    raise HelpRequested
                raise FlagError(f"unknown shorthand flag: {_quote_byte(letter)} in -{shorthands}")
            if len(shorthands) > 2 and shorthands[1] == "=":
                value, shorthands = shorthands[2:], ""
            elif flag.kind == "bool":
                value, shorthands = "true", shorthands[1:]
            elif len(shorthands) > 1:
                value, shorthands = shorthands[1:], ""
            elif args:
                value, args, shorthands = args[0], args[1:], ""
            else:
                raise FlagError(f"flag needs an argument: {_quote_byte(letter)} in -{shorthands}")
            self._set(flag, value)
        return args

    def _set(self, flag: FlagDefinition, value: str) -> None:
        # FlagSet.Set: Value.Set, then Changed.
        try:
            parsed = _VALUE_PARSERS[flag.kind](value)
        except _ValueError as exc:
            shown = f"-{flag.name}, --{flag.name}" if len(flag.name) == 1 else f"--{flag.name}"
            raise FlagError(
                f"invalid argument {go_quote(value)} for {go_quote(shown)} flag: {exc}"
            ) from None
        first = flag.name not in self.changed
        if flag.kind == "stringSlice":
            self.values[flag.name] = parsed if first else [*self.values[flag.name], *parsed]
        elif flag.kind == "stringArray":
            self.values[flag.name] = [value] if first else [*self.values[flag.name], value]
        else:
            self.values[flag.name] = parsed
        self.changed.add(flag.name)


def _quote_byte(letter: str) -> str:
    """fmt's %q of the first byte of `letter`, as pflag quotes an unknown shorthand."""
    byte = chr(_utf8(letter)[0])
    if byte == "'":
        return "'\\''"
    return "'" + ('"' if byte == '"' else go_quote(byte)[1:-1]) + "'"


# --- Go's value parsers ----------------------------------------------------------------


def _num_error(func: str, text: str, reason: str) -> _ValueError:
    """strconv.NumError's text."""
    return _ValueError(f"strconv.{func}: parsing {go_quote(text)}: {reason}")


def _parse_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise _num_error("ParseBool", text, "invalid syntax")


def _underscore_ok(text: str) -> bool:
    """strconv.underscoreOK: `_` only between digits, or between a base prefix and a digit."""
    saw = "^"  # ^ start, 0 digit or base prefix, _ underscore, ! anything else
    s = text[1:] if text[:1] in ("+", "-") else text
    i = 0
    hexadecimal = False
    if len(s) >= 2 and s[0] == "0" and s[1] in "bBoOxX":
        i, saw, hexadecimal = 2, "0", s[1] in "xX"
    for c in s[i:]:
        if c in "0123456789" or (hexadecimal and c in "abcdefABCDEF"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def _parse_uint(text: str, base0: bool, bits: int, func: str = "ParseUint") -> int:
    """strconv.ParseUint with base 0 (`base0`) or 10."""
    if text == "":
        raise _num_error(func, text, "invalid syntax")
    s, base, prefixed = text, 10, False
    if base0 and s[0] == "0":
        prefixed = True
        if len(s) >= 3 and s[1] in "bBoOxX":
            base, s = {"b": 2, "o": 8, "x": 16}[s[1].lower()], s[2:]
        else:
            base, s = 8, s[1:]
    value, underscores = 0, False
    for c in s:
        if c == "_" and prefixed:
            underscores = True
            continue
        digit = int(c, 36) if c.isascii() and c.isalnum() else 99
        if digit >= base:
            raise _num_error(func, text, "invalid syntax")
        value = value * base + digit
        if value >= 1 << bits:
            raise _num_error(func, text, "value out of range")
    if underscores and not _underscore_ok(text):
        raise _num_error(func, text, "invalid syntax")
    return value


def _parse_int(text: str, base0: bool, bits: int) -> int:
    """strconv.ParseInt with base 0 (`base0`) or 10."""
    if text == "":
        raise _num_error("ParseInt", text, "invalid syntax")
    negative = text[0] == "-"
    digits = text[1:] if text[0] in "+-" else text
    try:
        magnitude = _parse_uint(digits, base0, bits, "ParseInt")
    except _ValueError as exc:
        reason = "value out of range" if str(exc).endswith("out of range") else "invalid syntax"
        raise _num_error("ParseInt", text, reason) from None
    if magnitude > (1 << (bits - 1)) - (0 if negative else 1):
        raise _num_error("ParseInt", text, "value out of range")
    return -magnitude if negative else magnitude


def _is_go_float(s: str) -> bool:
    """Whether strconv.readFloat consumes all of `s` (a decimal or hex float literal)."""
    i, n = 0, len(s)
    if i < n and s[i] in "+-":
        i += 1
    hexadecimal = i + 2 < n and s[i] == "0" and s[i + 1] in "xX"
    if hexadecimal:
        i += 2
    digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
    saw_dot = saw_digits = underscores = False
    while i < n:
        c = s[i]
        if c == "_":
            underscores = True
        elif c == ".":
            if saw_dot:
                break
            saw_dot = True
        elif c in digits:
            saw_digits = True
        else:
            break
        i += 1
    if not saw_digits:
        return False
    if i < n and s[i] in ("pP" if hexadecimal else "eE"):
        i += 1
        if i < n and s[i] in "+-":
            i += 1
        if i >= n or s[i] not in "0123456789":
            return False
        while i < n and s[i] in "0123456789_":
            underscores = underscores or s[i] == "_"
            i += 1
    elif hexadecimal:
        return False  # a hex float must have a p exponent
    if underscores and not _underscore_ok(s[:i]):
        return False
    return i == n


_GO_FLOAT_SPECIAL = re.compile(r"[+-]?(?:inf|infinity)|nan", re.IGNORECASE)


def _parse_float32(text: str) -> float:
    """strconv.ParseFloat(text, 32): the Go adapter's float flags are float32."""
    if _GO_FLOAT_SPECIAL.fullmatch(text):
        return float(text)
    if not _is_go_float(text):
        raise _num_error("ParseFloat", text, "invalid syntax")
    digits = text.replace("_", "")
    value = float.fromhex(digits) if "x" in digits.lower() else float(digits)
    # Rounded to float32 (as Go rounds), a value past its range becomes infinite.
    if math.isinf(struct.unpack("f", struct.pack("f", value))[0]):
        raise _num_error("ParseFloat", text, "value out of range")
    return value


def _parse_duration(text: str) -> float:
    """time.ParseDuration, in seconds."""
    try:
        return parse_go_duration(text)
    except DurationError as exc:
        raise _ValueError(str(exc)) from None


def _utf8(text: str) -> bytes:
    """The bytes Go would see: argv's undecodable bytes are back (surrogateescape)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no command line can hold
        return text.encode("utf-8", "replace")


def _utf8_len(text: str) -> int:
    return len(_utf8(text))


def _csv_lines(text: str) -> Iterator[str]:
    """encoding/csv readLine: lines with their `\\n`, `\\r\\n` normalised, a last `\\r` dropped."""
    for match in re.finditer(r"[^\n]*\n|[^\n]+\Z", text):
        line = match.group()
        if line.endswith("\r\n"):
            line = line[:-2] + "\n"
        elif line.endswith("\r") and not line.endswith("\n"):
            line = line[:-1]
        yield line


def _csv_error(start_line: int, line: int, column: int, reason: str) -> _ValueError:
    where = f"parse error on line {line}, column {column}: {reason}"
    if start_line != line:
        return _ValueError(f"record on line {start_line}; {where}")
    return _ValueError(where)


def _read_csv_record(text: str) -> list[str]:
    """encoding/csv Reader.Read's first record, with Go's errors (pflag's readAsCSV)."""
    lines = _csv_lines(text)
    line_number = 0
    for line in lines:  # empty lines are skipped
        line_number += 1
        if line not in ("", "\n"):
            break
    else:
        raise _ValueError("EOF")
    record_line, column, fields = line_number, 1, []
    while True:
        if not line.startswith('"'):
            comma = line.find(",")
            field = line[:comma] if comma >= 0 else line.removesuffix("\n")
            quote = field.find('"')
            if quote >= 0:
                raise _csv_error(
                    record_line,
                    line_number,
                    column + _utf8_len(field[:quote]),
                    'bare " in non-quoted-field',
                )
            fields.append(field)
            if comma < 0:
                return fields
            column += _utf8_len(line[:comma]) + 1
            line = line[comma + 1 :]
            continue
        line, column, parts = line[1:], column + 1, []
        while True:
            quote = line.find('"')
            if quote >= 0:
                parts.append(line[:quote])
                column += _utf8_len(line[:quote]) + 1
                line = line[quote + 1 :]
                if line.startswith('"'):  # "" is a quote
                    parts.append('"')
                    line, column = line[1:], column + 1
                elif line.startswith(","):
                    fields.append("".join(parts))
                    line, column = line[1:], column + 1
                    break
                elif line in ("", "\n"):
                    fields.append("".join(parts))
                    return fields
                else:
                    raise _csv_error(
                        record_line,
                        line_number,
                        column - 1,
                        'extraneous or missing " in quoted-field',
                    )
            elif line:  # the quoted field goes on on the next line
                parts.append(line)
                column += _utf8_len(line)
                line = next(lines, "")
                if line:
                    line_number, column = line_number + 1, 1
            else:
                raise _csv_error(
                    record_line, line_number, column, 'extraneous or missing " in quoted-field'
                )


def _parse_string_slice(text: str) -> list[str]:
    """pflag's readAsCSV: an empty value is an empty list."""
    return _read_csv_record(text) if text else []


def _parse_severity(text: str) -> str:
    """klog's -stderrthreshold: a severity name or number."""
    if text.upper() in ("INFO", "WARNING", "ERROR", "FATAL"):
        return text
    _parse_int(text, base0=False, bits=32)
    return text


def _parse_trace_location(text: str) -> str:
    """klog's -log_backtrace_at: file.go:N, or empty."""
    if text == "":
        return text
    fields = text.split(":")
    if len(fields) != 2 or "." not in fields[0]:
        raise _ValueError("syntax error: expect file.go:234")
    try:
        line = _parse_int(fields[1], base0=False, bits=64)
    except _ValueError:
        raise _ValueError("syntax error: expect file.go:234") from None
    if line <= 0:
        raise _ValueError("negative or zero value for level")
    return text


_VALUE_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "bool": _parse_bool,
    "int": lambda text: _parse_int(text, base0=True, bits=64),
    "uint": lambda text: _parse_uint(text, base0=True, bits=64),
    "level": lambda text: _parse_int(text, base0=False, bits=32),  # klog.Level
    "float": _parse_float32,
    "duration": _parse_duration,
    "stringSlice": _parse_string_slice,
    "stringArray": str,
    "severity": _parse_severity,
    "traceLocation": _parse_trace_location,
}


def parse_value(kind: str, text: str) -> Any:
    """One flag value of `kind` as Go parses it; ValueError with Go's message otherwise."""
    return _VALUE_PARSERS[kind](text)
