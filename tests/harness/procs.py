"""The harness uses the dev stack's processes helpers (regions/devstack/processes.py)."""

from regions.devstack.processes import *  # noqa: F403
