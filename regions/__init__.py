"""Regions: the registry, per-region settings, routing and inter-region plumbing."""
