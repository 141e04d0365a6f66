"""The harness uses the dev stack's postgres helpers (regions/devstack/postgres.py)."""

from regions.devstack.postgres import *  # noqa: F403
