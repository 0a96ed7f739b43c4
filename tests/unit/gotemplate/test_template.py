"""Go text/template (`<<` `>>` delimiters) as prometheus-adapter uses it.

Expected outputs are what Go's text/template writes; where the dev-only `gotpl` oracle
disagrees with Go's source, Go's behaviour is asserted (see GOTPL_DIFFERS_FROM_GO).
"""

from collections.abc import Mapping

import pytest

from adapter.gotemplate import exec as go_template_exec
from adapter.gotemplate.fmt import sprintf
from adapter.gotemplate.parse import MAX_NESTING
from adapter.gotemplate.template import (
    FieldKind,
    GoTemplate,
    TemplateError,
    TemplateExecError,
    compile_template,
)

QUERY_FIELDS = {
    "Series": FieldKind.STRING,
    "LabelMatchers": FieldKind.STRING,
    "LabelValuesByName": FieldKind.STRING_MAP,
    "GroupBy": FieldKind.STRING,
    "GroupBySlice": FieldKind.STRING_LIST,
}
RESOURCE_FIELDS = {"Group": FieldKind.STRING, "Resource": FieldKind.STRING}

DATA: dict[str, object] = {
    "Series": "foo",
    "LabelMatchers": 'namespace="default",pod=~"a|b"',
    "LabelValuesByName": {"namespaces": "default", "resource": "bar|baz"},
    "GroupBy": "pod",
    "GroupBySlice": ["resource", "extra", "groups"],
}


def render(source: str, data: Mapping[str, object] | None = None) -> str:
    return compile_template(source, QUERY_FIELDS, name="metrics-query").render(
        DATA if data is None else data
    )


# ---------------------------------------------------------------------------------------
# Upstream vectors (prometheus-adapter pkg/naming/metrics_query_test.go)


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        pytest.param("series <<.Series>>", {"Series": "foo"}, "series foo", id="series"),
        pytest.param(
            "<<.GroupBySlice>>",
            {"Series": "foo", "GroupBySlice": ["resource"]},
            "[resource]",
            id="group-by-slice-one",
        ),
        pytest.param(
            "<<.GroupBySlice>>",
            {"Series": "foo", "GroupBySlice": ["resource", "extra", "groups"]},
            "[resource extra groups]",
            id="group-by-slice-many",
        ),
        pytest.param(
            '<<index .LabelValuesByName "namespaces">> <<index .LabelValuesByName "resource">>',
            {
                "Series": "foo",
                "LabelValuesByName": {"namespaces": "default", "resource": "bar|baz"},
            },
            "default bar|baz",
            id="index-label-values",
        ),
        pytest.param(
            '<<index .LabelValuesByName "namespaces">> <<.GroupBySlice>>',
            {"Series": "foo", "LabelValuesByName": {}, "GroupBySlice": ["foo", "bar"]},
            " [foo bar]",
            id="index-missing-key-is-empty",
        ),
        pytest.param(
            "<<.LabelValuesByName>>",
            {"Series": "foo", "LabelValuesByName": {"foo": "bar"}},
            "map[foo:bar]",
            id="map-one",
        ),
        pytest.param(
            "<<.LabelValuesByName>>",
            {"Series": "foo", "LabelValuesByName": {"foo": "bar|baz"}},
            "map[foo:bar|baz]",
            id="map-regex-value",
        ),
        pytest.param(
            "<<.LabelValuesByName>>",
            {"Series": "foo", "LabelValuesByName": {}},
            "map[]",
            id="map-empty",
        ),
    ],
)
def test_upstream_vectors(source: str, data: Mapping[str, object], expected: str) -> None:
    assert render(source, data) == expected


# ---------------------------------------------------------------------------------------
# Real configuration forms


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            'sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[2m])) by (<<.GroupBy>>)',
            'sum(rate(foo{namespace="default",pod=~"a|b",container!="POD"}[2m])) by (pod)',
            id="default-container-query",
        ),
        pytest.param(
            "sum by (<<.GroupBy>>) (irate (<<.Series>>{<<.LabelMatchers>>}[1m]))",
            'sum by (pod) (irate (foo{namespace="default",pod=~"a|b"}[1m]))',
            id="irate-by-first",
        ),
        pytest.param(
            "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<- range $i, $v := .GroupBySlice >>"
            "<<if $i>>,<<end>><<$v>><<- end>>)",
            'sum(foo{namespace="default",pod=~"a|b"}) by (resource,extra,groups)',
            id="join-group-by-slice",
        ),
        pytest.param(
            # A YAML `|` block: the text keeps its newlines, trimmed where marked.
            "sum(\n  rate(<<.Series>>{<<.LabelMatchers>>}[5m])\n)\nby (\n"
            "  <<- range $i, $v := .GroupBySlice >>\n"
            "  <<- if $i >>, <<end>><<$v>>\n"
            "  <<- end >>\n)\n",
            'sum(\n  rate(foo{namespace="default",pod=~"a|b"}[5m])\n)\n'
            "by (resource, extra, groups\n)\n",
            id="multi-line-block",
        ),
        pytest.param(
            '<<.Series>>{<<.LabelMatchers>>,namespace=~"<<index .LabelValuesByName'
            ' "namespaces">>"}',
            'foo{namespace="default",pod=~"a|b",namespace=~"default"}',
            id="label-values-in-selector",
        ),
    ],
)
def test_config_forms(source: str, expected: str) -> None:
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "data", "expected"),
    [
        pytest.param("kube_<<.Resource>>", {"Group": "", "Resource": "pod"}, "kube_pod", id="kube"),
        pytest.param(
            "<<.Group>>_<<.Resource>>",
            {"Group": "apps", "Resource": "deployment"},
            "apps_deployment",
            id="group-resource",
        ),
        pytest.param(
            "<<.Group>>_<<.Resource>>",
            {"Group": "(?P<group>.+?)", "Resource": "(?P<resource>.+?)"},
            "(?P<group>.+?)_(?P<resource>.+?)",
            id="regex-extractor",
        ),
        pytest.param("<<.>>", {"Group": "g", "Resource": "r"}, "{g r}", id="struct"),
        pytest.param("<<printf `%T` .>>", {}, "schema.GroupResource", id="struct-type"),
    ],
)
def test_resource_label_templates(source: str, data: Mapping[str, object], expected: str) -> None:
    template = compile_template(source, RESOURCE_FIELDS, name="resource-label")
    assert template.render(data) == expected


# ---------------------------------------------------------------------------------------
# Syntax: trim markers, comments, literals


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("a  <<- .Series ->>  b", "afoob", id="trim-both"),
        pytest.param("a \t\n <<- .Series ->> \n\t b", "afoob", id="trim-newlines-tabs"),
        pytest.param("a\n<<- .Series>>\nb", "afoo\nb", id="trim-left-only"),
        pytest.param("a\n<<.Series ->>\n\nb", "a\nfoob", id="trim-right-only"),
        pytest.param("x<<-\t.Series\t->>y", "xfooy", id="trim-marker-tab"),
        pytest.param("x<<-\n.Series\n->>y", "xfooy", id="trim-marker-newline"),
        pytest.param("a <<-3>> b", "a -3 b", id="minus-three-is-a-number"),
        pytest.param("a <<- 3>> b", "a3 b", id="trim-then-three"),
        pytest.param("a <<- -3 ->> b", "a-3b", id="trim-negative"),
        pytest.param("a <</* comment */>> b", "a  b", id="comment"),
        pytest.param("a <<- /* comment */ ->> b", "ab", id="comment-trimmed"),
        pytest.param("a\n\n<<- /* multi\nline */ ->>\n\nb", "ab", id="comment-multi-line"),
        pytest.param("<<`raw \\n <<`>>", "raw \\n <<", id="raw-string"),
        pytest.param("<<`a\r\nb`>>", "a\nb", id="raw-string-drops-cr"),
        pytest.param('<<"\\x41\\u00e9\\t\\\\\\"">>', 'Aé\t\\"', id="string-escapes"),
        pytest.param("<<'a'>> <<'\\n'>> <<'é'>>", "97 10 233", id="char-constants"),
        pytest.param(
            "<<0x1F>> <<0o17>> <<017>> <<0b101>> <<1_000>> <<-0>> <<+5>>",
            "31 15 15 5 1000 0 5",
            id="integers",
        ),
        pytest.param(
            "<<1e6>> <<0.5>> <<3.0>> <<.5>> <<1.5e3>> <<0x1p4>> <<1e-5>> <<123456789.0>>",
            "1e+06 0.5 3 0.5 1500 16 1e-05 1.23456789e+08",
            id="floats",
        ),
        pytest.param("<<true>> <<false>>", "true false", id="bools"),
        pytest.param("<< .Series >>|<<  .Series   >>", "foo|foo", id="spaces-in-action"),
        pytest.param("<<(.Series)>> <<((.GroupBy))>>", "foo pod", id="parentheses"),
        pytest.param("", "", id="empty-template"),
    ],
)
def test_syntax(source: str, expected: str) -> None:
    assert render(source) == expected


# ---------------------------------------------------------------------------------------
# Control flow


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("<<if .Series>>yes<<else>>no<<end>>", "yes", id="if-true"),
        pytest.param("<<if .LabelValuesByName.x>>yes<<else>>no<<end>>", "no", id="if-no-value"),
        pytest.param(
            '<<if eq .Series "x">>x<<else if eq .Series "foo">>foo<<else>>other<<end>>',
            "foo",
            id="else-if",
        ),
        pytest.param(
            '<<if eq .Series "x">>x<<else if eq .Series "y">>y<<else>>other<<end>>',
            "other",
            id="else-if-falls-through",
        ),
        pytest.param("<<with .GroupBy>>[<<.>>]<<end>>", "[pod]", id="with-sets-dot"),
        pytest.param(
            "<<with .LabelValuesByName.x>>has<<else with .Series>>s=<<.>><<end>>",
            "s=foo",
            id="else-with",
        ),
        pytest.param("<<with .LabelValuesByName.x>>a<<else>>b<<end>>", "b", id="with-else"),
        pytest.param(
            "<<range .GroupBySlice>>[<<.>>]<<end>>", "[resource][extra][groups]", id="range"
        ),
        pytest.param(
            "<<range $i, $e := .GroupBySlice>><<$i>>:<<$e>> <<end>>",
            "0:resource 1:extra 2:groups ",
            id="range-index-element",
        ),
        pytest.param(
            "<<range $k, $v := .LabelValuesByName>><<$k>>=<<$v>>;<<end>>",
            "namespaces=default;resource=bar|baz;",
            id="range-map-sorted",
        ),
        pytest.param(
            "<<range .LabelValuesByName>><<.>>;<<end>>", "default;bar|baz;", id="range-map-values"
        ),
        pytest.param(
            "<<range .LabelValuesByName.x>>x<<else>>none<<end>>", "none", id="range-no-value"
        ),
        pytest.param(
            '<<range .GroupBySlice>><<if eq . "extra">><<break>><<end>><<.>>,<<end>>',
            "resource,",
            id="break",
        ),
        pytest.param(
            "<<range $i, $e := .GroupBySlice>><<if eq $i 1>><<continue>><<end>><<$e>>,<<end>>",
            "resource,groups,",
            id="continue",
        ),
        pytest.param(
            "<<range $a := .GroupBySlice>><<range $.GroupBySlice>><<if eq . $a>><<break>><<end>>"
            "<<.>> <<end>>;<<end>>",
            ";resource ;resource extra ;",
            id="nested-range-break",
        ),
        pytest.param("<<range 3>><<.>><<end>>", "012", id="range-int"),
        pytest.param(
            "<<range .GroupBySlice>><<$.Series>>.<<.>> <<end>>",
            "foo.resource foo.extra foo.groups ",
            id="dollar-in-range",
        ),
    ],
)
def test_control_flow(source: str, expected: str) -> None:
    assert render(source) == expected


def test_range_else_when_empty() -> None:
    source = "<<range .GroupBySlice>>x<<else>>empty<<end>>"
    assert render(source, {"GroupBySlice": []}) == "empty"


def test_range_variable_in_else_holds_the_collection() -> None:
    # exec.go walkRange: evalPipeline pushes the declared variables with the collection's
    # value before iterating, so the else branch sees it (gotpl prints <no value>).
    source = "<<range $v := .LabelValuesByName>><<else>><<$v>><<end>>"
    assert render(source, {"LabelValuesByName": {}}) == "map[]"


# ---------------------------------------------------------------------------------------
# Variables


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("<<$x := .Series>><<$x>>", "foo", id="declare"),
        pytest.param("<<$x := 1>><<$x = 2>><<$x>>", "2", id="assign"),
        pytest.param("<<$x := 1>><<if true>><<$x = 2>><<end>><<$x>>", "2", id="assign-outer"),
        pytest.param(
            "<<$x := 1>><<if true>><<$x := 2>><<$x>><<end>><<$x>>", "21", id="shadow-in-if"
        ),
        pytest.param(
            '<<$x := "a">><<range .GroupBySlice>><<$x = .>><<end>><<$x>>',
            "groups",
            id="assign-in-range",
        ),
        pytest.param("<<$x := 1>><<$x := $x>><<$x>>", "1", id="redeclare-from-outer"),
        pytest.param("<<with $x := .GroupBy>><<$x>>=<<.>><<end>>", "pod=pod", id="with-declare"),
        pytest.param(
            "<<$>>",
            '{foo namespace="default",pod=~"a|b" map[namespaces:default resource:bar|baz] pod [resource extra groups]}',
            id="dollar-is-root",
        ),
        pytest.param("<<$.LabelValuesByName.resource>>", "bar|baz", id="dollar-fields"),
    ],
)
def test_variables(source: str, expected: str) -> None:
    assert render(source) == expected


# ---------------------------------------------------------------------------------------
# Builtins and printing


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param('<<and 1 0 2>> <<or 0 "" 3>>', "0 3", id="and-or-return-deciding"),
        pytest.param('<<and 1 2 3>> <<or 0 "">>', "3 ", id="and-or-return-last"),
        pytest.param(
            "<<or .LabelValuesByName.x .GroupBy>> <<and .LabelValuesByName.x 1>>",
            "pod <no value>",
            id="and-or-no-value",
        ),
        pytest.param('<<"x" | and 1>> <<0 | or "">>', "x 0", id="and-or-piped"),
        pytest.param("<<and 0 (index .GroupBySlice 99)>>", "0", id="and-short-circuits"),
        pytest.param(
            '<<not 0>> <<not "a">> <<not .LabelValuesByName.x>>', "true false true", id="not"
        ),
        pytest.param('<<eq .Series "bar" "foo">> <<eq 1 2 3>>', "true false", id="eq-many"),
        pytest.param(
            '<<ne 1 2>> <<lt 1 2>> <<le 2 2>> <<gt 1.5 1.2>> <<ge "b" "a">>',
            "true true true true true",
            id="comparisons",
        ),
        pytest.param('<<eq .LabelValuesByName.x "x">>', "false", id="eq-no-value"),
        pytest.param("<<eq (index .Series 0) 'f'>>", "true", id="eq-byte-and-int"),
        pytest.param(
            '<<len .GroupBySlice>> <<len .LabelValuesByName>> <<len "héllo">>',
            "3 2 6",
            id="len-counts-bytes",
        ),
        pytest.param(
            '<<index .GroupBySlice 1>> <<index "abc" 1>> <<index .LabelValuesByName "x">>|',
            "extra 98 |",
            id="index",
        ),
        pytest.param(
            '<<slice .GroupBySlice 1>> <<slice "hello" 1 3>> <<slice .GroupBySlice 0 1 2>>',
            "[extra groups] el [resource]",
            id="slice",
        ),
        pytest.param("<<.LabelValuesByName.x>>", "<no value>", id="missing-key-no-value"),
        pytest.param('<<print 1 2 "a" 3 4 "b" "c">>', "1 2a3 4bc", id="print-spacing"),
        pytest.param(
            "<<print nil .LabelValuesByName.x 1.5 true .GroupBySlice>>",
            "<nil> <nil> 1.5 true [resource extra groups]",
            id="print-values",
        ),
        pytest.param('<<println .Series 1 "a">>', "foo 1 a\n", id="println"),
        pytest.param('<<printf "%q" "a\\"b\\\\c">>', '"a\\"b\\\\c"', id="printf-q-escapes"),
        pytest.param(
            '<<printf "%s=~%q" "ns" (index .LabelValuesByName "resource")>>',
            'ns=~"bar|baz"',
            id="printf-label-matcher",
        ),
        pytest.param(
            '<<printf "%5s|%-5s|%.2s|%x|%X|% x|%#q|%+q" "ab" "ab" "héllo" "hé" "hé" "ab" "a" "é">>',
            '   ab|ab   |hé|68c3a9|68C3A9|61 62|`a`|"\\u00e9"',
            id="printf-strings",
        ),
        pytest.param(
            '<<printf "%d|%5d|%-5d|%05d|%+d|%x|%X|%o|%b|%#x|%c|%q|%U|%#U|%.3d|%.0d"'
            " 42 42 42 -42 42 255 255 8 5 255 9731 65 65 65 7 0>>",
            "42|   42|42   |-0042|+42|ff|FF|10|101|0xff|☃|'A'|U+0041|U+0041 'A'|007|",
            id="printf-integers",
        ),
        pytest.param(
            '<<printf "%v|%g|%e|%f|%.2f|%8.3f|%08.2f|%.3g|%#g|%G" 1e6 1e-7 123.456'
            " 2.5 3.14159 3.14159 -3.5 3.14159 1.0 1e21>>",
            "1e+06|1e-07|1.234560e+02|2.500000|3.14|   3.142|-0003.50|3.14|1.00000|1E+21",
            id="printf-floats",
        ),
        pytest.param('<<printf "%t %v" true false>>', "true false", id="printf-bools"),
        pytest.param(
            '<<printf "%s|%q|%5v" .GroupBySlice .GroupBySlice .GroupBySlice>>',
            '[resource extra groups]|["resource" "extra" "groups"]|[resource extra groups]',
            id="printf-slices-elementwise",
        ),
        pytest.param(
            '<<printf "%v" .LabelValuesByName>>',
            "map[namespaces:default resource:bar|baz]",
            id="printf-map",
        ),
        pytest.param(
            '<<printf "%T %T %T %T %T" . .GroupBySlice .LabelValuesByName 1.5 nil>>',
            "naming.queryTemplateArgs []string map[string]string float64 <nil>",
            id="printf-types",
        ),
        pytest.param(
            '<<printf "%d %s" 1>>|<<printf "%d" 1 2>>|<<printf "%z" "a">>|<<printf "100%%">>',
            "1 %!s(MISSING)|1%!(EXTRA int=2)|%!z(string=a)|100%",
            id="printf-errors-inline",
        ),
        pytest.param(
            '<<printf "%[2]d %[1]d" 11 22>> <<printf "%*d|%.*f" 4 7 1 2.55>>',
            "22 11    7|2.5",
            id="printf-indexes-and-stars",
        ),
        pytest.param('<<.Series | printf "%s!">>', "foo!", id="pipe-final-argument"),
        pytest.param('<<.GroupBySlice | len | printf "%03d">>', "003", id="pipe-chain"),
        pytest.param(
            '<<html "<a href=\'x\'>&">> <<js "<a=\'x\'>">> <<urlquery "a b&c/d~é">>',
            "&lt;a href=&#39;x&#39;&gt;&amp; \\u003Ca\\u003D\\'x\\'\\u003E a+b%26c%2Fd~%C3%A9",
            id="escapers",
        ),
        pytest.param("<<html .LabelValuesByName.x>>", "&lt;no value&gt;", id="html-no-value"),
    ],
)
def test_builtins(source: str, expected: str) -> None:
    assert render(source) == expected


def test_struct_prints_fields_in_order_with_zero_values() -> None:
    assert render("<<.>>", {"Series": "foo"}) == "{foo  map[]  []}"
    assert render('<<printf "%+v" .>>', {"Series": "foo", "GroupBySlice": ("a",)}) == (
        "{Series:foo LabelMatchers: LabelValuesByName:map[] GroupBy: GroupBySlice:[a]}"
    )


def test_missing_fields_read_as_zero_values() -> None:
    source = "[<<.Series>>][<<.GroupBySlice>>][<<.LabelValuesByName>>][<<len .GroupBySlice>>]"
    assert render(source, {}) == "[][[]][map[]][0]"


# ---------------------------------------------------------------------------------------
# Named templates: define, template, block


def test_template_calls_a_definition_with_dot_and_dollar_set_to_the_pipeline() -> None:
    source = (
        '<<define "d">><<.>>|<<$>>|<<$.resource>><<end>>'
        '<<template "d" .LabelValuesByName>>;<<template "d" .Series>>'
    )
    with pytest.raises(TemplateExecError, match="can't evaluate field resource in type string"):
        render(source)
    assert render(source.replace("|<<$.resource>>", "")) == (
        "map[namespaces:default resource:bar|baz]|map[namespaces:default resource:bar|baz];foo|foo"
    )


def test_template_without_pipeline_has_no_value() -> None:
    # walkTemplate: evalPipeline of a nil pipeline is the zero (invalid) reflect.Value.
    assert render('<<define "x">>[<<.>>|<<.A.B>>|<<$>>]<<end>><<template "x">>') == (
        "[<no value>|<no value>|<no value>]"
    )


def test_called_template_sees_no_variables_of_the_caller() -> None:
    # "No dynamic scoping": a definition's own $x, not the caller's.
    source = '<<$x := "outer">><<define "d">><<$x := .>><<$x>><<end>><<template "d" "inner">><<$x>>'
    assert render(source) == "innerouter"


def test_variables_declared_by_a_template_pipeline_persist() -> None:
    # Go's multi_test.go "variable declared by template".
    source = '<<define "x">><<.>><<end>><<template "x" $v := .GroupBySlice>>,<<index $v 1>>'
    assert render(source) == "[resource extra groups],extra"


def test_recursion_with_a_base_case() -> None:
    source = (
        '<<define "join">><<index . 0>><<if gt (len .) 1>>,<<template "join" (slice . 1)>>'
        '<<end>><<end>>sum by (<<template "join" .GroupBySlice>>) (<<.Series>>)'
    )
    assert render(source) == "sum by (resource,extra,groups) (foo)"
    assert render(source, {"Series": "x", "GroupBySlice": ["pod"]}) == "sum by (pod) (x)"


def test_block_defines_and_executes() -> None:
    assert render('a(<<block "inner" .Series>>bar(<<.>>)baz<<end>>)b') == "a(bar(foo)baz)b"
    assert render('<<block "b" .GroupBy>><<.>><<end>>|<<template "b" "again">>') == "pod|again"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # Tree.add: an empty (white space only) definition gives way to a later one...
        pytest.param(
            'a(<<block "inner" .Series>> \n <<end>>)<<define "inner">>foo<<.>><<end>>',
            "a(foofoo)",
            id="empty-block-then-define",
        ),
        pytest.param(
            '<<define "a">> <<end>><<define "a">>x<<end>><<template "a">>',
            "x",
            id="empty-then-define",
        ),
        # ... and an empty one does not replace a definition.
        pytest.param(
            '<<define "inner">>foo<<.>><<end>>a(<<block "inner" .GroupBy>><<end>>)',
            "a(foopod)",
            id="define-then-empty-block",
        ),
        pytest.param(
            '<<define "a">>x<<end>><<define "a">><</* only a comment */>><<end>><<template "a">>',
            "x",
            id="define-then-comment-only",
        ),
        pytest.param('<<define "e">><<end>>a<<template "e" .>>b', "ab", id="empty-definition"),
        # parse.Parse adds the top-level tree last: when only definitions surround it, a
        # definition of the template's own name is what Execute runs.
        pytest.param(
            '\n<<define "metrics-query">>sum(<<.Series>>)<<end>>\n', "sum(foo)", id="define-self"
        ),
        pytest.param(
            '<<define "metrics-query">>a<<if .>><<template "metrics-query" false>><<end>><<end>>',
            "aa",
            id="define-self-recursive",
        ),
        pytest.param(
            '<<template "late" .Series>><<define "late">>late <<.>><<end>>',
            "late foo",
            id="defined-after-use",
        ),
    ],
)
def test_definitions_in_one_source(source: str, expected: str) -> None:
    assert render(source) == expected


def test_template_not_defined_fails_only_when_reached() -> None:
    template = compile_template('<<if .Series>><<template "nope" .>><<end>>ok', QUERY_FIELDS)
    assert template.render({}) == "ok"
    with pytest.raises(TemplateExecError) as info:
        template.render({"Series": "x"})
    assert str(info.value) == (
        'template: template:1:25: executing "template" at <{{template "nope" .}}>:'
        ' template "nope" not defined'
    )


def test_maximum_template_depth() -> None:
    # exec_test.go TestMaxExecDepth: walkTemplate fails at maxExecDepth (100000) calls.
    template = compile_template('<<define "t">><<template "t" .>><<end>><<template "t" .>>', {})
    with pytest.raises(TemplateExecError) as info:
        template.render({})
    assert str(info.value) == (
        'template: template:1:25: executing "t" at <{{template "t" .}}>:'
        " exceeded maximum template depth (100000)"
    )


def test_depth_limit_counts_nested_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_template_exec, "MAX_EXEC_DEPTH", 3)
    # Recursing over a list of n calls the template n + 1 times, nested.
    template = compile_template(
        '<<define "r">><<if .>><<template "r" (slice . 1)>><<end>><<end>><<template "r" .A>>',
        {"A": FieldKind.STRING_LIST},
    )
    assert template.render({"A": ["x", "y"]}) == ""
    with pytest.raises(TemplateExecError, match=r"exceeded maximum template depth \(3\)$"):
        template.render({"A": ["x", "y", "z"]})


def test_depth_check_comes_before_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(go_template_exec, "MAX_EXEC_DEPTH", 1)
    template = compile_template(
        '<<define "a">><<template "b" (index .GroupBySlice 9)>><<end>><<define "b">><<end>>'
        '<<template "a" .>>',
        QUERY_FIELDS,
    )
    with pytest.raises(TemplateExecError, match="exceeded maximum template depth"):
        template.render(DATA)


def test_break_and_continue_around_template_calls() -> None:
    source = (
        '<<define "x">>[<<.>>]<<end>><<range $i, $e := .GroupBySlice>>'
        '<<if eq $i 1>><<continue>><<end>><<template "x" $e>><<if eq $i 2>><<break>><<end>>'
        "<<end>>"
    )
    assert render(source) == "[resource][groups]"
    assert render(source, {"GroupBySlice": []}) == ""


# ---------------------------------------------------------------------------------------
# Parse errors: what Go's parse.Parse rejects fails compile_template


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("<<.Series", "template: metrics-query:1: unclosed action", id="unclosed"),
        pytest.param(
            "a\n<<.Series\n\n",
            "template: metrics-query:4: unclosed action started at metrics-query:2",
            id="unclosed-multi-line",
        ),
        pytest.param("a\n<<end>>", "template: metrics-query:2: unexpected {{end}}", id="end"),
        pytest.param("<<else>>", "template: metrics-query:1: unexpected {{else}}", id="else"),
        pytest.param(
            "<<if .Series>>\nx\n", "template: metrics-query:3: unexpected EOF", id="missing-end"
        ),
        pytest.param(
            "<<if 1>>a<<else>>b<<else>>c<<end>>",
            "expected end; found {{else}}",
            id="two-elses",
        ),
        pytest.param("<<if>><<end>>", "missing value for if", id="missing-value"),
        pytest.param("<<(.Series>>", "unclosed left paren", id="unclosed-paren"),
        pytest.param("<<.Series)>>", "unexpected right paren", id="unexpected-paren"),
        pytest.param('<<"abc>>', "unterminated quoted string", id="unterminated-string"),
        pytest.param("<</* x", "unclosed comment", id="unclosed-comment"),
        pytest.param("<</* x */ y>>", "comment ends before closing delimiter", id="comment-end"),
        pytest.param("<<3x>>", 'bad number syntax: "3x"', id="bad-number"),
        pytest.param("<<089>>", "integer overflow: 089", id="bad-octal"),
        pytest.param("<<'ab'>>", "malformed character constant: 'ab'", id="bad-char"),
        pytest.param("<<.Series | 1>>", "non executable command in pipeline stage 2", id="stage"),
        pytest.param(
            '<<join .GroupBySlice ",">>',
            'template: metrics-query:1: function "join" not defined',
            id="unknown-function",
        ),
        pytest.param(
            "<<$x>>", 'template: metrics-query:1: undefined variable "$x"', id="undefined-var"
        ),
        pytest.param(
            "<<if 1>><<$y := 1>><<end>><<$y>>", 'undefined variable "$y"', id="out-of-scope-if"
        ),
        pytest.param(
            "<<range .GroupBySlice>><<$y := .>><<end>><<$y>>",
            'undefined variable "$y"',
            id="out-of-scope-range",
        ),
        pytest.param("<<break>>", "{{break}} outside {{range}}", id="break-outside-range"),
        # define, template and block (parse.go parseDefinition, templateControl,
        # blockControl, Tree.add).
        pytest.param(
            '<<define "x">>a', "template: metrics-query:1: unexpected EOF", id="define-no-end"
        ),
        pytest.param(
            "<<define x>>a<<end>>",
            'template: metrics-query:1: unexpected "x" in define clause',
            id="define-unquoted-name",
        ),
        pytest.param(
            '<<define "x" 1>>a<<end>>',
            'template: metrics-query:1: unexpected "1" in define clause',
            id="define-extra-argument",
        ),
        pytest.param(
            '<<define "x">>a<<else>>b<<end>>',
            "template: metrics-query:1: unexpected {{else}} in define clause",
            id="define-else",
        ),
        pytest.param(
            '<<if true>><<define "x">>a<<end>><<end>>',
            "template: metrics-query:1: unexpected <define> in command",
            id="define-not-top-level",
        ),
        pytest.param(
            '<<define "a">>1<<end>>\n<<define "a">>2<<end>>',
            'template: metrics-query:2: template: multiple definition of template "a"',
            id="define-twice",
        ),
        pytest.param(
            'x<<define "metrics-query">>y<<end>>',
            'template: metrics-query:1: template: multiple definition of template "metrics-query"',
            id="define-the-template-itself",
        ),
        pytest.param(
            '<<block "a" .>>1<<end>><<define "a">>2<<end>>',
            'template: metrics-query:1: template: multiple definition of template "a"',
            id="block-then-define",
        ),
        pytest.param(
            "<<template x>>",
            'template: metrics-query:1: unexpected "x" in template clause',
            id="template-unquoted-name",
        ),
        pytest.param(
            '<<template "x" | .Series>>',
            'template: metrics-query:1: unexpected "|" in template clause',
            id="template-bad-pipeline",
        ),
        pytest.param(
            '<<block "x">>a<<end>>',
            "template: metrics-query:1: missing value for block clause",
            id="block-without-pipeline",
        ),
        pytest.param(
            '<<block "x" .>>\na<<else>>b<<end>>',
            "template: metrics-query:1: unexpected {{else}} in block clause",
            id="block-else",
        ),
        pytest.param(
            '<<$x := 1>><<define "d">><<$x>><<end>>',
            'template: metrics-query:1: undefined variable "$x"',
            id="define-sees-only-dollar",
        ),
        pytest.param(
            '<<$x := 1>><<block "b" .>><<$x>><<end>>',
            'template: metrics-query:1: undefined variable "$x"',
            id="block-sees-only-dollar",
        ),
        pytest.param(
            '<<range .GroupBySlice>><<block "b" .>><<break>><<end>><<end>>',
            "template: metrics-query:1: {{break}} outside {{range}}",
            id="block-is-outside-range",
        ),
    ],
)
def test_parse_errors(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(source, QUERY_FIELDS, name="metrics-query")
    assert message in str(info.value)


# ---------------------------------------------------------------------------------------
# Errors Go reports only when execution reaches them: found at compile time where the
# types are known, listed in deferred_errors, raised when rendering reaches them.


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "<<.Foo>>",
            'template: metrics-query:1:2: executing "metrics-query" at <.Foo>: can\'t evaluate'
            " field Foo in type naming.queryTemplateArgs",
            id="unknown-field",
        ),
        pytest.param(
            "x\n<<.Series.Foo>>",
            'template: metrics-query:2:9: executing "metrics-query" at <.Series.Foo>: can\'t'
            " evaluate field Foo in type string",
            id="field-on-string-location",
        ),
        pytest.param(
            "<<range .GroupBySlice>><<.Foo>><<end>>",
            "can't evaluate field Foo in type string",
            id="field-on-string-in-range",
        ),
        pytest.param(
            "<<range $k, $v := .LabelValuesByName>><<$v.Foo>><<end>>",
            "can't evaluate field Foo in type string",
            id="field-on-map-value-variable",
        ),
        pytest.param("<<with $>><<.Nope>><<end>>", "can't evaluate field Nope", id="with-root"),
        pytest.param("<<.GroupBySlice.Foo>>", "in type []string", id="field-on-list"),
        pytest.param(
            # evalChainNode: the state is at the last node of the chained pipeline.
            "<<(.Series).Foo>>",
            'executing "metrics-query" at <.Series>: can\'t evaluate field Foo in type string',
            id="field-of-chain",
        ),
        pytest.param(
            "<<.Series 1>>",
            "at <.Series>: Series has arguments but cannot be invoked as function",
            id="args",
        ),
        pytest.param(
            "<<.Series | .GroupBy>>",
            "at <.GroupBy>: GroupBy has arguments but cannot be invoked as function",
            id="piped-to-field",
        ),
        pytest.param(
            "<<.LabelValuesByName.a 1>>",
            "at <.LabelValuesByName.a>: a is not a method but has arguments",
            id="map-key-args",
        ),
        pytest.param("<<1 2>>", "at <1>: can't give argument to non-function 1", id="non-function"),
        pytest.param("<<nil>>", "at <nil>: nil is not a command", id="nil-command"),
        pytest.param("<<len>>", "at <len>: wrong number of args for len: want 1 got 0", id="arity"),
        pytest.param(
            "<<and>>", "wrong number of args for and: want at least 1 got 0", id="arity-variadic"
        ),
        pytest.param(
            "<<printf 1>>", "at <1>: expected string; found 1", id="printf-literal-format"
        ),
        pytest.param(
            "<<printf nil>>", "at <nil>: cannot assign nil to string", id="printf-nil-format"
        ),
        pytest.param(
            "<<printf .GroupBySlice>>",
            "at <.GroupBySlice>: wrong type for value; expected string; got []string",
            id="printf-format-type",
        ),
        pytest.param(
            # evalArg: after evaluating (len ...), the state is at its last argument.
            "<<printf (len .GroupBySlice)>>",
            "at <.GroupBySlice>: wrong type for value; expected string; got int",
            id="printf-format-type-of-pipeline",
        ),
        pytest.param(
            "<<.GroupBySlice | printf>>",
            "at <printf>: wrong type for value; expected string; got []string",
            id="printf-piped-format-type",
        ),
        pytest.param(
            # parse.go declares $x before parsing the pipeline; exec only after it.
            "<<$x := $x>>",
            'template: metrics-query:1:8: executing "metrics-query" at <$x>: undefined'
            " variable: $x",
            id="self-reference",
        ),
        pytest.param(
            # parse.go accepts assigning any variable; exec's setVar fails after the
            # pipeline, at its last node.
            "<<$x = 1>>",
            'template: metrics-query:1:7: executing "metrics-query" at <1>: undefined variable: $x',
            id="assign-undeclared",
        ),
        pytest.param(
            '<<template "x">>',
            'template: metrics-query:1:11: executing "metrics-query" at <{{template "x"}}>:'
            ' template "x" not defined',
            id="template-not-defined",
        ),
        pytest.param(
            '<<define "d">>\n<<.Nope>><<end>><<template "d" .>>',
            'template: metrics-query:2:2: executing "d" at <.Nope>: can\'t evaluate field Nope'
            " in type naming.queryTemplateArgs",
            id="in-called-template",
        ),
        pytest.param(
            '<<define "d">><<.Nope>><<end>><<template "d" .Series>>',
            'executing "d" at <.Nope>: can\'t evaluate field Nope in type string',
            id="in-template-called-with-string",
        ),
    ],
)
def test_deferred_errors(source: str, message: str) -> None:
    template = compile_template(source, QUERY_FIELDS, name="metrics-query")
    assert len(template.deferred_errors) == 1
    assert message in template.deferred_errors[0]
    with pytest.raises(TemplateExecError) as info:
        template.render(DATA)
    assert str(info.value) == template.deferred_errors[0]
    # As in Go, the template is usable as long as execution does not reach the mistake.
    definitions, _, body = source.rpartition("<<end>>") if "define" in source else ("", "", source)
    skipped = compile_template(f"{definitions}{_}<<if false>>{body}<<end>>ok", QUERY_FIELDS)
    assert skipped.render(DATA) == "ok"


def test_deferred_errors_in_source_order_and_only_where_reached() -> None:
    template = compile_template(
        "<<if .GroupBy>><<.Serie>><<else>><<.Group>><<end>>", QUERY_FIELDS, name="q"
    )
    assert template.deferred_errors == (
        'template: q:1:17: executing "q" at <.Serie>: can\'t evaluate field Serie in type'
        " naming.queryTemplateArgs",
        'template: q:1:35: executing "q" at <.Group>: can\'t evaluate field Group in type'
        " naming.queryTemplateArgs",
    )
    with pytest.raises(TemplateExecError, match="Serie"):
        template.render({"GroupBy": "pod"})
    with pytest.raises(TemplateExecError, match="Group in type"):
        template.render({})


def test_deferred_error_comes_after_what_go_evaluates_first() -> None:
    # The index error happens before the chained field is looked at, as in Go.
    template = compile_template("<<(index .GroupBySlice 9).Foo>>", QUERY_FIELDS)
    with pytest.raises(TemplateExecError, match="index out of range: 9"):
        template.render(DATA)
    # evalChainNode: the state is at the last argument of the chained pipeline.
    with pytest.raises(TemplateExecError, match="at <9>: can't evaluate field Foo in type str"):
        template.render({"GroupBySlice": ["a"] * 10})


def test_field_of_missing_map_key_is_no_value() -> None:
    # evalField: an invalid receiver (a missing key) gives no value, even with arguments.
    assert render("<<.LabelValuesByName.nope.Foo>>") == "<no value>"
    assert render("<<.LabelValuesByName.nope.Foo 1>>") == "<no value>"
    with pytest.raises(TemplateExecError, match="can't evaluate field Foo in type string"):
        render("<<.LabelValuesByName.resource.Foo>>")


def test_no_deferred_errors_for_correct_or_uncalled_templates() -> None:
    assert compile_template("<<.Series>>", QUERY_FIELDS).deferred_errors == ()
    # A definition nothing calls is never executed.
    assert compile_template('<<define "x">><<.Nope>><<end>>a', QUERY_FIELDS).deferred_errors == ()


# ---------------------------------------------------------------------------------------
# Render-time errors


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "<<index .GroupBySlice 5>>",
            'template: metrics-query:1:2: executing "metrics-query" at <index .GroupBySlice 5>:'
            " error calling index: index out of range: 5",
            id="index-out-of-range",
        ),
        pytest.param(
            # Go's indexArg allows len itself; reflect then panics.
            "<<index .GroupBySlice 3>>",
            "error calling index: reflect: slice index out of range",
            id="index-at-len",
        ),
        pytest.param("<<index .GroupBySlice -1>>", "index out of range: -1", id="index-negative"),
        pytest.param(
            '<<index .GroupBySlice "a">>',
            "cannot index slice/array with type string",
            id="index-wrong-type",
        ),
        pytest.param("<<slice .GroupBySlice 2 1>>", "invalid slice index: 2 > 1", id="slice"),
        pytest.param(
            '<<eq 1 "a">>',
            "error calling eq: incompatible types for comparison: int and string",
            id="eq-incompatible",
        ),
        pytest.param("<<lt 1 1.5>>", "incompatible types for comparison", id="lt-incompatible"),
        pytest.param("<<lt true false>>", "invalid type for comparison", id="lt-bools"),
        pytest.param("<<eq .GroupBySlice .GroupBySlice>>", "non-comparable type", id="eq-slices"),
        pytest.param("<<range .Series>><<end>>", "range can't iterate over foo", id="range-str"),
        pytest.param(
            "<<range $i, $v := 3>><<end>>",
            "can't use 3 to iterate over more than one variable",
            id="range-int-two-vars",
        ),
        pytest.param(
            "<<printf .LabelValuesByName.x>>", "invalid value; expected string", id="printf-nil"
        ),
        pytest.param("<<call .Series>>", "non-function .Series of type string", id="call"),
        pytest.param(
            "<<$x := 1>><<$x = .GroupBySlice>><<$x.Foo>>",
            "can't evaluate field Foo in type []string",
            id="field-on-assigned-variable",
        ),
    ],
)
def test_render_errors(source: str, message: str) -> None:
    template = compile_template(source, QUERY_FIELDS, name="metrics-query")
    with pytest.raises(TemplateExecError) as info:
        template.render(DATA)
    assert message in str(info.value)


# ---------------------------------------------------------------------------------------
# API


def test_template_is_reusable_and_keeps_source() -> None:
    template = compile_template("<<.Series>>-<<.GroupBy>>", QUERY_FIELDS)
    assert isinstance(template, GoTemplate)
    assert template.source == "<<.Series>>-<<.GroupBy>>"
    assert template.render({"Series": "a", "GroupBy": "b"}) == "a-b"
    assert template.render({"Series": "c", "GroupBy": "d"}) == "c-d"


def test_fields_must_be_field_kinds() -> None:
    with pytest.raises(TypeError):
        compile_template("x", {"Series": "string"})  # type: ignore[dict-item]


def test_anonymous_struct_type_name() -> None:
    fields = {"A": FieldKind.STRING, "B": FieldKind.STRING_LIST}
    template = compile_template("<<.C>>", fields)
    with pytest.raises(TemplateExecError, match=r"in type struct \{ A string; B \[\]string \}$"):
        template.render({})


# ---------------------------------------------------------------------------------------
# Differential oracle: gotpl (dev-only) agrees with Go on these.

ORACLE_TEMPLATES = [
    "series <<.Series>>",
    "<<.GroupBySlice>>",
    "<<.LabelValuesByName>>",
    '<<index .LabelValuesByName "namespaces">> <<index .LabelValuesByName "x">>|',
    "<<.LabelValuesByName.x>> <<.LabelValuesByName.resource>>",
    'sum(rate(<<.Series>>{<<.LabelMatchers>>,container!="POD"}[2m])) by (<<.GroupBy>>)',
    "sum by (<<.GroupBy>>) (irate (<<.Series>>{<<.LabelMatchers>>}[1m]))",
    "<<- range $i, $v := .GroupBySlice >>\n<<if $i>>,<<end>><<$v>>\n<<- end>>",
    "a \t\n <<- .Series ->> \n\t b",
    "a\n<<.Series ->>\n\nb",
    "a<<-3>>b <<- 3>>",
    "a <</* c */>> b <<- /* c */ ->> c",
    "<<`raw\nstring`>> <<'a'>> <<0x10>> <<0o17>> <<017>> <<1_000>> <<1e6>> <<0.5>> <<3.0>>",
    '<<print 1 2 "a" 3 4>> <<print nil 1>> <<println "a" 1>>',
    '<<printf "%q|%5.2f|%-4d|%x|%v|%s" "a\\"b\\\\" 3.14159 7 "hi" 1.5 "s">>',
    '<<printf "%[2]d %[1]d" 11 22>> <<printf "%d %s" 1>> <<printf "%d" 1 2>>',
    '<<and 1 0 2>> <<or 0 "" 3>> <<and .Series .GroupBy>> <<or .LabelValuesByName.x "y">>',
    '<<not 0>> <<eq 1 2 3 1>> <<ne "a" "b">> <<lt 1 2>> <<le 2 2>> <<gt 1.5 1.2>> <<ge "b" "a">>',
    '<<len .GroupBySlice>> <<len "héllo">> <<index "héllo" 1>> <<slice "hello" 1 3>>',
    "<<if .LabelValuesByName.x>>a<<else if .GroupBy>>b<<else>>c<<end>>",
    "<<with .LabelValuesByName.x>>a<<else with .Series>>b=<<.>><<end>>",
    "<<range $k, $v := .LabelValuesByName>><<$k>>=<<$v>>;<<end>>",
    "<<range .LabelValuesByName.x>>x<<else>>none<<end>>",
    "<<range $i, $e := .GroupBySlice>><<if eq $i 1>><<continue>><<end>><<$e>><<end>>",
    '<<range .GroupBySlice>><<if eq . "extra">><<break>><<end>><<.>><<end>>',
    "<<range .GroupBySlice>><<range $.GroupBySlice>><<.>><<end>>;<<end>>",
    '<<$x := "a">><<range .GroupBySlice>><<$x = .>><<end>><<$x>>',
    "<<$x := .Series>><<with .GroupBy>><<$x := .>><<$x>><<end>><<$x>>",
    '<<.Series | printf "%s!">> <<"x" | printf "%s-%s" "y">> <<.GroupBySlice | len>>',
    '<<html 1 2 "<">> <<js "a\'b">> <<urlquery "a b&c">>',
    '<<printf "%v %v" .GroupBySlice .LabelValuesByName>>',
    # Named templates.
    '<<define "a">>[<<template "b" .>>]<<end>><<define "b">>(<<.>>)<<end>><<template "a" .Series>>',
    '<<define "r">><<if .>><<index . 0>>,<<template "r" (slice . 1)>><<end>><<end>>'
    '<<template "r" .GroupBySlice>>',
    '<<define "r">><<- if . ->><<template "r" (slice . 1)>><<index . 0>><<end>><<end>>'
    '(<<template "r" .Series>>)',
    '<<define "d">><<$>>|<<$.resource>>|<<.namespaces>><<end>><<template "d" .LabelValuesByName>>',
    '<<define "d">><<$x := .>><<range $.GroupBySlice>><<$x.Series>>.<<.>> <<end>><<end>>'
    '<<template "d" .>>',
    'a(<<block "inner" .Series>>bar(<<.>>)baz<<end>>)b',
    'a(<<block "inner" .Series>> <<end>>)<<define "inner">>foo<<.>><<end>>',
    '<<define "inner">>foo<<.>><<end>>a(<<block "inner" .GroupBy>>\n<<end>>)',
    '<<define "x">>[<<.>>]<<end>><<template "x">>',
    '<<define "x">>[<<.>>]<<end>><<range .GroupBySlice>><<if eq . "extra">><<break>><<end>>'
    '<<template "x" .>><<end>>',
    '<<define "x">>[<<.>>]<<end>><<range $i, $e := .GroupBySlice>><<if eq $i 1>><<continue>>'
    '<<end>><<template "x" $e>><<end>>',
    '<<define "x">>[<<.>>]<<end>><<with .GroupBy>><<template "x" .>><<end>>'
    '<<with .LabelValuesByName.nope>>no<<else>><<template "x" "else">><<end>>',
    '<<define "e">><<end>>a<<template "e" .>>b',
    '<<define "a">> <<end>><<define "a">>x<<end>><<template "a">>',
    '<<define "a">>x<<end>><<define "a">> <<end>><<template "a">>',
    '<<define "x">><<.>><<end>><<range .LabelValuesByName>><<template "x" .>>;<<else>>none<<end>>',
    '<<define "n">><<len .>><<end>><<template "n" .GroupBySlice>> <<template "n" .Series>>'
    ' <<template "n" .LabelValuesByName>>',
    '<<template "x" .Series>><<define "x">>late <<.>><<end>>',
    '<<define "q">>sum(<<.Series>>{<<.LabelMatchers>>}) by (<<template "by" .GroupBySlice>>)'
    '<<end>><<define "by">><<range $i, $v := .>><<if $i>>,<<end>><<$v>><<end>><<end>>'
    '<<template "q" .>>',
    # A mistake execution does not reach.
    '<<if false>><<.Serie>><<.Series.Foo>><<len>><<template "nope">><<end>>ok',
    '<<define "x">><<.Nope>><<end>><<if .LabelValuesByName.nope>><<template "x" .>><<end>>ok',
]


@pytest.mark.parametrize(
    "source", [pytest.param(s, id=f"oracle-{i}") for i, s in enumerate(ORACLE_TEMPLATES)]
)
def test_matches_gotpl_oracle(source: str) -> None:
    gotpl = pytest.importorskip("gotpl")
    data = dict(DATA)
    data["LabelValuesByName"] = gotpl.TypedMap(
        DATA["LabelValuesByName"], zero="", key_type="string", value_type="string"
    )
    expected = gotpl.Template(source, delimiters=("<<", ">>")).render(data)
    assert render(source) == expected


class _NoSuchField(Exception):
    pass


class _OracleStruct:
    """gotpl data with Go's struct semantics: a field the struct lacks is an error."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values = values

    def __gotemplate_lookup__(self, field: str) -> object:
        if field not in self.values:
            raise _NoSuchField(f"can't evaluate field {field}")
        return self.values[field]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "a<<if .Series>><<.Serie>><<end>>",
            'template: metrics-query:1:17: executing "metrics-query" at <.Serie>: can\'t'
            " evaluate field Serie in type naming.queryTemplateArgs",
            id="bad-field-reached",
        ),
        pytest.param(
            '<<define "x">><<.Nope>><<end>><<with .GroupBy>><<template "x" $>><<end>>',
            'template: metrics-query:1:16: executing "x" at <.Nope>: can\'t evaluate field'
            " Nope in type naming.queryTemplateArgs",
            id="bad-field-in-called-template",
        ),
        pytest.param(
            'a<<if .Series>><<template "nope" .>><<end>>',
            'template: metrics-query:1:26: executing "metrics-query" at <{{template "nope" .}}>:'
            ' template "nope" not defined',
            id="template-not-defined",
        ),
        pytest.param(
            '<<define "t">><<template "t" .>><<end>><<if .Series>><<template "t" .>><<end>>',
            'template: metrics-query:1:25: executing "t" at <{{template "t" .}}>: exceeded'
            " maximum template depth (100000)",
            id="depth-limit",
        ),
    ],
)
def test_exec_error_where_gotpl_fails(source: str, message: str) -> None:
    gotpl = pytest.importorskip("gotpl")
    oracle = gotpl.Template(source, delimiters=("<<", ">>"), name="metrics-query")
    with pytest.raises((gotpl.TemplateError, _NoSuchField)):
        oracle.render(_OracleStruct(DATA))
    # ... and gotpl renders it where execution does not reach the mistake.
    assert oracle.render(_OracleStruct({**DATA, "Series": "", "GroupBy": ""})) == render(
        source, {"Series": "", "GroupBy": ""}
    )
    # gotpl's message is its own; this one is Go's (exec.go evalField, ErrorContext).
    with pytest.raises(TemplateExecError) as info:
        render(source)
    assert str(info.value) == message


# Where gotpl is not Go: the expected values follow Go's fmt/format.go, fmt/print.go
# and text/template/funcs.go.
GOTPL_DIFFERS_FROM_GO = [
    # fmtFloat: '#' keeps the decimal point and trailing zeros.
    pytest.param('<<printf "%#g|%#.3g|%#.0f" 1.0 1.0 3.0>>', "1.00000|1.00|3.", id="sharp-float"),
    # fmtFloat: with zero padding the sign goes before the zeros.
    pytest.param('<<printf "%08.2f" -3.5>>', "-0003.50", id="zero-pad-sign"),
    # fmtUnicode: %#U appends the quoted character; fmtInteger: %.0d of 0 is empty.
    pytest.param('<<printf "%#U|%.0d|" 65 0>>', "U+0041 'A'||", id="unicode-and-zero-prec"),
    # printValue: a []string's elements are formatted with the verb.
    pytest.param('<<printf "%s" .GroupBySlice>>', "[resource extra groups]", id="slice-verb"),
    # doPrintf: "%." has no precision (i+1 < end fails), so '.' is the verb.
    pytest.param('<<printf "%.">>', "%!.(MISSING)", id="percent-dot"),
    # printArg(nil, 's') -> badVerb with no value: "%!s(<nil>)".
    pytest.param('<<printf "%s" .LabelValuesByName.x>>', "%!s(<nil>)", id="nil-bad-verb"),
    # eq: comparing with no value is false, not an error (Go 1.18+ funcs.go).
    pytest.param('<<eq .LabelValuesByName.x "x">>', "false", id="eq-no-value"),
    # parse.go templateControl parses a pipeline, declarations included (multi_test.go
    # "variable declared by template"); gotpl rejects the declaration.
    pytest.param(
        '<<define "x">><<.>><<end>><<template "x" $v := .GroupBySlice>>,<<index $v 1>>',
        "[resource extra groups],extra",
        id="template-pipeline-declares",
    ),
    # parse.go Tree.add: the top-level tree is added last, so a definition of its own name
    # is what runs when the rest is empty, and is a second definition when it is not.
    pytest.param('<<define "metrics-query">>D<<end>>', "D", id="define-self"),
]


@pytest.mark.parametrize(("source", "expected"), GOTPL_DIFFERS_FROM_GO)
def test_where_gotpl_differs_go_wins(source: str, expected: str) -> None:
    assert render(source) == expected


# Vectors from Go's fmt/fmt_test.go, through fmt.Sprintf as printf calls it.
@pytest.mark.parametrize(
    ("format_string", "value", "expected"),
    [
        pytest.param("%#g", 1e-323, "1.00000e-323", id="sharp-g-tiny"),
        pytest.param("%#g", 123456.0, "123456.", id="sharp-g-point"),
        pytest.param("%#g", 1234567.0, "1.234567e+06", id="sharp-g-exponent"),
        pytest.param("%#.0e", 1.0, "1.e+00", id="sharp-e-no-digits"),
        pytest.param("%#.4x", 123.0, "0x1.ec00p+06", id="sharp-hex-float"),
        pytest.param("%#.4g", 0.012, "0.01200", id="sharp-g-small"),
        pytest.param("%#9.4g", 1.0, "    1.000", id="sharp-g-width"),
        pytest.param("%b", 1.0, "4503599627370496p-52", id="binary-float"),
        pytest.param("%+.3g", 0.0, "+0", id="plus-zero"),
        pytest.param("%x", 1.0, "0x1p+00", id="hex-float"),
        pytest.param("%+q", "☺", '"\\u263a"', id="quote-ascii"),
        pytest.param("%#q", "`", '"`"', id="no-backquote-for-backquote"),
        pytest.param("%# x", "xyz", "0x78 0x79 0x7a", id="hex-string-spaced"),
        pytest.param("%5.0d", 0, "     ", id="zero-precision-zero"),
        pytest.param("%020.8d", 1234567, "            01234567", id="precision-beats-zero"),
        pytest.param("%.5U", 65, "U+00041", id="unicode-precision"),
        pytest.param("%c", 0x110000, "\ufffd", id="invalid-rune"),
    ],
)
def test_go_fmt_vectors(format_string: str, value: object, expected: str) -> None:
    assert sprintf(format_string, [value]) == expected


# ---------------------------------------------------------------------------------------
# Nesting: Go has no limit; here MAX_NESTING levels, so that no Python recursion limit is hit


NESTED = {
    "if": lambda n: "<<if .Series>>" * n + "x" + "<<end>>" * n,
    "range": lambda n: "<<range $.GroupBySlice>>" * n + "x" + "<<end>>" * n,
    "with": lambda n: "<<with $>>" * n + "x" + "<<end>>" * n,
    "else-if": lambda n: "<<if not .Series>>a" + "<<else if not .Series>>a" * (n - 1) + "<<else>>x<<end>>",
    "block": lambda n: "".join(f'<<block "b{i}" .>>' for i in range(n)) + "x" + "<<end>>" * n,
    "parentheses": lambda n: "<<" + "(" * n + ".Series" + ")" * n + ">>",
    "mixed": lambda n: "<<if .Series>>" * (n // 2) + "<<" + "(" * (n - n // 2) + "1" + ")" * (n - n // 2) + ">>" + "<<end>>" * (n // 2),
}  # fmt: skip


ONE_GROUP = {**DATA, "GroupBySlice": ["pod"]}  # nested ranges run once each


@pytest.mark.parametrize("kind", NESTED)
def test_nesting_up_to_the_limit_renders_with_room_on_the_stack(kind: str) -> None:
    template = compile_template(NESTED[kind](MAX_NESTING), QUERY_FIELDS, name="metrics-query")

    def render_under(frames: int) -> str:
        # A request renders with its server's frames below it (about 55 in tests).
        return render_under(frames - 1) if frames else template.render(ONE_GROUP)

    assert render_under(400)


@pytest.mark.parametrize("kind", NESTED)
def test_nesting_beyond_the_limit_is_a_parse_error(kind: str) -> None:
    with pytest.raises(TemplateError) as info:
        compile_template(NESTED[kind](MAX_NESTING + 1), QUERY_FIELDS, name="metrics-query")
    assert str(info.value) == (
        "template: metrics-query:1: actions and parentheses nested too deeply "
        f"(more than {MAX_NESTING} levels)"
    )


def test_deep_nesting_is_a_parse_error_not_a_recursion_error() -> None:
    with pytest.raises(TemplateError, match="nested too deeply"):
        compile_template(NESTED["if"](10_000), QUERY_FIELDS, name="metrics-query")


def test_a_deep_chain_of_called_templates_is_a_template_error() -> None:
    # Go renders up to 100,000 nested calls; compiled callers inline their callees here, so a
    # chain hundreds deep is refused at load rather than overflowing the stack.
    depth = 1000
    source = "".join(f'<<define "t{i}">><<template "t{i + 1}" .>><<end>>' for i in range(depth))
    source += f'<<define "t{depth}">>x<<end>><<template "t0" .>>'
    with pytest.raises(TemplateError, match="templates call each other too deeply"):
        compile_template(source, {})
