"""A Python drop-in replacement for the Kubernetes Prometheus Adapter."""

__all__ = ["__version__"]

__version__ = "0.1.0"
