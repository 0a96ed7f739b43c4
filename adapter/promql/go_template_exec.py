"""The closures a compiled Go template runs: the executor of `text/template/exec.go`.

The compiler resolves everything it can (field names, variable slots, function
parameters) and builds the template out of these small closures, so that rendering does
only the work that depends on the data. An expression is called as `expr(dot, vars)`
(a command after `|` as `stage(dot, vars, final)`), a statement as
`stmt(out, dot, vars)`, appending text to `out`; `vars` holds the variables by slot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapter.promql.go_template_builtins import BuiltinError, is_list, is_map, truth
from adapter.promql.go_template_errors import TemplateExecError
from adapter.promql.go_template_fmt import NO_VALUE, GoStruct, GoUint8, format_value, go_type_name

__all__ = [
    "Expr",
    "FinalExpr",
    "Stmt",
    "Vars",
    "and_or",
    "any_field",
    "break_stmt",
    "builtin_call",
    "checked_string",
    "constant",
    "continue_stmt",
    "declare_stmt",
    "dot",
    "if_with_stmt",
    "list_stmt",
    "map_field",
    "map_index",
    "nil_if_no_value",
    "no_op",
    "range_stmt",
    "root_field",
    "root_string_stmt",
    "store",
    "string_checker",
    "string_stmt",
    "text_stmt",
    "then",
    "value_stmt",
    "variable",
]

Vars = list[Any]
Expr = Callable[[Any, Vars], Any]
FinalExpr = Callable[[Any, Vars, Any], Any]
Stmt = Callable[[list[str], Any, Vars], None]


class _BreakSignal(Exception):
    pass


class _ContinueSignal(Exception):
    pass


# ---------------------------------------------------------------------------------------
# Statements


def no_op(out: list[str], dot: Any, vars: Vars) -> None:
    return None


def break_stmt(out: list[str], dot: Any, vars: Vars) -> None:
    raise _BreakSignal


def continue_stmt(out: list[str], dot: Any, vars: Vars) -> None:
    raise _ContinueSignal


def text_stmt(text: str) -> Stmt:
    def write_text(out: list[str], dot: Any, vars: Vars) -> None:
        out.append(text)

    return write_text


def list_stmt(ops: tuple[str | Stmt, ...]) -> Stmt:
    """A list of text (str) and statements."""

    def run_list(out: list[str], dot: Any, vars: Vars) -> None:
        for op in ops:
            if type(op) is str:
                out.append(op)
            else:
                op(out, dot, vars)  # type: ignore[operator]

    return run_list


def root_string_stmt(name: str) -> Stmt:
    """`<<.Field>>` for a string field, with dot the root struct: the common case."""

    def write_root_string(out: list[str], dot: Any, vars: Vars) -> None:
        value = dot.values.get(name)
        out.append("" if value is None else value)

    return write_root_string


def declare_stmt(expr: Expr) -> Stmt:
    """An action declaring or assigning variables: it prints nothing."""

    def declare(out: list[str], dot: Any, vars: Vars) -> None:
        expr(dot, vars)

    return declare


def string_stmt(expr: Expr) -> Stmt:
    def write_string(out: list[str], dot: Any, vars: Vars) -> None:
        out.append(expr(dot, vars))

    return write_string


def value_stmt(expr: Expr) -> Stmt:
    """An action: the value as Go's fmt.Fprint prints it, or `<no value>`."""

    def write_value(out: list[str], dot: Any, vars: Vars) -> None:
        value = expr(dot, vars)
        if type(value) is str:
            out.append(value)
        elif value is NO_VALUE:
            out.append("<no value>")
        else:
            out.append(format_value(value))

    return write_value


def if_with_stmt(pipe: Expr, body: Stmt, else_body: Stmt | None, with_dot: bool) -> Stmt:
    def run_if_or_with(out: list[str], dot: Any, vars: Vars) -> None:
        value = pipe(dot, vars)
        if truth(value):
            body(out, value if with_dot else dot, vars)
        elif else_body is not None:
            else_body(out, dot, vars)

    return run_if_or_with


def range_stmt(
    pipe: Expr,
    body: Stmt,
    *,
    else_body: Stmt | None,
    key_slot: int | None,
    elem_slot: int | None,
    loop_control: bool,
    prefix: str,
) -> Stmt:
    """`range`: over a list, a map (in key order), an int, or no value (like empty)."""

    def run_range(out: list[str], dot: Any, vars: Vars) -> None:
        value = pipe(dot, vars)
        items: Any
        if is_list(value):
            items = enumerate(value)
        elif is_map(value):
            items = ((k, value[k]) for k in sorted(value))
        elif type(value) is int or type(value) is GoUint8:
            if key_slot is not None:
                raise TemplateExecError(
                    f"{prefix}can't use {value} to iterate over more than one variable"
                )
            items = ((None, type(value)(i)) for i in range(value))
        elif value is NO_VALUE or value is None:
            items = ()
        else:
            raise TemplateExecError(f"{prefix}range can't iterate over {format_value(value)}")
        ran = False
        for key, elem in items:
            ran = True
            if key_slot is not None:
                vars[key_slot] = key
            if elem_slot is not None:
                vars[elem_slot] = elem
            if not loop_control:
                body(out, elem, vars)
                continue
            try:
                body(out, elem, vars)
            except _ContinueSignal:
                pass
            except _BreakSignal:
                break
        if not ran and else_body is not None:
            else_body(out, dot, vars)

    return run_range


# ---------------------------------------------------------------------------------------
# Expressions


def dot(dot: Any, vars: Vars) -> Any:
    return dot


def constant(value: Any) -> Expr:
    def constant(dot: Any, vars: Vars) -> Any:
        return value

    return constant


def variable(slot: int) -> Expr:
    def variable(dot: Any, vars: Vars) -> Any:
        return vars[slot]

    return variable


def store(expr: Expr, slots: tuple[int, ...]) -> Expr:
    """A pipeline declaring or assigning variables: all of them get its value."""
    if len(slots) == 1:
        slot = slots[0]

        def store_one(dot: Any, vars: Vars) -> Any:
            value = vars[slot] = expr(dot, vars)
            return value

        return store_one

    def store_all(dot: Any, vars: Vars) -> Any:
        value = expr(dot, vars)
        for slot in slots:
            vars[slot] = value
        return value

    return store_all


def then(expr: Expr, stage: FinalExpr) -> Expr:
    """`expr | stage`: expr's value is stage's final argument."""

    def then(dot: Any, vars: Vars) -> Any:
        return stage(dot, vars, expr(dot, vars))

    return then


def root_field(expr: Expr | None, name: str, zero: Any) -> Expr:
    """A field of the root struct (of dot when expr is None); missing data is zero."""
    if expr is None:

        def dot_field(dot: Any, vars: Vars) -> Any:
            value = dot.values.get(name)
            return zero if value is None else value

        return dot_field

    base = expr

    def root_field(dot: Any, vars: Vars) -> Any:
        value = base(dot, vars).values.get(name)
        return zero if value is None else value

    return root_field


def map_field(expr: Expr, name: str) -> Expr:
    """`.Map.key`: the element, or no value (Go's missingkey=default)."""

    def map_field(dot: Any, vars: Vars) -> Any:
        return expr(dot, vars).get(name, NO_VALUE)

    return map_field


def any_field(expr: Expr, name: str, prefix: str) -> Expr:
    """A field of a value whose type is only known at render time."""

    def any_field(dot: Any, vars: Vars) -> Any:
        receiver = expr(dot, vars)
        if receiver is NO_VALUE or receiver is None:
            return NO_VALUE
        if isinstance(receiver, GoStruct):
            if name in receiver.type.zero_values:
                return receiver.field(name)
        elif is_map(receiver):
            return receiver.get(name, NO_VALUE)
        raise TemplateExecError(
            f"{prefix}can't evaluate field {name} in type {go_type_name(receiver)}"
        )

    return any_field


def map_index(expr: Expr, key: str) -> Expr:
    """`index .Map "key"`: the element, or the zero value "" (unlike `.Map.key`)."""

    def map_index(dot: Any, vars: Vars) -> Any:
        return expr(dot, vars).get(key, "")

    return map_index


def nil_if_no_value(expr: Expr) -> Expr:
    """An argument for an interface{} parameter: no value is passed as nil."""

    def nil_if_no_value(dot: Any, vars: Vars) -> Any:
        value = expr(dot, vars)
        return None if value is NO_VALUE else value

    return nil_if_no_value


def string_checker(prefix: str) -> Callable[[Any], Any]:
    """Go's validateType for a string parameter."""

    def check(value: Any) -> Any:
        if type(value) is str:
            return value
        if value is NO_VALUE or value is None:
            raise TemplateExecError(f"{prefix}invalid value; expected string")
        raise TemplateExecError(
            f"{prefix}wrong type for value; expected string; got {go_type_name(value)}"
        )

    return check


def checked_string(expr: Expr, prefix: str) -> Expr:
    check = string_checker(prefix)

    def checked_string(dot: Any, vars: Vars) -> Any:
        return check(expr(dot, vars))

    return checked_string


def and_or(args: tuple[Expr, ...], is_or: bool, has_final: bool) -> Callable[..., Any]:
    """and/or evaluate their arguments lazily and return the one that decides."""

    def and_or(dot: Any, vars: Vars) -> Any:
        value: Any = NO_VALUE
        for arg in args:
            value = arg(dot, vars)
            if truth(value) is is_or:
                return value
        return value

    if not has_final:
        return and_or

    def and_or_final(dot: Any, vars: Vars, final: Any) -> Any:
        for arg in args:
            value = arg(dot, vars)
            if truth(value) is is_or:
                return value
        return final

    return and_or_final


def builtin_call(
    impl: Callable[[list[Any]], Any],
    args: tuple[Expr, ...],
    has_final: bool,
    convert_final: Callable[[Any], Any] | None,
    error_prefix: str,
) -> Callable[..., Any]:
    """A builtin call: an Expr, or a FinalExpr when it receives a piped value."""
    if not has_final:

        def call(dot: Any, vars: Vars) -> Any:
            argv = [arg(dot, vars) for arg in args]
            try:
                return impl(argv)
            except BuiltinError as exc:
                raise TemplateExecError(f"{error_prefix}{exc}") from None

        return call

    def call_final(dot: Any, vars: Vars, final: Any) -> Any:
        argv = [arg(dot, vars) for arg in args]
        argv.append(final if convert_final is None else convert_final(final))
        try:
            return impl(argv)
        except BuiltinError as exc:
            raise TemplateExecError(f"{error_prefix}{exc}") from None

    return call_final
