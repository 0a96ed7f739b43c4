"""The README demo: a real Prometheus scraping a demo exporter, the adapter in no-cluster mode,
and `kubectl get --raw` reading custom and external metrics from it.

Run `scripts/demo` (it installs what is missing). Everything started here is stopped at the
end, also on Ctrl-C; nothing that was running before is touched.
"""

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from harness.adapter import AdapterProcess
from harness.exporter import demo_dataset, running_exporter
from harness.kubectl import kubectl, kubectl_get_raw, write_kubeconfig
from harness.packages import ensure_kubectl, ensure_prometheus
from harness.prometheus import PrometheusProcess

__all__ = ["main"]

CONFIG = Path(__file__).resolve().parents[1] / "config" / "demo.yaml"
CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"


def say(text: str = "") -> None:
    print(text, flush=True)


async def show(path: str, kubeconfig: Path) -> object:
    say(f"$ kubectl get --raw '{path}'")
    code, out, err = await kubectl_get_raw(path, kubeconfig=kubeconfig)
    if code != 0:
        say(err.strip())
        raise SystemExit(f"kubectl failed with exit code {code}")
    body = json.loads(out)
    say(json.dumps(body, indent=2))
    say()
    return body


async def run() -> int:
    say("== checking for prometheus and kubectl (installing the Debian packages if missing)")
    prometheus_bin = await asyncio.to_thread(ensure_prometheus)
    kubectl_bin = await asyncio.to_thread(ensure_kubectl)
    say(f"   prometheus: {prometheus_bin}, kubectl: {kubectl_bin}")
    dataset = demo_dataset()
    with tempfile.TemporaryDirectory(prefix="adapter-demo-") as tmp:
        async with running_exporter(dataset) as exporter:
            say(f"== demo exporter on {exporter.metrics_url}: pods in namespace demo serving")
            for pod in dataset.pods:
                say(f"   {pod.name}: {pod.request_rate:g} requests/s")
            prometheus = PrometheusProcess([exporter.target])
            adapter: AdapterProcess | None = None
            try:
                await prometheus.start()
                say(f"== Prometheus {prometheus.url} scraping it every second")
                await prometheus.wait_for_series("http_requests_total", count=len(dataset.pods))
                await prometheus.wait_for_query(
                    "irate(http_requests_total[1m])", lambda r: len(r) >= len(dataset.pods)
                )
                adapter = AdapterProcess(CONFIG, prometheus.url)
                await adapter.start()
                say(f"== adapter (--no-cluster, config {CONFIG.name}) serving {adapter.url}")
                kubeconfig = write_kubeconfig(
                    Path(tmp) / "kubeconfig",
                    adapter.url,
                    ca_file=str(adapter.ca_file),
                    token="demo",
                )
                say()
                await show(CUSTOM, kubeconfig)
                pods = await show(
                    f"{CUSTOM}/namespaces/demo/pods/*/http_requests_per_second", kubeconfig
                )
                await show(f"{EXTERNAL}/namespaces/default/queue_depth", kubeconfig)
                say("$ kubectl top pod -n demo   (metrics.k8s.io, from the demo's resourceRules)")
                code, out, err = await kubectl("top", "pod", "-n", "demo", kubeconfig=kubeconfig)
                say(out.rstrip() if code == 0 else err.rstrip())
                say()
                say("== served values against the exporter's rates:")
                items = pods["items"]  # type: ignore[index]
                served = {i["describedObject"]["name"]: i["value"] for i in items}
                for pod in dataset.pods:
                    value = served.get(pod.name)
                    say(f"   {pod.name}: exporter {pod.request_rate:g}/s, adapter {value}")
            finally:
                say("== stopping the adapter, Prometheus and the exporter")
                if adapter is not None:
                    await adapter.close()
                await prometheus.close()
    return 0


def main() -> int:
    try:
        return asyncio.run(run())
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
