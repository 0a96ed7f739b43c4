"""`prometheusServers` (not in the Go adapter): validation at load with file, line, path and
reason; routing of rules to their backend; per-backend discovery; the server's backends across
reloads; per-backend metrics."""

import asyncio
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.config.errors import ConfigError, IssueList
from adapter.config.loader import parse_config_text
from adapter.config.schema import PrometheusServer
from adapter.discovery.relister import Relister
from adapter.naming.rules import CompiledConfig, MetricRule, compile_config, load_rules
from adapter.prometheus.backends import (
    DEFAULT_SERVER,
    build_clients,
    client_for_rule,
    server_config,
)
from adapter.prometheus.client import PrometheusClient, PrometheusConfig, PrometheusError
from adapter.server.backends import ServerBackends
from adapter.server.metrics import AdapterMetrics


def parse(text: str) -> IssueList:
    issues = IssueList()
    parse_config_text(textwrap.dedent(text), issues)
    return issues


RULE = "rules:\n- seriesQuery: x\n  prometheusServer: {server}\n"


@pytest.mark.parametrize(
    ("text", "line", "path", "reason"),
    [
        pytest.param(
            "prometheusServers:\n- url: http://a\n",
            2,
            "prometheusServers[0]",
            "name is required",
            id="missing-name",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n",
            2,
            "prometheusServers[0]",
            "url is required",
            id="missing-url",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: ftp://h\n",
            3,
            "prometheusServers[0].url",
            "ftp://h needs the scheme http:// or https:// and a host",
            id="bad-scheme",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: http://\n",
            3,
            "prometheusServers[0].url",
            "needs the scheme http:// or https:// and a host",
            id="no-host",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: prometheus:9090\n",
            3,
            "prometheusServers[0].url",
            "needs the scheme http:// or https:// and a host",
            id="no-scheme",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: 'http://[::1'\n",
            3,
            "prometheusServers[0].url",
            "is not a URL",
            id="unparsable-url",
        ),
        pytest.param(
            "prometheusServers:\n- {name: a, url: 'http://a'}\n- {name: a, url: 'http://b'}\n",
            3,
            "prometheusServers[1].name",
            "duplicate name 'a' (first defined at line 2)",
            id="duplicate-name",
        ),
        pytest.param(
            "prometheusServers:\n- name: default\n  url: http://a\n",
            2,
            "prometheusServers[0].name",
            "'default' is the name of the command-line backend",
            id="reserved-name",
        ),
        pytest.param(
            "prometheusServers:\n- name: 'a b'\n  url: http://a\n",
            2,
            "prometheusServers[0].name",
            "'a b' is not a valid name",
            id="invalid-name",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: http://a\n  verb: PUT\n",
            4,
            "prometheusServers[0].verb",
            'unsupported Prometheus HTTP verb "PUT"',
            id="bad-verb",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: http://a\n  timeout: 10\n",
            4,
            "prometheusServers[0].timeout",
            'missing unit in duration "10"',
            id="timeout-without-unit",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: http://a\n  timeout: 100us\n",
            4,
            "prometheusServers[0].timeout",
            "'100us' is too short: a timeout must be at least 1ms",
            id="timeout-too-short",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: http://a\n  headers:\n    'X Bad': v\n",
            5,
            "prometheusServers[0].headers.X Bad",
            "invalid header: header name 'X Bad' contains ' '",
            id="bad-header-name",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: http://a\n  headers:\n"
            "    x-scope-orgid: t1\n    X-Scope-OrgID: t2\n",
            6,
            "prometheusServers[0].headers.X-Scope-OrgID",
            "the header X-Scope-Orgid is set twice",
            id="header-twice",
        ),
        pytest.param(
            "prometheusServers:\n- name: a\n  url: http://a\n  tokenfile: /t\n",
            4,
            "prometheusServers[0].tokenfile",
            "unknown field 'tokenfile' (did you mean 'tokenFile'?",
            id="unknown-field",
        ),
        pytest.param(
            "prometheusServers:\n- name: team-a\n  url: http://a\n" + RULE.format(server="team-b"),
            6,
            "rules[0].prometheusServer",
            "unknown Prometheus server 'team-b' (did you mean 'team-a'? defined in "
            "prometheusServers: 'team-a'; leave it out for the command-line backend)",
            id="unknown-backend",
        ),
        pytest.param(
            "externalRules:\n- seriesQuery: x\n  prometheusServer: nowhere\n",
            3,
            "externalRules[0].prometheusServer",
            "unknown Prometheus server 'nowhere' (defined in prometheusServers: none",
            id="unknown-backend-external",
        ),
        pytest.param(
            "resourceRules:\n  window: 1m\n  prometheusServer: nowhere\n",
            3,
            "resourceRules.prometheusServer",
            "unknown Prometheus server 'nowhere'",
            id="unknown-backend-resource-rules",
        ),
        pytest.param(
            "prometheusServers: {name: a}\n",
            1,
            "prometheusServers",
            "expected a list, got a mapping",
            id="not-a-list",
        ),
    ],
)
def test_errors_name_line_path_and_reason(text: str, line: int, path: str, reason: str) -> None:
    issues = parse(text)
    found = [(i.line, i.path) for i in issues if reason in i.reason]
    assert found == [(line, path)], [i.format("f") for i in issues]


def test_every_error_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "prometheusServers:\n- {name: a, url: 'ftp://x', verb: put}\n- {url: 'http://b'}\n"
        "rules:\n- {seriesQuery: x, prometheusServer: b, metricsQuery: '<<.Series'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    described = caught.value.describe()
    assert "(5 errors)" in described
    for expected in (
        f"{path}:2: prometheusServers[0].url: ftp://x needs the scheme",
        f'{path}:2: prometheusServers[0].verb: unsupported Prometheus HTTP verb "put"',
        f"{path}:3: prometheusServers[1]: name is required",
        f"{path}:5: rules[0].prometheusServer: unknown Prometheus server 'b'",
        f"{path}:5: rules[0].metricsQuery: unable to parse metrics query template",
    ):
        assert expected in described, described


def test_a_valid_entry_decodes_every_field() -> None:
    issues = IssueList()
    config = parse_config_text(
        textwrap.dedent(
            """
            prometheusServers:
            - name: tenant-a
              url: https://user:pass@mimir:8080/prometheus
              headers: {x-scope-orgid: " a ", Authorization: Bearer t}
              tokenFile: /t
              caFile: /ca
              clientCertFile: /c
              clientKeyFile: /k
              verb: POST
              timeout: 1m30s
            rules:
            - {seriesQuery: x, prometheusServer: tenant-a}
            - {seriesQuery: y, prometheusServer: default}
            - {seriesQuery: z}
            resourceRules: {prometheusServer: tenant-a}
            """
        ),
        issues,
    )
    assert list(issues) == [] and issues.warnings == []
    [server] = config.prometheus_servers
    assert server == PrometheusServer(
        name="tenant-a",
        url="https://user:pass@mimir:8080/prometheus",
        headers=(("X-Scope-Orgid", "a"), ("Authorization", "Bearer t")),
        token_file="/t",
        ca_file="/ca",
        client_cert_file="/c",
        client_key_file="/k",
        verb="POST",
        timeout_seconds=90.0,
    )
    assert server.line == 3
    compiled = compile_config(config, issues)
    assert [r.prometheus_server for r in compiled.rules] == ["tenant-a", "default", "default"]
    assert compiled.resource_rules is not None  # cpu and memory unset: warnings only
    assert compiled.resource_rules.prometheus_server == "tenant-a"


def test_an_entry_no_rule_names_is_a_warning() -> None:
    issues = parse("prometheusServers:\n- {name: idle, url: 'http://a'}\nrules: []\n")
    assert list(issues) == []
    [warning] = issues.warnings
    assert (warning.path, warning.line) == ("prometheusServers[0]", 2)
    assert "no rule names the Prometheus server 'idle'" in warning.reason


def test_server_settings_fall_back_to_the_flags_but_never_their_credentials() -> None:
    base = PrometheusConfig(
        url="http://cli",
        verb="POST",
        headers=(("Authorization", "Bearer cli"),),
        token_file="/cli-token",
        ca_file="/cli-ca",
        timeout=7.0,
        max_get_url_length=100,
        max_response_size=1000,
    )
    plain = server_config(PrometheusServer(name="a", url="http://a"), base)
    assert (plain.verb, plain.timeout) == ("POST", 7.0)
    assert (plain.headers, plain.token_file, plain.ca_file) == ((), "", "")
    assert (plain.max_get_url_length, plain.max_response_size) == (100, 1000)
    own = server_config(
        PrometheusServer(name="a", url="http://a", verb="GET", timeout_seconds=2.0), base
    )
    assert (own.verb, own.timeout) == ("GET", 2.0)


def test_client_for_rule_names_the_backend() -> None:
    issues = IssueList()
    config = parse_config_text(
        "prometheusServers: [{name: b, url: 'http://b'}]\n"
        "rules: [{seriesQuery: x, prometheusServer: b}, {seriesQuery: y}]\n",
        issues,
    )
    compiled = compile_config(config, issues)
    clients = {DEFAULT_SERVER: "cli", "b": "bee"}
    assert [client_for_rule(r, clients) for r in compiled.rules] == ["bee", "cli"]


_NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).filter(
    lambda name: name != "default"
)


@settings(max_examples=60, deadline=None)
@given(
    defined=st.lists(_NAMES, max_size=4),
    used=st.lists(st.one_of(_NAMES, st.just("default"), st.just("")), max_size=4),
)
def test_references_and_duplicates_are_errors_exactly_when_they_should_be(
    defined: list[str], used: list[str]
) -> None:
    servers = "".join(f"- {{name: '{n}', url: 'http://h{i}'}}\n" for i, n in enumerate(defined))
    rules = "".join(f"- {{seriesQuery: x, prometheusServer: '{n}'}}\n" for n in used)
    text = (f"prometheusServers:\n{servers}" if defined else "") + (
        f"rules:\n{rules}" if used else ""
    )
    issues = parse(text)
    unknown = {
        f"rules[{i}].prometheusServer"
        for i, n in enumerate(used)
        if n not in ("", "default") and n not in defined
    }
    assert {i.path for i in issues if "unknown Prometheus server" in i.reason} == unknown
    duplicates = {f"prometheusServers[{i}].name" for i, n in enumerate(defined) if n in defined[:i]}
    assert {i.path for i in issues if i.reason.startswith("duplicate name")} == duplicates
    # Every error names a line.
    assert all(i.line is not None for i in issues)


# --- discovery per backend ---------------------------------------------------------------


class Lister:
    """A backend's series: `series` by selector, or an error for every listing."""

    def __init__(self, series: dict[str, list[dict[str, str]]]) -> None:
        self.series = series
        self.failing: Exception | None = None
        self.asked: list[str] = []

    async def stream_series(
        self,
        matches: Sequence[str],
        start: float | None = None,
        end: float | None = None,
        *,
        sink: Callable[[list[dict[str, str]]], None],
    ) -> int:
        self.asked.extend(matches)
        if self.failing is not None:
            raise self.failing
        found = self.series.get(matches[0], [])
        sink(found)
        return len(found)


def _compiled(text: str) -> tuple[CompiledConfig, list[MetricRule], list[MetricRule]]:
    issues = IssueList()
    compiled = compile_config(parse_config_text(textwrap.dedent(text), issues), issues)
    assert list(issues) == [], list(issues)
    return compiled, list(compiled.rules), list(compiled.external_rules)


CONFIG = """
prometheusServers:
- {name: a, url: 'http://a'}
- {name: b, url: 'http://b'}
externalRules:
- {seriesQuery: q, prometheusServer: a, resources: {namespaced: false}, metricsQuery: x}
- {seriesQuery: q, prometheusServer: b, resources: {namespaced: false}, metricsQuery: x,
   name: {matches: ^(.*)$, as: "b_$1"}}
- {seriesQuery: q, resources: {namespaced: false}, metricsQuery: x,
   name: {matches: ^(.*)$, as: "cli_$1"}}
"""


async def test_each_backend_is_listed_with_its_own_queries_and_keeps_its_last_good_state() -> None:
    _, custom, external = _compiled(CONFIG)
    cli, a, b = (Lister({"q": [{"__name__": name}]}) for name in ("from_cli", "from_a", "from_b"))
    relister = Relister(cli, custom, external, 60, 60, listers={"a": a, "b": b})
    result = await relister.relist_once()
    assert result.ok and result.servers == ("a", "b", DEFAULT_SERVER)
    assert set(relister.registry.external) == {"from_a", "b_from_b", "cli_from_cli"}
    assert (cli.asked, a.asked, b.asked) == (["q"], ["q"], ["q"])
    # b fails: its metrics stay as last listed, a's and the command line's are refreshed.
    b.failing = PrometheusError("connection refused", error_type="connection")
    a.series["q"] = [{"__name__": "from_a_again"}]
    result = await relister.relist_once()
    assert result.failures == {("b", "q"): "connection: connection refused"}
    assert (result.failures_of("b"), result.failures_of("a")) == (1, 0)
    assert set(relister.registry.external) == {"from_a_again", "b_from_b", "cli_from_cli"}
    assert relister.ready.is_set()


async def test_a_reload_drops_the_series_of_a_backend_whose_client_changed() -> None:
    _, custom, external = _compiled(CONFIG)
    cli, a, b = (Lister({"q": [{"__name__": name}]}) for name in ("from_cli", "from_a", "from_b"))
    relister = Relister(cli, custom, external, 60, 60, listers={"a": a, "b": b})
    await relister.relist_once()
    new_b = Lister({"q": [{"__name__": "from_new_b"}]})
    new_b.failing = PrometheusError("down", error_type="connection")
    relister.update_rules(custom, external, {"a": a, "b": new_b})
    await relister.relist_once()
    # The new client's series are not known yet; the old client's are not kept.
    assert set(relister.registry.external) == {"from_a", "cli_from_cli"}


# --- the server's backends across reloads ------------------------------------------------


async def test_server_backends_keep_unchanged_clients_and_retire_the_others(
    tmp_path: Path,
) -> None:
    metrics = AdapterMetrics("http://cli")
    base = PrometheusConfig(url="http://cli", timeout=0.05)
    async with PrometheusClient(base) as default:
        backends = ServerBackends(base, default, metrics)

        def config(text: str) -> CompiledConfig:
            path = tmp_path / "config.yaml"
            path.write_text(textwrap.dedent(text))
            return load_rules(path)

        first = config(
            """
            prometheusServers:
            - {name: keep, url: 'http://keep'}
            - {name: change, url: 'http://one'}
            - {name: drop, url: 'http://drop'}
            rules:
            - {seriesQuery: a, prometheusServer: keep}
            - {seriesQuery: b, prometheusServer: change}
            - {seriesQuery: c, prometheusServer: drop}
            """
        )
        backends.apply(await backends.prepare(first))
        kept, changed, dropped = (backends.clients[n] for n in ("keep", "change", "drop"))
        kept_querier = backends.queriers["keep"]
        metrics.backend_observer("drop", "http://drop")("/api/v1/query", "GET", (), 200, 0.1, None)
        assert 'backend="drop"' in metrics.exposition().decode()

        second = config(
            """
            prometheusServers:
            - {name: keep, url: 'http://keep'}
            - {name: change, url: 'http://two'}
            rules:
            - {seriesQuery: a, prometheusServer: keep}
            - {seriesQuery: b, prometheusServer: change}
            """
        )
        backends.apply(await backends.prepare(second))
        assert backends.clients["keep"] is kept and backends.queriers["keep"] is kept_querier
        assert backends.clients["change"] is not changed and "drop" not in backends.clients
        assert 'backend="drop"' not in metrics.exposition().decode()
        # Retired clients are closed once their timeout (and a grace second) has passed.
        retiring = list(backends._retiring)
        assert len(retiring) == 2
        await asyncio.wait_for(asyncio.gather(*retiring), timeout=5)
        assert changed._closed and dropped._closed and not kept._closed

        # A client that cannot be made refuses the whole config; nothing changes.
        with pytest.raises(ConfigError) as caught:
            await backends.prepare(
                config(
                    """
                    prometheusServers:
                    - {name: keep, url: 'http://keep'}
                    - {name: change, url: 'https://three', caFile: /nonexistent/ca.crt}
                    rules:
                    - {seriesQuery: a, prometheusServer: keep}
                    - {seriesQuery: b, prometheusServer: change}
                    """
                )
            )
        [issue] = caught.value.issues
        assert (issue.path, issue.line) == ("prometheusServers[1]", 4)
        assert backends.clients["keep"] is kept
        await backends.close()
        assert kept._closed


async def test_build_clients_closes_what_it_made_when_one_fails(tmp_path: Path) -> None:
    servers = [
        PrometheusServer(name="ok", url="http://ok"),
        PrometheusServer(
            name="bad", url="http://bad", token_file=str(tmp_path / "missing"), line=7
        ),
    ]
    with pytest.raises(ConfigError) as caught:
        await build_clients(servers, PrometheusConfig(), file="f.yaml")
    assert caught.value.issues[0].format("f.yaml").startswith("f.yaml:7: prometheusServers[1]: ")
