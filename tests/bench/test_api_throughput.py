"""``bench.api_throughput``'s CPU accounting: a server's process tree is charged, nothing else.

No timing is asserted: a child process burns a known amount of CPU and the
accounting must find at least most of it under ``gunicorn`` (the server's tree),
and must not charge this test process's own work to it.
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.api_throughput import CPU_GROUPS, _processes, cpu_per_request

BURN = (
    "import sys, time\n"
    "end = time.process_time() + {seconds}\n"
    "while time.process_time() < end: pass\n"
    "print('burned', flush=True)\n"
    "sys.stdin.read()\n"
)


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_the_server_tree_is_charged_per_request_and_other_processes_are_not() -> None:
    # The "server": a parent whose child burns 0.4 s of CPU and stays alive until told,
    # like a gunicorn master and its worker.
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {BURN.format(seconds=0.4)!r}])\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        before = _processes()
        _spin(0.6)  # this process's own work: not the server's
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "burned"
        after = _processes()
    finally:
        server.communicate("", timeout=30)

    per_request = cpu_per_request(before, after, server_pid=server.pid, requests=10)

    assert set(per_request) == set(CPU_GROUPS)
    # 0.4 s over 10 requests = 40 ms each (the child may have started before the first
    # snapshot, so at least most of it); this test's own 0.6 s would push it past 70 ms.
    assert 25 <= per_request["gunicorn"] < 70, per_request


def test_requests_of_zero_do_not_divide_by_zero() -> None:
    snapshot = _processes()
    assert cpu_per_request(snapshot, snapshot, server_pid=1, requests=0) == dict.fromkeys(CPU_GROUPS, 0.0)
