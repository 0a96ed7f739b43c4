"""Integration-test and demo harness: real Prometheus, a deterministic exporter, and helpers.

Nothing here is mocked. :mod:`harness.prometheus` runs the real Prometheus binary (installed
from Debian's ``prometheus`` package when missing), :mod:`harness.exporter` serves fake
Kubernetes pod, container, node and queue metrics whose ``rate()`` is known exactly,
:mod:`harness.recording_proxy` records what the adapter sends to Prometheus,
:mod:`harness.realworld` finds the real-world configs beside the repository and the data set
their rules need, and :mod:`harness.kubectl` runs the real ``kubectl get --raw``. Every
process the harness starts is stopped again: by the async context managers, on cancellation,
and at interpreter exit.
"""

__all__: list[str] = []
