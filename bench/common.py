"""What every benchmark shares: result rows, the summary table, and where results go.

A benchmark module exposes ``run(quick: bool) -> list[Row]`` and a ``main()``
that prints its table and saves its rows to ``bench/results/<name>.json``;
``make bench`` (bench/run_all.py) collects every module's rows into one table.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    benchmark: str
    figure: str
    """What was measured, e.g. ``audit of 1,000,000 resident rows``."""
    value: float
    unit: str
    baseline: float | None
    baseline_label: str
    target: str
    """Human-readable target, e.g. ``<= 10 s``."""
    passed: bool | None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / float(self.baseline)


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), samples


def machine() -> dict[str, str]:
    def cmd(*argv: str) -> str:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except OSError:
            return "n/a"

    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "postgres": cmd("/usr/lib/postgresql/15/bin/postgres", "--version") or "n/a",
        "redis": cmd("redis-server", "--version").split(" v=")[-1].split(" ")[0] or "n/a",
        "kernel": platform.release(),
    }


def format_table(rows: Sequence[Row]) -> str:
    header = "| benchmark | figure | value | baseline | ratio | target | pass |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    for row in rows:
        baseline = (
            f"{row.baseline:,.3g} {row.unit} ({row.baseline_label})"
            if row.baseline is not None
            else row.baseline_label
        )
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "—"
        verdict = {True: "pass", False: "FAIL", None: "—"}[row.passed]
        value = f"{row.value:,.3g} {row.unit}"
        lines.append(
            f"| {row.benchmark} | {row.figure} | {value} | {baseline} | {ratio} | {row.target} | {verdict} |"
        )
    return "\n".join(lines)


def save(name: str, rows: Sequence[Row], *, quick: bool) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"quick": quick, "rows": [asdict(r) for r in rows]}, indent=2))
    return path


def cli(name: str, doc: str | None, run: Callable[[bool], Sequence[Row]]) -> None:
    """The command line every benchmark shares: ``[--quick]``, the table, the machine, the saved rows."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a shorter run, same figures")
    quick = parser.parse_args().quick
    rows = run(quick)
    print(format_table(rows))
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine().items()))
    save(name, rows, quick=quick)
