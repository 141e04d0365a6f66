"""Fixtures of the chaos scenarios: one stack for the package, a fresh tenant per scenario.

``chaos_stack`` is started once for every chaos module of a run (``package``
scope: about 30 s on 2 cores) and stopped by PID at the end. A scenario that
injects a fault restores it itself; the ``stack`` fixture additionally brings
back anything left stopped and waits for every region to be ready, before and
after each scenario, so that one scenario's fault never leaks into the next.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.chaos.figures import RESULTS_DIR, Figures
from tests.chaos.stack import ChaosStack, chaos_stack_running
from tests.chaos.workload import Tenant, tenant_create

_SESSION_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The figures line of every scenario this run reported, also when output was captured."""
    paths = sorted(RESULTS_DIR.glob("*.json")) if RESULTS_DIR.is_dir() else []
    fresh = [Figures(**json.loads(p.read_text())) for p in paths if p.stat().st_mtime >= _SESSION_STARTED]
    if fresh:
        terminalreporter.section("chaos figures")
        for figures in fresh:
            terminalreporter.write_line(figures.line())


@pytest.fixture(scope="package")
def chaos_stack() -> Iterator[ChaosStack]:
    with chaos_stack_running() as chaos:
        yield chaos


@pytest.fixture
def stack(chaos_stack: ChaosStack) -> Iterator[ChaosStack]:
    """The shared stack, whole and ready before the scenario, and made whole again after it."""
    chaos_stack.ensure_whole()
    yield chaos_stack
    chaos_stack.ensure_whole()


@pytest.fixture
def tenant(stack: ChaosStack) -> Tenant:
    """A fresh user, organization, API token (critical tier) and project in eu-west-1.

    Critical tier: the workload is the only client of its token and must not hit
    the standard tier's limit; the Redis scenario makes its own standard token.
    """
    return tenant_create(stack, tier="critical")
