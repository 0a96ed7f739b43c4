"""Go's `fmt` printing (`Sprint`, `Sprintln`, `Sprintf`) of template values.

Ported from Go's `fmt/print.go` and `fmt/format.go` for the value types a template can
produce here: string, int, uint8 (a byte from `index` on a string), float64, bool,
[]string, map[string]string, the root struct, and nil. Template runtime values are
plain Python objects: `str`, `int`, `GoUint8`, `float`, `bool`, a list or tuple of
strings, a mapping of strings, `GoStruct`, `None` (a nil interface) and `NO_VALUE`
(Go's invalid reflect.Value, printed by the template as `<no value>`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from adapter.golang.quote import go_quote
from adapter.gotemplate.strconv import can_backquote, format_float, quote_with

__all__ = [
    "NO_VALUE",
    "GoStruct",
    "GoStructType",
    "GoUint8",
    "format_value",
    "go_type_name",
    "sprint",
    "sprintf",
    "sprintln",
]


class _NoValue:
    """Go's invalid reflect.Value: a missing map key or an untyped nil."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


class GoUint8(int):
    """A Go byte (what `index` returns for a string); prints as a number."""

    __slots__ = ()


class GoStructType:
    """A struct type: its Go name and its fields in order, with their zero values."""

    __slots__ = ("comparable", "field_names", "name", "zero_values")

    def __init__(self, name: str, zero_values: Mapping[str, object]) -> None:
        self.name = name
        self.zero_values = dict(zero_values)
        self.field_names = tuple(zero_values)
        self.comparable = all(type(z) is str for z in zero_values.values())


class GoStruct:
    """A struct value: the caller's mapping, with missing fields read as zero values."""

    __slots__ = ("type", "values")

    def __init__(self, struct_type: GoStructType, values: Mapping[str, object]) -> None:
        self.type = struct_type
        self.values = values

    def field(self, name: str) -> object:
        value = self.values.get(name)
        return self.type.zero_values[name] if value is None else value

    def field_values(self) -> list[object]:
        return [self.field(name) for name in self.type.field_names]

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, GoStruct)
            and other.type is self.type
            and other.field_values() == self.field_values()
        )

    def __hash__(self) -> int:
        return hash(tuple(map(str, self.field_values())))


EMPTY_MAP: Mapping[str, str] = MappingProxyType({})


def go_type_name(value: object) -> str:
    """reflect.TypeOf(value).String() for a template value."""
    t = type(value)
    if t is str:
        return "string"
    if t is bool:
        return "bool"
    if t is GoUint8:
        return "uint8"
    if t is int:
        return "int"
    if t is float:
        return "float64"
    if isinstance(value, GoStruct):
        return value.type.name
    if isinstance(value, Mapping):
        return "map[string]string"
    if isinstance(value, Sequence):
        return "[]string"
    return "<nil>"


# ---------------------------------------------------------------------------------------
# %v without flags: the template's own printing and Sprint


def _format_float_v(v: float) -> str:
    # In this range both repr and Go's %v print the shortest digits without an exponent;
    # repr only adds ".0" to whole numbers.
    if 1e-4 <= abs(v) < 1e6:
        text = repr(v)
        return text[:-2] if text.endswith(".0") else text
    return format_float(v, "g", -1)


def format_value(value: object) -> str:
    """fmt's %v with no flags (what Sprint and the template itself print)."""
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]
    if t is int or t is GoUint8:
        return int.__repr__(value)
    if t is bool:
        return "true" if value else "false"
    if t is float:
        return _format_float_v(value)  # type: ignore[arg-type]
    if value is None or value is NO_VALUE:
        return "<nil>"
    if isinstance(value, GoStruct):
        return "{" + " ".join(format_value(v) for v in value.field_values()) + "}"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{format_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, Sequence):
        return "[" + " ".join(format_value(v) for v in value) + "]"
    return f"?{type(value).__name__}?"


def sprint(args: Sequence[object]) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    prev_string = False
    for i, arg in enumerate(args):
        is_string = type(arg) is str
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(format_value(arg))
        prev_string = is_string
    return "".join(out)


def sprintln(args: Sequence[object]) -> str:
    """fmt.Sprintln: operands always separated by spaces, then a newline."""
    return " ".join(format_value(arg) for arg in args) + "\n"


def sprintf(format_string: str, args: Sequence[object]) -> str:
    """fmt.Sprintf."""
    printer = _Printer()
    printer.do_printf(format_string, args)
    return "".join(printer.buf)


# ---------------------------------------------------------------------------------------
# Printf


_LDIGITS = "0123456789abcdefx"
_UDIGITS = "0123456789ABCDEFX"
_TOO_LARGE = 1_000_000


def _parse_num(s: str, start: int, end: int) -> tuple[int, bool, int]:
    """fmt's parsenum: (number, present, index after it)."""
    num = 0
    present = False
    i = start
    while i < end and "0" <= s[i] <= "9":
        if num > _TOO_LARGE or num < -_TOO_LARGE:
            return 0, False, end
        num = num * 10 + ord(s[i]) - 48
        present = True
        i += 1
    return num, present, i


class _Printer:
    """fmt's pp and fmt structs: the output buffer and the current verb's flags."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.clear_flags()
        self.reordered = False
        self.good_arg_num = True

    def clear_flags(self) -> None:
        self.wid = 0
        self.prec = 0
        self.wid_present = False
        self.prec_present = False
        self.minus = False
        self.plus = False
        self.sharp = False
        self.space = False
        self.zero = False
        self.plus_v = False
        self.sharp_v = False

    # Padding.

    def write_padding(self, n: int) -> None:
        if n > 0:
            self.buf.append(("0" if self.zero and not self.minus else " ") * n)

    def pad(self, s: str) -> None:
        if not self.wid_present or self.wid == 0:
            self.buf.append(s)
        elif self.minus:
            self.buf.append(s)
            self.write_padding(self.wid - len(s))
        else:
            self.write_padding(self.wid - len(s))
            self.buf.append(s)

    # Basic types (format.go).

    def fmt_integer(self, u: int, base: int, is_signed: bool, verb: str, digits: str) -> None:
        negative = is_signed and u < 0
        if negative:
            u = -u
        prec = 0
        if self.prec_present:
            prec = self.prec
            if prec == 0 and u == 0:
                old_zero, self.zero = self.zero, False
                self.write_padding(self.wid)
                self.zero = old_zero
                return
        elif self.zero and not self.minus and self.wid_present:
            prec = self.wid
            if negative or self.plus or self.space:
                prec -= 1
        chars: list[str] = []
        while True:
            chars.append(digits[u % base])
            u //= base
            if u == 0:
                break
        text = "".join(reversed(chars))
        if prec > len(text):
            text = "0" * (prec - len(text)) + text
        if self.sharp:
            if base == 2:
                text = "0b" + text
            elif base == 8 and text[0] != "0":
                text = "0" + text
            elif base == 16:
                text = "0" + digits[16] + text
        if verb == "O":
            text = "0o" + text
        if negative:
            text = "-" + text
        elif self.plus:
            text = "+" + text
        elif self.space:
            text = " " + text
        old_zero, self.zero = self.zero, False
        self.pad(text)
        self.zero = old_zero

    def fmt_unicode(self, u: int) -> None:
        prec = self.prec if self.prec_present and self.prec > 4 else 4
        text = "U+" + f"{u:X}".rjust(prec, "0")
        if self.sharp and u <= 0x10FFFF and chr(u).isprintable():
            text += f" '{chr(u)}'"
        old_zero, self.zero = self.zero, False
        self.pad(text)
        self.zero = old_zero

    def truncate(self, s: str) -> str:
        return s[: self.prec] if self.prec_present else s

    def fmt_sx(self, s: str, digits: str) -> None:
        data = s.encode("utf-8", "surrogateescape")
        if self.prec_present:
            data = data[: self.prec]
        length = len(data)
        width = 2 * length
        if width == 0:
            if self.wid_present:
                self.write_padding(self.wid)
            return
        if self.space:
            if self.sharp:
                width *= 2
            width += length - 1
        elif self.sharp:
            width += 2
        if self.wid_present and self.wid > width and not self.minus:
            self.write_padding(self.wid - width)
        prefix = "0" + digits[16] if self.sharp else ""
        if self.space:
            text = " ".join(prefix + digits[c >> 4] + digits[c & 15] for c in data)
        else:
            text = prefix + "".join(digits[c >> 4] + digits[c & 15] for c in data)
        self.buf.append(text)
        if self.wid_present and self.wid > width and self.minus:
            self.write_padding(self.wid - width)

    def fmt_q(self, s: str) -> None:
        s = self.truncate(s)
        if self.sharp and can_backquote(s):
            self.pad("`" + s + "`")
        elif self.plus:
            self.pad(quote_with(s, '"', ascii_only=True))
        else:
            self.pad(go_quote(s))

    def fmt_float(self, v: float, verb: str, prec: int) -> None:
        if self.prec_present:
            prec = self.prec
        num = format_float(v, verb, prec)
        if num[0] not in "+-":
            num = "+" + num
        if self.space and num[0] == "+" and not self.plus:
            num = " " + num[1:]
        if num[1] in "IN":
            old_zero, self.zero = self.zero, False
            if num[1] == "N" and not self.space and not self.plus:
                num = num[1:]
            self.pad(num)
            self.zero = old_zero
            return
        if self.sharp and verb != "b":
            num = self._keep_decimal_point(num, verb, prec)
        if self.plus or num[0] != "+":
            if self.zero and not self.minus and self.wid_present and self.wid > len(num):
                self.buf.append(num[0])
                self.write_padding(self.wid - len(num))
                self.buf.append(num[1:])
                return
            self.pad(num)
            return
        self.pad(num[1:])

    @staticmethod
    def _keep_decimal_point(num: str, verb: str, prec: int) -> str:
        digits = 0
        if verb in "vgGx":
            digits = 6 if prec == -1 else prec
        tail = ""
        has_point = False
        saw_nonzero = False
        for i in range(1, len(num)):
            c = num[i]
            if c == ".":
                has_point = True
            elif c in "pP" or (c in "eE" and verb not in "xX"):
                num, tail = num[:i], num[i:]
                break
            else:
                if c != "0":
                    saw_nonzero = True
                if saw_nonzero:
                    digits -= 1
        if not has_point:
            if len(num) == 2 and num[1] == "0":
                digits -= 1
            num += "."
        return num + "0" * max(digits, 0) + tail

    # Typed printing (print.go).

    def bad_verb(self, verb: str, arg: object) -> None:
        self.buf.append("%!" + verb + "(")
        if arg is None or arg is NO_VALUE:
            self.buf.append("<nil>")
        else:
            self.buf.append(go_type_name(arg) + "=")
            self.print_arg(arg, "v")
        self.buf.append(")")

    def fmt_int_verb(self, v: int, is_signed: bool, verb: str) -> None:
        u64 = v & 0xFFFFFFFFFFFFFFFF
        if verb == "v":
            if self.sharp_v and not is_signed:
                old_sharp, self.sharp = self.sharp, True
                self.fmt_integer(v, 16, False, "v", _LDIGITS)
                self.sharp = old_sharp
            else:
                self.fmt_integer(v, 10, is_signed, verb, _LDIGITS)
        elif verb in "dboOxX":
            base = {"d": 10, "b": 2, "o": 8, "O": 8, "x": 16, "X": 16}[verb]
            self.fmt_integer(v, base, is_signed, verb, _UDIGITS if verb == "X" else _LDIGITS)
        elif verb in "cq":
            r = u64 if u64 <= 0x10FFFF and not 0xD800 <= u64 <= 0xDFFF else 0xFFFD
            if verb == "c":
                self.pad(chr(r))
            else:
                self.pad(quote_with(chr(r), "'", ascii_only=self.plus))
        elif verb == "U":
            self.fmt_unicode(u64)
        else:
            self.bad_verb(verb, v)

    def fmt_string(self, v: str, verb: str) -> None:
        if verb == "v":
            if self.sharp_v:
                self.fmt_q(v)
            else:
                self.pad(self.truncate(v))
        elif verb == "s":
            self.pad(self.truncate(v))
        elif verb in ("x", "X"):
            self.fmt_sx(v, _LDIGITS if verb == "x" else _UDIGITS)
        elif verb == "q":
            self.fmt_q(v)
        else:
            self.bad_verb(verb, v)

    def print_arg(self, arg: object, verb: str) -> None:
        if arg is None or arg is NO_VALUE:
            if verb in "Tv":
                self.pad("<nil>")
            else:
                self.bad_verb(verb, None)
            return
        if verb == "T":
            self.pad(self.truncate(go_type_name(arg)))
            return
        if verb == "p":
            # Only maps and slices have addresses here, and Go prints them as numbers.
            self.bad_verb(verb, arg)
            return
        t = type(arg)
        if t is str:
            self.fmt_string(arg, verb)  # type: ignore[arg-type]
        elif t is bool:
            if verb in "tv":
                self.pad("true" if arg else "false")
            else:
                self.bad_verb(verb, arg)
        elif t is int or t is GoUint8:
            self.fmt_int_verb(arg, t is int, verb)  # type: ignore[arg-type]
        elif t is float:
            if verb == "v":
                self.fmt_float(arg, "g", -1)  # type: ignore[arg-type]
            elif verb in "bgGxX":
                self.fmt_float(arg, verb, -1)  # type: ignore[arg-type]
            elif verb in "efEF":
                self.fmt_float(arg, "f" if verb == "F" else verb, 6)  # type: ignore[arg-type]
            else:
                self.bad_verb(verb, arg)
        elif isinstance(arg, GoStruct):
            if self.sharp_v:
                self.buf.append(arg.type.name)
            self.buf.append("{")
            for i, name in enumerate(arg.type.field_names):
                if i > 0:
                    self.buf.append(", " if self.sharp_v else " ")
                if self.plus_v or self.sharp_v:
                    self.buf.append(name + ":")
                self.print_arg(arg.field(name), verb)
            self.buf.append("}")
        elif isinstance(arg, Mapping):
            self.buf.append("map[string]string{" if self.sharp_v else "map[")
            for i, key in enumerate(sorted(arg)):
                if i > 0:
                    self.buf.append(", " if self.sharp_v else " ")
                self.print_arg(key, verb)
                self.buf.append(":")
                self.print_arg(arg[key], verb)
            self.buf.append("}" if self.sharp_v else "]")
        elif isinstance(arg, Sequence):
            self.buf.append("[]string{" if self.sharp_v else "[")
            for i, elem in enumerate(arg):
                if i > 0:
                    self.buf.append(", " if self.sharp_v else " ")
                self.print_arg(elem, verb)
            self.buf.append("}" if self.sharp_v else "]")
        else:
            self.buf.append(f"?{type(arg).__name__}?")

    # The format string.

    def arg_number(self, arg_num: int, fmt: str, i: int, num_args: int) -> tuple[int, int, bool]:
        if i >= len(fmt) or fmt[i] != "[":
            return arg_num, i, False
        self.reordered = True
        close = fmt.find("]", i + 1)
        if len(fmt) - i < 3 or close < 0:
            self.good_arg_num = False
            return arg_num, i + 1, False
        width, ok, end = _parse_num(fmt, i + 1, close)
        if not ok or end != close:
            self.good_arg_num = False
            return arg_num, close + 1, False
        index = width - 1
        if 0 <= index < num_args:
            return index, close + 1, True
        self.good_arg_num = False
        return arg_num, close + 1, True

    @staticmethod
    def int_from_arg(args: Sequence[object], arg_num: int) -> tuple[int, bool, int]:
        if arg_num >= len(args):
            return 0, False, arg_num
        value = args[arg_num]
        if isinstance(value, int) and type(value) is not bool and abs(value) <= _TOO_LARGE:
            return int(value), True, arg_num + 1
        return 0, False, arg_num + 1

    def do_printf(self, fmt: str, args: Sequence[object]) -> None:
        end = len(fmt)
        arg_num = 0
        after_index = False
        self.reordered = False
        i = 0
        while i < end:
            self.good_arg_num = True
            percent = fmt.find("%", i)
            if percent < 0:
                self.buf.append(fmt[i:])
                break
            if percent > i:
                self.buf.append(fmt[i:percent])
            i = percent + 1
            self.clear_flags()
            while i < end:
                c = fmt[i]
                if c == "#":
                    self.sharp = True
                elif c == "0":
                    self.zero = True
                elif c == "+":
                    self.plus = True
                elif c == "-":
                    self.minus = True
                elif c == " ":
                    self.space = True
                else:
                    break
                i += 1
            arg_num, i, after_index = self.arg_number(arg_num, fmt, i, len(args))
            if i < end and fmt[i] == "*":
                i += 1
                self.wid, self.wid_present, arg_num = self.int_from_arg(args, arg_num)
                if not self.wid_present:
                    self.buf.append("%!(BADWIDTH)")
                if self.wid < 0:
                    self.wid = -self.wid
                    self.minus = True
                    self.zero = False
                after_index = False
            else:
                self.wid, self.wid_present, i = _parse_num(fmt, i, end)
                if after_index and self.wid_present:
                    self.good_arg_num = False
            if i + 1 < end and fmt[i] == ".":
                i += 1
                if after_index:
                    self.good_arg_num = False
                arg_num, i, after_index = self.arg_number(arg_num, fmt, i, len(args))
                if i < end and fmt[i] == "*":
                    i += 1
                    self.prec, self.prec_present, arg_num = self.int_from_arg(args, arg_num)
                    if self.prec < 0:
                        self.prec = 0
                        self.prec_present = False
                    if not self.prec_present:
                        self.buf.append("%!(BADPREC)")
                    after_index = False
                else:
                    self.prec, self.prec_present, i = _parse_num(fmt, i, end)
                    if not self.prec_present:
                        self.prec = 0
                        self.prec_present = True
            if not after_index:
                arg_num, i, after_index = self.arg_number(arg_num, fmt, i, len(args))
            if i >= end:
                self.buf.append("%!(NOVERB)")
                break
            verb = fmt[i]
            i += 1
            if verb == "%":
                self.buf.append("%")
            elif not self.good_arg_num:
                self.buf.append(f"%!{verb}(BADINDEX)")
            elif arg_num >= len(args):
                self.buf.append(f"%!{verb}(MISSING)")
            else:
                if verb == "v":
                    self.sharp_v, self.sharp = self.sharp, False
                    self.plus_v, self.plus = self.plus, False
                self.print_arg(args[arg_num], verb)
                arg_num += 1
        if not self.reordered and arg_num < len(args):
            self.clear_flags()
            self.buf.append("%!(EXTRA ")
            for j, arg in enumerate(args[arg_num:]):
                if j > 0:
                    self.buf.append(", ")
                if arg is None or arg is NO_VALUE:
                    self.buf.append("<nil>")
                else:
                    self.buf.append(go_type_name(arg) + "=")
                    self.print_arg(arg, "v")
            self.buf.append(")")
