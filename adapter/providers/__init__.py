"""The metrics providers: custom, external (and later resource) metrics from Prometheus."""
