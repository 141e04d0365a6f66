"""Observability: request context, structured logs, Prometheus metrics, Celery context.

See ``regions/README.md`` ("Health, metrics and logs") for the data flow.
"""
