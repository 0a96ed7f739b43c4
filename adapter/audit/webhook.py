"""The webhook backend (plugin/pkg/audit/webhook): each batch is POSTed as an audit.k8s.io/v1
EventList to the server of a kubeconfig file (its current context), with that context's
credentials. A failed POST (any error, any non-2xx answer) is retried on
DefaultRetryBackoffWithInitialDelay: 5 attempts, waits of initial * 1.5^n plus up to 20% jitter.
Requests time out after 30 s and are not rate-limited (the batch throttle does that).
"""

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from adapter.audit.event import Event, event_list_json
from adapter.audit.metrics import AuditMetrics
from adapter.kube.api import KubeAPIError
from adapter.kube.client import KubeClient
from adapter.kube.config import load_kubeconfig

__all__ = ["Backoff", "WebhookBackend", "WebhookClient", "WebhookError"]

# webhook.LoadKubeconfig: "Set this to something reasonable so request to webhooks don't hang".
REQUEST_TIMEOUT = 30.0


class WebhookError(Exception):
    """A POST to the audit webhook failed."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """wait.Backoff as DefaultRetryBackoffWithInitialDelay builds it."""

    initial: float = 10.0
    factor: float = 1.5
    jitter: float = 0.2
    steps: int = 5


class WebhookClient:
    """POSTs to the kubeconfig's server URL itself (client-go's `RESTClient.Post()` with no
    path), with that context's credentials, and accepts any 2xx answer, whatever its body."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    @classmethod
    def from_kubeconfig(cls, path: str) -> "WebhookClient":
        return cls(KubeClient(load_kubeconfig(path), qps=0, timeout=REQUEST_TIMEOUT))

    async def post_raw(self, body: bytes) -> None:
        try:
            await self._client.post_bytes("", body)
        except KubeAPIError as exc:
            if exc.status == 0:  # not answered
                raise WebhookError(str(exc)) from None
            detail = exc.message.strip()
            raise WebhookError(
                f"the audit webhook answered {exc.status} {exc.reason}".rstrip()
                + (f": {detail}" if detail else "")
            ) from None

    async def close(self) -> None:
        await self._client.close()


class WebhookBackend:
    name = "webhook"

    def __init__(
        self,
        post: Callable[[bytes], Awaitable[None]],
        backoff: Backoff,
        metrics: AuditMetrics,
        *,
        close: Callable[[], Awaitable[None]] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._post = post
        self._backoff = backoff
        self._metrics = metrics
        self._close = close
        self._sleep = sleep
        self._jitter = jitter

    def start(self) -> None:
        pass

    async def process(self, events: Sequence[Event]) -> bool:
        try:
            await self._send_with_backoff(event_list_json(events))
        except WebhookError as exc:
            self._metrics.plugin_error(self.name, exc, events)
            return False
        return True

    async def _send_with_backoff(self, body: bytes) -> None:
        """wait.ExponentialBackoff around the POST, retrying on every error."""
        delay = self._backoff.initial
        for step in range(self._backoff.steps, 0, -1):
            try:
                await self._post(body)
                return
            except WebhookError:
                if step == 1:
                    raise
            await self._sleep(delay + self._jitter() * self._backoff.jitter * delay)
            delay *= self._backoff.factor

    async def shutdown(self) -> None:
        if self._close is not None:
            await self._close()
