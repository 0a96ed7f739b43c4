"""Go's `text/template` with `<<` and `>>` delimiters, as prometheus-adapter uses it.

`compile_template` parses a template once (at config load) and compiles it into Python
closures (`go_template_exec`); `GoTemplate.render` runs them per request and returns byte
for byte what Go's `template.Execute` writes. Only Go's builtin functions exist.
`define`, `block` and `template` work as in Go; a named template is compiled for each
static type of dot it is called with.

`compile_template` raises only what Go's parser rejects. Mistakes Go reports only while
executing (an unknown field, a field of a string, a wrong number of arguments, arguments
to a field, `nil` as a command, an undefined template or variable) are found here where
the type of the value is known statically (the data is a struct with the given `fields`,
and the types of dot and of variables are tracked through pipelines, `with`, `range` and
template calls), compiled into closures that fail with Go's message when execution
reaches them, and listed in `GoTemplate.deferred_errors`. Where a type is only known at
render time, the check happens at render time, as in Go.

Semantics follow Go's `exec.go` and `funcs.go`, including missingkey=default:
`.Map.missing` is `<no value>` while `index .Map "missing"` is the empty string.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapter.golang.quote import go_quote
from adapter.gotemplate import exec as ex
from adapter.gotemplate.builtins import BUILTINS, make_call
from adapter.gotemplate.errors import TemplateError, TemplateExecError
from adapter.gotemplate.fmt import EMPTY_MAP, NO_VALUE, GoStruct, GoStructType
from adapter.gotemplate.parse import (
    UNDEFINED_SLOT,
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
    ParsedTree,
    PipeNode,
    StringNode,
    TemplateNode,
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
    """A compiled template; build it with `compile_template`.

    `deferred_errors`: the errors Go would report if execution reached them, each with
    Go's message and position, in source order; `render` raises them there.
    """

    source: str
    name: str
    _render: Callable[[Mapping[str, object]], str] = field(repr=False, compare=False)
    deferred_errors: tuple[str, ...] = ()

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
    """Parse and compile `source`, whose data is a struct with `fields` in this order.

    Raises TemplateError, with Go's message, for what Go's parser rejects.
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
    program = _Program(name, source, struct_type, fields, parsed.trees)
    try:
        main = program.callee(name, _T.ROOT)
    except RecursionError:
        # Called templates are compiled into their callers: a chain hundreds of templates deep
        # (Go renders up to 100,000) would overflow Python's stack, here and when rendering.
        raise TemplateError(
            f"template: {name}: templates call each other too deeply to compile"
        ) from None
    slot_count = main.slot_count

    if main.resumable:
        resumable_body: ex.ResumableStmt = main.body  # type: ignore[assignment]

        def render(data: Mapping[str, object]) -> str:
            root = GoStruct(struct_type, data)
            out: list[str] = []
            ex.run_resumable(resumable_body, out, root, [root] * slot_count)
            return "".join(out)

    else:
        body: ex.Stmt = main.body  # type: ignore[assignment]

        def render(data: Mapping[str, object]) -> str:
            root = GoStruct(struct_type, data)
            out: list[str] = []
            body(out, root, [root] * slot_count)
            return "".join(out)

    return GoTemplate(source, name, render, program.deferred_errors())


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


def _calls_templates(nodes: Sequence[Node]) -> bool:
    for node in nodes:
        if isinstance(node, TemplateNode):
            return True
        if isinstance(node, ControlNode) and (
            _calls_templates(node.list.nodes)
            or (node.else_list is not None and _calls_templates(node.else_list.nodes))
        ):
            return True
    return False


def _last_at(node: Node) -> Node:
    """The node Go's exec state is at (`s.at`) once `node` is evaluated as an argument:
    where Go reports an error found just after, such as a wrong type."""
    if isinstance(node, PipeNode):
        return _last_at_command(node.cmds[-1])
    if isinstance(node, ChainNode):
        return _last_at(node.node)
    return node


def _last_at_command(cmd: CommandNode) -> Node:
    first = cmd.args[0]
    if isinstance(first, IdentifierNode):
        # A call evaluates its arguments in order (and/or may stop early: then it is the
        # deciding argument, which only execution knows).
        return _last_at(cmd.args[-1]) if len(cmd.args) > 1 else first
    if isinstance(first, PipeNode | ChainNode):
        return _last_at(first)
    return first


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


class _Program:
    """What the templates of one source share while compiling: the named templates, each
    compiled once per static type of dot, and the errors deferred to execution."""

    def __init__(
        self,
        name: str,
        source: str,
        struct_type: GoStructType,
        fields: Mapping[str, FieldKind],
        trees: Mapping[str, ParsedTree],
    ) -> None:
        self.name = name
        self.source = source
        self.struct_type = struct_type
        self.field_types = {n: _KIND_TYPES[k] for n, k in fields.items()}
        self.trees = trees
        self.callees: dict[tuple[str, _T], ex.Callee] = {}
        self.deferred: dict[str, int] = {}  # message: position

    def callee(self, name: str, dot_t: _T) -> ex.Callee:
        """Template `name` compiled for dot of type `dot_t`, once (a recursive call finds
        the Callee being compiled, filled in by the time it runs)."""
        key = (name, dot_t)
        callee = self.callees.get(key)
        if callee is None:
            callee = self.callees[key] = ex.Callee()
            tree = self.trees[name]
            callee.body, callee.resumable = _Compiler(self, tree, dot_t).compile_body()
            callee.slot_count = tree.slot_count
        return callee

    def defer(self, pos: int, message: str) -> None:
        self.deferred.setdefault(message, pos)

    def deferred_errors(self) -> tuple[str, ...]:
        return tuple(sorted(self.deferred, key=lambda message: self.deferred[message]))


class _Compiler:
    """Compiles one named template to closures, tracking static types (Go's exec, ahead)."""

    def __init__(self, program: _Program, tree: ParsedTree, dot_t: _T) -> None:
        self.program = program
        self.tree = tree
        self.source = program.source
        self.struct_type = program.struct_type
        self.field_types = program.field_types
        self.assigned = tree.assigned_slots
        self.slot_types: dict[int, _T] = {0: dot_t}
        self.dot_t = dot_t

    def compile_body(self) -> tuple[ex.Stmt | ex.ResumableStmt, bool]:
        """The template's statements, and whether they are resumable (call templates)."""
        root = self.tree.root
        if _calls_templates(root.nodes):
            return self.compile_resumable_list(root, self.dot_t), True
        return self.compile_list(root, self.dot_t), False

    def prefix(self, node: object) -> str:
        """Go's exec error prefix: `template: NAME:LINE:COL: executing "TMPL" at <NODE>: `,
        NAME the parsed template's, TMPL the executing one's."""
        pos = getattr(node, "pos", 0)
        line_start = self.source.rfind("\n", 0, pos) + 1
        line = self.source.count("\n", 0, pos) + 1
        col = len(self.source[line_start:pos].encode("utf-8", "surrogatepass"))
        executing = go_quote(self.tree.name)
        return f"template: {self.program.name}:{line}:{col}: executing {executing} at <{node}>: "

    def deferred(self, node: Node, message: str) -> str:
        """An error Go reports when execution reaches `node`: its full text, recorded."""
        text = self.prefix(node) + message
        self.program.defer(node.pos, text)
        return text

    def fail(self, evaluated: ex.Expr | None, node: Node, message: str) -> tuple[ex.Expr, _T]:
        """An expression failing at `node`, after evaluating `evaluated` (what Go evaluates
        before it finds the error)."""
        text = self.deferred(node, message)
        return (ex.fail(text) if evaluated is None else ex.fail_after(evaluated, text)), _T.ANY

    def type_name(self, t: _T) -> str:
        return self.struct_type.name if t is _T.ROOT else _TYPE_NAMES[t]

    def slot_type(self, slot: int) -> _T:
        # A variable assigned with `=` anywhere may hold anything anywhere (loops).
        return _T.ANY if slot in self.assigned else self.slot_types.get(slot, _T.ANY)

    # Statements.

    def compile_list(self, lst: ListNode, dot_t: _T) -> ex.Stmt:
        """Statements that call no template."""
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

    def compile_resumable_list(self, lst: ListNode, dot_t: _T) -> ex.ResumableStmt:
        """Statements some of which call templates; runs of others stay plain."""
        ops: list[tuple[ex.Stmt | ex.ResumableStmt, bool]] = []
        plain: list[Node] = []

        def flush() -> None:
            if plain:
                ops.append((self.compile_list(ListNode(plain[0].pos, list(plain)), dot_t), False))
                plain.clear()

        for node in lst.nodes:
            if isinstance(node, TemplateNode):
                flush()
                ops.append(self.compile_template_call(node, dot_t))
            elif isinstance(node, ControlNode) and _calls_templates([node]):
                flush()
                ops.append((self.compile_resumable_control(node, dot_t), True))
            else:
                plain.append(node)
        flush()
        return ex.resumable_list(tuple(ops))

    def compile_resumable(self, lst: ListNode, dot_t: _T) -> ex.ResumableStmt:
        if _calls_templates(lst.nodes):
            return self.compile_resumable_list(lst, dot_t)
        return ex.resumable(self.compile_list(lst, dot_t))

    def compile_template_call(
        self, node: TemplateNode, dot_t: _T
    ) -> tuple[ex.Stmt | ex.ResumableStmt, bool]:
        """Go's walkTemplate: look the template up, then evaluate the pipeline (dot in the
        called template; no pipeline is no value) and run it."""
        if node.name not in self.program.trees:
            text = self.deferred(node, f"template {go_quote(node.name)} not defined")
            return ex.fail_stmt(text), False
        pipe: ex.Expr | None = None
        called_t = _T.ANY
        if node.pipe is not None:
            pipe, called_t = self.compile_pipeline(node.pipe, dot_t)
        callee = self.program.callee(node.name, called_t)
        return ex.template_call(callee, pipe, self.prefix(node)), True

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
            key_slot, elem_slot, elem_t = self.range_variables(node, t)
            body = self.compile_list(node.list, elem_t)
            else_body = None
            if node.else_list is not None:
                self.range_else_variables(node, t)
                else_body = self.compile_list(node.else_list, dot_t)
            return ex.range_stmt(
                pipe,
                body,
                else_body=else_body,
                key_slot=key_slot,
                elem_slot=elem_slot,
                loop_control=_has_loop_control(node.list.nodes),
                prefix=self.prefix(_last_at(node.pipe)),
            )
        with_dot = node.keyword == "with"
        body = self.compile_list(node.list, self.if_with_dot(node, dot_t, t))
        else_body = None if node.else_list is None else self.compile_list(node.else_list, dot_t)
        return ex.if_with_stmt(pipe, body, else_body, with_dot)

    def compile_resumable_control(self, node: ControlNode, dot_t: _T) -> ex.ResumableStmt:
        """compile_control for a statement whose body calls templates."""
        pipe, t = self.compile_pipeline(node.pipe, dot_t)
        if node.keyword == "range":
            key_slot, elem_slot, elem_t = self.range_variables(node, t)
            body = self.compile_resumable(node.list, elem_t)
            else_body = None
            if node.else_list is not None:
                self.range_else_variables(node, t)
                else_body = self.compile_resumable(node.else_list, dot_t)
            return ex.resumable_range(
                pipe,
                body,
                else_body=else_body,
                key_slot=key_slot,
                elem_slot=elem_slot,
                prefix=self.prefix(_last_at(node.pipe)),
            )
        with_dot = node.keyword == "with"
        body = self.compile_resumable(node.list, self.if_with_dot(node, dot_t, t))
        else_body = (
            None if node.else_list is None else self.compile_resumable(node.else_list, dot_t)
        )
        return ex.resumable_if_with(pipe, body, else_body, with_dot)

    @staticmethod
    def if_with_dot(node: ControlNode, dot_t: _T, t: _T) -> _T:
        if node.keyword != "with":
            return dot_t
        # Inside `with`, dot is the (true, so present) value of the pipeline.
        return _T.STR if t is _T.MAPVAL else t

    def range_variables(self, node: ControlNode, t: _T) -> tuple[int | None, int | None, _T]:
        """The key and element slots of a range over a `t`, typed; and the element type."""
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
        return key_slot, elem_slot, elem_t

    def range_else_variables(self, node: ControlNode, t: _T) -> None:
        # With nothing to iterate, the variables keep the pipeline's value.
        for v in node.pipe.decl:
            self.slot_types[v.slot] = t

    # Pipelines, commands and operands.

    def compile_pipeline(self, pipe: PipeNode, dot_t: _T) -> tuple[ex.Expr, _T]:
        expr, t = self.compile_command(pipe.cmds[0], dot_t, None, pipe)
        for previous, cmd in zip(pipe.cmds, pipe.cmds[1:], strict=False):
            stage, t = self.compile_command(cmd, dot_t, t, _last_at_command(previous))
            expr = ex.then(expr, stage)
        if pipe.decl:
            undefined = [v for v in pipe.decl if v.slot == UNDEFINED_SLOT]
            if undefined:
                # Go's setVar, once the pipeline has its value.
                return self.fail(expr, _last_at(pipe), f"undefined variable: {undefined[0]}")
            for v in pipe.decl:
                self.slot_types[v.slot] = t
            expr = ex.store(expr, tuple(v.slot for v in pipe.decl))
        return expr, t

    def compile_command(
        self, cmd: CommandNode, dot_t: _T, final_t: _T | None, at: Node
    ) -> tuple[Callable[..., Any], _T]:
        """A command: an Expr, or after `|` (final_t given) a FinalExpr whose piped value
        is its last argument. `at` is where Go's exec state is when the command starts."""
        first = cmd.args[0]
        if isinstance(first, IdentifierNode):
            return self.compile_call(first, cmd, cmd.args[1:], dot_t, final_t)
        has_args = len(cmd.args) > 1 or final_t is not None
        if isinstance(first, FieldNode | ChainNode) or (
            isinstance(first, VariableNode) and len(first.idents) > 1
        ):
            # Arguments are an error unless the last field has no value (Go's evalField).
            expr, t = self.compile_operand(first, dot_t, has_args=has_args)
            return (expr if final_t is None else ex.ignore_final(expr)), t
        if has_args and not (isinstance(first, VariableNode) and first.slot == UNDEFINED_SLOT):
            node = at if isinstance(first, PipeNode) else first
            text = self.deferred(node, f"can't give argument to non-function {first}")
            return (ex.fail(text) if final_t is None else ex.fail_stage(text)), _T.ANY
        expr, t = self.compile_operand(first, dot_t)
        return (expr if final_t is None else ex.ignore_final(expr)), t

    def compile_operand(
        self, node: Node, dot_t: _T, *, has_args: bool = False
    ) -> tuple[ex.Expr, _T]:
        """The value of a node used as a command or as a function's argument; `has_args`:
        the command has arguments, which are an error for a field."""
        if isinstance(node, DotNode):
            return ex.dot, dot_t
        if isinstance(node, StringNode):
            return ex.constant(node.text), _T.STR
        if isinstance(node, NumberNode):
            return ex.constant(node.value), _T.INT if type(node.value) is int else _T.FLOAT
        if isinstance(node, BoolNode):
            return ex.constant(node.value), _T.BOOL
        if isinstance(node, NilNode):
            return self.fail(None, node, "nil is not a command")
        if isinstance(node, FieldNode):
            return self.compile_fields(None, dot_t, node.idents, node, has_args)
        if isinstance(node, VariableNode):
            if node.slot == UNDEFINED_SLOT:
                return self.fail(None, node, f"undefined variable: {node.idents[0]}")
            var_t = self.slot_type(node.slot)
            variable = ex.variable(node.slot)
            return self.compile_fields(variable, var_t, node.idents[1:], node, has_args)
        if isinstance(node, ChainNode):
            base, base_t = self.compile_operand(node.node, dot_t)
            return self.compile_fields(base, base_t, node.fields, _last_at(node.node), has_args)
        if isinstance(node, PipeNode):
            return self.compile_pipeline(node, dot_t)
        if isinstance(node, IdentifierNode):
            return self.compile_call(node, node, [], dot_t, None)
        raise AssertionError(f"unexpected operand {node!r}")

    def compile_arg(self, node: Node, dot_t: _T, param: str) -> tuple[ex.Expr, _T]:
        """Go's evalArg: a function argument converted to its parameter's type."""
        if isinstance(node, NilNode):
            if param == "string":
                return self.fail(None, node, "cannot assign nil to string")
            return ex.constant(NO_VALUE if param == "value" else None), _T.ANY
        if param == "string" and isinstance(node, BoolNode | NumberNode):
            return self.fail(None, node, f"expected string; found {node}")
        expr, t = self.compile_operand(node, dot_t)
        if t in _UNKNOWN:
            if param == "any":
                return ex.nil_if_no_value(expr), t
            if param == "string":
                return ex.checked_string(expr, self.prefix(_last_at(node))), _T.STR
        elif param == "string" and t is not _T.STR:
            message = f"wrong type for value; expected string; got {self.type_name(t)}"
            return self.fail(expr, _last_at(node), message)
        return expr, t

    def compile_fields(
        self, base: ex.Expr | None, base_t: _T, idents: list[str], at: Node, has_args: bool
    ) -> tuple[ex.Expr, _T]:
        """`.A.B` on dot (base None) or on base's value, checking each step's type (Go's
        evalFieldChain); errors are reported `at` the node Go's exec state is at."""
        expr = base
        t = base_t
        for i, name in enumerate(idents):
            with_args = has_args and i == len(idents) - 1
            receiver_t = t
            if receiver_t is _T.ROOT:
                if name not in self.field_types:
                    type_name = self.struct_type.name
                    return self.fail(expr, at, f"can't evaluate field {name} in type {type_name}")
                if with_args:
                    return self.fail(
                        expr, at, f"{name} has arguments but cannot be invoked as function"
                    )
                expr = ex.root_field(expr, name, self.struct_type.zero_values[name])
                t = self.field_types[name]
            elif receiver_t is _T.MAP:
                if with_args:
                    return self.fail(expr, at, f"{name} is not a method but has arguments")
                expr = ex.map_field(expr or ex.dot, name)
                t = _T.MAPVAL
            elif receiver_t in _UNKNOWN:
                # No value has no fields and gives no value; a string is an error.
                expr = ex.any_field(expr or ex.dot, name, self.prefix(at), has_args=with_args)
                t = _T.ANY
            else:
                type_name = self.type_name(receiver_t)
                return self.fail(expr, at, f"can't evaluate field {name} in type {type_name}")
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
        arity_error = None
        if spec.variadic is not None:
            if num_in < fixed:
                arity_error = (
                    f"wrong number of args for {name}: want at least {fixed} got {len(arg_nodes)}"
                )
        elif num_in != fixed:
            arity_error = f"wrong number of args for {name}: want {fixed} got {num_in}"
        if arity_error is not None:
            # Go checks the count before evaluating any argument.
            text = self.deferred(ident, arity_error)
            return (ex.fail_stage(text) if has_final else ex.fail(text)), _T.ANY
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
            # Go checks the piped value once the arguments are evaluated.
            final_at = _last_at(arg_nodes[-1]) if arg_nodes else ident
            if final_t in _UNKNOWN:
                convert_final = ex.string_checker(self.prefix(final_at))
            else:
                got = self.type_name(final_t)
                message = f"wrong type for value; expected string; got {got}"
                convert_final = ex.fail_check(self.deferred(final_at, message))
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
