"""Kubernetes API knowledge: resource names, kinds and scopes."""
