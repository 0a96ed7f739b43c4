"""Hostile: config edits that would empty the adapter, and an upstream that echoes our
credentials back.

Against the real adapter process. The reload checks use a real Prometheus (started with
backfilled demo data, so that it has series at once); the redaction check uses an echoing
upstream in Prometheus' place (see its docstring).
"""

import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from harness.adapter import AdapterProcess
from harness.exporter import demo_dataset
from harness.ports import free_port
from harness.prometheus import PrometheusProcess

pytestmark = pytest.mark.asyncio(loop_scope="module")

T = TypeVar("T")

# The adapter checks its config file this often (ConfigReloader's poll interval).
WATCH_INTERVAL = 1.0
# What a loaded machine may add to the watch interval before a change is acted on.
WATCH_SLACK = 0.5

SERVED_CONFIG = """\
rules:
- seriesQuery: 'memory_usage_bytes{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: '{__name__="queue_depth",name!=""}'
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (name)'
  resources:
    namespaced: false
"""
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
WEB_0_MEMORY = f"{CUSTOM}/namespaces/demo/pods/web-0/memory_usage_bytes"
EXTERNAL_QUEUE = "/apis/external.metrics.k8s.io/v1beta1/namespaces/demo/queue_depth"

# Only metrics.k8s.io: its object listing asks the upstream for series and puts the
# upstream's error into the answer (no metric discovery needed first).
RESOURCE_ONLY_CONFIG = """\
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (irate(container_cpu_usage_seconds_total{<<.LabelMatchers>>}[1m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (irate(node_cpu_seconds_total{<<.LabelMatchers>>}[1m]))'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>})'
    nodeQuery: 'sum by (<<.GroupBy>>) (node_memory_MemTotal_bytes{<<.LabelMatchers>>})'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  window: 1m
"""


async def until(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float, what: str
) -> T:
    """Probe until `done` holds (the adapter pushes no events: its /metrics and log are polled)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"after {timeout}s, still not {what}: {value!r}"
        await asyncio.sleep(0.02)


def write_atomically(path: Path, content: bytes) -> None:
    """As the kubelet updates a ConfigMap: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


# --- running the adapter unable to read a chmod 000 file, also as root ---------------------

_NO_READ_OVERRIDE = "-dac_override,-dac_read_search"


def read_override_dropped(scratch: Path) -> list[str] | None:
    """The command prefix that makes a chmod 000 file unreadable to the adapter: none for a
    non-root user; as root (CAP_DAC_OVERRIDE reads anything), setpriv dropping that
    capability; None when that is not possible here."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, f"--inh-caps={_NO_READ_OVERRIDE}", f"--bounding-set={_NO_READ_OVERRIDE}"]
    probe = scratch / "unreadable-probe"
    probe.write_text("x")
    probe.chmod(0)
    try:
        read = subprocess.run([*prefix, "--", "cat", str(probe)], capture_output=True, check=False)
    finally:
        probe.unlink()
    return [*prefix, "--"] if read.returncode != 0 else None


class PrefixedAdapter(AdapterProcess):
    """The adapter process started through `prefix` (setpriv keeps the pid: signals reach it)."""

    def __init__(self, *args: Any, prefix: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prefix = list(prefix)

    def command(self) -> list[str]:
        return [*self.prefix, *super().command()]


# --- the adapter serving a config from a real Prometheus ------------------------------------


@dataclass(frozen=True)
class ReloadState:
    """The adapter's config reload metrics."""

    failures: float
    successes: float
    last_successful: float
    config_sha256: tuple[str, ...]


_SAMPLE = re.compile(r"^(prometheus_adapter_config_\w+)(?:\{\w+=\"([^\"]*)\"\})? (\S+)$", re.M)


@dataclass
class ReloadStack:
    adapter: PrefixedAdapter
    config: Path
    session: aiohttp.ClientSession
    can_make_unreadable: bool

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.adapter.url + path) as response:
            return response.status, await response.text()

    async def reload_state(self) -> ReloadState:
        status, text = await self.get("/metrics")
        assert status == 200, text
        failures = successes = last = 0.0
        sha: list[str] = []
        for name, value, sample in _SAMPLE.findall(text):
            if name == "prometheus_adapter_config_reloads_total" and value == "failure":
                failures = float(sample)
            elif name == "prometheus_adapter_config_reloads_total" and value == "success":
                successes = float(sample)
            elif name == "prometheus_adapter_config_last_reload_successful":
                last = float(sample)
            elif name == "prometheus_adapter_config_info" and float(sample) == 1:
                sha.append(value)
        return ReloadState(failures, successes, last, tuple(sha))

    async def assert_old_config_serves(self) -> None:
        status, body = await self.get(CUSTOM)
        assert status == 200 and "pods/memory_usage_bytes" in body, body
        status, body = await self.get(WEB_0_MEMORY)
        assert status == 200 and '"value":"104857600"' in body, body
        status, body = await self.get(EXTERNAL_QUEUE)
        assert status == 200 and '"metricName":"queue_depth"' in body, body
        status, body = await self.get("/readyz")
        assert status == 200, body

    def log_since(self, offset: int) -> str:
        return self.adapter.log()[offset:]

    async def read_log_since(self, offset: int) -> str:
        return self.log_since(offset)


# --- an upstream that echoes the credentials ----------------------------------------------

PASSWORD = "s3cr3t/p@ss:w0rd"
TOKEN_FILE_TOKEN = "tok3n-from-the-file-0123456789"
HEADER_TOKEN = "tok3n-from-a-header-9876543210"


@dataclass
class EchoUpstream:
    """Stands in for Prometheus: answers every request with an error that quotes the
    credential the request carried, in the ways an upstream can."""

    port: int
    received: list[str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def echo(request: web.Request, received: list[str]) -> web.Response:
    credential = request.headers.get("Authorization", "")
    received.append(credential)
    scheme, _, value = credential.partition(" ")
    decoded = base64.b64decode(value).decode() if scheme == "Basic" else value
    password = decoded.partition(":")[2] or value
    if "node" in request.query.get("match[]", ""):
        # A JSON error: quoted in full, with the credential decoded and percent-encoded too.
        error = f"echo {credential}; {decoded}; {password}; {quote(password, safe='')}"
        body = {"status": "error", "errorType": "bad_data", "error": error}
        return web.Response(status=422, body=orjson.dumps(body), content_type="application/json")
    # Plain text: the adapter quotes the first 100 characters, which end inside the credential.
    return web.Response(status=500, text=f"{'x' * 60} Authorization: {credential} ({decoded})")


@contextlib.asynccontextmanager
async def echo_upstream() -> AsyncIterator[EchoUpstream]:
    received: list[str] = []
    app = web.Application()

    async def handle(request: web.Request) -> web.Response:
        return await echo(request, received)

    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    upstream = EchoUpstream(free_port(), received)
    await web.TCPSite(runner, "127.0.0.1", upstream.port).start()
    try:
        yield upstream
    finally:
        await runner.cleanup()


def echo_adapters_for(upstream: EchoUpstream, workdir: Path) -> dict[str, AdapterProcess]:
    """One adapter per way of sending a credential (only one is sent at a time: an
    Authorization header wins over the URL's user info, which wins over the token file)."""
    workdir.mkdir()
    config = workdir / "config.yaml"
    config.write_text(RESOURCE_ONLY_CONFIG)
    token_file = workdir / "token"
    token_file.write_text(TOKEN_FILE_TOKEN)
    with_user_info = upstream.url.replace("http://", f"http://alice:{quote(PASSWORD, safe='')}@")
    return {
        "url": AdapterProcess(config, with_user_info, workdir=workdir / "url"),
        "token-file": AdapterProcess(
            config,
            upstream.url,
            [f"--prometheus-token-file={token_file}"],
            workdir=workdir / "token-file",
        ),
        "header": AdapterProcess(
            config,
            upstream.url,
            [f"--prometheus-header=Authorization=Bearer {HEADER_TOKEN}"],
            workdir=workdir / "header",
        ),
    }


# --- the processes ---------------------------------------------------------------------


@dataclass
class EchoStack:
    upstream: EchoUpstream
    adapters: dict[str, AdapterProcess]  # by the credential they send


@dataclass
class Processes:
    reload: ReloadStack
    echo: EchoStack


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def processes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Processes]:
    """A real Prometheus with the demo data and the adapter serving SERVED_CONFIG from it; an
    echoing upstream and three adapters sending it credentials. The adapters start together:
    start-up is most of this suite's time."""
    workdir = tmp_path_factory.mktemp("hostile-reload")
    config = workdir / "config.yaml"
    write_atomically(config, SERVED_CONFIG.encode())
    prefix = read_override_dropped(workdir)
    now = int(time.time())
    history = demo_dataset().openmetrics_history(now - 60, now - 1, step=15)
    async with (
        PrometheusProcess(backfill=history) as prometheus,
        echo_upstream() as upstream,
    ):
        adapter = PrefixedAdapter(
            config, prometheus.url, workdir=workdir / "reload", prefix=prefix or ()
        )
        echo_adapters = echo_adapters_for(upstream, workdir / "echo")
        every = [adapter, *echo_adapters.values()]
        try:
            for process in every:
                process.workdir.mkdir(parents=True)
            await asyncio.gather(*(process.start() for process in every))
            connector = aiohttp.TCPConnector(ssl=adapter.ssl_context())
            async with aiohttp.ClientSession(connector=connector) as session:
                stack = ReloadStack(adapter, config, session, prefix is not None)
                await stack.assert_old_config_serves()
                yield Processes(stack, EchoStack(upstream, echo_adapters))
        finally:
            await asyncio.gather(*(process.close() for process in every))


@pytest.fixture
def stack(processes: Processes) -> ReloadStack:
    return processes.reload


# --- config reloads ------------------------------------------------------------------------

# Each bad file: its content, the reason logged, and what makes the adapter look at it: the
# watch alone for an empty file (a ConfigMap emptied), SIGHUP for the others, which keeps the
# suite quick. Every revert is left to the watch, the chmod 644 one included (only the
# file's mode and ctime change).
BAD_FILES = {
    "empty": (b"", "the file is empty", "file changed"),
    "whitespace": (b"  \n\t\n   \n", "the file is whitespace only", "SIGHUP"),
    "no-rules": (
        b"rules: []\nexternalRules: []\n",
        "defines no rules, externalRules or resourceRules",
        "SIGHUP",
    ),
    "unreadable": (b"", "cannot read: Permission denied", "SIGHUP"),
}


def make_bad(stack: ReloadStack, case: str) -> None:
    if case == "unreadable":
        if not stack.can_make_unreadable:
            pytest.skip("root without setpriv: a chmod 000 file stays readable to the adapter")
        stack.config.chmod(0)
    else:
        write_atomically(stack.config, BAD_FILES[case][0])
    if BAD_FILES[case][2] == "SIGHUP":
        assert stack.adapter.process is not None
        stack.adapter.process.send_signal(signal.SIGHUP)


def revert(stack: ReloadStack) -> None:
    stack.config.chmod(0o644)
    if stack.config.read_bytes() != SERVED_CONFIG.encode():
        write_atomically(stack.config, SERVED_CONFIG.encode())


@pytest.mark.parametrize("case", list(BAD_FILES))
async def test_refused_file_keeps_serving_and_a_revert_clears_the_failure(
    stack: ReloadStack, case: str
) -> None:
    _, reason, trigger = BAD_FILES[case]
    before = await stack.reload_state()
    assert before.last_successful == 1.0 and len(before.config_sha256) == 1
    offset = len(stack.adapter.log())
    make_bad(stack, case)
    try:
        refused = await until(
            stack.reload_state,
            lambda state: state.failures > before.failures,
            WATCH_INTERVAL + WATCH_SLACK,
            "refused",
        )
        await stack.assert_old_config_serves()
        log_lines = stack.log_since(offset).splitlines()
        failed = [line for line in log_lines if "config reload (" in line and "failed" in line]
        # The watch may also have seen a SIGHUP's file first: then both report it.
        assert (trigger == "SIGHUP" or len(failed) == 1) and failed, failed
        assert refused == ReloadState(
            before.failures + len(failed), before.successes, 0.0, before.config_sha256
        )
        assert f"config reload ({trigger}) failed; the previous config stays in use: " in (
            "\n".join(failed)
        )
        # One line each, naming the file and the reason.
        assert all(f"{stack.config}: {reason}" in line for line in failed), failed
    finally:
        reverted_at = time.monotonic()
        revert(stack)
    # No SIGHUP: the watch sees the served content again within its interval.
    after = await until(
        stack.reload_state,
        lambda state: state.last_successful == 1.0,
        WATCH_INTERVAL + WATCH_SLACK,
        "back to 1",
    )
    assert time.monotonic() - reverted_at <= WATCH_INTERVAL + WATCH_SLACK
    assert (after.failures, after.config_sha256) == (refused.failures, before.config_sha256)
    log = stack.log_since(offset)
    assert f"config reload (file changed): {stack.config} is the config in use" in log
    assert "config reloaded (" not in log  # matching the served config: nothing re-applied
    await stack.assert_old_config_serves()


async def test_sighup_after_a_revert_rechecks_the_file(stack: ReloadStack) -> None:
    process = stack.adapter.process
    assert process is not None
    before = await stack.reload_state()
    write_atomically(stack.config, b"")
    await until(stack.reload_state, lambda s: s.failures > before.failures, 3, "refused")
    offset = len(stack.adapter.log())
    write_atomically(stack.config, SERVED_CONFIG.encode())
    process.send_signal(signal.SIGHUP)
    line = f"config reload (SIGHUP): {stack.config} is valid and the config in use"
    await until(lambda: stack.read_log_since(offset), lambda log: line in log, 3, line)
    state = await stack.reload_state()
    assert (state.last_successful, state.config_sha256) == (1.0, before.config_sha256)

    # Nothing changed at all: SIGHUP still re-reads and re-validates the file.
    offset = len(stack.adapter.log())
    process.send_signal(signal.SIGHUP)
    await until(lambda: stack.read_log_since(offset), lambda log: line in log, 3, line)
    assert (await stack.reload_state()).successes == state.successes + 1


# --- credentials echoed -------------------------------------------------------------------


@dataclass
class Seen:
    """What the adapter said after its upstream echoed a credential."""

    answers: list[str]  # the Status messages, decoded from the JSON bodies
    bodies: list[str]  # the bodies as sent
    log: str

    def text(self) -> str:
        return "\n".join([*self.answers, *self.bodies, self.log])


async def answers_and_log(adapter: AdapterProcess) -> Seen:
    """The adapter's answers to requests that make it ask the upstream, and its log."""
    seen = Seen([], [], "")
    connector = aiohttp.TCPConnector(ssl=adapter.ssl_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        for path in ("namespaces/demo/pods", "nodes"):
            async with session.get(f"{adapter.url}/apis/metrics.k8s.io/v1beta1/{path}") as answer:
                body = await answer.text()
            assert answer.status == 500, body
            seen.bodies.append(body)
            seen.answers.append(orjson.loads(body)["message"])
    seen.log = adapter.log()
    return seen


async def test_echoed_credentials_never_reach_the_log_or_an_answer(processes: Processes) -> None:
    """The upstream here is a small echo server, not Prometheus: what is under test is the
    adapter's redaction of an upstream's error text, and a real Prometheus never quotes the
    Authorization header back. It is asked /api/v1/series as Prometheus would be."""
    upstream, adapters = processes.echo.upstream, processes.echo.adapters
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    secrets = {
        "url": [PASSWORD, quote(PASSWORD, safe=""), basic, f"alice:{PASSWORD}"],
        "token-file": [TOKEN_FILE_TOKEN],
        "header": [HEADER_TOKEN],
    }
    everything_seen = await asyncio.gather(*(answers_and_log(a) for a in adapters.values()))
    # Each credential was sent, and so echoed.
    assert {f"Basic {basic}", f"Bearer {TOKEN_FILE_TOKEN}", f"Bearer {HEADER_TOKEN}"} <= set(
        upstream.received
    )
    for name, seen in zip(adapters, everything_seen, strict=True):
        text = seen.text()
        for secret in secrets[name]:
            # Nor the start of one that a cut left (the adapter quotes bodies cut short).
            assert secret[:8] not in text, (name, secret, text)
        # The echo did reach the answers and the log, redacted.
        assert all("<redacted>" in answer for answer in seen.answers), seen.answers
        assert "unable to list objects from Prometheus" in seen.log
        assert seen.log.count("<redacted>") >= 2, seen.log
