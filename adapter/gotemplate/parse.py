"""Go's `text/template` parser and syntax tree, ported from `text/template/parse`.

The parser follows Go's `parse.go` token for token, so the same templates are accepted
and rejected with the same messages (`template: NAME:LINE: ...`), including `define`,
`block` (named templates, Go's treeSet) and `template`. Variables are resolved here to
numbered slots, one numbering per named template, with the scoping they have when the
template executes: `$x := $x` refers to an outer `$x`. A variable Go's parser accepts
but execution cannot find (`$x := $x` with no outer `$x`, `$x = 1` with no `$x`) gets
UNDEFINED_SLOT, which fails when executed, as in Go.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from adapter.golang.quote import go_quote
from adapter.gotemplate.errors import TemplateError
from adapter.gotemplate.lex import (
    LiteralSyntaxError,
    Token,
    TokenType,
    lex,
    parse_number,
    unquote,
)

__all__ = [
    "MAX_NESTING",
    "UNDEFINED_SLOT",
    "ActionNode",
    "BoolNode",
    "BreakNode",
    "ChainNode",
    "CommandNode",
    "ContinueNode",
    "ControlNode",
    "DotNode",
    "FieldNode",
    "IdentifierNode",
    "ListNode",
    "NilNode",
    "Node",
    "NumberNode",
    "ParsedTemplate",
    "ParsedTree",
    "PipeNode",
    "StringNode",
    "TemplateNode",
    "TextNode",
    "VariableNode",
    "parse_template",
]


# Syntax tree; str(node) is Go's Node.String(), used in error messages.


@dataclass(slots=True)
class TextNode:
    pos: int
    text: str


@dataclass(slots=True)
class DotNode:
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class NilNode:
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class BoolNode:
    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class NumberNode:
    pos: int
    text: str
    value: int | float

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class StringNode:
    pos: int
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class IdentifierNode:
    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class FieldNode:
    pos: int
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + ident for ident in self.idents)


# The slot of a variable that Go's parser accepts but that is never declared when the
# template executes: reading or assigning it fails with "undefined variable".
UNDEFINED_SLOT = -1


@dataclass(slots=True)
class VariableNode:
    """`$x.A.B`: idents are ["$x", "A", "B"]; slot numbers the variable's declaration
    (UNDEFINED_SLOT: none at execution)."""

    pos: int
    idents: list[str]
    slot: int

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(slots=True)
class ChainNode:
    """`(pipeline).A.B`: fields on the result of a term other than a field or variable."""

    pos: int
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        base = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return base + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class CommandNode:
    pos: int
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(slots=True)
class PipeNode:
    pos: int
    line: int
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        text = " | ".join(str(c) for c in self.cmds)
        if self.decl:
            names = ", ".join(str(v) for v in self.decl)
            text = f"{names} {'=' if self.is_assign else ':='} {text}"
        return text


@dataclass(slots=True)
class ListNode:
    pos: int
    nodes: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class ActionNode:
    pos: int
    line: int
    pipe: PipeNode


@dataclass(slots=True)
class ControlNode:
    """`if`, `with` or `range` (keyword), with optional else branch."""

    keyword: str
    pos: int
    line: int
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None


@dataclass(slots=True)
class TemplateNode:
    """`{{template "name" pipeline}}`, also what `{{block}}` leaves in its template."""

    pos: int
    line: int
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        pipe = "" if self.pipe is None else f" {self.pipe}"
        return f"{{{{template {go_quote(self.name)}{pipe}}}}}"


@dataclass(slots=True)
class BreakNode:
    pos: int
    line: int


@dataclass(slots=True)
class ContinueNode:
    pos: int
    line: int


@dataclass(slots=True)
class _EndNode:
    pos: int

    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class _ElseNode:
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{else}}"


Node = (
    TextNode
    | DotNode
    | NilNode
    | BoolNode
    | NumberNode
    | StringNode
    | IdentifierNode
    | FieldNode
    | VariableNode
    | ChainNode
    | CommandNode
    | PipeNode
    | ListNode
    | ActionNode
    | ControlNode
    | TemplateNode
    | BreakNode
    | ContinueNode
    | _EndNode
    | _ElseNode
)

_LITERAL_NODES = (BoolNode, DotNode, NilNode, NumberNode, StringNode)


@dataclass(frozen=True, slots=True)
class ParsedTree:
    """One named template; slot 0 is `$`, every declaration has its own slot."""

    name: str
    root: ListNode
    slot_count: int
    assigned_slots: frozenset[int]


@dataclass(frozen=True, slots=True)
class ParsedTemplate:
    """Go's treeSet: the template `name` and those `define` and `block` name. What runs
    as `name` is a `define` of that name when the text around the definitions is empty
    (Go's Tree.add)."""

    name: str
    trees: dict[str, ParsedTree]


# unicode.IsSpace, which Go's IsEmptyTree trims with (bytes.TrimSpace).
_GO_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def _is_empty_tree(root: ListNode) -> bool:
    """Go's IsEmptyTree: nothing but white space (comments are not in the tree)."""
    return all(
        isinstance(node, TextNode) and all(c in _GO_SPACES for c in node.text)
        for node in root.nodes
    )


@dataclass(slots=True)
class _TreeState:
    """What each named template has of its own while parsing (Go starts a new Tree)."""

    vars: list[tuple[str, int]]
    pending: list[str]
    slot_count: int
    assigned: set[int]
    range_depth: int
    action_line: int


# ---------------------------------------------------------------------------------------
# Parser


_MAX_PAREN_DEPTH = 10000
# How deep `if`/`range`/`with`/`else if`/`block` and parentheses may nest. Go has no such limit
# (its stack grows), but each level costs this parser, the compiler and rendering about four
# Python frames: 100 levels keep a request's rendering far from Python's recursion limit.
MAX_NESTING = 100


class _Parser:
    """Go's parse.Tree while parsing, plus variable slot allocation."""

    def __init__(self, name: str, source: str, left: str, right: str, funcs: frozenset[str]):
        newlines = [i for i, c in enumerate(source) if c == "\n"]
        self.name = name
        self.funcs = funcs
        self.lex = lex(source, left, right, lambda pos: 1 + bisect.bisect_left(newlines, pos))
        self.token: list[Token] = [Token(TokenType.EOF, 0, "", 1)] * 3
        self.peek_count = 0
        # Variables in scope at execution, by slot (the innermost last).
        self.vars: list[tuple[str, int]] = [("$", 0)]
        # Variables being declared by the pipelines being parsed: Go's parser knows them
        # already, execution only after the pipeline.
        self.pending: list[str] = []
        self.slot_count = 1
        self.assigned: set[int] = set()
        self.action_line = 0
        self.range_depth = 0
        self.paren_depth = 0
        self.nesting = 0  # control structures and parentheses open (see MAX_NESTING)
        self.trees: dict[str, ParsedTree] = {}

    # Token stream with Go's three-token lookahead.

    def next(self) -> Token:
        if self.peek_count > 0:
            self.peek_count -= 1
        else:
            self.token[0] = next(self.lex)
        return self.token[self.peek_count]

    def backup(self) -> None:
        self.peek_count += 1

    def backup2(self, t1: Token) -> None:
        self.token[1] = t1
        self.peek_count = 2

    def backup3(self, t2: Token, t1: Token) -> None:
        self.token[1] = t1
        self.token[2] = t2
        self.peek_count = 3

    def peek(self) -> Token:
        if self.peek_count > 0:
            return self.token[self.peek_count - 1]
        self.peek_count = 1
        self.token[0] = next(self.lex)
        return self.token[0]

    def next_non_space(self) -> Token:
        while True:
            tok = self.next()
            if tok.typ is not TokenType.SPACE:
                return tok

    def peek_non_space(self) -> Token:
        tok = self.next_non_space()
        self.backup()
        return tok

    def nest(self) -> None:
        """Open one more level of nesting; the caller closes it (a failed parse ends)."""
        if self.nesting >= MAX_NESTING:
            raise self.errorf(
                f"actions and parentheses nested too deeply (more than {MAX_NESTING} levels)"
            )
        self.nesting += 1

    def errorf(self, message: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{self.token[0].line}: {message}")

    def expect(self, expected: TokenType, context: str) -> Token:
        tok = self.next_non_space()
        if tok.typ is not expected:
            raise self.unexpected(tok, context)
        return tok

    def unexpected(self, tok: Token, context: str) -> TemplateError:
        if tok.typ is TokenType.ERROR:
            extra = ""
            if self.action_line not in (0, tok.line):
                extra = f" in action started at {self.name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{tok}{extra}")
        return self.errorf(f"unexpected {tok} in {context}")

    # Grammar.

    def parse(self) -> ParsedTemplate:
        root = ListNode(self.peek().pos)
        while self.peek().typ is not TokenType.EOF:
            if self.peek().typ is TokenType.LEFT_DELIM:
                delim = self.next()
                if self.next_non_space().typ is TokenType.DEFINE:
                    self.parse_definition()
                    continue
                self.backup2(delim)
            node = self.text_or_action()
            if isinstance(node, _EndNode | _ElseNode):
                raise self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.add_tree(ParsedTree(self.name, root, self.slot_count, frozenset(self.assigned)))
        return ParsedTemplate(self.name, self.trees)

    # Named templates.

    def start_tree(self) -> _TreeState:
        """Start parsing a named template's body, as Go's startParse: only `$` in scope,
        outside any range or action. Returns the enclosing template's state."""
        outer = _TreeState(
            self.vars,
            self.pending,
            self.slot_count,
            self.assigned,
            self.range_depth,
            self.action_line,
        )
        self.vars = [("$", 0)]
        self.pending = []
        self.slot_count = 1
        self.assigned = set()
        self.range_depth = 0
        self.action_line = 0
        return outer

    def finish_tree(self, name: str, root: ListNode, outer: _TreeState) -> ParsedTree:
        tree = ParsedTree(name, root, self.slot_count, frozenset(self.assigned))
        self.vars = outer.vars
        self.pending = outer.pending
        self.slot_count = outer.slot_count
        self.assigned = outer.assigned
        self.range_depth = outer.range_depth
        self.action_line = outer.action_line
        return tree

    def add_tree(self, tree: ParsedTree) -> None:
        """Go's Tree.add: a name is defined once, but an empty definition gives way."""
        existing = self.trees.get(tree.name)
        if existing is None or _is_empty_tree(existing.root):
            self.trees[tree.name] = tree
        elif not _is_empty_tree(tree.root):
            quoted = go_quote(tree.name)
            raise self.errorf(f"template: multiple definition of template {quoted}")

    def template_name(self, tok: Token, context: str) -> str:
        if tok.typ is not TokenType.STRING and tok.typ is not TokenType.RAW_STRING:
            raise self.unexpected(tok, context)
        try:
            return unquote(tok.val)
        except (LiteralSyntaxError, IndexError):
            raise self.errorf("invalid syntax") from None

    def parse_definition(self) -> None:
        """`{{define "name"}} ... {{end}}`, the keyword already read (top level only)."""
        context = "define clause"
        outer = self.start_tree()
        name = self.template_name(self.next_non_space(), context)
        self.expect(TokenType.RIGHT_DELIM, context)
        root, end = self.item_list()
        if not isinstance(end, _EndNode):
            raise self.errorf(f"unexpected {end} in {context}")
        tree = self.finish_tree(name, root, outer)
        self.add_tree(tree)

    def block_control(self) -> TemplateNode:
        """`{{block "name" pipeline}} ... {{end}}`: a definition and its call."""
        context = "block clause"
        self.nest()
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = self.pipeline(context, TokenType.RIGHT_DELIM)
        # Go reports a body ended by {{else}} with the enclosing tree's last token.
        clause_line = self.token[0].line
        outer = self.start_tree()
        root, end = self.item_list()
        if not isinstance(end, _EndNode):
            raise TemplateError(
                f"template: {self.name}:{clause_line}: unexpected {end} in {context}"
            )
        tree = self.finish_tree(name, root, outer)
        self.add_tree(tree)
        self.nesting -= 1
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def template_control(self) -> TemplateNode:
        """`{{template "name"}}` or `{{template "name" pipeline}}`."""
        context = "template clause"
        tok = self.next_non_space()
        name = self.template_name(tok, context)
        pipe = None
        if self.next_non_space().typ is not TokenType.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, TokenType.RIGHT_DELIM)
        return TemplateNode(tok.pos, tok.line, name, pipe)

    def item_list(self) -> tuple[ListNode, _EndNode | _ElseNode]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not TokenType.EOF:
            node = self.text_or_action()
            if isinstance(node, _EndNode | _ElseNode):
                return lst, node
            lst.nodes.append(node)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> Node:
        tok = self.next_non_space()
        if tok.typ is TokenType.TEXT:
            return TextNode(tok.pos, tok.val)
        if tok.typ is TokenType.LEFT_DELIM:
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(tok, "input")

    def action(self) -> Node:
        tok = self.next_non_space()
        typ = tok.typ
        if typ is TokenType.BREAK or typ is TokenType.CONTINUE:
            end = self.next_non_space()
            if end.typ is not TokenType.RIGHT_DELIM:
                raise self.unexpected(end, f"{{{{{tok.val}}}}}")
            if self.range_depth == 0:
                raise self.errorf(f"{{{{{tok.val}}}}} outside {{{{range}}}}")
            node_type = BreakNode if typ is TokenType.BREAK else ContinueNode
            return node_type(tok.pos, tok.line)
        if typ is TokenType.ELSE:
            peek = self.peek_non_space()
            if peek.typ is TokenType.IF or peek.typ is TokenType.WITH:
                return _ElseNode(peek.pos, peek.line)
            end = self.expect(TokenType.RIGHT_DELIM, "else")
            return _ElseNode(end.pos, end.line)
        if typ is TokenType.END:
            return _EndNode(self.expect(TokenType.RIGHT_DELIM, "end").pos)
        if typ is TokenType.IF or typ is TokenType.RANGE or typ is TokenType.WITH:
            return self.control(tok.val)
        if typ is TokenType.TEMPLATE:
            return self.template_control()
        if typ is TokenType.BLOCK:
            return self.block_control()
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, tok.line, self.pipeline("command", TokenType.RIGHT_DELIM))

    def control(self, context: str) -> ControlNode:
        mark = len(self.vars)
        self.nest()
        try:
            pipe = self.pipeline(context, TokenType.RIGHT_DELIM)
            if context == "range":
                self.range_depth += 1
            lst, nxt = self.item_list()
            if context == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, _ElseNode):
                # "{{else if x}}" is "{{else}}{{if x}}...{{end}}" sharing the final {{end}}.
                chained = {"if": TokenType.IF, "with": TokenType.WITH}.get(context)
                if chained is not None and self.peek().typ is chained:
                    self.next()
                    else_list = ListNode(nxt.pos, [self.control(context)])
                else:
                    else_list, end = self.item_list()
                    if not isinstance(end, _EndNode):
                        raise self.errorf(f"expected end; found {end}")
            return ControlNode(context, pipe.pos, pipe.line, pipe, lst, else_list)
        finally:
            del self.vars[mark:]
            self.nesting -= 1

    def pipeline(self, context: str, end: TokenType) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos, tok.line)
        decl: list[Token] = []
        while True:
            v = self.peek_non_space()
            if v.typ is not TokenType.VARIABLE:
                break
            self.next()
            after_variable = self.peek()
            nxt = self.peek_non_space()
            if nxt.typ is TokenType.ASSIGN or nxt.typ is TokenType.DECLARE:
                pipe.is_assign = nxt.typ is TokenType.ASSIGN
                self.next_non_space()
                decl.append(v)
            elif nxt.typ is TokenType.CHAR and nxt.val == ",":
                self.next_non_space()
                decl.append(v)
                if context == "range" and len(decl) < 2:
                    if self.peek_non_space().typ in (
                        TokenType.VARIABLE,
                        TokenType.RIGHT_DELIM,
                        TokenType.RIGHT_PAREN,
                    ):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            elif after_variable.typ is TokenType.SPACE:
                self.backup3(v, after_variable)
            else:
                self.backup2(v)
            break
        pending_mark = len(self.pending)
        self.pending.extend(v.val for v in decl)
        while True:
            tok = self.next_non_space()
            if tok.typ is end:
                break
            if tok.typ in _OPERAND_STARTS:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(tok, context)
        del self.pending[pending_mark:]
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], _LITERAL_NODES):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}")
        # Declared variables come into scope after the pipeline is evaluated, as at exec.
        for v in decl:
            if pipe.is_assign:
                found = self.exec_slot(v.val)
                if found is None:
                    # Go's parser declares it; executing the assignment fails.
                    slot = UNDEFINED_SLOT
                    self.vars.append((v.val, slot))
                else:
                    slot = found
                    if slot != UNDEFINED_SLOT:
                        self.assigned.add(slot)
            else:
                slot = self.slot_count
                self.slot_count += 1
                self.vars.append((v.val, slot))
            pipe.decl.append(VariableNode(v.pos, [v.val], slot))
        return pipe

    def exec_slot(self, name: str) -> int | None:
        """The slot `name` refers to when the template executes, if declared by then."""
        for var_name, slot in reversed(self.vars):
            if var_name == name:
                return slot
        return None

    def lookup_var(self, name: str) -> int:
        """A variable reference: Go's parser accepts the variables declared so far,
        including those of the pipeline being parsed, which execution does not have."""
        slot = self.exec_slot(name)
        if slot is not None:
            return slot
        if name in self.pending:
            return UNDEFINED_SLOT
        raise self.errorf(f"undefined variable {go_quote(name)}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ is TokenType.SPACE:
                continue
            if tok.typ is TokenType.RIGHT_DELIM or tok.typ is TokenType.RIGHT_PAREN:
                self.backup()
            elif tok.typ is not TokenType.PIPE:
                raise self.unexpected(tok, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().typ is not TokenType.FIELD:
            return node
        chain_pos = self.peek().pos
        fields: list[str] = []
        while self.peek().typ is TokenType.FIELD:
            fields.append(self.next().val[1:])
        if isinstance(node, FieldNode):
            return FieldNode(chain_pos, node.idents + fields)
        if isinstance(node, VariableNode):
            return VariableNode(chain_pos, node.idents + fields, node.slot)
        if isinstance(node, _LITERAL_NODES):
            raise self.errorf(f"unexpected . after term {go_quote(str(node))}")
        return ChainNode(chain_pos, node, fields)

    def term(self) -> Node | None:
        tok = self.next_non_space()
        typ = tok.typ
        if typ is TokenType.IDENTIFIER:
            if tok.val not in self.funcs:
                raise self.errorf(f"function {go_quote(tok.val)} not defined")
            return IdentifierNode(tok.pos, tok.val)
        if typ is TokenType.DOT:
            return DotNode(tok.pos)
        if typ is TokenType.NIL:
            return NilNode(tok.pos)
        if typ is TokenType.VARIABLE:
            return VariableNode(tok.pos, [tok.val], self.lookup_var(tok.val))
        if typ is TokenType.FIELD:
            return FieldNode(tok.pos, [tok.val[1:]])
        if typ is TokenType.BOOL:
            return BoolNode(tok.pos, tok.val == "true")
        if typ in (TokenType.CHAR_CONSTANT, TokenType.COMPLEX, TokenType.NUMBER):
            try:
                value = parse_number(tok.val, typ is TokenType.CHAR_CONSTANT)
            except LiteralSyntaxError:
                raise self.errorf("invalid syntax") from None
            except TemplateError as exc:
                raise self.errorf(str(exc)) from None
            return NumberNode(tok.pos, tok.val, value)
        if typ is TokenType.LEFT_PAREN:
            if self.paren_depth >= _MAX_PAREN_DEPTH:
                raise self.errorf("max expression depth exceeded")
            self.paren_depth += 1
            self.nest()
            try:
                return self.pipeline("parenthesized pipeline", TokenType.RIGHT_PAREN)
            finally:
                self.paren_depth -= 1
                self.nesting -= 1
        if typ is TokenType.STRING or typ is TokenType.RAW_STRING:
            try:
                text = unquote(tok.val)
            except (LiteralSyntaxError, IndexError):
                raise self.errorf("invalid syntax") from None
            return StringNode(tok.pos, tok.val, text)
        self.backup()
        return None


_OPERAND_STARTS = frozenset(
    {
        TokenType.BOOL,
        TokenType.CHAR_CONSTANT,
        TokenType.COMPLEX,
        TokenType.DOT,
        TokenType.FIELD,
        TokenType.IDENTIFIER,
        TokenType.NUMBER,
        TokenType.NIL,
        TokenType.RAW_STRING,
        TokenType.STRING,
        TokenType.VARIABLE,
        TokenType.LEFT_PAREN,
    }
)


def parse_template(
    source: str, *, name: str, functions: frozenset[str], left: str = "<<", right: str = ">>"
) -> ParsedTemplate:
    """Parse `source`; raises TemplateError with Go's message for anything Go rejects."""
    return _Parser(name, source, left, right, functions).parse()
