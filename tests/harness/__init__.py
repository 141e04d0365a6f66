"""The test harness: real PostgreSQL primaries with streaming replicas, Redis and Celery workers.

See tests/README.md. Fixtures that use it live in tests/conftest.py.
"""
