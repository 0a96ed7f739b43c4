"""Time compiling and rendering representative adapter templates (no assertions).

Run: PYTHONPATH=. python benchmarks/bench_go_template.py
"""

import time
from collections.abc import Callable, Mapping

from adapter.gotemplate.template import FieldKind, compile_template

QUERY_FIELDS = {
    "Series": FieldKind.STRING,
    "LabelMatchers": FieldKind.STRING,
    "LabelValuesByName": FieldKind.STRING_MAP,
    "GroupBy": FieldKind.STRING,
    "GroupBySlice": FieldKind.STRING_LIST,
}
RESOURCE_FIELDS = {"Group": FieldKind.STRING, "Resource": FieldKind.STRING}

QUERY_DATA: Mapping[str, object] = {
    "Series": "container_cpu_usage_seconds_total",
    "LabelMatchers": 'namespace="default",pod=~"web-1|web-2"',
    "LabelValuesByName": {"namespace": "default", "pod": "web-1|web-2"},
    "GroupBy": "pod",
    "GroupBySlice": ["pod", "container"],
}

CASES: list[tuple[str, str, Mapping[str, FieldKind], Mapping[str, object]]] = [
    (
        "simple query",
        "sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)",
        QUERY_FIELDS,
        QUERY_DATA,
    ),
    (
        "range + index",
        'sum(<<.Series>>{<<.LabelMatchers>>,ns="<<index .LabelValuesByName "namespace">>"})'
        " by (<<- range $i, $v := .GroupBySlice >><<if $i>>,<<end>><<$v>><<- end>>)",
        QUERY_FIELDS,
        QUERY_DATA,
    ),
    (
        "resource label",
        "<<.Group>>_<<.Resource>>",
        RESOURCE_FIELDS,
        {"Group": "apps", "Resource": "deployment"},
    ),
]


def per_call_us(fn: Callable[[], object], iterations: int) -> float:
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations * 1e6


def bench(
    label: str, source: str, fields: Mapping[str, FieldKind], data: Mapping[str, object]
) -> None:
    template = compile_template(source, fields)
    compile_us = per_call_us(lambda: compile_template(source, fields), 2_000)
    render_us = per_call_us(lambda: template.render(data), 200_000)
    print(f"{label:15} compile {compile_us:8.1f} us   render {render_us:6.2f} us")


def main() -> None:
    for case in CASES:
        bench(*case)


if __name__ == "__main__":
    main()
