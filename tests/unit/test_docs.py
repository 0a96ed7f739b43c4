"""The documentation covers what the code defines: flags, config fields, template variables,
the adapter's own metrics; and its relative links point at files that exist."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from adapter.naming.metrics_query import METRICS_QUERY_FIELDS
from adapter.naming.resource_converter import RESOURCE_LABEL_FIELDS
from adapter.options import build_parser
from adapter.server.metrics import AdapterMetrics
from adapter.server.reload import ConfigReloadMetrics

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LOADER = ROOT / "adapter" / "config" / "loader.py"

# The YAML keys the loader accepts, listed here so that a missing doc entry names the key;
# test_config_keys_match_loader keeps this list equal to what the loader's decoders accept.
CONFIG_KEYS = frozenset(
    {
        # top level
        "rules", "externalRules", "resourceRules",
        # rules[] and externalRules[]
        "seriesQuery", "seriesFilters", "resources", "name", "metricsQuery",
        "labelValueReplacements",
        # seriesFilters[]
        "is", "isNot",
        # resources
        "template", "overrides", "namespaced",
        # resources.overrides.<label>
        "group", "resource",
        # name
        "matches", "as",
        # labelValueReplacements[]
        "find", "replace",
        # resourceRules
        "cpu", "memory", "window",
        # resourceRules.cpu / .memory
        "containerQuery", "nodeQuery", "containerLabel",
        # prometheusServers (not in the Go adapter), and rules', resourceRules' prometheusServer
        "prometheusServers", "prometheusServer", "url", "headers", "tokenFile", "caFile",
        "clientCertFile", "clientKeyFile", "verb", "timeout",
    }
)  # fmt: skip


def _read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _loader_keys() -> set[str]:
    """The dict keys passed as the `fields` argument of every `_decode_fields` call."""
    tree = ast.parse(LOADER.read_text(encoding="utf-8"))
    keys: set[str] = set()
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "_decode_fields"
        ):
            continue
        fields = node.args[3] if len(node.args) > 3 else None
        for kw in node.keywords:
            if kw.arg == "fields":
                fields = kw.value
        assert isinstance(fields, ast.Dict), f"line {node.lineno}: fields is not a dict literal"
        for key in fields.keys:
            assert isinstance(key, ast.Constant) and isinstance(key.value, str)
            keys.add(key.value)
    return keys


# (a) flags


def test_every_flag_in_help_is_documented() -> None:
    flags = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", build_parser().format_help()))
    assert len(flags) > 50
    text = _read("flags.md")
    missing = sorted(flag for flag in flags if f"`{flag}`" not in text and flag not in text)
    assert not missing, f"flags missing from docs/flags.md: {missing}"


def test_flags_doc_is_current() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate-flags-doc.py"), "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# (b) config fields


def test_config_keys_match_loader() -> None:
    assert _loader_keys() == CONFIG_KEYS


@pytest.mark.parametrize("key", sorted(CONFIG_KEYS))
def test_config_key_documented(key: str) -> None:
    assert f"`{key}`" in _read("configuration.md"), f"`{key}` not in docs/configuration.md"


# (c) template variables


@pytest.mark.parametrize("field", sorted([*METRICS_QUERY_FIELDS, *RESOURCE_LABEL_FIELDS]))
def test_template_field_documented(field: str) -> None:
    text = _read("configuration.md")
    assert f"`{field}`" in text, f"template variable `{field}` not in docs/configuration.md"
    assert f".{field}" in text, f"`.{field}` (as written in templates) not in the examples"


# (d) the adapter's own metrics


def _metric_names() -> set[str]:
    adapter = AdapterMetrics("http://prometheus:9090")
    registries: list[CollectorRegistry] = [adapter.registry]
    reload_registry = CollectorRegistry()
    ConfigReloadMetrics(reload_registry)
    registries.append(reload_registry)
    # Collector names, without the _total/_bucket/... suffixes of their samples.
    return {metric.name for registry in registries for metric in registry.collect()}


def test_metric_names_found() -> None:
    names = _metric_names()
    assert "prometheus_adapter_requests" in names
    assert "prometheus_adapter_config_reloads" in names


@pytest.mark.parametrize("name", sorted(_metric_names()))
def test_metric_documented(name: str) -> None:
    text = _read("operations.md")
    # Counters are exposed with _total; the doc must use the exposed name.
    candidates = [name, f"{name}_total"]
    assert any(re.search(rf"`{re.escape(c)}[`{{]", text) for c in candidates), (
        f"{name} not in docs/operations.md"
    )


# (e) links

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def test_docs_exist() -> None:
    names = {p.name for p in _doc_files()}
    expected = {"configuration.md", "flags.md", "installation.md", "operations.md", "runbooks.md"}
    assert expected <= names


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in _LINK.findall(doc.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # absolute URL, or an anchor in the same file
        path = target.split("#", 1)[0]
        if not (doc.parent / path).exists():
            broken.append(target)
    assert not broken, f"broken links in {doc.name}: {broken}"


def test_layout_names_every_package_and_only_existing_ones() -> None:
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "docs" / "layout.md").read_text()
    named = set(re.findall(r"`adapter/(\w+)/`", text))
    packages = {p.parent.name for p in (repo / "adapter").glob("*/__init__.py")}
    assert named == packages
    for module in re.findall(r"`(\w+\.py)`", text):
        assert list((repo / "adapter").rglob(module)), module
