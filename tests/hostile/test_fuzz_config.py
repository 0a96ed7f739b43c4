"""Fuzzed config files for the loader (`load_rules`: read, decode, compile), from a temp file.

Documents are built from the schema's keys, with wrong types, random templates, regexes and
strings, unknown and merge keys, tags, anchors and aliases, nesting, huge numbers and raw
bytes. Every file must be accepted, or refused with a ConfigError whose issues give the file,
a reason and (when known) a line inside the file; never another exception, never a hang (each
load runs under a SIGALRM time limit).

The hostile table below pins documents built to hurt (alias bombs, deep nesting); those the
loader does not yet survive are strict xfails naming the problem.
"""

import contextlib
import gc
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.config.errors import ConfigError
from adapter.naming.rules import load_rules

FUZZ_TIME_LIMIT = 2.0  # seconds per generated file; loads take milliseconds
HOSTILE_TIME_LIMIT = 1.0  # seconds per hostile document


# --- loading under a time limit ------------------------------------------------------------------


class LoadTimedOut(BaseException):
    """Raised by SIGALRM; a BaseException, so that no `except Exception` in the loader hides it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (main thread only, as pytest runs tests)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        # Raised inside a destructor or a GC callback, the exception is only reported as
        # unraisable and loading goes on: fire again until it lands in the loader's code.
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        raise LoadTimedOut(f"still loading after {seconds}s")

    # No garbage collection meanwhile: its callbacks (Hypothesis has one) would catch the
    # exception, as destructors do.
    collecting = gc.isenabled()
    gc.disable()
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if collecting:
            gc.enable()


@dataclass
class Outcomes:
    by_result: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # loading the generated files (not generating them)
    slowest: float = 0.0  # the slowest generated file

    def summary(self) -> str:
        counts = ", ".join(f"{result}: {n}" for result, n in sorted(self.by_result.items()))
        return (
            f"fuzzed configs: {sum(self.by_result.values())} cases; generated files loaded in "
            f"{self.seconds:.1f}s (slowest {self.slowest * 1000:.0f} ms); {counts}"
        )


OUTCOMES = Outcomes()


class _SummaryPlugin:
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if OUTCOMES.by_result:
            terminalreporter.write_sep("-", "hostile: fuzzed configs")
            terminalreporter.write_line(OUTCOMES.summary())


@pytest.fixture(scope="module", autouse=True)
def _summary(pytestconfig: pytest.Config) -> None:
    if not pytestconfig.pluginmanager.has_plugin("hostile-fuzz-config"):
        pytestconfig.pluginmanager.register(_SummaryPlugin(), "hostile-fuzz-config")


def check_config_error(error: ConfigError, path: Path, data: bytes) -> None:
    """A ConfigError names the file, and each issue gives a reason and a line in the file."""
    assert error.file == str(path)
    assert error.issues, "a ConfigError without issues"
    text = str(error)
    assert text.startswith(f"invalid config file {path} ")
    # libyaml also breaks lines at \r, NEL and the Unicode separators; count generously.
    max_line = data.count(b"\n") + data.count(b"\r") + data.count(b"\xc2\x85")
    max_line += data.count(b"\xe2\x80\xa8") + data.count(b"\xe2\x80\xa9") + 1
    for issue in error.issues:
        assert issue.reason.strip(), f"an issue without a reason: {issue}"
        assert issue.format(str(path)) in text
        if issue.line is not None:
            # libyaml puts the end of a file without a final line break on the next line.
            assert 1 <= issue.line <= max_line + 1, f"line {issue.line} outside the file: {issue}"
        if issue.path:
            assert issue.line is not None, f"an issue inside the document without a line: {issue}"


def load(path: Path, data: bytes, limit: float) -> str:
    """Write `data` to `path` and load it: "accepted" or "ConfigError"; anything else fails."""
    path.write_bytes(data)
    try:
        with time_limit(limit):
            load_rules(path)
    except ConfigError as error:
        check_config_error(error, path, data)
        return "ConfigError"
    except LoadTimedOut:
        raise AssertionError(f"loading took longer than {limit}s") from None
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped the loader: {exc}") from exc
    return "accepted"


# --- documents -----------------------------------------------------------------------------------


@dataclass
class Scalar:
    text: str
    plain: bool = False  # written as is; otherwise double-quoted


@dataclass
class Alias:
    anchor: str


@dataclass
class Collection:
    items: list[Any]  # nodes (a sequence) or (key, node) pairs (a mapping)
    mapping: bool
    anchor: str | None = None
    tag: str | None = None


Node = Scalar | Alias | Collection

RESOURCE_MAPPING: dict[str, Any] = {
    "template": "resource-template",
    "overrides": "overrides",
    "namespaced": "bool",
}
DISCOVERY_RULE: dict[str, Any] = {
    "seriesQuery": "series",
    "seriesFilters": ["list", {"is": "regex", "isNot": "regex"}],
    "resources": RESOURCE_MAPPING,
    "name": {"matches": "regex", "as": "replacement"},
    "metricsQuery": "template",
    "labelValueReplacements": ["list", {"find": "text", "replace": "text"}],
}
RESOURCE_RULE: dict[str, Any] = {
    "containerQuery": "template",
    "nodeQuery": "template",
    "resources": RESOURCE_MAPPING,
    "containerLabel": "label",
}
CONFIG: dict[str, Any] = {
    "rules": ["list", DISCOVERY_RULE],
    "externalRules": ["list", DISCOVERY_RULE],
    "resourceRules": {"cpu": RESOURCE_RULE, "memory": RESOURCE_RULE, "window": "duration"},
}
SCHEMA_KEYS = sorted(
    {"<<", "rules", "externalRules", "resourceRules", "group", "resource"}
    | set(DISCOVERY_RULE)
    | set(RESOURCE_MAPPING)
    | set(RESOURCE_RULE)
    | {"is", "isNot", "matches", "as", "find", "replace", "cpu", "memory", "window"}
)

TEMPLATE_PIECES = [
    "<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>", "<<.GroupBySlice>>",
    "<<.LabelValuesByName>>", "<<.Resource>>", "<<.Group>>", "<<", ">>", "{", "}", "(", ")",
    "sum(", ") by (", "[5m]", "rate(", "<<if .Series>>", "<<else>>", "<<end>>",
    "<<range .GroupBySlice>>", "<<with .Series>>", '<<define "x">>', '<<template "x">>',
    '<<block "b" .>>', "<<len .Series>>", '<<index .LabelValuesByName "pod">>',
    '<<printf "%d" 1>>', "<<$x := 1>>", "<<$x>>", "<<.Nope>>", "<<join>>", "<<- ", " -<<",
    "<</* c */>>", '"', "`", "|", "\\", '<<.Series | printf "%q">>', "<<call .Series>>",
    "<<nil>>", "<<break>>", "<<continue>>", "<<and 1 0>>", "<<(1)>>", "<<.>>", "\n", " ",
]  # fmt: skip
REGEX_PIECES = [
    "^", "$", "(", ")", "(?P<name>", "(?P<1>", "(?i)", "(?s)", "[", "]", "[^", "[[:alpha:]]",
    "[[:foo:]]", "\\pL", "\\p{Greek}", "\\C", "\\z", "\\Z", "\\b", "\\1", "(?=", "(?!", "*",
    "+", "?", "*?", "{2,3}", "{1000}", "{1001}", "{,}", ".", ".*", "|", "_total", "(.*)", "\\",
    "a", "\\Q", "\\E", "\\x{10FFFF}", "\\x{110000}", "(?P<é>", "é",
]  # fmt: skip
REPLACEMENT_PIECES = ["$0", "$1", "${1}", "$name", "${name}", "$$", "$", "${", "_per_second", "x"]
SERIES_QUERIES = [
    "up", '{__name__=~"a|b"}', 'http_requests_total{namespace!="",pod!=""}', "{", "}",
    'x{a="^b.*"}', '{__name__!="^container_.*"}', "", "sum(up)", "up[5m]", "a" * 300,
]  # fmt: skip
DURATIONS = [
    "1m", "30s", "0", "", "5m0s", "1h30m", "-1s", "1y", "1.5m", "9" * 30 + "s", "1ms", "1e3s",
    "1µs", "9223372036854775807ms", "1d1d", "1h1m1s1ms", "m",
]  # fmt: skip
WORDS = [
    "pod", "pods", "namespace", "node", "deployment", "deployments.apps", "", "Pod", "*", "a/b",
    "apps", "networking.k8s.io", "container", "POD", "x.y.z", "-", "kube_pod", "service",
]  # fmt: skip
# Scalars that YAML resolves to other types, or that read as syntax.
JUNK = [
    "true", "false", "yes", "no", "on", "off", "y", "n", "~", "null", "Null", "NULL", "0", "-0",
    "0x1F", "0o17", "017", "1_000", "1e400", "-1e400", ".inf", "-.inf", ".nan", "9" * 400,
    "-" + "9" * 40, "0." + "0" * 40 + "1", "2001-12-14t21:59:43.10-05:00", "2002-12-14",
    "=", "<<", "*", "&", "!", "|", ">", "%", "@", "`", "#", "? x", "- x", ": x", "'", "\\",
]  # fmt: skip
TAGS = [
    "!!str", "!!int", "!!bool", "!!null", "!!float", "!!binary", "!!set", "!!omap", "!!seq",
    "!!map", "!!timestamp", "!custom", "!", "!!python/object:os.system", "!<tag:yaml.org,2002:str>",
]  # fmt: skip

_PLAIN_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./$<>")
# UTF-8 has no surrogates: every drawn string can be written to the file.
_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
MAX_ALIASES = 6  # with merges, alias expansion grows like 2**aliases: bounded here on purpose
MAX_DEPTH = 12


class DocumentBuilder:
    """Draws one document, in text order, so that an alias only names an anchor whose node
    is already complete (a node that contains an alias to itself is a hostile case below)."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw
        self.complete_anchors: list[str] = []
        self.anchor_count = 0
        self.alias_count = 0

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self._draw(strategy)

    def chance(self, p: float) -> bool:
        # Hypothesis favours (and shrinks towards) 0: let it stand for the likelier outcome.
        value: int = self.draw(st.integers(0, 999))
        return value < p * 1000 if p >= 0.5 else value >= 1000 - p * 1000

    def pieces(self, pieces: list[str], max_size: int = 8) -> str:
        return "".join(self.draw(st.lists(st.sampled_from(pieces), max_size=max_size)))

    def scalar(self, kind: str) -> Scalar:
        choice = self.draw(st.integers(0, 9))
        if choice == 9:
            return Scalar(self.draw(st.sampled_from(JUNK)), plain=self.chance(0.7))
        if choice == 8:
            text = self.draw(_TEXT)
            return Scalar(text, plain=bool(text) and set(text) <= _PLAIN_SAFE)
        text = self.text_for(kind)
        return Scalar(text, plain=bool(text) and set(text) <= _PLAIN_SAFE and self.chance(0.5))

    def text_for(self, kind: str) -> str:
        """A string for a schema field of `kind`: mostly plausible, often broken."""
        if kind in ("template", "resource-template"):
            return self.pieces(TEMPLATE_PIECES, 8 if kind == "template" else 3)
        if kind == "regex":
            return self.pieces(REGEX_PIECES)
        if kind == "replacement":
            return self.pieces(REPLACEMENT_PIECES, 4)
        pool = {
            "series": SERIES_QUERIES,
            "duration": DURATIONS,
            "bool": ["true", "false", "True", "no", "on"],
            "label": WORDS,
            "text": WORDS,
        }.get(kind)
        return str(self.draw(st.sampled_from(pool) if pool else _TEXT))

    def node(self, spec: Any, depth: int = 0) -> Node:
        """A node for schema position `spec`, of the wrong shape now and then."""
        if self.complete_anchors and self.alias_count < MAX_ALIASES and self.chance(0.08):
            self.alias_count += 1
            return Alias(self.draw(st.sampled_from(self.complete_anchors)))
        if depth >= MAX_DEPTH or (isinstance(spec, str) and not self.chance(0.1)):
            return self.scalar(spec if isinstance(spec, str) else "text")
        wrong = self.chance(0.12)
        anchor = None
        if self.chance(0.15):
            self.anchor_count += 1
            anchor = f"a{self.anchor_count}"
        tag = self.draw(st.sampled_from(TAGS)) if self.chance(0.04) else None
        if wrong or not isinstance(spec, (dict, list)):
            collection = self.random_collection(depth)
        elif isinstance(spec, list):
            items = [self.node(spec[1], depth + 1) for _ in range(self.draw(st.integers(0, 3)))]
            collection = Collection(items, mapping=False)
        else:
            collection = self.mapping(spec, depth)
        collection.anchor, collection.tag = anchor, tag
        if anchor is not None:
            self.complete_anchors.append(anchor)
        return collection

    def mapping(self, spec: dict[str, Any], depth: int) -> Collection:
        items: list[tuple[Scalar, Node]] = []
        keys = list(spec)
        # The order is drawn before the values: an alias must follow its anchor in the text.
        for key in self.draw(st.permutations(keys)) if len(keys) > 1 else keys:
            child = spec[key]
            if not self.chance(0.6):
                continue
            if child == "overrides":
                overrides = [
                    (self.scalar("label"), self.node({"group": "text", "resource": "text"}, depth))
                    for _ in range(self.draw(st.integers(0, 2)))
                ]
                items.append((Scalar(key, plain=True), Collection(overrides, mapping=True)))
            else:
                items.append((Scalar(key, plain=True), self.node(child, depth + 1)))
        if self.chance(0.1):  # an unknown key, maybe a near miss of a known one
            items.append((self.scalar("text"), self.node("text", depth + 1)))
        if self.chance(0.06):
            items.append(
                (
                    Scalar(self.draw(st.sampled_from(SCHEMA_KEYS)), plain=True),
                    self.node("text", depth + 1),
                )
            )
        if self.complete_anchors and self.alias_count < MAX_ALIASES and self.chance(0.1):
            self.alias_count += 1
            items.append(
                (Scalar("<<", plain=True), Alias(self.draw(st.sampled_from(self.complete_anchors))))
            )
        return Collection(items, mapping=True)

    def random_collection(self, depth: int) -> Collection:
        if self.chance(0.5):
            items = [self.node("any", depth + 1) for _ in range(self.draw(st.integers(0, 3)))]
            return Collection(items, mapping=False)
        pairs = [
            (
                Scalar(self.draw(st.sampled_from(SCHEMA_KEYS)), plain=True),
                self.node("any", depth + 1),
            )
            for _ in range(self.draw(st.integers(0, 3)))
        ]
        return Collection(pairs, mapping=True)

    def document(self) -> Node:
        if self.chance(0.9):
            return self.node(CONFIG)
        return self.node("any")


# YAML's printable characters (c-printable), less the line breaks NEL, LS and PS, which a
# quoted scalar would fold; the rest is written as an escape.
def _printable(char: str) -> bool:
    code = ord(char)
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code not in (0xFEFF,))
        or code >= 0x10000
    ) and code not in (0x2028, 0x2029)


def yaml_quote(text: str) -> str:
    """`text` as a YAML double-quoted scalar (JSON's quoting writes astral characters as
    surrogate pairs, which YAML refuses)."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif _printable(char):
            out.append(char)
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def _props(node: Collection) -> str:
    return " ".join(p for p in (f"&{node.anchor}" if node.anchor else "", node.tag or "") if p)


def flow(node: Node) -> str:
    """Flow style: `{a: [b, "c"]}`."""
    if isinstance(node, Scalar):
        return node.text if node.plain else yaml_quote(node.text)
    if isinstance(node, Alias):
        return f"*{node.anchor} "  # the space keeps a following `,`/`}` out of the alias name
    if node.mapping:
        body = "{" + ", ".join(f"{flow(k)}: {flow(v)}" for k, v in node.items) + "}"
    else:
        body = "[" + ", ".join(flow(item) for item in node.items) + "]"
    props = _props(node)
    return f"{props} {body}" if props else body


def block(node: Node, indent: int = 0) -> list[str]:
    """Block style; collections below the top go on their own lines."""
    pad = " " * indent
    if not isinstance(node, Collection) or not node.items:
        return [pad + flow(node)]
    lines = []
    if indent == 0 and _props(node):
        lines.append(_props(node))  # top-level properties on their own line
    for item in node.items:
        key, value = item if node.mapping else (None, item)
        lead = f"{pad}{flow(key)}:" if key is not None else f"{pad}-"
        if isinstance(value, Collection) and value.items:
            props = _props(value)
            lines.append(f"{lead} {props}" if props else lead)
            lines.extend(block(Collection(value.items, value.mapping), indent + 2))
        else:
            lines.append(f"{lead} {flow(value)}")
    return lines


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    root = DocumentBuilder(draw).document()
    text = flow(root) if draw(st.booleans()) else "\n".join(block(root))
    if draw(st.integers(0, 19)) == 19:  # nesting beyond the schema's
        depth = draw(st.integers(1, 60))
        text = f"rules: {'[' * depth}{text if text.startswith(('{', '[')) else '{}'}{']' * depth}"
    raw = (text + "\n").encode("utf-8")
    # 0 (no mutation) is the value Hypothesis favours.
    mutation = draw(st.integers(0, 23))
    if mutation == 20:  # bytes that are not UTF-8, or control characters
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=6)) + raw[at:]
    elif mutation == 21:  # cut short
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif mutation == 22:  # byte-order marks and other encodings
        prefix = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]))
        raw = prefix + raw if draw(st.booleans()) else text.encode("utf-16")
    elif mutation == 23:  # later documents, which are not read
        raw += b"---\n" + draw(st.binary(max_size=20)) + b"\n"
    return raw


# --- the tests -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-config") / "config.yaml"


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=config_files())
def test_fuzzed_config_is_accepted_or_refused_with_reasons(config_path: Path, data: bytes) -> None:
    start = time.perf_counter()
    try:
        OUTCOMES.by_result[load(config_path, data, FUZZ_TIME_LIMIT)] += 1
    finally:
        elapsed = time.perf_counter() - start
        OUTCOMES.seconds += elapsed
        OUTCOMES.slowest = max(OUTCOMES.slowest, elapsed)


RULE = "{seriesQuery: up, metricsQuery: up, resources: {template: '<<.Resource>>'}}"


def _merge_bomb(levels: int, width: int) -> str:
    """Each rule merges the one before it `width` times: width**levels merges to decode."""
    lines = ["rules:", f"- &r0 {RULE}"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*r{level - 1}"] * width)
        lines.append(f"- &r{level} {{<<: [{refs}]}}")
    return "\n".join(lines) + "\n"


def _alias_list_bomb(width: int) -> str:
    """`width` aliases of a rule holding `width` filters: width**2 regexes to compile."""
    filters = ", ".join(["{is: 'a.*'}"] * width)
    rule = f"- &r {{seriesQuery: up, seriesFilters: [{filters}], metricsQuery: up, resources: {{template: '<<.Resource>>'}}}}"
    return "\n".join(["rules:", rule, *(["- *r"] * width)]) + "\n"


def _laughs_under_unknown_keys(levels: int) -> str:
    """The classic billion laughs, under keys the schema does not have (never decoded)."""
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"lol{level}: &lol{level} [{', '.join([f'*lol{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


def _deep_template(depth: int) -> str:
    query = "<<if .Series>>" * depth + "x" + "<<end>>" * depth
    return f"rules: [{{seriesQuery: up, metricsQuery: '{query}', resources: {{template: '<<.Resource>>'}}}}]\n"


def known(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


HOSTILE = [
    pytest.param(_laughs_under_unknown_keys(9).encode(), id="billion-laughs-under-unknown-keys"),
    pytest.param(_merge_bomb(9, 10).encode(), id="merge-key-bomb"),
    pytest.param(_alias_list_bomb(1000).encode(), id="alias-list-bomb"),
    pytest.param(b"rules: [&a {seriesQuery: up, <<: *a}]\n", id="merge-of-itself"),
    pytest.param(b"rules: " + b"[" * 600 + b"]" * 600 + b"\n", id="flow-nesting-600"),
    pytest.param(b"rules: " + b"[" * 1000 + b"]" * 1000 + b"\n", id="flow-nesting-1000"),
    pytest.param(b"rules:\n" + b"".join(b" " * i + b"-\n" for i in range(1000)), id="block-nesting-1000"),
    pytest.param(b"rules: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", id="flow-nesting-100000"),
    pytest.param(_deep_template(1000).encode(), id="template-nesting-1000"),
    pytest.param(b"externalRules: [{seriesQuery: up, metricsQuery: up, resources: {namespaced: !!bool maybe}}]\n", id="bool-tag-on-non-bool"),
    pytest.param(("rules: [{seriesQuery: '" + "a" * 100_000 + "', metricsQuery: up}]\n").encode(), id="long-series-query"),
    pytest.param(b"rules:\n- seriesQuery: '\xff\xfe\x80'\n", id="not-utf-8"),
    pytest.param("rules: []\n".encode("utf-16"), id="utf-16"),
    pytest.param(b"rules: [\x00]\n", id="nul"),
    pytest.param(b"resourceRules: {window: " + b"9" * 5000 + b"}\n", id="huge-number"),
    pytest.param(b"resourceRules: {window: 9223372036854775807s}\n", id="duration-overflow"),
    pytest.param(b"rules: !!python/object/apply:os.system [echo pwned]\n", id="python-tag"),
]  # fmt: skip


@pytest.mark.parametrize("data", HOSTILE)
def test_hostile_config_is_accepted_or_refused_in_time(config_path: Path, data: bytes) -> None:
    OUTCOMES.by_result["hostile " + load(config_path, data, HOSTILE_TIME_LIMIT)] += 1
