"""The closures a compiled Go template runs: the executor of `text/template/exec.go`.

The compiler resolves everything it can (field names, variable slots, function
parameters) and builds the template out of these small closures, so that rendering does
only the work that depends on the data. An expression is called as `expr(dot, vars)`
(a command after `|` as `stage(dot, vars, final)`), a statement as
`stmt(out, dot, vars)`, appending text to `out`; `vars` holds the variables by slot.

A statement that contains `{{template}}` is resumable: a generator that yields each
template call to `run_resumable`, which runs the called template and resumes the caller.
Calls nest on that loop's own stack, not Python's, so recursion goes as deep as Go's
(maxExecDepth); templates without calls never pay for this.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from adapter.gotemplate.builtins import BuiltinError, is_list, is_map, truth
from adapter.gotemplate.errors import TemplateExecError
from adapter.gotemplate.fmt import NO_VALUE, GoStruct, GoUint8, format_value, go_type_name

__all__ = [
    "MAX_EXEC_DEPTH",
    "Callee",
    "Expr",
    "FinalExpr",
    "ResumableStmt",
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
    "fail",
    "fail_after",
    "fail_check",
    "fail_stage",
    "fail_stmt",
    "if_with_stmt",
    "ignore_final",
    "list_stmt",
    "map_field",
    "map_index",
    "nil_if_no_value",
    "no_op",
    "range_stmt",
    "resumable",
    "resumable_if_with",
    "resumable_list",
    "resumable_range",
    "root_field",
    "root_string_stmt",
    "run_resumable",
    "store",
    "string_checker",
    "string_stmt",
    "template_call",
    "text_stmt",
    "then",
    "value_stmt",
    "variable",
]

Vars = list[Any]
Expr = Callable[[Any, Vars], Any]
FinalExpr = Callable[[Any, Vars, Any], Any]
Stmt = Callable[[list[str], Any, Vars], None]


class Callee:
    """A named template compiled for one static type of dot; filled in once compiled (a
    recursive template calls itself before its body is finished)."""

    __slots__ = ("body", "resumable", "slot_count")

    def __init__(self) -> None:
        self.body: Stmt | ResumableStmt = no_op
        self.resumable = False
        self.slot_count = 1


# What a resumable statement yields to run a template: the callee, the pipeline giving
# its dot (None: no value), the caller's dot and variables, and the error prefix.
_Call = tuple[Callee, "Expr | None", Any, Vars, str]
ResumableStmt = Callable[[list[str], Any, Vars], Generator[_Call, None, None]]

# Go's maxExecDepth: how many template calls may be executing at once.
MAX_EXEC_DEPTH = 100_000


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
        items = _range_items(pipe(dot, vars), key_slot is not None, prefix)
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


def _range_items(value: Any, two_variables: bool, prefix: str) -> Any:
    """(key, element) pairs to range over: a list, a map (in key order), an int, or
    no value (like empty)."""
    if is_list(value):
        return enumerate(value)
    if is_map(value):
        return ((k, value[k]) for k in sorted(value))
    if type(value) is int or type(value) is GoUint8:
        if two_variables:
            raise TemplateExecError(
                f"{prefix}can't use {value} to iterate over more than one variable"
            )
        return ((None, type(value)(i)) for i in range(value))
    if value is NO_VALUE or value is None:
        return ()
    raise TemplateExecError(f"{prefix}range can't iterate over {format_value(value)}")


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


def ignore_final(expr: Expr) -> FinalExpr:
    """A field given arguments after `|`: its value, when it has one, is an error."""

    def ignore_final(dot: Any, vars: Vars, final: Any) -> Any:
        return expr(dot, vars)

    return ignore_final


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


def any_field(expr: Expr, name: str, prefix: str, *, has_args: bool = False) -> Expr:
    """A field of a value whose type is only known at render time (Go's evalField);
    `has_args`: the field is a command given arguments, which only a method could take."""

    def any_field(dot: Any, vars: Vars) -> Any:
        receiver = expr(dot, vars)
        if receiver is NO_VALUE or receiver is None:
            return NO_VALUE
        if isinstance(receiver, GoStruct):
            if name in receiver.type.zero_values:
                if has_args:
                    raise TemplateExecError(
                        f"{prefix}{name} has arguments but cannot be invoked as function"
                    )
                return receiver.field(name)
        elif is_map(receiver):
            if has_args:
                raise TemplateExecError(f"{prefix}{name} is not a method but has arguments")
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


# ---------------------------------------------------------------------------------------
# Errors found while compiling that Go reports only when execution reaches them


def fail(message: str) -> Expr:
    """An expression whose evaluation fails with `message`."""

    def fail(dot: Any, vars: Vars) -> Any:
        raise TemplateExecError(message)

    return fail


def fail_after(expr: Expr, message: str) -> Expr:
    """`expr` evaluated (its own errors come first), then a failure with `message`."""

    def fail_after(dot: Any, vars: Vars) -> Any:
        expr(dot, vars)
        raise TemplateExecError(message)

    return fail_after


def fail_check(message: str) -> Callable[[Any], Any]:
    """A check of the value piped into a call that always fails (its type is wrong)."""

    def fail_check(value: Any) -> Any:
        raise TemplateExecError(message)

    return fail_check


def fail_stage(message: str) -> FinalExpr:
    """A command after `|` that fails once the value piped into it is computed."""

    def fail_stage(dot: Any, vars: Vars, final: Any) -> Any:
        raise TemplateExecError(message)

    return fail_stage


def fail_stmt(message: str) -> Stmt:
    def fail_stmt(out: list[str], dot: Any, vars: Vars) -> None:
        raise TemplateExecError(message)

    return fail_stmt


# ---------------------------------------------------------------------------------------
# Template calls: resumable statements and the loop that runs them


def template_call(callee: Callee, pipe: Expr | None, prefix: str) -> ResumableStmt:
    """`{{template "name" pipeline}}`: run_resumable evaluates the pipeline and runs it."""

    def call_template(out: list[str], dot: Any, vars: Vars) -> Generator[_Call, None, None]:
        yield callee, pipe, dot, vars, prefix

    return call_template


def resumable(stmt: Stmt) -> ResumableStmt:
    """A statement without template calls where a resumable one is expected."""

    def run_plain(out: list[str], dot: Any, vars: Vars) -> Generator[_Call, None, None]:
        stmt(out, dot, vars)
        yield from ()

    return run_plain


def resumable_list(ops: tuple[tuple[Stmt | ResumableStmt, bool], ...]) -> ResumableStmt:
    """A list of statements, each with whether it is resumable."""

    def run_list(out: list[str], dot: Any, vars: Vars) -> Generator[_Call, None, None]:
        for op, is_resumable in ops:
            if is_resumable:
                yield from op(out, dot, vars)  # type: ignore[misc]
            else:
                op(out, dot, vars)

    return run_list


def resumable_if_with(
    pipe: Expr, body: ResumableStmt, else_body: ResumableStmt | None, with_dot: bool
) -> ResumableStmt:
    def run_if_or_with(out: list[str], dot: Any, vars: Vars) -> Generator[_Call, None, None]:
        value = pipe(dot, vars)
        if truth(value):
            yield from body(out, value if with_dot else dot, vars)
        elif else_body is not None:
            yield from else_body(out, dot, vars)

    return run_if_or_with


def resumable_range(
    pipe: Expr,
    body: ResumableStmt,
    *,
    else_body: ResumableStmt | None,
    key_slot: int | None,
    elem_slot: int | None,
    prefix: str,
) -> ResumableStmt:
    """range_stmt, with a body that calls templates."""

    def run_range(out: list[str], dot: Any, vars: Vars) -> Generator[_Call, None, None]:
        items = _range_items(pipe(dot, vars), key_slot is not None, prefix)
        ran = False
        for key, elem in items:
            ran = True
            if key_slot is not None:
                vars[key_slot] = key
            if elem_slot is not None:
                vars[elem_slot] = elem
            try:
                yield from body(out, elem, vars)
            except _ContinueSignal:
                pass
            except _BreakSignal:
                break
        if not ran and else_body is not None:
            yield from else_body(out, dot, vars)

    return run_range


def run_resumable(body: ResumableStmt, out: list[str], dot: Any, vars: Vars) -> None:
    """Execute a template that calls templates (Go's walkTemplate, without recursion)."""
    stack = [body(out, dot, vars)]
    while stack:
        try:
            callee, pipe, caller_dot, caller_vars, prefix = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        # The caller executes at depth len(stack) - 1; Go checks before the pipeline.
        if len(stack) > MAX_EXEC_DEPTH:
            raise TemplateExecError(f"{prefix}exceeded maximum template depth ({MAX_EXEC_DEPTH})")
        called_dot = NO_VALUE if pipe is None else pipe(caller_dot, caller_vars)
        # No dynamic scoping: the called template's only variable is `$`, its dot.
        called_vars = [called_dot] * callee.slot_count
        if callee.resumable:
            stack.append(callee.body(out, called_dot, called_vars))  # type: ignore[arg-type]
        else:
            callee.body(out, called_dot, called_vars)
