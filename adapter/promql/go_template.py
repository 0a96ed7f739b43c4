"""Go's `text/template` with `<<` and `>>` delimiters, as prometheus-adapter uses it.

`compile_template` parses a template once (at config load) and compiles it into Python
closures (`go_template_exec`); `GoTemplate.render` runs them per request and returns byte
for byte what Go's `template.Execute` writes. Only Go's builtin functions exist.

Mistakes Go reports only while executing (an unknown field, a field of a string, a
wrong number of arguments, arguments to a field, `nil` as a command) are reported here
by `compile_template`, wherever the type of the value is known statically: the data is
a struct with the given `fields`, and the types of dot and of variables are tracked
through pipelines, `with` and `range`. Where a type is only known at render time, the
check happens at render time, as in Go.

Semantics follow Go's `exec.go` and `funcs.go`, including missingkey=default:
`.Map.missing` is `<no value>` while `index .Map "missing"` is the empty string.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.promql import go_template_exec as ex
from adapter.promql.go_quote import go_quote
from adapter.promql.go_template_builtins import BUILTINS, make_call
from adapter.promql.go_template_errors import TemplateError, TemplateExecError
from adapter.promql.go_template_fmt import EMPTY_MAP, NO_VALUE, GoStruct, GoStructType
from adapter.promql.go_template_parse import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    ControlNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    StringNode,
    TextNode,
    VariableNode,
    parse_template,
)

__all__ = ["FieldKind", "GoTemplate", "TemplateError", "TemplateExecError", "compile_template"]


class FieldKind(enum.Enum):
    """The Go type of a field of the template's data struct."""

    STRING = "string"
    STRING_LIST = "[]string"
    STRING_MAP = "map[string]string"


@dataclass(frozen=True)
class GoTemplate:
    """A compiled template; build it with `compile_template`."""

    source: str
    name: str
    _render: Callable[[Mapping[str, object]], str] = field(repr=False, compare=False)

    def render(self, data: Mapping[str, object]) -> str:
        """Execute the template on `data`: field name to str, list of str or str map.

        A field missing from `data` (or None) reads as its zero value. Raises
        TemplateExecError where Go's Execute returns an error.
        """
        return self._render(data)


# Go type names of the adapter's two data structs, for messages and `%T`.
_KNOWN_STRUCTS = {
    (
        ("Series", FieldKind.STRING),
        ("LabelMatchers", FieldKind.STRING),
        ("LabelValuesByName", FieldKind.STRING_MAP),
        ("GroupBy", FieldKind.STRING),
        ("GroupBySlice", FieldKind.STRING_LIST),
    ): "naming.queryTemplateArgs",
    (("Group", FieldKind.STRING), ("Resource", FieldKind.STRING)): "schema.GroupResource",
}

_ZERO_VALUES: dict[FieldKind, object] = {
    FieldKind.STRING: "",
    FieldKind.STRING_LIST: (),
    FieldKind.STRING_MAP: EMPTY_MAP,
}


def compile_template(
    source: str, fields: Mapping[str, FieldKind], *, name: str = "template"
) -> GoTemplate:
    """Parse and check `source`, whose data is a struct with `fields` in this order.

    Raises TemplateError, with Go's message where Go has one.
    """
    for field_name, kind in fields.items():
        if not isinstance(kind, FieldKind):
            raise TypeError(f"field {field_name!r}: expected a FieldKind, got {kind!r}")
    items = tuple(fields.items())
    type_name = _KNOWN_STRUCTS.get(items) or (
        "struct { " + "; ".join(f"{n} {k.value}" for n, k in items) + " }"
    )
    struct_type = GoStructType(type_name, {n: _ZERO_VALUES[k] for n, k in items})
    parsed = parse_template(source, name=name, functions=frozenset(BUILTINS))
    compiler = _Compiler(name, source, struct_type, fields, parsed.assigned_slots)
    body = compiler.compile_list(parsed.root, _T.ROOT)
    slot_count = parsed.slot_count

    def render(data: Mapping[str, object]) -> str:
        root = GoStruct(struct_type, data)
        out: list[str] = []
        body(out, root, [root] * slot_count)
        return "".join(out)

    return GoTemplate(source, name, render)


class _T(enum.Enum):
    """Static types: what the compiler knows about a value."""

    ROOT = enum.auto()
    STR = enum.auto()
    MAPVAL = enum.auto()  # a map element read as a field: a string or no value
    LIST = enum.auto()
    MAP = enum.auto()
    INT = enum.auto()
    BYTE = enum.auto()
    FLOAT = enum.auto()
    BOOL = enum.auto()
    ANY = enum.auto()


_TYPE_NAMES = {
    _T.STR: "string",
    _T.MAPVAL: "string",
    _T.LIST: "[]string",
    _T.MAP: "map[string]string",
    _T.INT: "int",
    _T.BYTE: "uint8",
    _T.FLOAT: "float64",
    _T.BOOL: "bool",
    _T.ANY: "interface {}",
}
_KIND_TYPES = {
    FieldKind.STRING: _T.STR,
    FieldKind.STRING_LIST: _T.LIST,
    FieldKind.STRING_MAP: _T.MAP,
}
_UNKNOWN = (_T.ANY, _T.MAPVAL)  # types whose values may be no value
_BOOL_RESULTS = frozenset({"not", "eq", "ne", "lt", "le", "gt", "ge"})
_STRING_RESULTS = frozenset({"print", "println", "printf", "html", "js", "urlquery"})


def _has_loop_control(nodes: Sequence[Node]) -> bool:
    for node in nodes:
        if isinstance(node, BreakNode | ContinueNode):
            return True
        if isinstance(node, ControlNode) and (
            _has_loop_control(node.list.nodes)
            or (node.else_list is not None and _has_loop_control(node.else_list.nodes))
        ):
            return True
    return False


def _none_for_no_value(value: Any) -> Any:
    return None if value is NO_VALUE else value


class _Compiler:
    """Compiles a syntax tree to closures, tracking static types (Go's exec, ahead)."""

    def __init__(
        self,
        name: str,
        source: str,
        struct_type: GoStructType,
        fields: Mapping[str, FieldKind],
        assigned_slots: frozenset[int],
    ) -> None:
        self.name = name
        self.source = source
        self.struct_type = struct_type
        self.field_types = {n: _KIND_TYPES[k] for n, k in fields.items()}
        self.assigned = assigned_slots
        self.slot_types: dict[int, _T] = {0: _T.ROOT}

    def prefix(self, node: object) -> str:
        """Go's exec error prefix: `template: NAME:LINE:COL: executing "NAME" at <NODE>: `."""
        pos = getattr(node, "pos", 0)
        line_start = self.source.rfind("\n", 0, pos) + 1
        line = self.source.count("\n", 0, pos) + 1
        col = len(self.source[line_start:pos].encode("utf-8", "surrogatepass"))
        quoted = go_quote(self.name)
        return f"template: {self.name}:{line}:{col}: executing {quoted} at <{node}>: "

    def error(self, node: object, message: str) -> TemplateError:
        return TemplateError(self.prefix(node) + message)

    def type_name(self, t: _T) -> str:
        return self.struct_type.name if t is _T.ROOT else _TYPE_NAMES[t]

    def slot_type(self, slot: int) -> _T:
        # A variable assigned with `=` anywhere may hold anything anywhere (loops).
        return _T.ANY if slot in self.assigned else self.slot_types.get(slot, _T.ANY)

    # Statements.

    def compile_list(self, lst: ListNode, dot_t: _T) -> ex.Stmt:
        ops: list[str | ex.Stmt] = []
        for node in lst.nodes:
            if isinstance(node, TextNode):
                if ops and isinstance(ops[-1], str):
                    ops[-1] += node.text
                else:
                    ops.append(node.text)
            elif isinstance(node, ActionNode):
                ops.append(self.compile_action(node, dot_t))
            elif isinstance(node, ControlNode):
                ops.append(self.compile_control(node, dot_t))
            elif isinstance(node, BreakNode):
                ops.append(ex.break_stmt)
            elif isinstance(node, ContinueNode):
                ops.append(ex.continue_stmt)
            else:
                raise AssertionError(f"unexpected node {node!r}")
        if not ops:
            return ex.no_op
        if len(ops) == 1:
            return ex.text_stmt(ops[0]) if isinstance(ops[0], str) else ops[0]
        return ex.list_stmt(tuple(ops))

    def compile_action(self, node: ActionNode, dot_t: _T) -> ex.Stmt:
        pipe = node.pipe
        first = pipe.cmds[0].args[0]
        if (
            not pipe.decl
            and len(pipe.cmds) == 1
            and len(pipe.cmds[0].args) == 1
            and dot_t is _T.ROOT
            and isinstance(first, FieldNode)
            and len(first.idents) == 1
            and self.field_types.get(first.idents[0]) is _T.STR
        ):
            return ex.root_string_stmt(first.idents[0])
        expr, t = self.compile_pipeline(pipe, dot_t)
        if pipe.decl:
            return ex.declare_stmt(expr)
        return ex.string_stmt(expr) if t is _T.STR else ex.value_stmt(expr)

    def compile_control(self, node: ControlNode, dot_t: _T) -> ex.Stmt:
        pipe, t = self.compile_pipeline(node.pipe, dot_t)
        if node.keyword == "range":
            return self.compile_range(node, dot_t, pipe, t)
        with_dot = node.keyword == "with"
        # Inside `with`, dot is the (true, so present) value of the pipeline.
        body_t = (_T.STR if t is _T.MAPVAL else t) if with_dot else dot_t
        body = self.compile_list(node.list, body_t)
        else_body = None if node.else_list is None else self.compile_list(node.else_list, dot_t)
        return ex.if_with_stmt(pipe, body, else_body, with_dot)

    def compile_range(self, node: ControlNode, dot_t: _T, pipe: ex.Expr, t: _T) -> ex.Stmt:
        elem_t, key_t = {
            _T.LIST: (_T.STR, _T.INT),
            _T.MAP: (_T.STR, _T.STR),
            _T.INT: (_T.INT, _T.ANY),
            _T.BYTE: (_T.BYTE, _T.ANY),
        }.get(t, (_T.ANY, _T.ANY))
        slots = [v.slot for v in node.pipe.decl]
        key_slot = slots[0] if len(slots) == 2 else None
        elem_slot = slots[-1] if slots else None
        if key_slot is not None:
            self.slot_types[key_slot] = key_t
        if elem_slot is not None:
            self.slot_types[elem_slot] = elem_t
        body = self.compile_list(node.list, elem_t)
        else_body = None
        if node.else_list is not None:
            # With nothing to iterate, the variables keep the pipeline's value.
            for slot in slots:
                self.slot_types[slot] = t
            else_body = self.compile_list(node.else_list, dot_t)
        last = node.pipe.cmds[-1]
        prefix = self.prefix(last.args[0] if len(last.args) == 1 else last)
        loop_control = _has_loop_control(node.list.nodes)
        return ex.range_stmt(
            pipe,
            body,
            else_body=else_body,
            key_slot=key_slot,
            elem_slot=elem_slot,
            loop_control=loop_control,
            prefix=prefix,
        )

    # Pipelines, commands and operands.

    def compile_pipeline(self, pipe: PipeNode, dot_t: _T) -> tuple[ex.Expr, _T]:
        expr, t = self.compile_command(pipe.cmds[0], dot_t, None)
        for cmd in pipe.cmds[1:]:
            stage, t = self.compile_command(cmd, dot_t, t)
            expr = ex.then(expr, stage)
        if pipe.decl:
            for v in pipe.decl:
                self.slot_types[v.slot] = t
            expr = ex.store(expr, tuple(v.slot for v in pipe.decl))
        return expr, t

    def compile_command(
        self, cmd: CommandNode, dot_t: _T, final_t: _T | None
    ) -> tuple[Callable[..., Any], _T]:
        """A command; after `|` (final_t given) the piped value is its last argument."""
        first = cmd.args[0]
        if isinstance(first, IdentifierNode):
            return self.compile_call(first, cmd, cmd.args[1:], dot_t, final_t)
        has_args = len(cmd.args) > 1 or final_t is not None
        if isinstance(first, FieldNode | ChainNode) or (
            isinstance(first, VariableNode) and len(first.idents) > 1
        ):
            expr, t = self.compile_operand(first, dot_t)
            if has_args:
                raise self.field_args_error(first, dot_t)
            return expr, t
        if has_args:
            raise self.error(first, f"can't give argument to non-function {first}")
        return self.compile_operand(first, dot_t)

    def field_args_error(self, node: Node, dot_t: _T) -> TemplateError:
        idents: list[str]
        if isinstance(node, FieldNode):
            receiver_t, idents = dot_t, node.idents
        elif isinstance(node, VariableNode):
            receiver_t, idents = self.slot_type(node.slot), node.idents[1:]
        else:
            assert isinstance(node, ChainNode)
            receiver_t, idents = _T.ANY, node.fields
        for ident in idents[:-1]:
            receiver_t = self.field_type(receiver_t, ident, node)
        if receiver_t is _T.MAP:
            return self.error(node, f"{idents[-1]} is not a method but has arguments")
        return self.error(node, f"{idents[-1]} has arguments but cannot be invoked as function")

    def compile_operand(self, node: Node, dot_t: _T) -> tuple[ex.Expr, _T]:
        """The value of a node used as a command or as a function's argument."""
        if isinstance(node, DotNode):
            return ex.dot, dot_t
        if isinstance(node, StringNode):
            return ex.constant(node.text), _T.STR
        if isinstance(node, NumberNode):
            return ex.constant(node.value), _T.INT if type(node.value) is int else _T.FLOAT
        if isinstance(node, BoolNode):
            return ex.constant(node.value), _T.BOOL
        if isinstance(node, NilNode):
            raise self.error(node, "nil is not a command")
        if isinstance(node, FieldNode):
            return self.compile_fields(None, dot_t, node.idents, node)
        if isinstance(node, VariableNode):
            var_t = self.slot_type(node.slot)
            return self.compile_fields(ex.variable(node.slot), var_t, node.idents[1:], node)
        if isinstance(node, ChainNode):
            base, base_t = self.compile_operand(node.node, dot_t)
            return self.compile_fields(base, base_t, node.fields, node)
        if isinstance(node, PipeNode):
            return self.compile_pipeline(node, dot_t)
        if isinstance(node, IdentifierNode):
            return self.compile_call(node, node, [], dot_t, None)
        raise AssertionError(f"unexpected operand {node!r}")

    def compile_arg(self, node: Node, dot_t: _T, param: str) -> tuple[ex.Expr, _T]:
        """Go's evalArg: a function argument converted to its parameter's type."""
        if isinstance(node, NilNode):
            if param == "string":
                raise self.error(node, "cannot assign nil to string")
            return ex.constant(NO_VALUE if param == "value" else None), _T.ANY
        if param == "string" and isinstance(node, BoolNode | NumberNode):
            raise self.error(node, f"expected string; found {node}")
        expr, t = self.compile_operand(node, dot_t)
        if t in _UNKNOWN:
            if param == "any":
                return ex.nil_if_no_value(expr), t
            if param == "string":
                return ex.checked_string(expr, self.prefix(node)), _T.STR
        elif param == "string" and t is not _T.STR:
            raise self.error(
                node, f"wrong type for value; expected string; got {self.type_name(t)}"
            )
        return expr, t

    def field_type(self, receiver_t: _T, name: str, node: Node) -> _T:
        if receiver_t is _T.ROOT:
            if name not in self.field_types:
                raise self.error(
                    node,
                    f"can't evaluate field {name} in type {self.struct_type.name}"
                    f" (its fields are: {', '.join(self.field_types)})",
                )
            return self.field_types[name]
        if receiver_t is _T.MAP:
            return _T.MAPVAL
        if receiver_t is _T.ANY:
            return _T.ANY
        raise self.error(node, f"can't evaluate field {name} in type {self.type_name(receiver_t)}")

    def compile_fields(
        self, base: ex.Expr | None, base_t: _T, idents: list[str], node: Node
    ) -> tuple[ex.Expr, _T]:
        """`.A.B` on dot (base None) or on base's value, checking each step's type."""
        expr = base
        t = base_t
        for name in idents:
            receiver_t, t = t, self.field_type(t, name, node)
            if receiver_t is _T.ROOT:
                expr = ex.root_field(expr, name, self.struct_type.zero_values[name])
            elif receiver_t is _T.MAP:
                expr = ex.map_field(expr or ex.dot, name)
            else:
                expr = ex.any_field(expr or ex.dot, name, self.prefix(node))
        return expr or ex.dot, t

    def compile_call(
        self,
        ident: IdentifierNode,
        ctx: Node,
        arg_nodes: list[Node],
        dot_t: _T,
        final_t: _T | None,
    ) -> tuple[Callable[..., Any], _T]:
        """A builtin call: an Expr, or a FinalExpr when a value is piped in (final_t)."""
        name = ident.name
        spec = BUILTINS[name]
        has_final = final_t is not None
        num_in = len(arg_nodes) + has_final
        fixed = len(spec.fixed)
        if spec.variadic is not None:
            if num_in < fixed:
                raise self.error(
                    ident,
                    f"wrong number of args for {name}: want at least {fixed} got {len(arg_nodes)}",
                )
        elif num_in != fixed:
            raise self.error(ident, f"wrong number of args for {name}: want {fixed} got {num_in}")
        params = [spec.fixed[i] if i < fixed else str(spec.variadic) for i in range(num_in)]
        compiled = [self.compile_arg(n, dot_t, p) for n, p in zip(arg_nodes, params, strict=False)]
        args = tuple(expr for expr, _ in compiled)
        types = [t for _, t in compiled] + ([final_t] if final_t is not None else [])
        result_t = self.result_type(name, types)
        if name in ("and", "or"):
            return ex.and_or(args, name == "or", has_final), result_t
        if name == "index" and not has_final and len(arg_nodes) == 2 and types[0] is _T.MAP:
            key = arg_nodes[1]
            if isinstance(key, StringNode):
                return ex.map_index(args[0], key.text), result_t
        impl = spec.impl if name != "call" else make_call(str(arg_nodes[0]) if arg_nodes else "")
        assert impl is not None
        convert_final: Callable[[Any], Any] | None = None
        if final_t is not None and final_t in _UNKNOWN and params[-1] == "any":
            convert_final = _none_for_no_value
        elif final_t is not None and params[-1] == "string" and final_t is not _T.STR:
            if final_t not in _UNKNOWN:
                got = self.type_name(final_t)
                raise self.error(ctx, f"wrong type for value; expected string; got {got}")
            convert_final = ex.string_checker(self.prefix(ctx))
        error_prefix = f"{self.prefix(ctx)}error calling {name}: "
        return ex.builtin_call(impl, args, has_final, convert_final, error_prefix), result_t

    @staticmethod
    def result_type(name: str, types: list[_T]) -> _T:
        if name in _BOOL_RESULTS:
            return _T.BOOL
        if name in _STRING_RESULTS:
            return _T.STR
        if name == "len":
            return _T.INT
        if name in ("and", "or"):
            return types[0] if all(t is types[0] for t in types) else _T.ANY
        if name == "index":
            t = types[0]
            for _ in types[1:]:
                t = {_T.LIST: _T.STR, _T.MAP: _T.STR, _T.STR: _T.BYTE}.get(t, _T.ANY)
            return t
        if name == "slice":
            return {_T.LIST: _T.LIST, _T.STR: _T.STR, _T.MAPVAL: _T.STR}.get(types[0], _T.ANY)
        return _T.ANY
