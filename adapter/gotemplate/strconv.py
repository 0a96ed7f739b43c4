"""The parts of Go's `strconv` that `fmt` uses: quoting and float formatting."""

from __future__ import annotations

import math

__all__ = ["can_backquote", "format_float", "quote_with"]


def can_backquote(s: str) -> bool:
    """strconv.CanBackquote."""
    for ch in s:
        if ch in "`\ufeff\x7f" or (ch < " " and ch != "\t"):
            return False
        if "\ud800" <= ch <= "\udfff":
            return False
    return True


_SHORT_ESCAPES = {"\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v"}


def quote_with(s: str, quote: str, *, ascii_only: bool) -> str:
    """strconv's appendQuotedWith: Quote, QuoteToASCII or QuoteRune(ToASCII)."""
    out = [quote]
    for ch in s:
        code = ord(ch)
        if ch in (quote, "\\"):
            out.append("\\" + ch)
        elif (code < 0x80 or not ascii_only) and ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append("\\" + _SHORT_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            # A byte of invalid UTF-8, carried as a surrogate escape.
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd" if ascii_only else "\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append(quote)
    return "".join(out)


def _shortest_digits(a: float) -> tuple[str, int]:
    """The shortest decimal digits that round-trip `a` (> 0), and the decimal point.

    The value is 0.DIGITS x 10**dp. Python's repr and Go's strconv both produce the
    shortest round-tripping digits.
    """
    mantissa, _, exponent = repr(a).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    stripped = all_digits.lstrip("0")
    dp = len(int_part) - (len(all_digits) - len(stripped)) + (int(exponent) if exponent else 0)
    return stripped.rstrip("0"), dp


def _rounded_digits(a: float, significant: int) -> tuple[str, int]:
    mantissa, _, exponent = f"{a:.{significant - 1}e}".partition("e")
    digits = mantissa.replace(".", "").rstrip("0")
    return digits, int(exponent) + 1


def _fmt_e(digits: str, dp: int, prec: int, letter: str) -> str:
    text = digits[:1] or "0"
    if prec > 0:
        text += "." + digits[1 : 1 + prec].ljust(prec, "0")
    exp = dp - 1 if digits else 0
    return f"{text}{letter}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    text = digits[:dp].ljust(dp, "0") if dp > 0 else "0"
    if prec > 0:
        nd = len(digits)
        text += "." + "".join(digits[dp + i] if 0 <= dp + i < nd else "0" for i in range(prec))
    return text


def _float_bits(a: float) -> tuple[int, int]:
    """(mant, exp) with a == mant * 2**(exp - 52), as strconv unpacks a float64."""
    if a < 2.0**-1022:
        return int(math.ldexp(a, 1074)), -1022
    m, e = math.frexp(a)
    return int(m * 2.0**53), e - 1


def _fmt_hex_float(neg: bool, a: float, prec: int, letter: str) -> str:
    mant, exp = _float_bits(a)
    if mant == 0:
        exp = 0
    mask = (1 << 64) - 1
    mant <<= 8
    while mant != 0 and mant & (1 << 60) == 0:
        mant <<= 1
        exp -= 1
    if 0 <= prec < 15:
        shift = prec * 4
        extra = (mant << shift) & ((1 << 60) - 1)
        mant >>= 60 - shift
        if extra | (mant & 1) > 1 << 59:
            mant += 1
        mant <<= 60 - shift
        if mant & (1 << 61):
            mant >>= 1
            exp += 1
    hexdigits = "0123456789abcdef" if letter == "x" else "0123456789ABCDEF"
    out = ["-" if neg else "", "0", letter, str((mant >> 60) & 1)]
    mant = (mant << 4) & mask
    if (prec < 0 and mant != 0) or prec > 0:
        out.append(".")
        count = 0
        while (prec < 0 and mant != 0) or count < prec:
            out.append(hexdigits[(mant >> 60) & 15])
            mant = (mant << 4) & mask
            count += 1
    out.append("p" if letter == "x" else "P")
    out.append("-" if exp < 0 else "+")
    out.append(f"{abs(exp):02d}")
    return "".join(out)


def format_float(v: float, verb: str, prec: int) -> str:
    """strconv.FormatFloat(v, verb, prec, 64) for verb in b, e, E, f, g, G, x, X."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    neg = math.copysign(1.0, v) < 0
    a = -v if neg else v
    sign = "-" if neg else ""
    if verb == "b":
        mant, exp = _float_bits(a)
        exp -= 52
        return f"{sign}{mant}p{'+' if exp >= 0 else ''}{exp}"
    if verb in "xX":
        return _fmt_hex_float(neg, a, prec, verb)
    letter = "E" if verb in "EG" else "e"
    if prec < 0:
        digits, dp = _shortest_digits(a) if a else ("", 0)
        nd = len(digits)
        if verb in "eE":
            return sign + _fmt_e(digits, dp, max(nd - 1, 0), letter)
        if verb == "f":
            return sign + _fmt_f(digits, dp, max(nd - dp, 0))
        if dp - 1 < -4 or dp - 1 >= 6:
            return sign + _fmt_e(digits, dp, nd - 1, letter)
        return sign + _fmt_f(digits, dp, max(nd - dp, 0))
    if verb in "eE":
        return sign + (f"{a:.{prec}e}" if verb == "e" else f"{a:.{prec}E}")
    if verb == "f":
        return sign + f"{a:.{prec}f}"
    significant = prec or 1
    digits, dp = _rounded_digits(a, significant) if a else ("", 0)
    nd = len(digits)
    eprec = nd if significant > nd >= dp else significant
    if dp - 1 < -4 or dp - 1 >= eprec:
        return sign + _fmt_e(digits, dp, min(significant, nd) - 1, letter)
    return sign + _fmt_f(digits, dp, max((nd if significant > dp else significant) - dp, 0))
