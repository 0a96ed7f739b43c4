"""Why a metric an HPA asks for does not work, each problem with the one-line fix it suggests.

A metric the rules do not serve: the rules whose metric names, series names or queries come
closest to the name asked for (difflib), and for each why it does not produce the metric,
from the same live data as `check-config --prometheus-url` (`adapter.check.live`): the series
query found nothing, a filter dropped the series, the series have no label that maps to the
resource asked for. Then the cluster's side: a selector that matches no pods, pods without
a sample, an APIService that is not available, an aggregator answer that differs.
"""

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

from adapter.naming.rules import CompiledConfig, MetricRule

__all__ = ["Problem", "aggregator_problems", "closest_rules", "pod_problems"]

Problem = dict[str, str]  # {"problem": ..., "fix": ...}
_CLOSEST = 3
_CUTOFF = 0.5


def _problem(problem: str, fix: str) -> Problem:
    return {"problem": problem, "fix": fix}


def _score(wanted: str, candidates: Sequence[str]) -> tuple[float, str]:
    best = (0.0, "")
    for candidate in candidates:
        ratio = difflib.SequenceMatcher(None, wanted.lower(), candidate.lower()).ratio()
        best = max(best, (ratio, candidate))
    return best


def _series_names(live: Mapping[str, Any]) -> list[str]:
    filters = live.get("filters") or {}
    names = list((filters.get("kept") or {}).get("examples") or ())
    names += [d["series"] for d in (filters.get("dropped") or {}).get("examples") or ()]
    return names


def _why(
    rule: MetricRule, live: Mapping[str, Any], metric: str, resource: str, window: str
) -> Problem:
    """Why `rule` does not serve `resource/metric` (resource "" for an external metric)."""
    query = rule.series_query
    if live.get("error"):
        return _problem(
            f"{rule.path}: Prometheus rejected the seriesQuery {query}: {live['error']}",
            "fix the seriesQuery's syntax",
        )
    if not (live.get("series") or {}).get("count"):
        return _problem(
            f"{rule.path}: the seriesQuery {query} found no series in the last {window}",
            f"check that Prometheus has {query} (run it in Prometheus), or widen the seriesQuery",
        )
    dropped = (live.get("filters") or {}).get("dropped") or {}
    for entry in dropped.get("examples") or ():
        if _score(metric, [entry["series"]])[0] >= _CUTOFF and not (live.get("metrics") or ()):
            return _problem(
                f"{rule.path}: the series {entry['series']} is dropped by {entry['filter']}",
                "widen seriesFilters or name.matches so that the series is kept",
            )
    produced = list(live.get("metrics") or ())
    same = [m for m in produced if m["name"] == metric]
    if same:
        served = sorted({r["resource"] for m in same for r in m.get("resources") or ()})
        if resource and resource not in served:
            return _problem(
                f"{rule.path}: {metric} is served for {', '.join(served) or 'no resource'}, not "
                f"{resource}: no label of its series maps to {resource}",
                _override_fix(rule, live, resource),
            )
        return _problem(
            f"{rule.path}: serves {metric}, yet the request failed",
            "see the request's log and PromQL above",
        )
    if not produced:
        return _problem(
            f"{rule.path}: no kept series has a label that maps to a resource, so the rule "
            "defines no metric",
            _override_fix(rule, live, resource or "namespaces"),
        )
    names = sorted({m["name"] for m in produced})
    closest = _score(metric, names)[1] or names[0]
    return _problem(
        f"{rule.path}: names its metric {closest}, not {metric}",
        f"ask for {closest} in the HPA, or change name.as so that the rule names it {metric}",
    )


def _override_fix(rule: MetricRule, live: Mapping[str, Any], resource: str) -> str:
    labels = sorted(
        {
            label
            for example in (live.get("series") or {}).get("examples") or ()
            for label in example["labels"]
        }
    )
    singular = resource.split(".", maxsplit=1)[0].removesuffix("s")
    guess = next((label for label in labels if singular in label.lower()), None)
    mapped = ", ".join(f"{k}->{v}" for k, v in sorted(rule.converter.overrides.items()))
    if guess is not None:
        return (
            f"map the label that holds the {singular} name: resources.overrides: "
            f"{{{guess}: {{resource: {singular}}}}} (now: {mapped or 'a template'})"
        )
    return (
        f"the series' labels ({', '.join(labels) or 'none'}) name no {singular}: add the label "
        "to the series (relabelling) or map the one that holds it in resources.overrides"
    )


def closest_rules(
    compiled: CompiledConfig,
    lives: Mapping[str, Mapping[str, Any]],
    metric: str,
    resource: str,
    external: bool,
    window: str,
) -> list[dict[str, Any]]:
    """The rules whose names or series come closest to `metric`, with why each misses.
    `lives` maps rule paths to `check.live` rule reports; `resource` is "" for external."""
    rules = compiled.external_rules if external else compiled.rules
    scored: list[tuple[float, MetricRule]] = []
    for rule in rules:
        live = lives.get(rule.path) or {}
        names = [m["name"] for m in live.get("metrics") or ()]
        names += _series_names(live)
        names += [rule.series_query, rule.namer.matches.pattern]
        scored.append((_score(metric, names)[0], rule))
    scored.sort(key=lambda pair: -pair[0])
    close = [pair for pair in scored if pair[0] >= _CUTOFF][:_CLOSEST] or scored[:1]
    return [
        {
            "rule": rule.path,
            "seriesQuery": rule.series_query,
            "similarity": round(score, 2),
            **_why(rule, lives.get(rule.path) or {}, metric, resource, window),
        }
        for score, rule in close
    ]


def pod_problems(
    selector: str, namespace: str, pods: Sequence[str], missing: Sequence[str], query: str | None
) -> list[Problem]:
    problems = []
    if not pods:
        problems.append(
            _problem(
                f"the scale target's selector {selector or '(empty)'} matches no pods in "
                f"{namespace}",
                "compare the target's spec.selector with its pods' labels "
                f"(kubectl get pods -n {namespace} -l '{selector}')",
            )
        )
    elif missing:
        problems.append(
            _problem(
                f"Prometheus returned no sample for {len(missing)} of {len(pods)} pods: "
                f"{', '.join(sorted(missing))}",
                "run the PromQL in Prometheus"
                + (f" ({query})" if query else "")
                + ": the pods' series must exist and carry the pod's name in the mapped label",
            )
        )
    return problems


def aggregator_problems(
    service: Mapping[str, Any],
    status: int,
    error: str,
    rules_status: int,
    same_values: bool,
    user_hint: str,
) -> list[Problem]:
    """What differs between kube-apiserver's answer and the rules' answer."""
    name = service.get("name", "")
    problems = []
    if not service.get("found"):
        if service.get("status") == 0:
            return [
                _problem(
                    f"kube-apiserver cannot be reached: {service.get('error')}",
                    "check --kubeconfig and the network; the rules' side stands on its own",
                )
            ]
        problems.append(
            _problem(
                f"the APIService {name} cannot be read: {service.get('error')}",
                f"register it (deploy/manifests/api-service.yaml) or let the user read "
                f"apiservices ({user_hint})",
            )
        )
    elif service.get("available") != "True":
        problems.append(
            _problem(
                f"the APIService {name} is not Available: {service.get('reason')} "
                f"{service.get('message')}".rstrip(),
                f"kubectl describe apiservice {name}; check the adapter's Service "
                f"{service.get('service')}, its endpoints and its /readyz",
            )
        )
    if status == 403:
        problems.append(
            _problem(
                f"kube-apiserver refuses the request (403): {error}",
                f"RBAC: grant get on the metrics API to {user_hint} (the HPA controller has it "
                "through system:controller:horizontal-pod-autoscaler)",
            )
        )
    elif status == 503 and service.get("available") == "True":
        problems.append(
            _problem(
                f"kube-apiserver answers 503: {error}",
                f"the adapter behind {name} is unavailable: check its pods and logs",
            )
        )
    elif status and status != rules_status:
        problems.append(
            _problem(
                f"kube-apiserver answers {status} where these rules answer {rules_status}"
                + (f": {error}" if error else ""),
                f"the adapter registered for {name} (service {service.get('service')}) does not "
                "run this config: another adapter, or a stale deployment",
            )
        )
    elif status == 200 and rules_status == 200 and not same_values:
        problems.append(
            _problem(
                "kube-apiserver's values differ from these rules' values",
                f"the adapter registered for {name} (service {service.get('service')}) may run "
                "another config, or the values changed between the two requests",
            )
        )
    return problems
