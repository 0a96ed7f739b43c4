"""Go's template builtin functions, ported from `text/template/funcs.go`.

Each builtin takes its evaluated arguments as a list and returns a value, or raises
BuiltinError, which the template reports as `error calling NAME: MESSAGE`. Parameters
are typed as in Go: "value" (reflect.Value: no value stays no value), "any" (interface{}:
no value becomes nil) or "string". `and` and `or` evaluate their arguments lazily, so
the executor implements them; `call` needs its argument's source text (`make_call`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from adapter.gotemplate.fmt import (
    NO_VALUE,
    GoStruct,
    GoUint8,
    format_value,
    go_type_name,
    sprint,
    sprintf,
    sprintln,
)

__all__ = ["BUILTINS", "Builtin", "BuiltinError", "is_list", "is_map", "make_call", "truth"]


class BuiltinError(Exception):
    """The error a builtin returns; reported as `error calling NAME: ...`."""


def truth(v: Any) -> bool:
    """Go's isTrue: false for zero values, empty collections and no value."""
    t = type(v)
    if t is str or t is bool or t is int or t is GoUint8 or t is float:
        return bool(v)
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, GoStruct):
        return True
    return len(v) > 0


def is_map(v: Any) -> bool:
    return type(v) is dict or isinstance(v, Mapping)


def is_list(v: Any) -> bool:
    t = type(v)
    return t is list or t is tuple or (isinstance(v, Sequence) and t is not str)


def _utf8(s: str) -> bytes:
    # Go strings are bytes: len, index and slice count UTF-8 bytes.
    return s.encode("utf-8", "surrogateescape")


def _index_arg(index: Any, cap: int) -> int:
    t = type(index)
    if t is int or t is GoUint8:
        x = int(index)
    elif index is NO_VALUE or index is None:
        raise BuiltinError("cannot index slice/array with nil")
    else:
        raise BuiltinError(f"cannot index slice/array with type {go_type_name(index)}")
    # Go checks x > cap, not x >= cap: index x == len fails later, inside reflect.
    if x < 0 or x > cap:
        raise BuiltinError(f"index out of range: {x}")
    return x


def _index(args: list[Any]) -> Any:
    item = args[0]
    if item is NO_VALUE:
        raise BuiltinError("index of untyped nil")
    for index in args[1:]:
        if type(item) is str:
            data = _utf8(item)
            x = _index_arg(index, len(data))
            if x == len(data):
                raise BuiltinError("reflect: string index out of range")
            item = GoUint8(data[x])
        elif is_map(item):
            if index is NO_VALUE or index is None:
                raise BuiltinError("value is nil; should be of type string")
            if type(index) is not str:
                raise BuiltinError(f"value has type {go_type_name(index)}; should be string")
            item = item.get(index, "")
        elif is_list(item):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise BuiltinError("reflect: slice index out of range")
            item = item[x]
        else:
            raise BuiltinError(f"can't index item of type {go_type_name(item)}")
    return item


def _slice(args: list[Any]) -> Any:
    item, indexes = args[0], args[1:]
    if item is NO_VALUE:
        raise BuiltinError("slice of untyped nil")
    if len(indexes) > 3:
        raise BuiltinError(f"too many slice indexes: {len(indexes)}")
    if type(item) is str:
        if len(indexes) == 3:
            raise BuiltinError("cannot 3-index slice a string")
        length = len(item) if item.isascii() else len(_utf8(item))
    elif is_list(item):
        length = len(item)
    else:
        raise BuiltinError(f"can't slice item of type {go_type_name(item)}")
    idx = [0, length, 0]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(index, length)
    if idx[0] > idx[1]:
        raise BuiltinError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise BuiltinError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if type(item) is str and not item.isascii():
        return _utf8(item)[idx[0] : idx[1]].decode("utf-8", "surrogateescape")
    return item[idx[0] : idx[1]]


def _len(args: list[Any]) -> int:
    item = args[0]
    if type(item) is str:
        return len(item) if item.isascii() else len(_utf8(item))
    if item is NO_VALUE:
        raise BuiltinError("reflect: call of reflect.Value.Type on zero Value")
    if is_map(item) or is_list(item):
        return len(item)
    raise BuiltinError(f"len of type {go_type_name(item)}")


def _basic_kind(v: Any) -> str | None:
    t = type(v)
    if t is str:
        return "string"
    if t is int:
        return "int"
    if t is GoUint8:
        return "uint"
    if t is float:
        return "float"
    if t is bool:
        return "bool"
    return None


def _eq(args: list[Any]) -> bool:
    """eq arg1 arg2...: whether arg1 equals any later argument."""
    arg1 = args[0]
    if len(args) == 1:
        raise BuiltinError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in args[1:]:
        k2 = _basic_kind(arg)
        truth = False
        if k1 != k2:
            if {k1, k2} == {"int", "uint"}:
                truth = arg1 == arg
            elif arg1 is not NO_VALUE and arg is not NO_VALUE:
                raise BuiltinError(
                    "incompatible types for comparison: "
                    f"{go_type_name(arg1)} and {go_type_name(arg)}"
                )
        elif k1 is not None:
            truth = arg1 == arg
        elif arg1 is NO_VALUE or arg is NO_VALUE:
            truth = arg1 is arg
        elif is_map(arg1) != is_map(arg) or is_list(arg1) != is_list(arg):
            raise BuiltinError(
                f"non-comparable types {format_value(arg1)}: {go_type_name(arg1)}, "
                f"{go_type_name(arg)}: {format_value(arg)}"
            )
        elif not (isinstance(arg, GoStruct) and arg.type.comparable):
            raise BuiltinError(f"non-comparable type {format_value(arg)}: {go_type_name(arg)}")
        else:
            truth = arg1 == arg
        if truth:
            return True
    return False


def _lt(args: list[Any]) -> bool:
    a, b = args
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 is None or k2 is None:
        raise BuiltinError("invalid type for comparison")
    if k1 != k2:
        if {k1, k2} == {"int", "uint"}:
            return bool(a < b)
        raise BuiltinError(
            f"incompatible types for comparison: {go_type_name(a)} and {go_type_name(b)}"
        )
    if k1 == "bool":
        raise BuiltinError("invalid type for comparison")
    return bool(a < b)


def _le(args: list[Any]) -> bool:
    return _lt(args) or _eq(args)


def _eval_args(args: list[Any]) -> str:
    """funcs.go evalArgs: Sprint, with nil arguments printed as `<no value>`."""
    if len(args) == 1 and type(args[0]) is str:
        return args[0]
    return sprint(["<no value>" if a is None or a is NO_VALUE else a for a in args])


_HTML_ESCAPES = str.maketrans(
    {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
)
_JS_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def _js_escape(s: str) -> str:
    out = []
    for ch in s:
        code = ord(ch)
        if ch in _JS_ESCAPES:
            out.append(_JS_ESCAPES[ch])
        elif code < 0x20:
            out.append(f"\\u00{code:02X}")
        elif code < 0x80 or ch.isprintable() or 0xDC80 <= code <= 0xDCFF:
            out.append(ch)
        else:
            out.append(f"\\u{code:04X}")
    return "".join(out)


def make_call(callee: str) -> Callable[[list[Any]], Any]:
    """The `call` builtin for an argument written as `callee`: no value is callable."""

    def call(args: list[Any]) -> Any:
        if args[0] is NO_VALUE:
            raise BuiltinError("call of nil")
        raise BuiltinError(f"non-function {callee} of type {go_type_name(args[0])}")

    return call


@dataclass(frozen=True)
class Builtin:
    """A builtin: its implementation (None when the executor provides it) and parameters."""

    impl: Callable[[list[Any]], Any] | None
    fixed: tuple[str, ...]
    variadic: str | None = None


BUILTINS: dict[str, Builtin] = {
    "and": Builtin(None, ("value",), "value"),
    "or": Builtin(None, ("value",), "value"),
    "not": Builtin(lambda a: not truth(a[0]), ("value",)),
    "len": Builtin(_len, ("value",)),
    "index": Builtin(_index, ("value",), "value"),
    "slice": Builtin(_slice, ("value",), "value"),
    "call": Builtin(None, ("value",), "value"),
    "print": Builtin(sprint, (), "any"),
    "println": Builtin(sprintln, (), "any"),
    "printf": Builtin(lambda a: sprintf(a[0], a[1:]), ("string",), "any"),
    "html": Builtin(lambda a: _eval_args(a).translate(_HTML_ESCAPES), (), "any"),
    "js": Builtin(lambda a: _js_escape(_eval_args(a)), (), "any"),
    "urlquery": Builtin(
        lambda a: quote_plus(_eval_args(a), safe="", errors="surrogateescape"), (), "any"
    ),
    "eq": Builtin(_eq, ("value",), "value"),
    "ne": Builtin(lambda a: not _eq(a), ("value", "value")),
    "lt": Builtin(_lt, ("value", "value")),
    "le": Builtin(_le, ("value", "value")),
    "gt": Builtin(lambda a: not _le(a), ("value", "value")),
    "ge": Builtin(lambda a: not _lt(a), ("value", "value")),
}
