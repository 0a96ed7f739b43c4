"""Live config reload: valid changes applied, invalid ones kept out, ConfigMap-style swaps."""

import asyncio
import logging
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


def make(
    path: Path, *, served: CompiledConfig | None = None
) -> tuple[ConfigReloader, Applied, CollectorRegistry]:
    registry = CollectorRegistry()
    applied = Applied()
    reloader = ConfigReloader(
        str(path),
        lambda: load_rules(path),
        applied,
        ConfigReloadMetrics(registry),
        poll_interval=0.01,
        served=served,
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
    assert not await reloader.reload("SIGHUP")  # unchanged content: re-checked, not applied
    assert applied.configs == []
    write(path, "second")
    assert await reloader.reload("SIGHUP")
    assert applied.configs[-1].rules[0].series_query.startswith("second")
    text = metric_text(registry)
    assert f'sha256="{config_hash(path)}"' in text and first_hash not in text
    assert 'prometheus_adapter_config_reloads_total{result="success"} 2.0' in text
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


FAILURES = 'prometheus_adapter_config_reloads_total{result="failure"}'
SUCCESSES = 'prometheus_adapter_config_reloads_total{result="success"}'
GAUGE = "prometheus_adapter_config_last_reload_successful"


def sample(registry: CollectorRegistry, name: str) -> float:
    for line in metric_text(registry).splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(autouse=True)
def reload_info_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="adapter.server.reload")


def error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(b"", "the file is empty", id="empty"),
        pytest.param(b"  \n\t\n", "the file is whitespace only", id="whitespace"),
        pytest.param(
            b"rules: []\n", "defines no rules, externalRules or resourceRules", id="no-rules"
        ),
        pytest.param(b"# all commented out\n", "defines no rules", id="comments-only"),
        pytest.param(b"{}\n", "defines no rules", id="empty-mapping"),
    ],
)
@pytest.mark.parametrize("recheck", [False, True], ids=["file-changed", "SIGHUP"])
async def test_a_config_without_rules_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes, reason: str, recheck: bool
) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    served = path.read_bytes()
    reloader, applied, registry = make(path)
    served_hash = reloader.hash
    path.write_bytes(content)
    assert not await reloader.reload("test", recheck=recheck)
    assert applied.configs == [] and reloader.hash == served_hash
    assert (sample(registry, FAILURES), sample(registry, GAUGE)) == (1.0, 0.0)
    (line,) = error_lines(caplog)
    assert "\n" not in line and f"{path}: " in line and reason in line
    assert "the previous config stays in use" in line

    # The served content back: the gauge is 1 again, nothing applied, nothing more failed.
    path.write_bytes(served)
    assert not await reloader.reload("file changed", recheck=False)
    assert (sample(registry, GAUGE), sample(registry, FAILURES)) == (1.0, 1.0)
    assert sample(registry, SUCCESSES) == 1.0
    assert applied.configs == [] and reloader.hash == served_hash
    assert "is the config in use" in caplog.text


async def test_a_config_without_rules_is_applied_when_the_served_one_has_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# nothing yet\n")
    reloader, applied, registry = make(path)
    path.write_text("rules: []\n")
    assert await reloader.reload("SIGHUP")
    assert len(applied.configs) == 1 and sample(registry, GAUGE) == 1.0
    # Still, an empty file is refused: it is what a failed write leaves behind.
    path.write_text("")
    assert not await reloader.reload("SIGHUP")
    assert sample(registry, GAUGE) == 0.0


async def test_the_served_config_given_decides_and_the_file_is_not_loaded(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    served = load_rules(path)
    loads = 0

    def load() -> CompiledConfig:
        nonlocal loads
        loads += 1
        return load_rules(path)

    registry = CollectorRegistry()
    reloader = ConfigReloader(
        str(path), load, Applied(), ConfigReloadMetrics(registry), served=served
    )
    assert loads == 0
    path.write_text("rules: []\n")
    assert not await reloader.reload("SIGHUP")
    assert sample(registry, GAUGE) == 0.0


@pytest.mark.parametrize("how", ["directory", "missing", "chmod-000"])
async def test_an_unreadable_file_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    served = path.read_bytes()
    reloader, applied, registry = make(path)
    if how == "directory":
        path.unlink()
        path.mkdir()
    elif how == "missing":
        path.unlink()
    else:
        path.chmod(0)
        if os.access(path, os.R_OK):  # root reads it anyway (CAP_DAC_OVERRIDE)
            path.chmod(0o644)
            pytest.skip("running as root: a chmod 000 file is still readable")
    assert not await reloader.reload("file changed", recheck=False)
    assert (sample(registry, FAILURES), sample(registry, GAUGE)) == (1.0, 0.0)
    (line,) = error_lines(caplog)
    assert f"{path}: cannot read: " in line and "\n" not in line
    if path.is_dir():
        path.rmdir()
    path.write_bytes(served)
    path.chmod(0o644)
    assert not await reloader.reload("file changed", recheck=False)
    assert sample(registry, GAUGE) == 1.0 and applied.configs == []


async def test_sighup_rechecks_the_served_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    served = path.read_bytes()
    reloader, applied, registry = make(path)
    path.write_text("")
    assert not await reloader.reload("file changed", recheck=False)
    assert sample(registry, GAUGE) == 0.0
    # Reverted, and the change not seen by the watch: SIGHUP finds the file is the served one.
    path.write_bytes(served)
    caplog.clear()
    assert not await reloader.reload("SIGHUP")
    assert sample(registry, GAUGE) == 1.0 and applied.configs == []
    assert f"config reload (SIGHUP): {path} is valid and the config in use" in caplog.text
    # A touch (new identity, same content) is no event: nothing counted or logged.
    successes = sample(registry, SUCCESSES)
    caplog.clear()
    assert not await reloader.reload("file changed", recheck=False)
    assert sample(registry, SUCCESSES) == successes and caplog.text == ""


async def test_the_watch_sees_a_chmod(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    reloader, _, _ = make(path)
    seen: list[tuple[str, bool]] = []
    looked = asyncio.Event()

    async def reload(reason: str, *, recheck: bool = True) -> bool:
        seen.append((reason, recheck))
        looked.set()
        return False

    reloader.reload = reload  # type: ignore[method-assign]
    task = asyncio.create_task(reloader.watch())
    try:
        path.chmod(0o600)  # only the mode and ctime change, not the content or mtime
        await asyncio.wait_for(looked.wait(), 3)
        assert seen == [("file changed", False)]
    finally:
        task.cancel()


async def test_a_file_rewritten_while_loading_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, "first")
    registry = CollectorRegistry()
    applied = Applied()

    def load_then_rewrite() -> CompiledConfig:
        compiled = load_rules(path)
        write(path, "third")
        return compiled

    reloader = ConfigReloader(
        str(path),
        load_then_rewrite,
        applied,
        ConfigReloadMetrics(registry),
        served=load_rules(path),
    )
    write(path, "second")
    assert not await reloader.reload("SIGHUP")
    assert applied.configs == [] and sample(registry, GAUGE) == 1.0
    reloader._load = lambda: load_rules(path)
    assert await reloader.reload("file changed", recheck=False)  # what the next poll does
    assert applied.configs[0].rules[0].series_query.startswith("third")
