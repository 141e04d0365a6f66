"""The harness uses the dev stack's redis helpers (regions/devstack/redis.py)."""

from regions.devstack.redis import *  # noqa: F403
