"""Benchmarks: each compares side by side in one run against a baseline (see docs/benchmarks.md)."""
