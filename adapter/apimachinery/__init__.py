"""Ports of k8s.io/apimachinery: label selectors (pkg/labels) and quantities
(pkg/api/resource)."""
