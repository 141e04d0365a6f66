"""One line of figures per chaos scenario, and the record ``docs/reliability.md`` is built from.

A scenario fills a :class:`Figures` while its workload runs, then calls
:func:`report`: it prints ``[chaos] <scenario>: requests=… failures=… lost=…
duplicates=… recovery=…s`` and writes ``.run/chaos/<scenario>.json`` (the last
run of each scenario). ``python -m tests.chaos.report`` turns those files into
the table in ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO_ROOT / ".run" / "chaos"


@dataclass
class Figures:
    scenario: str
    """Stable name, e.g. ``replica_killed``; also the results file name."""
    fault: str
    """What was injected, in a few words."""
    command: str
    """The command that reproduces this scenario alone."""
    requests: int = 0
    failures: int = 0
    """Requests that got an answer the scenario's policy does not allow (e.g. any 5xx but a 503)."""
    lost_writes: int = 0
    """Acknowledged writes missing after recovery."""
    duplicates: int = 0
    """Writes applied more than once."""
    recovery_s: float | None = None
    """Seconds from the end of the fault until the system was whole again."""
    extra: dict[str, object] = field(default_factory=dict)
    """Scenario-specific figures (e.g. ``{"503_with_retry_after": 41}``)."""
    finished_at: str = ""

    def line(self) -> str:
        recovery = "n/a" if self.recovery_s is None else f"{self.recovery_s:.2f}s"
        extra = "".join(f" {key}={value}" for key, value in self.extra.items())
        return (
            f"[chaos] {self.scenario}: requests={self.requests} failures={self.failures} "
            f"lost={self.lost_writes} duplicates={self.duplicates} recovery={recovery}{extra}"
        )


def report(figures: Figures) -> Figures:
    """Print the scenario's line (visible with and without ``-s``) and keep it as the last run."""
    figures.finished_at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    stream = sys.__stderr__ or sys.stderr
    stream.write("\n" + figures.line() + "\n")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{figures.scenario}.json").write_text(json.dumps(asdict(figures), indent=2) + "\n")
    return figures


def load_all() -> list[Figures]:
    if not RESULTS_DIR.is_dir():
        return []
    return [Figures(**json.loads(path.read_text())) for path in sorted(RESULTS_DIR.glob("*.json"))]
