"""Ports of Go standard-library behaviour the rules rely on: regexp (RE2, with Expand),
`%q` quoting, and Go and Prometheus durations."""
