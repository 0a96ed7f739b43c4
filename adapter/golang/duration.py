"""Prometheus and Go duration syntax.

Two dialects are ported: Prometheus' `model.ParseDuration`/`model.Duration.String`
(prometheus/common v0.46, as vendored by the Go adapter: units y w d h m s ms, no
fractions, no sign) and Go's `time.ParseDuration`/`time.Duration.String`. Both are
computed in integer nanoseconds, as Go does; the float-seconds functions are thin
wrappers so that callers never see float drift inside the arithmetic.
"""

import math
from fractions import Fraction

from adapter.golang.quote import go_quote

__all__ = [
    "DurationError",
    "format_go_duration",
    "format_go_duration_ns",
    "format_prometheus_duration",
    "format_prometheus_duration_ns",
    "parse_go_duration",
    "parse_go_duration_ns",
    "parse_prometheus_duration",
    "parse_prometheus_duration_ns",
]

_NANOSECOND = 1
_MICROSECOND = 1000 * _NANOSECOND
_MILLISECOND = 1000 * _MICROSECOND
_SECOND = 1000 * _MILLISECOND
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_DIGITS = frozenset("0123456789")


class DurationError(ValueError):
    """A duration string Go would reject; the message is Go's error text."""


# --- Prometheus (model.Duration) ---------------------------------------------------

# Units must appear from biggest to smallest, each at most once ("pos" orders them).
_PROMETHEUS_UNITS: dict[str, tuple[int, int]] = {
    "ms": (7, _MILLISECOND),
    "s": (6, _SECOND),
    "m": (5, _MINUTE),
    "h": (4, _HOUR),
    "d": (3, 24 * _HOUR),
    "w": (2, 7 * 24 * _HOUR),
    "y": (1, 365 * 24 * _HOUR),
}

_PROMETHEUS_FORMAT_UNITS: tuple[tuple[str, int, bool], ...] = (
    # Years and weeks only when exact: "90d" reads better than "12w6d".
    ("y", 1000 * 60 * 60 * 24 * 365, True),
    ("w", 1000 * 60 * 60 * 24 * 7, True),
    ("d", 1000 * 60 * 60 * 24, False),
    ("h", 1000 * 60 * 60, False),
    ("m", 1000 * 60, False),
    ("s", 1000, False),
    ("ms", 1, False),
)


def parse_prometheus_duration_ns(text: str) -> int:
    """Port of prometheus/common `model.ParseDuration`; returns nanoseconds."""
    if text == "0":
        return 0
    if text == "":
        raise DurationError("empty duration string")
    invalid = f"not a valid duration string: {go_quote(text)}"
    dur = 0
    last_unit_pos = 0
    s = text
    while s:
        if s[0] not in _DIGITS:
            raise DurationError(invalid)
        i = 0
        while i < len(s) and s[i] in _DIGITS:
            i += 1
        digits = s[:i].lstrip("0")
        if len(digits) > 20 or int(digits or "0") > _UINT64_MAX:
            # strconv.ParseUint(s, 10, 0) fails; Go folds it into the generic error.
            raise DurationError(invalid)
        value = int(digits or "0")
        s = s[i:]
        i = 0
        while i < len(s) and s[i] not in _DIGITS:
            i += 1
        if i == 0:
            raise DurationError(invalid)
        unit_name, s = s[:i], s[i:]
        unit = _PROMETHEUS_UNITS.get(unit_name)
        if unit is None:
            raise DurationError(f"unknown unit {go_quote(unit_name)} in duration {go_quote(text)}")
        pos, mult = unit
        if pos <= last_unit_pos:
            raise DurationError(invalid)
        last_unit_pos = pos
        if value > (1 << 63) // mult:
            raise DurationError("duration out of range")
        dur += value * mult
        if dur > _INT64_MAX:
            raise DurationError("duration out of range")
    return dur


def parse_prometheus_duration(text: str) -> float:
    """Parse a Prometheus duration ("5m", "1h30m", "0") into seconds."""
    return parse_prometheus_duration_ns(text) / _SECOND


def format_prometheus_duration_ns(nanoseconds: int) -> str:
    """Port of prometheus/common `model.Duration.String` (millisecond resolution)."""
    ms = _go_quo(nanoseconds, _MILLISECOND)
    if ms == 0:
        return "0s"
    negative = ms < 0
    if negative:
        ms = -ms
    parts: list[str] = []
    for unit, mult, exact in _PROMETHEUS_FORMAT_UNITS:
        if exact and ms % mult != 0:
            continue
        value = ms // mult
        if value > 0:
            parts.append(f"{value}{unit}")
            ms -= value * mult
    result = "".join(parts)
    return "-" + result if negative else result


def format_prometheus_duration(seconds: float) -> str:
    """Render seconds as Prometheus does: "5m", "1h30m", "1w", "500ms", "0s"."""
    return format_prometheus_duration_ns(_seconds_to_ns(seconds))


# --- Go (time.Duration) -------------------------------------------------------------

_GO_UNITS: dict[str, int] = {
    "ns": _NANOSECOND,
    "us": _MICROSECOND,
    "\u00b5s": _MICROSECOND,  # U+00B5 micro sign
    "\u03bcs": _MICROSECOND,  # U+03BC Greek small letter mu
    "ms": _MILLISECOND,
    "s": _SECOND,
    "m": _MINUTE,
    "h": _HOUR,
}


def parse_go_duration_ns(text: str) -> int:
    """Port of Go's `time.ParseDuration`; returns nanoseconds."""
    invalid = f"time: invalid duration {_time_quote(text)}"
    s = text
    d = 0
    neg = False
    if s and s[0] in "-+":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise DurationError(invalid)
    while s:
        if not (s[0] == "." or s[0] in _DIGITS):
            raise DurationError(invalid)
        before = len(s)
        leading = _leading_int(s)
        if leading is None:
            raise DurationError(invalid)
        v, s = leading
        pre = before != len(s)

        f, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            before = len(s)
            f, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise DurationError(invalid)

        i = 0
        while i < len(s) and not (s[i] == "." or s[i] in _DIGITS):
            i += 1
        if i == 0:
            raise DurationError(f"time: missing unit in duration {_time_quote(text)}")
        unit_name, s = s[:i], s[i:]
        unit = _GO_UNITS.get(unit_name)
        if unit is None:
            raise DurationError(
                f"time: unknown unit {_time_quote(unit_name)} in duration {_time_quote(text)}"
            )
        if v > (1 << 63) // unit:
            raise DurationError(invalid)
        v *= unit
        if f > 0:
            # Go does this step in float64 (exact to the nanosecond for fractions of
            # hours) and truncates; Python floats are the same IEEE doubles.
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                raise DurationError(invalid)
        d += v
        if d > 1 << 63:
            raise DurationError(invalid)
    if neg:
        return -d
    if d > _INT64_MAX:
        raise DurationError(invalid)
    return d


def parse_go_duration(text: str) -> float:
    """Parse a Go duration ("1h30m", "1.5s", "-300ms") into seconds."""
    return parse_go_duration_ns(text) / _SECOND


def format_go_duration_ns(nanoseconds: int) -> str:
    """Port of Go's `time.Duration.String`."""
    if not _INT64_MIN <= nanoseconds <= _INT64_MAX:
        raise DurationError("duration out of range")
    u = abs(nanoseconds)
    neg = nanoseconds < 0
    if u < _SECOND:
        # Below one second use a smaller unit so the leading digit is non-zero.
        if u == 0:
            return "0s"
        if u < _MICROSECOND:
            prec, unit = 0, "ns"
        elif u < _MILLISECOND:
            prec, unit = 3, "\u00b5s"
        else:
            prec, unit = 6, "ms"
        frac, u = _fmt_frac(u, prec)
        text = f"{u}{frac}{unit}"
    else:
        frac, u = _fmt_frac(u, 9)
        text = f"{u % 60}{frac}s"
        u //= 60
        if u > 0:
            text = f"{u % 60}m{text}"
            u //= 60
            # Stop at hours because days can be different lengths.
            if u > 0:
                text = f"{u}h{text}"
    return "-" + text if neg else text


def format_go_duration(seconds: float) -> str:
    """Render seconds as Go's `time.Duration.String`: "5m0s", "1.5s", "500ms", "1µs"."""
    return format_go_duration_ns(_seconds_to_ns(seconds))


# --- helpers ------------------------------------------------------------------------


def _seconds_to_ns(seconds: float) -> int:
    """Nearest whole nanosecond to the exact value of `seconds` (no float rounding)."""
    if not math.isfinite(seconds):
        raise DurationError("duration out of range")
    ns = round(Fraction(seconds) * _SECOND)
    if not _INT64_MIN <= ns <= _INT64_MAX:
        raise DurationError("duration out of range")
    return ns


def _go_quo(a: int, b: int) -> int:
    """Go's integer division, which truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _leading_int(s: str) -> tuple[int, str] | None:
    """time.leadingInt: consume [0-9]*, None on overflow past 1<<63."""
    x = 0
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if x > (1 << 63) // 10:
            return None
        x = x * 10 + ord(s[i]) - ord("0")
        if x > 1 << 63:
            return None
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    """time.leadingFraction: consume [0-9]*, silently dropping digits past int64 range."""
    x = 0
    scale = 1.0
    overflow = False
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if not overflow:
            if x > _INT64_MAX // 10:
                overflow = True
            else:
                y = x * 10 + ord(s[i]) - ord("0")
                if y > 1 << 63:
                    overflow = True
                else:
                    x = y
                    scale *= 10
        i += 1
    return x, scale, s[i:]


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """time.fmtFrac: the fraction of v/10**prec without trailing zeros, and v/10**prec."""
    digits: list[str] = []
    printing = False
    for _ in range(prec):
        digit = v % 10
        printing = printing or digit != 0
        if printing:
            digits.append(str(digit))
        v //= 10
    if not printing:
        return "", v
    return "." + "".join(reversed(digits)), v


def _time_quote(s: str) -> str:
    """The time package's own `quote`: non-ASCII and control bytes become `\\xNN`.

    It is not strconv.Quote: every byte of a multi-byte UTF-8 sequence is escaped.
    Lone surrogates (Python's encoding of undecodable bytes) map back to their byte.
    """
    out = ['"']
    for ch in s:
        code = ord(ch)
        if code >= 0x80 or code < 0x20:
            try:
                raw = ch.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raw = "\ufffd".encode()
            out.extend(f"\\x{b:02x}" for b in raw)
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)
