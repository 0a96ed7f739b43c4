"""A thin asyncio client for the Prometheus HTTP API (query, series, labels), with the
error model, URL joining, TLS and auth options of the Go adapter's `pkg/client`."""
