"""Run the multi-region stack on one machine: PostgreSQL primaries with streaming replicas,
Redis, Celery workers and beat, and gunicorn per region (``make run``).

The same process and cluster code backs the test harness (tests/harness).
"""
