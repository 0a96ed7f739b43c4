"""Go's `strconv.Quote` (and so `fmt`'s `%q` for strings).

The Go adapter builds every PromQL label matcher with `%q`, so our quoting must match it
exactly: `"` and `\\` are escaped, control characters use Go's short escapes or `\\xNN`,
other non-printable runes `\\uNNNN`/`\\UNNNNNNNN`, and printable Unicode is kept as is.
"""

__all__ = ["go_quote"]

_SHORT_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    '"': '\\"',
    "\\": "\\\\",
}


def _escape(ch: str) -> str:
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    # Python's isprintable() is Go's unicode.IsPrint: letters, marks, numbers,
    # punctuation, symbols and the ASCII space.
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:
        # A lone surrogate is what Go sees as an invalid UTF-8 sequence: U+FFFD.
        return "\ufffd"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(value: str) -> str:
    """Return `value` as Go's `strconv.Quote` renders it."""
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return '"' + "".join(_escape(ch) for ch in value) + '"'
