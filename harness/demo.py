"""The README demo: a real Prometheus scraping a demo exporter, the adapter in no-cluster mode,
and `kubectl get --raw` reading custom and external metrics from it.

    scripts/demo           start the stack, show what the adapter serves, stop everything
    scripts/demo --keep    the same, then leave the stack running and print commands to try
    scripts/demo --stop    stop a kept stack

Every step says what it does, and a wait says so every few seconds. A kept stack runs in a
process of its own (in its own session, so closing the terminal does not stop it), with its
files in `.demo/`: the kubeconfig, the adapter's certificate, Prometheus' data, the logs and
`env`, the stack's URLs as shell variables. `--stop` ends that process, which stops
Prometheus, the adapter and the exporter and removes `.demo/`. Without `--keep`, everything
started is stopped at the end, also on Ctrl-C; nothing that was running before is touched.
"""

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from harness.adapter import AdapterProcess
from harness.exporter import demo_dataset, running_exporter
from harness.kubectl import kubectl, kubectl_get_raw, write_kubeconfig
from harness.packages import ensure_kubectl, ensure_prometheus
from harness.ports import port_is_free
from harness.prometheus import PrometheusProcess

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "demo.yaml"
STATE_DIR = ROOT / ".demo"
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
POD_METRIC = f"{CUSTOM}/namespaces/demo/pods/*/http_requests_per_second"
QUEUE_METRIC = f"{EXTERNAL}/namespaces/default/queue_depth"
# The kept stack's Prometheus answers where a local Prometheus usually does, when it can.
PROMETHEUS_PORT = 9090
# The keeper's last line on its pipe once the stack is up; after it, it logs to a file.
_READY = "demo-stack-ready"
# How often a wait says that it is still waiting.
_PROGRESS_EVERY = 3.0

T = TypeVar("T")


def say(text: str = "") -> None:
    print(text, flush=True)


async def waiting(what: str, work: Awaitable[T], every: float = _PROGRESS_EVERY) -> T:
    """Await `work`, saying `... what (N s)` every `every` seconds until it is done."""
    task = asyncio.ensure_future(work)
    began = time.monotonic()
    while True:
        done, _ = await asyncio.wait({task}, timeout=every)
        if done:
            return task.result()
        say(f"   ... {what} ({time.monotonic() - began:.0f} s)")


@dataclass(frozen=True)
class Stack:
    """Where a running demo stack answers, and its files."""

    exporter_url: str
    prometheus_url: str
    adapter_url: str
    ca_file: str
    kubeconfig: str
    pid: int  # the process that runs the stack


@contextlib.asynccontextmanager
async def demo_stack(workdir: Path, *, prometheus_port: int | None = None) -> AsyncIterator[Stack]:
    """The exporter, a Prometheus scraping it and the adapter reading that Prometheus; each
    started only once the one before is ready, all stopped on the way out."""
    say("== checking for prometheus and kubectl (installing the Debian packages if missing)")
    prometheus_bin = await waiting("installing", asyncio.to_thread(ensure_prometheus))
    kubectl_bin = await waiting("installing", asyncio.to_thread(ensure_kubectl))
    say(f"   prometheus: {prometheus_bin}, kubectl: {kubectl_bin}")
    dataset = demo_dataset()
    async with running_exporter(dataset) as exporter:
        say(f"== demo exporter on {exporter.metrics_url}: pods in namespace demo serving")
        for pod in dataset.pods:
            say(f"   {pod.name}: {pod.request_rate:g} requests/s")
        prometheus = PrometheusProcess(
            [exporter.target], port=prometheus_port, workdir=workdir / "prometheus"
        )
        adapter: AdapterProcess | None = None
        try:
            say("== starting Prometheus, scraping the exporter every second")
            await waiting("starting Prometheus", prometheus.start())
            say(f"   ready at {prometheus.url}")
            say("== waiting for two scrapes of each pod (a rate needs two samples)")
            await waiting(
                "waiting for samples",
                prometheus.wait_for_query(
                    "irate(http_requests_total[1m])", lambda r: len(r) >= len(dataset.pods)
                ),
            )
            say(f"== starting the adapter (--no-cluster, config {CONFIG.relative_to(ROOT)})")
            (workdir / "adapter").mkdir(parents=True, exist_ok=True)
            adapter = AdapterProcess(CONFIG, prometheus.url, workdir=workdir / "adapter")
            await waiting("waiting for its first discovery", adapter.start())
            say(f"   serving {adapter.url}")
            # kubectl asks for a user name when the kubeconfig has no credentials; the
            # adapter (--no-cluster) ignores the token.
            kubeconfig = write_kubeconfig(
                workdir / "kubeconfig", adapter.url, ca_file=str(adapter.ca_file), token="demo"
            )
            yield Stack(
                exporter.metrics_url,
                prometheus.url,
                adapter.url,
                str(adapter.ca_file),
                str(kubeconfig),
                os.getpid(),
            )
        finally:
            say("== stopping the adapter, Prometheus and the exporter")
            if adapter is not None:
                await adapter.close()
            await prometheus.close()


async def _show(path: str, kubeconfig: str) -> object:
    say(f"$ kubectl get --raw '{path}'")
    code, out, err = await kubectl_get_raw(path, kubeconfig=Path(kubeconfig))
    if code != 0:
        say(err.strip())
        raise SystemExit(f"kubectl failed with exit code {code}")
    body = json.loads(out)
    say(json.dumps(body, indent=2))
    say()
    return body


async def tour(stack: Stack) -> None:
    """What the adapter serves, read as a client would, against what the exporter says."""
    say()
    await _show(CUSTOM, stack.kubeconfig)
    pods = await _show(POD_METRIC, stack.kubeconfig)
    await _show(QUEUE_METRIC, stack.kubeconfig)
    say("$ kubectl top pod -n demo   (metrics.k8s.io, from the demo's resourceRules)")
    code, out, err = await kubectl("top", "pod", "-n", "demo", kubeconfig=Path(stack.kubeconfig))
    say(out.rstrip() if code == 0 else err.rstrip())
    say()
    say("== served values against the exporter's rates:")
    items = pods["items"]  # type: ignore[index]
    served = {i["describedObject"]["name"]: i["value"] for i in items}
    for pod in demo_dataset().pods:
        say(f"   {pod.name}: exporter {pod.request_rate:g}/s, adapter {served.get(pod.name)}")


def _shown(path: Path | str) -> str:
    """`path` as the caller can type it: relative to where they ran scripts/demo from."""
    caller = Path(os.environ.get("DEMO_CALLER_CWD", os.getcwd()))
    relative = os.path.relpath(path, caller)
    return relative if not relative.startswith("..") else str(path)


def try_these(stack: Stack) -> str:
    kube = f"kubectl --kubeconfig={_shown(stack.kubeconfig)}"
    demo = _shown(ROOT / "scripts" / "demo")
    check = _shown(ROOT / ".venv-demo" / "bin" / "prometheus-adapter")
    return f"""\
== the demo stack keeps running (pid {stack.pid}; logs in {_shown(STATE_DIR)}/)
   Prometheus  {stack.prometheus_url}   (series http_requests_total, queue_depth, ...)
   adapter     {stack.adapter_url}   (--no-cluster: no authentication)
   exporter    {stack.exporter_url}
   its URLs as shell variables: . {_shown(STATE_DIR / "env")}

Try:
  curl -s --cacert {_shown(stack.ca_file)} '{stack.adapter_url}{POD_METRIC}'
  {kube} get --raw '{CUSTOM}'
  {kube} get --raw '{QUEUE_METRIC}'
  {kube} top pod -n demo
  {check} check-config {_shown(CONFIG)} \\
    --prometheus-url={stack.prometheus_url} \\
    --explain pods/http_requests_per_second --namespace demo --name web-1

Stop it:
  {demo} --stop"""


def _read_state() -> Stack | None:
    """The kept stack, when its process is still running."""
    try:
        stack = Stack(**json.loads((STATE_DIR / "state.json").read_text()))
        os.kill(stack.pid, 0)
    except (OSError, ValueError, TypeError):
        return None
    return stack


def _write_state(stack: Stack) -> None:
    (STATE_DIR / "state.json").write_text(json.dumps(asdict(stack), indent=2) + "\n")
    (STATE_DIR / "env").write_text(
        "".join(
            f"export {name}={shlex.quote(value)}\n"
            for name, value in (
                ("PROMETHEUS_URL", stack.prometheus_url),
                ("ADAPTER_URL", stack.adapter_url),
                ("DEMO_KUBECONFIG", stack.kubeconfig),
                ("DEMO_CA_FILE", stack.ca_file),
            )
        )
    )


async def run() -> int:
    with tempfile.TemporaryDirectory(prefix="adapter-demo-") as tmp:
        async with demo_stack(Path(tmp)) as stack:
            await tour(stack)
    return 0


async def serve_stack() -> int:
    """The kept stack's own process: start the stack, tell the caller on stdout, then log to
    a file until SIGTERM (`--stop`) and tear everything down, `.demo/` included."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    try:
        port = PROMETHEUS_PORT if port_is_free(PROMETHEUS_PORT) else None
        async with demo_stack(STATE_DIR, prometheus_port=port) as stack:
            _write_state(stack)
            say(_READY)
            # The caller stops reading once it has the stack: write where it cannot break.
            log = os.open(STATE_DIR / "stack.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            for fd in (sys.stdout.fileno(), sys.stderr.fileno()):
                os.dup2(log, fd)
            os.close(log)
            await stop.wait()
    finally:
        shutil.rmtree(STATE_DIR, ignore_errors=True)
    return 0


async def keep() -> int:
    """Start the stack in a process of its own (or find the one running), show it, and say
    how to use and stop it."""
    stack = _read_state()
    if stack is not None:
        say("== a demo stack is already running")
        say(try_these(stack))
        return 0
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    STATE_DIR.mkdir(mode=0o700)
    keeper = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.demo", "--serve-stack",
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C or a closed terminal later does not reach it
    )  # fmt: skip
    assert keeper.stdout is not None
    try:
        while line := (await keeper.stdout.readline()).decode(errors="replace"):
            if line.rstrip("\n") == _READY:
                break
            print(line, end="", flush=True)
        else:
            await keeper.wait()
            say(f"error: the demo stack did not start (exit code {keeper.returncode})")
            return 1
    except BaseException:
        keeper.terminate()
        await keeper.wait()
        raise
    stack = _read_state()
    assert stack is not None, "the keeper said ready without its state"
    await tour(stack)
    say()
    say(try_these(stack))
    return 0


async def stop_kept() -> int:
    stack = _read_state()
    if stack is None:
        say("no demo stack is running")
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        return 0
    say(f"== stopping the demo stack (pid {stack.pid}): the adapter, Prometheus, the exporter")
    os.kill(stack.pid, signal.SIGTERM)

    async def gone() -> None:
        while True:
            try:
                os.kill(stack.pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(waiting("stopping", gone()), timeout=30)
    except TimeoutError:
        # Its session holds Prometheus and the adapter too.
        say("   not stopped after 30 s: killing its process group")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(stack.pid, signal.SIGKILL)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    say("   stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--keep", action="store_true", help="leave the stack running")
    mode.add_argument("--stop", action="store_true", help="stop a kept stack")
    mode.add_argument("--serve-stack", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    action = (
        serve_stack if args.serve_stack else keep if args.keep else stop_kept if args.stop else run
    )
    try:
        return asyncio.run(action())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
