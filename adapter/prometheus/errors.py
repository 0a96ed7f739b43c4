"""The one exception type for every failure talking to Prometheus."""

__all__ = ["PrometheusError"]


class PrometheusError(Exception):
    """Every failure talking to Prometheus.

    `str()` starts like the Go client's error (`<errorType>: <message>`), so log lines and
    Status messages read the same, then says where: method, URL (never credentials, never
    the query string) and HTTP status.

    Constructed as `PrometheusError(message, error_type=..., ...)`; fakes in tests may leave
    out everything but the message and type.

    Attributes:
        error_type: Prometheus' `errorType` ("bad_data", "execution", "timeout", "canceled",
            "unavailable", "internal", ...) or ours: "bad_response" (unexpected status or
            body), "connection" (refused, DNS, TLS, reset), "timeout" (our deadline) and
            "too_large" (an answer over --prometheus-max-response-size).
        message: what happened, without the prefix or the location.
        status: HTTP status, or None when no response arrived.
        endpoint: the API path, such as "/api/v1/query".
        method: "GET" or "POST".
        url: the request URL without credentials or query string.
    """

    def __init__(
        self,
        message: str,
        *,
        error_type: str,
        status: int | None = None,
        endpoint: str = "",
        method: str = "",
        url: str = "",
    ) -> None:
        self.error_type = error_type
        self.message = message
        self.status = status
        self.endpoint = endpoint
        self.method = method
        self.url = url
        super().__init__(str(self))

    def __str__(self) -> str:
        where = " ".join(part for part in (self.method, self.url or self.endpoint) if part)
        if self.status is not None:
            where = f"HTTP {self.status} from {where}" if where else f"HTTP {self.status}"
        text = f"{self.error_type}: {self.message}"
        return f"{text} ({where})" if where else text
