"""What every benchmark shares: result rows, the summary table, and where results go.

A benchmark module exposes ``run(quick: bool) -> list[Row]`` and a ``main()``
that prints its table and saves its rows to ``bench/results/<name>.json``;
``make bench`` (bench/run_all.py) collects every module's rows into one table.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).resolve().parent / "results")
"""Where rows are saved; ``BENCH_RESULTS_DIR`` moves it (the smoke test uses a temporary directory)."""


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


def _cmd(*argv: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return ""
    return (result.stdout or result.stderr).strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "n/a"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def wrk_version() -> str:
    found = shutil.which("wrk")
    if not found:
        return "not installed"
    first = _cmd(found, "-v").splitlines()
    return first[0].split(" [")[0].removeprefix("wrk ").strip() if first else "n/a"


def ensure_wrk() -> str:
    """wrk's path: installed with apt-get when missing and running as root on Debian, else a clear stop."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, timeout=300)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, timeout=300)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "This benchmark needs wrk: install it with `sudo apt-get install wrk` (Debian/Ubuntu), "
            "or run `make bench` as root to let it install wrk."
        )
    return found


def _postgres_binary() -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return str(versions[-1]) if versions else "postgres"


def machine() -> dict[str, str]:
    cmd = _cmd

    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cores": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "postgres": cmd(_postgres_binary(), "--version").removeprefix("postgres (PostgreSQL) ") or "n/a",
        "redis": cmd("redis-server", "--version").split(" v=")[-1].split(" ")[0] or "n/a",
        "wrk": wrk_version(),
        "kernel": platform.release(),
        "load average": load_average(),
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
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    data = {"quick": quick, "finished": finished, "rows": [asdict(r) for r in rows]}
    path.write_text(json.dumps(data, indent=2))
    return path


def cli(name: str, doc: str | None, run: Callable[[bool], Sequence[Row]]) -> None:
    """The command line every benchmark shares: ``[--quick]``, the table, the machine, the saved rows."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a shorter run, same figures")
    quick = parser.parse_args().quick
    rows = run(quick)
    print(format_table(rows))
    for row in rows:
        if row.notes:
            print(f"- {row.figure}: {row.notes}")
    print("machine: " + ", ".join(f"{key} {value}" for key, value in machine().items()))
    print(f"saved {save(name, rows, quick=quick)}")
