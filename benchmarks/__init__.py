"""Benchmarks: run ``python benchmarks/suite.py`` (or ``scripts/bench``) for all of them.

A package so that the suite, the benchmarks and their smoke tests import each other by one
name (``benchmarks.bench_serving``), for mypy as at run time.
"""
