import textwrap
from pathlib import Path

import pytest

from adapter.config.errors import ConfigIssue, IssueList
from adapter.config.loader import parse_config_text, read_config_file
from adapter.config.schema import AdapterConfig, GroupResourceRef, RegexFilter


def parse(text: str) -> tuple[AdapterConfig, IssueList]:
    issues = IssueList()
    return parse_config_text(textwrap.dedent(text), issues), issues


def test_full_rule_decodes_every_field() -> None:
    config, issues = parse(
        """
        rules:
        - seriesQuery: 'http_requests_total{namespace!=""}'
          seriesFilters:
          - is: ^http_
          - isNot: _bucket$
          resources:
            template: kube_<<.Resource>>
            overrides:
              ns: {resource: namespace}
              deploy: {group: apps, resource: deployment}
          name: {matches: ^(.*)_total$, as: "${1}_per_second"}
          metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)
          labelValueReplacements: [{find: "#", replace: "_"}]
        externalRules:
        - seriesQuery: queue_depth
          metricsQuery: sum(<<.Series>>)
          resources: {namespaced: false}
        """
    )
    assert issues == []
    rule = config.rules[0]
    assert rule.series_query == 'http_requests_total{namespace!=""}'
    assert rule.series_filters == (RegexFilter(is_="^http_"), RegexFilter(is_not="_bucket$"))
    assert rule.resources.template == "kube_<<.Resource>>"
    assert rule.resources.overrides == {
        "ns": GroupResourceRef("namespace"),
        "deploy": GroupResourceRef("deployment", "apps"),
    }
    assert rule.resources.namespaced is None
    assert (rule.name.matches, rule.name.as_) == ("^(.*)_total$", "${1}_per_second")
    assert rule.label_value_replacements[0].find == "#"
    assert config.external_rules[0].resources.namespaced is False
    assert config.resource_rules is None


def test_resource_rules_window_and_presence() -> None:
    config, issues = parse(
        """
        resourceRules:
          cpu: {containerQuery: a, nodeQuery: b, containerLabel: container}
          window: 1h30m
        """
    )
    assert issues == []
    assert config.resource_rules is not None
    assert config.resource_rules.window_seconds == 5400
    assert config.resource_rules.cpu.container_label == "container"
    # Present but empty still means "serve metrics.k8s.io", as a non-nil pointer in Go.
    config, _ = parse("resourceRules: {}\n")
    assert config.resource_rules is not None


@pytest.mark.parametrize(
    ("text", "path", "line", "reason"),
    [
        pytest.param(
            "rules:\n- seriesQuery: x\n  metricQuery: y\n",
            "rules[0].metricQuery",
            3,
            "unknown field 'metricQuery' (did you mean 'metricsQuery'?",
            id="unknown-key-with-suggestion",
        ),
        pytest.param(
            "rules:\n- seriesQuery: x\n  seriesQuery: y\n",
            "rules[0].seriesQuery",
            3,
            "duplicate key 'seriesQuery' (first set at line 2)",
            id="duplicate-key",
        ),
        pytest.param("rule: []\n", "rule", 1, "unknown field 'rule'", id="unknown-top-level"),
        pytest.param(
            "rules: {a: 1}\n", "rules", 1, "expected a list, got a mapping", id="list-expected"
        ),
        pytest.param(
            "rules:\n- seriesQuery: [a]\n",
            "rules[0].seriesQuery",
            2,
            "expected a string, got a list",
            id="string-expected",
        ),
        pytest.param(
            "externalRules:\n- resources: {namespaced: 'no'}\n",
            "externalRules[0].resources.namespaced",
            2,
            "expected true or false, got the scalar 'no'",
            id="quoted-bool-is-a-string",
        ),
        pytest.param(
            "resourceRules: {window: 5x}\n",
            "resourceRules.window",
            1,
            'unknown unit "x" in duration "5x"',
            id="bad-window",
        ),
        pytest.param(
            "rules:\n- resources:\n    overrides:\n      pod: {group: ''}\n",
            "rules[0].resources.overrides.pod",
            4,
            "resource is required",
            id="override-without-resource",
        ),
        pytest.param("- a\n- b\n", "", 1, "expected a mapping, got a list", id="top-level-list"),
        pytest.param("rules:\n  - a: [\n", "", 3, "invalid YAML", id="yaml-syntax-error"),
    ],
)
def test_errors_name_path_line_and_reason(text: str, path: str, line: int, reason: str) -> None:
    _, issues = parse(text)
    assert len(issues) == 1, issues
    assert (issues[0].path, issues[0].line) == (path, line)
    assert reason in issues[0].reason


def test_all_errors_are_reported_together() -> None:
    _, issues = parse(
        """
        rules:
        - seriesQuery: a
          metricQuery: b
        - seriesQuery: c
          name: {matches: x, as: y, az: z}
        externalRules:
        - seriesQuery: d
          seriesQuery: e
        """
    )
    assert [i.path for i in issues] == [
        "rules[0].metricQuery",
        "rules[1].name.az",
        "externalRules[0].seriesQuery",
    ]


def test_any_scalar_fills_a_string_field_as_yaml_v2_does() -> None:
    config, issues = parse("rules:\n- {seriesQuery: 123, name: {as: true, matches: 1.50}}\n")
    assert issues == []
    assert config.rules[0].series_query == "123"
    assert (config.rules[0].name.as_, config.rules[0].name.matches) == ("true", "1.50")


def test_null_values_are_zero_values() -> None:
    config, issues = parse("rules:\n- seriesQuery:\n  seriesFilters:\n  resources:\n")
    assert issues == []
    assert config.rules[0].series_query == ""
    assert config.rules[0].series_filters == ()


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_document_is_an_empty_config(text: str) -> None:
    assert parse(text) == (AdapterConfig(), [])


def test_merge_keys_with_explicit_override() -> None:
    config, issues = parse(
        """
        rules:
        - &base {seriesQuery: a, metricsQuery: q}
        - <<: *base
          seriesQuery: b
        """
    )
    assert issues == []
    assert [r.series_query for r in config.rules] == ["a", "b"]
    assert config.rules[1].metrics_query == "q"


def test_json_config_loads_like_yaml() -> None:
    config, issues = parse(
        '{\n\t"rules": [{"seriesQuery": "x", "name": {"as": "y"}}],\n\t"externalRules": []\n}\n'
    )
    assert issues == []
    assert config.rules[0].name.as_ == "y"


def test_json_duplicate_key_is_an_error() -> None:
    _, issues = parse('{"rules": [], "rules": []}')
    assert [i.path for i in issues] == ["rules"]


def test_unreadable_file() -> None:
    issues = IssueList()
    read_config_file("/nonexistent/config.yaml", issues)
    assert issues == [ConfigIssue("", "cannot read file: No such file or directory")]


def test_issue_format_names_file_line_and_path() -> None:
    issue = ConfigIssue("rules[2].name.matches", "bad regexp", 12)
    assert issue.format("c.yaml") == "c.yaml:12: rules[2].name.matches: bad regexp"
    assert ConfigIssue("", "invalid YAML").format("c.yaml") == "c.yaml: invalid YAML"


IGNORED = "another YAML document starts here and is ignored: only the first document"
FIRST = "rules:\n- {seriesQuery: first}\n"


@pytest.mark.parametrize(
    ("text", "warning_line"),
    [
        pytest.param(FIRST + "---\n", None, id="trailing-document-marker"),
        pytest.param(FIRST + "...\n", None, id="trailing-document-end"),
        pytest.param("---\n" + FIRST, None, id="leading-document-marker"),
        pytest.param("--- # config\n" + FIRST + "...\n---\n", None, id="markers-around"),
        pytest.param(FIRST + "---\n# a comment\n---\n\n", None, id="empty-later-documents"),
        pytest.param(FIRST + "# next\n\n---\nrules:\n- {seriesQuery: second}\n", 5, id="second-document"),
        pytest.param(FIRST + "--- {rules: [{seriesQuery: second}]}\n", 3, id="content-on-the-marker-line"),
        # yaml.v2 stops at the first document's end: what follows is not even parsed.
        pytest.param(FIRST + "---\nrules: [\n\t@\n", 3, id="later-document-is-not-parsed"),
        pytest.param(FIRST + "...\nrules: []\n", 4, id="content-after-document-end"),
    ],
)  # fmt: skip
def test_only_the_first_document_is_read(text: str, warning_line: int | None) -> None:
    config, issues = parse(text)
    assert issues == []
    assert [r.series_query for r in config.rules] == ["first"]
    expected = [] if warning_line is None else [(warning_line, True)]
    assert [(w.path, w.line, IGNORED in w.reason) for w in issues.warnings] == [
        ("", line, found) for line, found in expected
    ]


def test_an_empty_first_document_is_an_empty_config() -> None:
    # The first document ends at the second marker: the rules after it are ignored, as in Go.
    config, issues = parse("---\n---\n" + FIRST)
    assert (config, issues) == (AdapterConfig(), [])
    assert [(w.line, IGNORED in w.reason) for w in issues.warnings] == [(2, True)]


def test_a_syntax_error_in_the_first_document_is_still_an_error() -> None:
    _, issues = parse("rules: [\n---\nrules: []\n")
    assert [(i.path, "invalid YAML" in i.reason) for i in issues] == [("", True)]
    assert issues.warnings == []


# --- hostile documents: yaml.v2's limits, and no Python recursion -------------------------------
# The expected verdicts were checked against gopkg.in/yaml.v2 v2.4.0's UnmarshalStrict into the
# Go adapter's config structs.

RULE = "{seriesQuery: up, metricsQuery: up}"


def merge_bomb(levels: int, width: int) -> str:
    """Each rule merges the one before it `width` times: width**levels merges to decode."""
    lines = ["rules:", f"- &r0 {RULE}"]
    for level in range(1, levels + 1):
        lines.append(f"- &r{level} {{<<: [{', '.join([f'*r{level - 1}'] * width)}]}}")
    return "\n".join(lines) + "\n"


def alias_list(filters: int, aliases: int) -> str:
    """A rule with `filters` seriesFilters, then `aliases` aliases of it."""
    rule = f"- &r {{seriesQuery: up, seriesFilters: [{', '.join(['{is: a}'] * filters)}]}}"
    return "\n".join(["rules:", rule, *(["- *r"] * aliases)]) + "\n"


def test_merge_key_bomb_is_excessive_aliasing_as_in_yaml_v2() -> None:
    config, issues = parse(merge_bomb(levels=9, width=10))
    assert [(i.path, i.line, i.reason) for i in issues] == [
        ("rules[3]", 5, "document contains excessive aliasing")
    ]
    assert config == AdapterConfig()
    _, issues = parse(merge_bomb(levels=2, width=10))
    assert issues == []


@pytest.mark.parametrize(
    ("aliases", "refused"),
    [
        pytest.param(111, False, id="111-accepted"),
        pytest.param(112, True, id="112-refused"),
        pytest.param(1000, True, id="1000-refused"),
    ],
)
def test_alias_bomb_limit_is_yaml_v2s_alias_ratio(aliases: int, refused: bool) -> None:
    # 911 decoding steps per alias of the rule: yaml.v2 refuses once more than 99% of its
    # steps are alias expansion, which happens within the 112th alias.
    config, issues = parse(alias_list(filters=300, aliases=aliases))
    if refused:
        assert [(i.path, i.line, i.reason) for i in issues] == [
            ("rules[112]", 114, "document contains excessive aliasing")
        ]
    else:
        assert issues == []
        assert len(config.rules) == 112
        assert len(config.rules[-1].series_filters) == 300


def test_aliases_under_unknown_keys_are_never_expanded() -> None:
    laughs = ['lol0: &lol0 "lol"']
    laughs += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, 10)]
    _, issues = parse("\n".join(laughs) + "\n")
    assert [i.reason.split(" (")[0] for i in issues] == [
        f"unknown field 'lol{i}'" for i in range(10)
    ]


def test_a_mapping_that_merges_itself_is_an_error_as_in_yaml_v2() -> None:
    _, issues = parse("rules: [&a {seriesQuery: up, <<: *a}]\n")
    assert [(i.path, i.line, i.reason) for i in issues] == [
        ("rules[0]", 1, "anchor 'a' value contains itself")
    ]


def test_unknown_anchor_is_yaml_v2s_message() -> None:
    _, issues = parse("rules:\n- *nope\n")
    assert [(i.path, i.line, i.reason) for i in issues] == [
        ("", 2, "invalid YAML: unknown anchor 'nope' referenced")
    ]


def test_a_later_anchor_of_the_same_name_replaces_the_first_as_in_yaml_v2() -> None:
    config, issues = parse("rules: [&a {seriesQuery: x}, &a {seriesQuery: y}, *a]\n")
    assert issues == []
    assert [r.series_query for r in config.rules] == ["x", "y", "y"]


def test_a_long_merge_chain_costs_no_python_stack() -> None:
    # 3000 mappings each merging the one before; yaml.v2 decodes the chain (it is used once,
    # and the unknown keys holding it are not decoded).
    chain = ["x0: &m0 {seriesQuery: deep}"]
    chain += [f"x{i}: &m{i} {{<<: *m{i - 1}}}" for i in range(1, 3000)]
    config, issues = parse("\n".join([*chain, "rules: [*m2999]"]) + "\n")
    assert config.rules[0].series_query == "deep"
    assert {i.reason.split(" (")[0] for i in issues} == {
        f"unknown field 'x{i}'" for i in range(3000)
    }


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("rules: " + "[" * 999 + "]" * 999 + "\n", id="flow"),
        pytest.param("rules:\n" + "".join(" " * i + "-\n" for i in range(999)), id="block"),
    ],
)
def test_deep_nesting_is_decoded_without_recursion(text: str) -> None:
    # yaml.v2 reads it (its limit is 10,000 levels) and refuses the list where a rule belongs.
    _, issues = parse(text)
    assert [(i.path, i.reason) for i in issues] == [("rules[0]", "expected a mapping, got a list")]


def test_nesting_from_1000_levels_is_refused_by_libyaml() -> None:
    _, issues = parse("rules: " + "[" * 1000 + "]" * 1000 + "\n")
    assert [(i.path, i.line) for i in issues] == [("", 1)]
    assert "exceeded maximum nesting depth" in issues[0].reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("y", True, id="y"),
        pytest.param("N", False, id="N"),
        pytest.param("Off", False, id="Off"),
        pytest.param("!!bool YES", True, id="tagged-YES"),
        pytest.param("~", None, id="null"),
    ],
)
def test_booleans_are_yaml_v2s(value: str, expected: bool | None) -> None:
    config, issues = parse(f"externalRules: [{{resources: {{namespaced: {value}}}}}]\n")
    assert issues == []
    assert config.external_rules[0].resources.namespaced is expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("!!bool maybe", "cannot decode !!str `maybe` as a !!bool", id="word"),
        pytest.param("!!bool 1", "cannot decode !!int `1` as a !!bool", id="number"),
        pytest.param("!!bool tRuE", "cannot decode !!str `tRuE` as a !!bool", id="case"),
        pytest.param("!!str y", "expected true or false, got the scalar 'y'", id="tagged-string"),
    ],
)
def test_a_bool_tag_on_other_text_is_yaml_v2s_error(value: str, reason: str) -> None:
    _, issues = parse(f"externalRules:\n- resources: {{namespaced: {value}}}\n")
    assert [(i.path, i.line, i.reason) for i in issues] == [
        ("externalRules[0].resources.namespaced", 2, reason)
    ]


def test_a_key_that_is_not_a_scalar_skips_its_value_as_in_yaml_v2() -> None:
    _, issues = parse("rules:\n- {seriesQuery: up, [a]: {<<: 5}}\n")
    assert [(i.path, i.line, i.reason) for i in issues] == [
        ("rules[0]", 2, "expected a string, got a list")
    ]


def test_an_alias_key_naming_a_merge_key_is_a_plain_key_as_in_yaml_v2() -> None:
    _, issues = parse("x: &m <<\nrules:\n- &b {seriesQuery: a}\n- {*m : *b}\n")
    assert [(i.path, i.line) for i in issues] == [("x", 1), ("rules[1].<<", 4)]


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x7f", "\ufffe"])
def test_a_control_character_is_reported_at_its_line(character: str) -> None:
    _, issues = parse(f"rules:\n- seriesQuery: é\n- seriesQuery: a{character}\n")
    assert [(i.path, i.line) for i in issues] == [("", 3)]
    code = f"#x{ord(character):04x}"
    assert issues[0].reason == f"invalid YAML: unacceptable character {code}: " + (
        "control characters are not allowed"
    )


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_a_file_with_a_byte_order_mark_is_read_as_yaml_v2_reads_it(
    tmp_path: Path, encoding: str
) -> None:
    path = tmp_path / "config.yaml"
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding, b"")
    path.write_bytes(bom + "rules: [{seriesQuery: é}]\n".encode(encoding))
    issues = IssueList()
    config = read_config_file(path, issues)
    assert issues == []
    assert config.rules[0].series_query == "é"


def test_a_file_that_is_not_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"rules:\n- seriesQuery: a\n- seriesQuery: '\xff'\n")
    issues = IssueList()
    read_config_file(path, issues)
    assert [(i.path, i.line) for i in issues] == [("", 3)]
    assert issues[0].reason.startswith("cannot read file: 'utf-8' codec can't decode byte 0xff")
