"""Live config reload: valid changes applied, invalid ones kept out, ConfigMap-style swaps."""

import asyncio
import os
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from adapter.naming.rules import CompiledConfig, load_rules
from adapter.server.reload import ConfigReloader, ConfigReloadMetrics, config_hash

RULE = """rules:
- seriesQuery: '{SERIES}{{namespace!="",pod!=""}}'
  resources: {{overrides: {{namespace: {{resource: namespace}}, pod: {{resource: pod}}}}}}
  metricsQuery: 'sum(<<.Series>>{{<<.LabelMatchers>>}}) by (<<.GroupBy>>)'
"""


def write(path: Path, series: str) -> None:
    path.write_text(RULE.format(SERIES=series))


class Applied:
    def __init__(self) -> None:
        self.configs: list[CompiledConfig] = []

    async def __call__(self, compiled: CompiledConfig) -> None:
        self.configs.append(compiled)


def make(path: Path) -> tuple[ConfigReloader, Applied, CollectorRegistry]:
    registry = CollectorRegistry()
    applied = Applied()
    reloader = ConfigReloader(
        str(path),
        lambda: load_rules(path),
        applied,
        ConfigReloadMetrics(registry),
        poll_interval=0.01,
    )
    return reloader, applied, registry


def metric_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


async def test_valid_change_is_applied_and_invalid_one_kept_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    reloader, applied, registry = make(path)
    first_hash = reloader.hash
    assert f'prometheus_adapter_config_info{{sha256="{first_hash}"}} 1.0' in metric_text(registry)
    assert not await reloader.reload("SIGHUP")  # unchanged content: nothing to do
    write(path, "second")
    assert await reloader.reload("SIGHUP")
    assert applied.configs[-1].rules[0].series_query.startswith("second")
    text = metric_text(registry)
    assert f'sha256="{config_hash(path)}"' in text and first_hash not in text
    assert 'prometheus_adapter_config_reloads_total{result="success"} 1.0' in text
    # A broken config: every error logged, counted, the old config stays.
    path.write_text("rules:\n- seriesQuery: x\n  metricQuery: y\n  name: {matches: '(a'}\n")
    assert not await reloader.reload("SIGHUP")
    assert len(applied.configs) == 1
    assert "rules[0].metricQuery" in caplog.text and "rules[0].name.matches" in caplog.text
    text = metric_text(registry)
    assert 'prometheus_adapter_config_reloads_total{result="failure"} 1.0' in text
    assert "prometheus_adapter_config_last_reload_successful 0.0" in text


async def test_watch_sees_a_configmap_symlink_swap(tmp_path: Path) -> None:
    # A mounted ConfigMap: config.yaml -> ..data/config.yaml, ..data -> ..2026_v1
    for version, series in (("..v1", "first"), ("..v2", "second")):
        (tmp_path / version).mkdir()
        write(tmp_path / version / "config.yaml", series)
    (tmp_path / "..data").symlink_to("..v1")
    (tmp_path / "config.yaml").symlink_to("..data/config.yaml")
    path = tmp_path / "config.yaml"
    reloader, applied, _ = make(path)
    task = asyncio.create_task(reloader.watch())
    try:
        (tmp_path / "..data_tmp").symlink_to("..v2")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")  # the kubelet's atomic swap
        for _ in range(300):
            if applied.configs:
                break
            await asyncio.sleep(0.01)
        assert applied.configs and applied.configs[0].rules[0].series_query.startswith("second")
    finally:
        task.cancel()


async def test_request_reload_runs_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    reloader, applied, _ = make(path)
    write(path, "third")
    reloader.request_reload()
    for _ in range(300):
        if applied.configs:
            break
        await asyncio.sleep(0.01)
    assert applied.configs[0].rules[0].series_query.startswith("third")
