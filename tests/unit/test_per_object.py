import pytest

from adapter.providers.per_object import shared_query_problem

M = 'pod!=""'  # the object matcher of a namespace-wide query


@pytest.mark.parametrize(
    "query",
    [
        f'sum(rate(x{{namespace="a",{M}}}[5m])) by (pod)',
        f'sum by (pod) (rate(x{{namespace="a",{M}}}[5m]))',
        f"SUM(x{{{M}}}) BY (namespace, pod)",
        f'sum(x{{{M},container!="POD"}}) by (pod) / 1024',
        f"sum(a{{{M}}}) by (pod) / sum(b{{{M}}}) by (pod)",
        f"max(max_over_time(x{{{M}}}[5m:1m])) by (pod) > 0",
        f"histogram_quantile(0.9, sum(rate(x_bucket{{{M}}}[5m])) by (le, pod))",
        f'sum(x{{{M},path="/a}}(b"}}) by (pod)',  # braces and parens inside strings
        f"sum(x{{{M}}}) by (pod) or vector(0)",
        f'sum(x{{{M}}} offset 1m) by (pod) / sum(total{{job="a"}})',  # constant denominator
    ],
)
def test_per_object_queries_can_be_shared(query: str) -> None:
    assert shared_query_problem(query, M, "pod") is None


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        (f"rate(x{{{M}}}[5m])", "does not aggregate by"),
        (f"sum(x{{{M}}}) by (namespace)", "not by (pod)"),
        (f"sum(x{{{M}}})", "not by (pod)"),
        (f"sum(sum(x{{{M}}}) by (pod))", "not by (pod)"),
        (f"count(x{{{M}}}) without (container)", "'without'"),
        (f"topk(3, sum(x{{{M}}}) by (pod))", "'topk'"),
        (f"sum(x{{{M}}}) by (pod) / on() group_left scalar(sum(x{{{M}}}))", "'on'"),
        (f'label_replace(sum(x{{{M}}}) by (pod), "pod", "$1", "p", "(.*)")', "label_replace"),
        ('sum(x{pod="a|b"}) by (pod)', "no selector"),
    ],
)
def test_cross_object_queries_are_not_shared(query: str, reason: str) -> None:
    problem = shared_query_problem(query, M, "pod")
    assert problem is not None and reason in problem
