"""Metric discovery: listing series from Prometheus into a registry of metrics."""
