"""The write guard as a startup probe check (``/health/startup``, regions/health)."""

from __future__ import annotations

import dataclasses

from django.db import DatabaseError, connections
from health_check.exceptions import ServiceUnavailable

from regions.health.checks import ProbeCheck
from residency.guard import write_guard_problems


@dataclasses.dataclass
class WriteGuard(ProbeCheck):
    """The primary is anchored to this region and every resident table carries the write guard."""

    alias: str = "default"

    @property
    def name(self) -> str:
        return "write_guard"

    def run(self) -> None:
        connection = connections[self.alias]
        try:
            problems = write_guard_problems(connection)
        except DatabaseError as exc:
            raise ServiceUnavailable("cannot read the write guard state") from exc
        finally:
            connection.close()  # this probe thread's own connection
        if problems:
            self.details["problems"] = len(problems)
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ServiceUnavailable(problems[0] + more)
