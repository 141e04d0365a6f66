"""``make bench``'s aggregator: discovery, one real quick benchmark end to end, the doc's markers.

No timing is asserted (speed is judged only by ``make bench`` itself): these
check that the rows of a real run reach the summary table and the document,
and that rewriting the document keeps everything outside the markers.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path

from bench import run_all
from bench.common import Row

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {
    "api_throughput",
    "audit_scale",
    "replica_offload",
    "replication_drain",
    "replication_partition",
    "request_context",
    "residency_decision",
    "router_decision",
}


def test_discovers_every_benchmark_with_the_same_run_signature() -> None:
    names = run_all.discover()
    assert set(names) == EXPECTED
    assert names[0] == "api_throughput"  # the order, not the alphabet
    for name in names:
        module = import_module(f"bench.{name}")
        parameters = list(inspect.signature(module.run).parameters.values())
        signature = [(p.name, p.kind) for p in parameters]
        assert signature == [("quick", inspect.Parameter.POSITIONAL_OR_KEYWORD)], name
        assert module.NAME == name


def test_a_quick_run_reaches_the_table_and_the_doc(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nIntro.\n\n## request_context: details\n\nKept as written.\n")
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["BENCH_RESULTS_DIR"] = str(tmp_path / "results")
    # An earlier run of another benchmark: --merge keeps its rows and says so.
    (tmp_path / "results").mkdir()
    earlier = Row(
        benchmark="router_decision",
        figure="decision cost per query: read, nothing written",
        value=0.9,
        unit="µs",
        baseline=0.6,
        baseline_label="PinningReplicaRouter",
        target="ratio <= 1.0x",
        passed=False,
    )
    (tmp_path / "results" / "router_decision.json").write_text(
        json.dumps({"quick": False, "finished": "2026-01-02 03:04 UTC", "rows": [asdict(earlier)]})
    )
    argv = [
        *(sys.executable, "-m", "bench.run_all", "--quick", "--only", "request_context", "--merge"),
        *("--doc", str(doc)),
    ]
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]

    saved = json.loads((tmp_path / "results" / "request_context.json").read_text())
    assert saved["quick"] is True
    rows = [Row(**row) for row in saved["rows"]]
    timed = [row for row in rows if row.baseline is not None]
    assert len(timed) == 2
    for row in timed:
        assert math.isfinite(row.value) and row.value > 0
        assert row.baseline is not None and row.baseline > 0
        assert row.passed is not None
        # The table shows this row with its same-run baseline and ratio.
        line = next(x for x in result.stdout.splitlines() if f"| {row.figure} |" in x)
        assert f"({row.baseline_label})" in line
        assert f"{row.ratio:.2f}x" in line

    text = doc.read_text()
    assert text.startswith("# Benchmarks\n")
    assert text.count(run_all.START) == 1 and text.count(run_all.END) == 1
    assert text.index(run_all.END) < text.index("## request_context: details")
    assert "Kept as written." in text and "Intro." in text
    summary = text.split(run_all.START, 1)[1].split(run_all.END, 1)[0]
    assert "--only request_context" in summary  # the exact command
    assert "cores " in summary and "python " in summary and "wrk " in summary
    assert "Load average" in summary
    for row in timed:
        assert f"| {row.figure} |" in summary
    assert "| router_decision | decision cost per query: read, nothing written | **0.9 µs** |" in summary
    assert "kept from an earlier run" in summary
    assert "router_decision (finished 2026-01-02 03:04 UTC)" in summary
    assert "1.50x" in summary  # its ratio, from the kept row
    # The benchmarks with no saved results are named, not silently left out.
    others = [name for name in run_all.discover() if name not in {"request_context", "router_decision"}]
    assert others and f"Not in this table: {', '.join(others)} (" in summary
    assert "no saved results to keep for" in result.stderr


def test_rewriting_replaces_only_what_is_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(
        f"# Benchmarks\n\nIntro.\n\n{run_all.START}\nold table\n{run_all.END}\n\n## detail\n\nbody\n"
    )
    row = Row(
        benchmark="router_decision",
        figure="read, nothing written",
        value=0.8,
        unit="µs",
        baseline=1.0,
        baseline_label="PinningReplicaRouter",
        target="ratio <= 1.0x",
        passed=True,
    )
    failed = Row(
        benchmark="audit_scale",
        figure="(benchmark did not finish)",
        value=float("nan"),
        unit="",
        baseline=None,
        baseline_label="—",
        target="runs to the end",
        passed=False,
    )
    block = run_all.summary_block(
        [row, failed],
        command="make bench QUICK=1",
        started=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        finished=datetime(2026, 1, 2, 3, 9, tzinfo=UTC),
        env={"cores": "2", "load average": "1 1 1", "load average after": "2 2 2"},
    )
    run_all.write_doc(block, doc)
    run_all.write_doc(block, doc)  # idempotent
    text = doc.read_text()
    assert "old table" not in text
    assert text.count(run_all.START) == 1
    assert text.endswith("## detail\n\nbody\n")
    line = "| router_decision | read, nothing written | **0.8 µs** | 1 µs (PinningReplicaRouter) | 0.80x |"
    assert line in text
    assert "| audit_scale | (benchmark did not finish) | **—** | — | — | runs to the end | **FAIL** |" in text
    assert "1 rows pass, 1 fail" in text
    assert "`make bench QUICK=1`" in text
