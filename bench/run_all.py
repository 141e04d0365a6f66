"""``make bench``: every benchmark in ``bench/``, one summary table, written to docs/benchmarks.md.

Each benchmark runs in its own process (``python -m bench.<name> [--quick]``),
so one that crashes or leaks state cannot spoil the others; it saves its rows
to ``bench/results/<name>.json``, which this collects. The summary table
(figure, value, the baseline measured in the same run, ratio, target,
pass/fail) is printed and written between the markers at the top of
``docs/benchmarks.md`` with the machine, the date and the exact command; the
per-benchmark sections below the markers are left as they are.

    .venv/bin/python -m bench.run_all                  # everything (about 25 minutes)
    .venv/bin/python -m bench.run_all --quick          # shorter runs, same rows
    .venv/bin/python -m bench.run_all --only router_decision,request_context
    .venv/bin/python -m bench.run_all --no-doc         # print only, leave the doc alone
    .venv/bin/python -m bench.run_all --only api_throughput --merge
        # re-run one benchmark; the others' rows come from their last saved run (said in the doc)
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench.common import RESULTS_DIR, Row, ensure_wrk, load_average, machine

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
DOC = REPO / "docs" / "benchmarks.md"
START = "<!-- bench:summary:start (written by `make bench`; edit below the end marker) -->"
END = "<!-- bench:summary:end -->"
# The order of the summary table: the rows first, the rest after.
ORDER = (
    "api_throughput",
    "router_decision",
    "replica_offload",
    "residency_decision",
    "request_context",
    "replication_drain",
    "replication_partition",
    "audit_scale",
)
TIMEOUT_SECONDS = 3600


def discover() -> list[str]:
    """Every module of ``bench/`` that is a benchmark: it defines ``NAME`` and ``run(quick)``."""
    found = []
    for path in BENCH_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        runs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "run"]
        if "NAME" in names and runs:
            found.append(path.stem)
    rank = {name: index for index, name in enumerate(ORDER)}
    return sorted(found, key=lambda name: (rank.get(name, len(ORDER)), name))


def run_one(name: str, *, quick: bool, log_dir: Path) -> list[Row]:
    """Run ``bench.<name>`` in its own process; its rows, or one failed row saying why there are none."""
    result_path = RESULTS_DIR / f"{name}.json"
    result_path.unlink(missing_ok=True)  # a stale result must not pass for this run's
    argv = [sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else [])]
    log_path = log_dir / f"{name}.log"
    print(f"==> {shlex.join(argv[1:])} (log: {log_path})", file=sys.stderr, flush=True)
    started = time.monotonic()
    with log_path.open("w") as log:
        try:
            process = subprocess.run(
                argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=TIMEOUT_SECONDS, check=False
            )
            code: int | str = process.returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {TIMEOUT_SECONDS} s"
    elapsed = time.monotonic() - started
    if result_path.exists():
        data = json.loads(result_path.read_text())
        rows = [Row(**row) for row in data["rows"]]
        print(f"    {len(rows)} rows in {elapsed:.0f} s", file=sys.stderr, flush=True)
        return rows
    tail = log_path.read_text().strip().splitlines()[-1:] or ["(no output)"]
    print(f"    FAILED ({code}) after {elapsed:.0f} s: {tail[0]}", file=sys.stderr, flush=True)
    return [
        Row(
            benchmark=name,
            figure="(benchmark did not finish)",
            value=float("nan"),
            unit="",
            baseline=None,
            baseline_label="—",
            target="runs to the end",
            passed=False,
            notes=f"exit {code}: {tail[0]} (see {log_path})",
        )
    ]


def previous_rows(name: str) -> tuple[list[Row], str] | None:
    """The rows ``bench.<name>`` saved last time, and when that run finished (``None`` if none)."""
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    finished = data.get("finished") or datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime(
        "%Y-%m-%d %H:%M UTC"
    )
    if data.get("quick"):
        finished += ", --quick"
    return [Row(**row) for row in data["rows"]], finished


def _number(value: float, unit: str) -> str:
    if value != value:  # NaN: no figure
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def _ratio(row: Row) -> str:
    ratio = row.ratio
    if ratio is None:
        return "—"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:,.0f}x"


def summary_table(rows: Sequence[Row]) -> str:
    """The markdown table: one line per row, the same-run baseline beside the value."""
    lines = [
        "| benchmark | figure | value | baseline (same run) | ratio | target | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.baseline is None:
            baseline = row.baseline_label
        else:
            baseline = f"{_number(row.baseline, row.unit)} ({row.baseline_label})"
        verdict = {True: "pass", False: "**FAIL**", None: "—"}[row.passed]
        cells = [
            row.benchmark,
            row.figure,
            f"**{_number(row.value, row.unit)}**",
            baseline,
            _ratio(row),
            row.target or "—",
            verdict,
        ]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def summary_block(
    rows: Sequence[Row],
    *,
    command: str,
    started: datetime,
    finished: datetime,
    env: dict[str, str],
    kept: dict[str, str] | None = None,
    missing: Sequence[str] = (),
) -> str:
    passed = sum(row.passed is True for row in rows)
    failed = sum(row.passed is False for row in rows)
    notes = [f"- {row.benchmark} / {row.figure}: {row.notes}" for row in rows if row.notes]
    merged = (
        [
            "Rows kept from an earlier run (not re-run by this command): "
            + "; ".join(f"{name} (finished {when})" for name, when in kept.items())
            + ".",
            "",
        ]
        if kept
        else []
    )
    if missing:
        merged += [
            "Not in this table: "
            + ", ".join(missing)
            + " (not re-run, and no saved results in bench/results to keep; `make bench ONLY="
            + ",".join(missing)
            + "` adds them).",
            "",
        ]
    parts = [
        START,
        "## Summary",
        "",
        f"Command: `{command}`. Run {started:%Y-%m-%d %H:%M}-{finished:%H:%M} UTC; "
        f"{passed} rows pass, {failed} fail, {len(rows) - passed - failed} informational.",
        "",
        *merged,
        "Machine: "
        + ", ".join(
            f"{key} {value}"
            for key, value in env.items()
            if key not in ("load average", "load average after")
        )
        + f". Load average (1/5/15 min) {env.get('load average', 'n/a')} at the start, "
        f"{env.get('load average after', 'n/a')} at the end.",
        "",
        summary_table(rows),
        "",
        "Ratio is value / baseline, both measured in this run, side by side. The machine is shared "
        "(other engineers' test suites run on the same 2 cores), so absolute figures move by tens of "
        "percent between runs; ratios, measured in alternating paired rounds, are what to compare.",
        "",
        "<details><summary>Notes per row</summary>",
        "",
        *notes,
        "",
        "</details>",
        "",
        END,
    ]
    return "\n".join(parts)


def write_doc(block: str, doc: Path = DOC) -> None:
    """Put ``block`` between the markers of ``doc`` (after its title when there are none yet)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    else:
        title, sep, rest = text.partition("\n")
        text = f"{title}{sep}\n{block}\n{rest}" if title.startswith("# ") else f"{block}\n\n{text}"
    doc.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="every benchmark's --quick run")
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--doc", type=Path, default=DOC, help="the document to write (default: %(default)s)")
    parser.add_argument("--command", default="", help="the command recorded in the doc")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: the other benchmarks' rows from their last saved run (the doc says which)",
    )
    args = parser.parse_args(argv)
    everything = names = discover()
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(names)}")
        names = [name for name in names if name in wanted]
    if "api_throughput" in names:
        ensure_wrk()
    command = args.command or shlex.join(
        [".venv/bin/python", "-m", "bench.run_all", *(argv if argv is not None else sys.argv[1:])]
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    env = machine()
    started = datetime.now(UTC)
    fresh = {name: run_one(name, quick=args.quick, log_dir=RESULTS_DIR) for name in names}
    finished = datetime.now(UTC)
    env["load average after"] = load_average()
    rows: list[Row] = []
    kept: dict[str, str] = {}
    missing: list[str] = []
    for name in everything:
        if name in fresh:
            rows.extend(fresh[name])
        elif args.merge and (previous := previous_rows(name)) is not None:
            rows.extend(previous[0])
            kept[name] = previous[1]
        elif args.merge:
            missing.append(name)
    if missing:
        print(f"no saved results to keep for: {', '.join(missing)}", file=sys.stderr)
    block = summary_block(
        rows, command=command, started=started, finished=finished, env=env, kept=kept, missing=missing
    )
    print(block.split("\n", 1)[1].rsplit("\n", 1)[0])
    (RESULTS_DIR / "summary.md").write_text(block + "\n")
    if not args.no_doc:
        write_doc(block, args.doc)
        print(f"written to {args.doc}", file=sys.stderr)
    unfinished = any(row.figure == "(benchmark did not finish)" for name in fresh for row in fresh[name])
    return 1 if unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
