"""`prometheus-adapter check-config`: loading a config and reporting on it (text or JSON),
and checking it against a live Prometheus (`--prometheus-url`, `--explain`)."""
