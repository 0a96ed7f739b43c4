"""The audit policy: loading and validation as reader.go and validation.go, rule matching as
checker.go (the tables are Go's checker_test.go, case by case)."""

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapter.audit.levels import Level, Stage
from adapter.audit.policy import PolicyError, load_policy, parse_policy
from adapter.auth.request_info import RequestInfo, new_request_info
from adapter.auth.user import ANONYMOUS, UserInfo

TIM = UserInfo("tim@k8s.io", groups=("humans", "developers"))

# checker_test.go `attrs` (user: tim, except "Unauthorized", which has none).
ATTRS: dict[str, RequestInfo] = {
    "namespaced": RequestInfo(
        is_resource_request=True,
        path="/api/v1/namespaces/default/pods/busybox",
        verb="get",
        api_version="v1",
        namespace="default",
        resource="pods",
        name="busybox",
    ),
    "cluster": RequestInfo(
        is_resource_request=True,
        path="/apis/rbac.authorization.k8s.io/v1beta1/clusterroles/edit",
        verb="get",
        api_group="rbac.authorization.k8s.io",
        api_version="v1beta1",
        resource="clusterroles",
        name="edit",
    ),
    "nonResource": RequestInfo(is_resource_request=False, path="/logs/kubelet.log", verb="get"),
    "subresource": RequestInfo(
        is_resource_request=True,
        path="/api/v1/namespaces/default/pods/busybox",
        verb="get",
        api_version="v1",
        namespace="default",
        resource="pods",
        subresource="log",
        name="busybox",
    ),
}
ATTRS["Unauthorized"] = ATTRS["namespaced"]

# checker_test.go `rules`, in the file's YAML form.
RULES: dict[str, dict[str, Any]] = {
    "default": {"level": "Metadata"},
    "create": {"level": "Request", "verbs": ["create"]},
    "tims": {"level": "Metadata", "users": ["tim@k8s.io"]},
    "humans": {"level": "Metadata", "userGroups": ["humans"]},
    "serviceAccounts": {"level": "Request", "userGroups": ["system:serviceaccounts"]},
    "getPods": {
        "level": "RequestResponse",
        "verbs": ["get"],
        "resources": [{"resources": ["pods"]}],
    },
    "getPodLogs": {
        "level": "Request",
        "verbs": ["get"],
        "resources": [{"resources": ["pods/log"]}],
    },
    "getPodWildcardMatching": {
        "level": "Request",
        "verbs": ["get"],
        "resources": [{"resources": ["*"]}],
    },
    "getPodResourceWildcardMatching": {
        "level": "Request",
        "verbs": ["get"],
        "resources": [{"resources": ["*/log"]}],
    },
    "getPodSubResourceWildcardMatching": {
        "level": "Request",
        "verbs": ["get"],
        "resources": [{"resources": ["pods/*"]}],
    },
    "getClusterRoles": {
        "level": "RequestResponse",
        "verbs": ["get"],
        "resources": [{"group": "rbac.authorization.k8s.io", "resources": ["clusterroles"]}],
        "namespaces": [""],
    },
    "getLogs": {"level": "RequestResponse", "verbs": ["get"], "nonResourceURLs": ["/logs*"]},
    "getMetrics": {"level": "Request", "verbs": ["get"], "nonResourceURLs": ["/metrics"]},
    "clusterRoleEdit": {
        "level": "Request",
        "resources": [
            {
                "group": "rbac.authorization.k8s.io",
                "resources": ["clusterroles"],
                "resourceNames": ["edit"],
            }
        ],
    },
    "omit RequestReceived": {"level": "Request", "omitStages": ["RequestReceived"]},
    "only audit panic": {
        "level": "Request",
        "omitStages": ["RequestReceived", "ResponseStarted", "ResponseComplete"],
    },
}

# testAuditLevel: (request, expected level, rule names).
LEVEL_CASES = [
    ("namespaced", "Metadata", ["default"]),
    ("namespaced", "None", ["create"]),
    ("namespaced", "Metadata", ["tims"]),
    ("namespaced", "Metadata", ["humans"]),
    ("namespaced", "None", ["serviceAccounts"]),
    ("namespaced", "RequestResponse", ["getPods"]),
    ("namespaced", "None", ["getClusterRoles"]),
    ("namespaced", "None", ["getLogs"]),
    ("namespaced", "None", ["getMetrics"]),
    ("namespaced", "Metadata", ["getMetrics", "serviceAccounts", "default"]),
    ("namespaced", "RequestResponse", ["getMetrics", "getPods", "default"]),
    ("namespaced", "RequestResponse", ["getPodLogs", "getPods"]),
    ("cluster", "Metadata", ["default"]),
    ("cluster", "None", ["create"]),
    ("cluster", "Metadata", ["tims"]),
    ("cluster", "Metadata", ["humans"]),
    ("cluster", "None", ["serviceAccounts"]),
    ("cluster", "None", ["getPods"]),
    ("cluster", "RequestResponse", ["getClusterRoles"]),
    ("cluster", "Request", ["clusterRoleEdit", "getClusterRoles"]),
    ("cluster", "None", ["getLogs"]),
    ("cluster", "None", ["getMetrics"]),
    ("cluster", "Metadata", ["getMetrics", "serviceAccounts", "default"]),
    ("cluster", "RequestResponse", ["getMetrics", "getClusterRoles", "default"]),
    ("cluster", "None", ["getPodLogs", "getPods"]),
    ("nonResource", "Metadata", ["default"]),
    ("nonResource", "None", ["create"]),
    ("nonResource", "Metadata", ["tims"]),
    ("nonResource", "Metadata", ["humans"]),
    ("nonResource", "None", ["serviceAccounts"]),
    ("nonResource", "None", ["getPods"]),
    ("nonResource", "None", ["getClusterRoles"]),
    ("nonResource", "RequestResponse", ["getLogs"]),
    ("nonResource", "None", ["getMetrics"]),
    ("nonResource", "Metadata", ["getMetrics", "serviceAccounts", "default"]),
    ("nonResource", "RequestResponse", ["getLogs", "getClusterRoles", "default"]),
    ("nonResource", "None", ["getPodLogs", "getPods"]),
    ("subresource", "Request", ["getPodLogs", "getPods"]),
    ("subresource", "Request", ["getPodWildcardMatching"]),
    ("subresource", "Request", ["getPodResourceWildcardMatching"]),
    ("subresource", "Request", ["getPodSubResourceWildcardMatching"]),
    ("Unauthorized", "None", ["tims"]),
    ("Unauthorized", "Metadata", ["tims", "default"]),
    ("Unauthorized", "None", ["humans"]),
    ("Unauthorized", "Metadata", ["humans", "default"]),
]

RR, RS, RC = Stage.REQUEST_RECEIVED, Stage.RESPONSE_STARTED, Stage.RESPONSE_COMPLETE


def policy_yaml(rules: list[dict[str, Any]], **top: Any) -> str:
    return yaml.safe_dump(
        {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", **top, "rules": rules}
    )


def evaluate(
    request: str, rule_names: list[str], policy_stages: list[str] | None = None
) -> tuple[Level, frozenset[Stage]]:
    top = {"omitStages": policy_stages} if policy_stages else {}
    policy = parse_policy(policy_yaml([RULES[name] for name in rule_names], **top))
    user = None if request == "Unauthorized" else TIM
    config = policy.evaluate(user, ATTRS[request])
    return config.level, config.omit_stages


@pytest.mark.parametrize(
    "policy_stages",
    [None, ["RequestReceived", "ResponseStarted"]],
    ids=["no-policy-stages", "policy-stages"],
)
@pytest.mark.parametrize(
    ("request_name", "level", "rule_names"),
    LEVEL_CASES,
    ids=[f"{r}-{'+'.join(n)}" for r, _, n in LEVEL_CASES],
)
def test_checker_levels(
    request_name: str, level: str, rule_names: list[str], policy_stages: list[str] | None
) -> None:
    got_level, got_stages = evaluate(request_name, rule_names, policy_stages)
    assert got_level == Level(level)
    # Without a matching rule, or with rules that omit nothing, the policy's stages apply.
    assert got_stages == frozenset(Stage(s) for s in policy_stages or [])


@pytest.mark.parametrize(
    ("request_name", "rule_names", "policy_stages", "level", "stages"),
    [
        # TestChecker: per-rule omitStages.
        ("namespaced", ["omit RequestReceived", "getPods", "default"], None, Level.REQUEST, {RR}),
        (
            "namespaced",
            ["only audit panic", "getPods", "default"],
            None,
            Level.REQUEST,
            {RR, RS, RC},
        ),
        ("cluster", ["omit RequestReceived", "getPods", "default"], None, Level.REQUEST, {RR}),
        ("cluster", ["only audit panic", "getPods", "default"], None, Level.REQUEST, {RR, RS, RC}),
        ("nonResource", ["omit RequestReceived", "getPods", "default"], None, Level.REQUEST, {RR}),
        (
            "nonResource",
            ["only audit panic", "getPods", "default"],
            None,
            Level.REQUEST,
            {RR, RS, RC},
        ),
        # TestCheckerPolicyOmitStages: united with the policy's.
        (
            "namespaced",
            ["omit RequestReceived", "getPods", "default"],
            ["RequestReceived", "ResponseStarted"],
            Level.REQUEST,
            {RR, RS},
        ),
        (
            "namespaced",
            ["only audit panic", "getPods", "default"],
            ["RequestReceived", "ResponseStarted"],
            Level.REQUEST,
            {RR, RS, RC},
        ),
        (
            "cluster",
            ["omit RequestReceived", "getPods", "default"],
            ["RequestReceived", "ResponseStarted"],
            Level.REQUEST,
            {RR, RS},
        ),
        (
            "nonResource",
            ["default", "omit RequestReceived", "getPods"],
            ["RequestReceived", "ResponseStarted"],
            Level.METADATA,
            {RR, RS},
        ),
        (
            "nonResource",
            ["only audit panic", "getPods", "default"],
            ["RequestReceived", "ResponseStarted"],
            Level.REQUEST,
            {RR, RS, RC},
        ),
    ],
)
def test_checker_omit_stages(
    request_name: str,
    rule_names: list[str],
    policy_stages: list[str] | None,
    level: Level,
    stages: set[Stage],
) -> None:
    assert evaluate(request_name, rule_names, policy_stages) == (level, frozenset(stages))


# Our own requests, through the real RequestInfo, with resource rules written for this adapter.
PODS_METRIC = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/demo/pods/*/http_requests"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/queue_depth"


@pytest.mark.parametrize(
    ("rule", "method", "path", "query", "matches"),
    [
        ({"resources": [{"group": "custom.metrics.k8s.io"}]}, "GET", PODS_METRIC, {}, True),
        (
            {"resources": [{"group": "custom.metrics.k8s.io", "resources": ["pods/*"]}]},
            "GET",
            PODS_METRIC,
            {},
            True,
        ),
        (
            {"resources": [{"group": "custom.metrics.k8s.io", "resources": ["*/http_requests"]}]},
            "GET",
            PODS_METRIC,
            {},
            True,
        ),
        (
            {"resources": [{"group": "custom.metrics.k8s.io", "resources": ["pods"]}]},
            "GET",
            PODS_METRIC,
            {},
            False,
        ),
        (
            {
                "resources": [
                    {
                        "group": "custom.metrics.k8s.io",
                        "resources": ["pods/*"],
                        "resourceNames": ["*"],
                    }
                ]
            },
            "GET",
            PODS_METRIC,
            {},
            True,
        ),
        (
            {
                "resources": [
                    {
                        "group": "custom.metrics.k8s.io",
                        "resources": ["pods/*"],
                        "resourceNames": ["web-0"],
                    }
                ]
            },
            "GET",
            PODS_METRIC,
            {},
            False,
        ),
        ({"resources": [{"group": ""}]}, "GET", PODS_METRIC, {}, False),
        ({"namespaces": ["demo"]}, "GET", PODS_METRIC, {}, True),
        ({"namespaces": ["kube-system"]}, "GET", PODS_METRIC, {}, False),
        ({"namespaces": ["demo"]}, "GET", "/apis/custom.metrics.k8s.io/v1beta2", {}, False),
        ({"verbs": ["list"]}, "GET", EXTERNAL, {}, True),
        ({"verbs": ["get"]}, "GET", EXTERNAL, {}, False),
        (
            {"resources": [{"group": "external.metrics.k8s.io", "resources": ["queue_depth"]}]},
            "GET",
            EXTERNAL,
            {},
            True,
        ),
        ({"nonResourceURLs": ["/apis/*"]}, "GET", "/apis/custom.metrics.k8s.io/v1beta2", {}, True),
        ({"nonResourceURLs": ["/apis*"]}, "GET", "/apis", {}, True),
        ({"nonResourceURLs": ["/apis/*"]}, "GET", PODS_METRIC, {}, False),
        ({"nonResourceURLs": ["*"]}, "GET", "/healthz", {}, True),
        ({"nonResourceURLs": ["/healthz"]}, "GET", "/healthz/ping", {}, False),
        ({"nonResourceURLs": ["/healthz*"]}, "GET", "/healthz/ping", {}, True),
        ({"verbs": ["get"], "nonResourceURLs": ["/version"]}, "HEAD", "/version", {}, False),
        ({"verbs": ["head"], "nonResourceURLs": ["/version"]}, "HEAD", "/version", {}, True),
        ({"userGroups": ["system:unauthenticated"]}, "GET", "/version", {}, True),
        ({"users": ["system:anonymous"]}, "GET", "/version", {}, True),
        ({"users": ["bob"]}, "GET", "/version", {}, False),
    ],
)
def test_rules_on_our_requests(
    rule: dict[str, Any], method: str, path: str, query: dict[str, str], matches: bool
) -> None:
    policy = parse_policy(policy_yaml([{"level": "Metadata", **rule}]))
    level = policy.evaluate(ANONYMOUS, new_request_info(method, path, query)).level
    assert level == (Level.METADATA if matches else Level.NONE)


def test_first_matching_rule_wins_and_default_is_none() -> None:
    policy = parse_policy(
        policy_yaml(
            [
                {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*"]},
                {"level": "RequestResponse", "users": ["tim@k8s.io"]},
                {"level": "Metadata", "resources": [{"group": "custom.metrics.k8s.io"}]},
            ]
        )
    )
    assert policy.evaluate(TIM, new_request_info("GET", "/readyz")).level is Level.NONE
    assert (
        policy.evaluate(TIM, new_request_info("GET", PODS_METRIC)).level is Level.REQUEST_RESPONSE
    )
    assert policy.evaluate(ANONYMOUS, new_request_info("GET", PODS_METRIC)).level is Level.METADATA
    assert policy.evaluate(ANONYMOUS, new_request_info("GET", "/version")).level is Level.NONE


def test_omit_managed_fields_is_read() -> None:
    policy = parse_policy(
        policy_yaml([{"level": "Metadata", "omitManagedFields": False}], omitManagedFields=True)
    )
    assert policy.omit_managed_fields is True
    assert policy.rules[0].omit_managed_fields is False


# --- loading and validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "top", "message"),
    [
        ([{"verbs": ["get"]}], {}, "rules[0].level: Required value"),
        (
            [{"level": "Everything"}],
            {},
            'rules[0].level: Unsupported value: "Everything": supported values: "None", "Metadata", "Request", "RequestResponse"',
        ),
        (
            [{"level": "None", "nonResourceURLs": ["healthz"]}],
            {},
            "rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules must begin with a '/' character",
        ),
        (
            [{"level": "None", "nonResourceURLs": ["/a*/b"]}],
            {},
            "rules[0].nonResourceURLs[0]: Invalid value: \"/a*/b\": non-resource URL wildcards '*' must be the final character of the rule",
        ),
        (
            [{"level": "None", "nonResourceURLs": ["/metrics"], "namespaces": ["demo"]}],
            {},
            'rules[0].nonResourceURLs: Invalid value: []string{"/metrics"}: rules cannot apply to both regular resources and non-resource URLs',
        ),
        (
            [{"level": "None", "resources": [{"group": "Custom.Metrics"}]}],
            {},
            'rules[0].resources.group: Invalid value: "Custom.Metrics": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters',
        ),
        (
            [
                {
                    "level": "None",
                    "resources": [{"group": "custom.metrics.k8s.io", "resourceNames": ["x"]}],
                }
            ],
            {},
            'rules[0].resources.resourceNames: Invalid value: []string{"x"}: using resourceNames requires at least one resource',
        ),
        (
            [{"level": "None", "omitStages": ["Done"]}],
            {},
            'rules[0].omitStages[0]: Invalid value: "Done": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic',
        ),
        (
            [{"level": "None"}],
            {"omitStages": ["Never"]},
            'omitStages[0]: Invalid value: "Never": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic',
        ),
        ([], {}, "loaded illegal policy with 0 rules"),
        (
            [{"level": "None", "users": "alice"}],
            {},
            "failed decoding: rules[0].users: cannot unmarshal string into []string",
        ),
        (
            [{"level": "None", "verbs": ["get", 1]}],
            {},
            "failed decoding: rules[0].verbs[1]: cannot unmarshal number into string",
        ),
    ],
)
def test_invalid_policies(rules: list[dict[str, Any]], top: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(policy_yaml(rules, **top))
    assert str(caught.value).startswith(message)


def test_several_errors_are_reported_together() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(policy_yaml([{"verbs": ["get"]}, {"level": "Some"}]))
    assert str(caught.value).startswith(
        "[rules[0].level: Required value, rules[1].level: Unsupported value"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: []", "failed decoding: Object 'Kind' is missing"),
        (
            "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]",
            'failed decoding: no kind "Policy" is registered for version "audit.k8s.io/v1beta1"',
        ),
        (
            "apiVersion: audit.k8s.io/v1\nkind: Event\n",
            'failed decoding: expected kind "Policy", got "Event"',
        ),
        ("- a\n- b\n", "failed decoding: the policy must be a YAML mapping"),
        ("key: [unclosed", "failed decoding: "),
    ],
)
def test_undecodable_policies(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert str(caught.value).startswith(message)


def test_unknown_fields_warn_and_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    text = policy_yaml([{"level": "Metadata", "verb": ["get"]}], extra=True)
    with caplog.at_level(logging.WARNING):
        policy = parse_policy(text)
    assert policy.rules[0].verbs == frozenset()
    assert (
        'Audit policy contains errors, falling back to lenient decoding: strict decoding error: unknown field "extra", unknown field "rules[0].verb"'
        in caplog.text
    )


def test_load_policy_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_yaml([{"level": "Loud"}]))
    with pytest.raises(PolicyError) as caught:
        load_policy(str(path))
    assert str(caught.value) == (
        'loading audit policy file: rules[0].level: Unsupported value: "Loud": supported values: '
        f'"None", "Metadata", "Request", "RequestResponse": from file {path}'
    )
    with pytest.raises(
        PolicyError, match=r'^loading audit policy file: failed to read file path ".*missing.yaml"'
    ):
        load_policy(str(tmp_path / "missing.yaml"))


def test_a_typical_policy_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        """\
apiVersion: audit.k8s.io/v1
kind: Policy
metadata:
  name: adapter
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/metrics"]
  - level: None
    users: ["system:kube-aggregator"]
  - level: RequestResponse
    resources:
      - group: custom.metrics.k8s.io
        resources: ["pods/*"]
  - level: Metadata
"""
    )
    policy = load_policy(str(path))
    assert len(policy.rules) == 4
    assert policy.rules[2].omit_stages == frozenset({Stage.REQUEST_RECEIVED})
