"""The HTTPS API server: TLS, routes, discovery, health and metrics endpoints."""
