"""``python -m regions.devstack run|start|stop|status``: the local multi-region stack.

- ``run``: start every region, print how to reach them, stay in the
  foreground; Ctrl-C stops every process it started, by PID.
- ``start``: the same in the background; returns once every region is ready.
- ``stop``: stop a stack started with ``start``.
- ``status``: print ``.run/stack.json``.

Regions come from ``--regions`` or ``REGIONS`` (comma separated); the default
is eu-west-1, eu-central-1 and us-east-1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from regions.devstack.processes import pid_alive
from regions.devstack.stack import (
    DEFAULT_REGIONS,
    LOCAL_REGISTRY,
    PG_BASE_PORT,
    REDIS_BASE_PORT,
    REPO_ROOT,
    Stack,
    StackPlan,
    all_pids,
    format_summary,
    read_description,
)

DEFAULT_ROOT = REPO_ROOT / ".run"
READY_MARK = "ready"


def _plan(args: argparse.Namespace) -> StackPlan:
    codes = [
        c.strip()
        for c in (args.regions or os.environ.get("REGIONS") or ",".join(DEFAULT_REGIONS)).split(",")
        if c.strip()
    ]
    embedded = True if args.embedded else None
    return StackPlan.make(
        root=args.root,
        codes=codes,
        embedded=embedded,
        registry_path=args.registry,
        pg_base_port=args.pg_base_port,
        redis_base_port=args.redis_base_port,
    )


def _pid_file(root: Path) -> Path:
    return root / "supervisor.pid"


def cmd_run(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
    except ValueError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 2
    pid_file = _pid_file(args.root)
    if pid_file.exists() and pid_alive(int(pid_file.read_text() or 0)):
        print(
            f"run: a stack is already running (pid {pid_file.read_text()}); `make stop` first",
            file=sys.stderr,
        )
        return 1
    stack = Stack(plan)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    args.root.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    (args.root / READY_MARK).unlink(missing_ok=True)
    began = time.monotonic()
    try:
        description = stack.up()
        print(format_summary(description), flush=True)
        print(f"\n[stack] every region ready in {time.monotonic() - began:.1f}s", file=sys.stderr, flush=True)
        (args.root / READY_MARK).write_text(str(os.getpid()))
        while True:
            time.sleep(1)
            for procs in stack.processes.values():
                for proc in procs.all():
                    process = getattr(proc, "process", proc)
                    if not process.running():
                        print(
                            f"[stack] {process.name} exited; see {process.log_path}",
                            file=sys.stderr,
                            flush=True,
                        )
                        raise KeyboardInterrupt
    except KeyboardInterrupt:
        print("\n[stack] stopping every process ...", file=sys.stderr, flush=True)
        return 0
    finally:
        stack.down()
        (args.root / READY_MARK).unlink(missing_ok=True)
        pid_file.unlink(missing_ok=True)
        print("[stack] stopped", file=sys.stderr, flush=True)


def cmd_start(args: argparse.Namespace) -> int:
    args.root.mkdir(parents=True, exist_ok=True)
    (args.root / READY_MARK).unlink(missing_ok=True)
    log = (args.root / "stack.log").open("ab")
    argv = [
        sys.executable,
        "-m",
        "regions.devstack",
        "run",
        "--root",
        str(args.root),
        "--registry",
        str(args.registry),
        "--pg-base-port",
        str(args.pg_base_port),
        "--redis-base-port",
        str(args.redis_base_port),
    ]
    if args.regions:
        argv += ["--regions", args.regions]
    if args.embedded:
        argv.append("--embedded")
    child = subprocess.Popen(
        argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO_ROOT
    )
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if (args.root / READY_MARK).exists():
            description = read_description(args.root)
            if description is not None:
                print(format_summary(description))
            print(
                f"[stack] running in the background (pid {child.pid}); `make stop` stops it", file=sys.stderr
            )
            return 0
        if child.poll() is not None:
            break
        time.sleep(0.5)
    print("start: the stack did not come up; last lines of .run/stack.log:", file=sys.stderr)
    tail = (args.root / "stack.log").read_text(errors="replace").splitlines()[-30:]
    print("\n".join(tail), file=sys.stderr)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGTERM)
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    pid_file = _pid_file(args.root)
    if not pid_file.exists():
        print("stop: no stack is running", file=sys.stderr)
        return 0
    pid = int(pid_file.read_text() or 0)
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    # Anything left (the supervisor was killed hard): stop it by PID.
    description = read_description(args.root) or {}
    for child in all_pids(description):
        if pid_alive(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)
    pid_file.unlink(missing_ok=True)
    print("[stack] stopped", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    description = read_description(args.root)
    if description is None:
        print("status: no stack has run here", file=sys.stderr)
        return 1
    print(json.dumps(description, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regions.devstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["run", "start", "stop", "status"])
    parser.add_argument(
        "--regions",
        help="comma-separated region codes (default: REGIONS or eu-west-1,eu-central-1,us-east-1)",
    )
    parser.add_argument(
        "--root", type=Path, default=DEFAULT_ROOT, help="where data and logs live (default .run/)"
    )
    parser.add_argument(
        "--embedded", action="store_true", help="force the embedded defaults (SQLite, in-process tasks)"
    )
    parser.add_argument("--timeout", type=float, default=180, help="start: seconds to wait for readiness")
    parser.add_argument("--registry", type=Path, default=LOCAL_REGISTRY, help="region registry (web ports)")
    parser.add_argument("--pg-base-port", type=int, default=PG_BASE_PORT, help="first PostgreSQL port")
    parser.add_argument("--redis-base-port", type=int, default=REDIS_BASE_PORT, help="first Redis port")
    args = parser.parse_args(argv)
    return {"run": cmd_run, "start": cmd_start, "stop": cmd_stop, "status": cmd_status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
