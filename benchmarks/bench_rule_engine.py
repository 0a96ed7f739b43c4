"""Rule-engine costs: loading configs, and building the PromQL for one request.

Run: `python benchmarks/bench_rule_engine.py` (from the repository root, with the package
installed or PYTHONPATH=.). Prints microseconds per operation; no assertions.
"""

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from adapter.apimachinery.labels import EVERYTHING, parse_selector
from adapter.apimachinery.quantity import decimal_si_quantity
from adapter.kube.rest_mapper import PODS
from adapter.naming.rules import load_rules

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def per_call_us(fn: Callable[[], object], seconds: float = 0.3) -> float:
    calls = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(50):
            fn()
        calls += 50
    return elapsed / calls * 1e6


def main() -> None:
    rows: list[tuple[str, float]] = []
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        rows.append((f"load + compile {path.name}", per_call_us(partial(load_rules, path), 1.0)))

    helm = load_rules(CONFIG_DIR / "helm-default-rules.yaml").rules[0]
    pods_100 = [f"pod-{i}" for i in range(100)]
    selector = parse_selector("app=web,tier in (a,b)")
    series = "container_cpu_usage_seconds_total"
    cases: dict[str, Callable[[], object]] = {
        "query: named pod": lambda: helm.query.build("s", PODS, "ns", ["p1"], EVERYTHING),
        "query: 100 pods": lambda: helm.query.build("s", PODS, "ns", pods_100, EVERYTHING),
        "query: pod + metricLabelSelector": lambda: helm.query.build(
            "s", PODS, "ns", ["p1"], selector
        ),
        "parse label selector (2 requirements)": lambda: parse_selector("app=web,tier in (a,b)"),
        "series name -> metric name": lambda: helm.namer.metric_name_for_series(series),
        "series filters (keeps)": lambda: helm.keeps(series),
        "quantity 0.0166 -> 16m": lambda: decimal_si_quantity(0.0166),
    }
    rows += [(name, per_call_us(fn)) for name, fn in cases.items()]
    width = max(len(name) for name, _ in rows)
    for name, micros in rows:
        print(f"{name:<{width}}  {micros:10.1f} µs")


if __name__ == "__main__":
    main()
