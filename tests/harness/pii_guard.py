"""Session-wide guard: no log line produced by the test suite contains a test user's email.

What it reads:

- every log record of the test process, formatted by the process's own
  formatter (so it sees exactly the line that would be written), through a
  handler on the root logger installed at session start;
- every ``*.log`` file of the harness's child processes (gunicorn, Celery
  workers, PostgreSQL, Redis), read before the harness removes them.

What it looks for: every email of a ``User`` instance the test process created
or loaded (a ``post_init`` receiver), every address registered with
``remember_email``, and any address at a reserved test domain (RFC 2606/6761:
``example.com``, ``*.test``, ...), whoever created it, in any case.

It cannot pass vacuously: a canary record logged at the start and the end must
come back through the real formatter (so the handler is attached and records
propagate to it), the recorder must still be attached at the end, its matcher
must find a planted address, and the report says how many lines and addresses
were checked.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESERVED_DOMAIN_EMAIL = re.compile(
    r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@(?:[a-z0-9-]+\.)*"
    r"(?:example\.(?:com|net|org)|[a-z0-9-]+\.(?:test|example|invalid|localhost))\b"
)


@dataclass
class Leak:
    source: str
    email: str
    line: str

    def __str__(self) -> str:
        return f"{self.source}: {self.email!r} in {self.line[:300]!r}"


@dataclass
class PiiGuard:
    emails: set[str] = field(default_factory=set)
    lines_seen: int = 0
    candidate_lines: list[tuple[str, str]] = field(default_factory=list)
    """``(source, line)`` of every line that contains an ``@`` (no address without one)."""
    raw_candidates: list[tuple[str, str]] = field(default_factory=list)
    """Unformatted in-process messages with an ``@``: a leak here that the written line lacks was
    caught by the formatter's safety net (reported, not failed: the written line is what counts)."""
    files_scanned: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    recorder: _Recorder | None = None
    finish_leaks: list[Leak] = field(default_factory=list)
    _canaries: list[str] = field(default_factory=list)

    # --- collection ---------------------------------------------------------------

    def remember_email(self, email: str) -> None:
        if email:
            self.emails.add(email.lower())

    def record_line(self, source: str, line: str) -> None:
        self.lines_seen += 1
        if "@" in line:
            self.candidate_lines.append((source, line))

    def install(self) -> None:
        """Attach the recorder to the root logger, using the root handler's formatter."""
        root = logging.getLogger()
        formatter = next((h.formatter for h in root.handlers if h.formatter is not None), None)
        if formatter is None:
            self.problems.append("the root logger has no formatted handler: nothing to imitate")
            return
        self.recorder = _Recorder(self, formatter)
        root.addHandler(self.recorder)
        self._canary("start")

    def scan_files(self, paths: Iterable[Path]) -> None:
        for path in sorted(paths):
            count = 0
            with path.open(errors="replace") as handle:
                for line in handle:
                    count += 1
                    self.record_line(path.name, line.rstrip("\n"))
            self.files_scanned[path.name] = count

    def _canary(self, when: str) -> None:
        token = f"pii-guard-canary-{when}-{uuid.uuid4().hex}"
        self._canaries.append(token)
        logging.getLogger("tests.pii_guard").info(token)

    # --- verdict --------------------------------------------------------------------

    def finish(self) -> list[Leak]:
        """Every leak found; ``problems`` says why the guard itself cannot be trusted, if it cannot."""
        if self.recorder is not None:
            if self.recorder not in logging.getLogger().handlers:
                self.problems.append("the recorder was detached from the root logger during the session")
            else:
                self._canary("end")
            for token in self._canaries:
                if not any(token in line and "region" in line for line in self.recorder.canary_lines):
                    self.problems.append(f"canary {token} did not come back through the real formatter")
        planted = "planted-" + uuid.uuid4().hex[:8] + "@guard.example.com"
        if not find_leaks([("self-test", f"x {planted.upper()} y")], {planted}):
            self.problems.append("the matcher misses a planted address")
        self.finish_leaks = find_leaks(self.candidate_lines, self.emails)
        return self.finish_leaks

    def masked(self) -> list[Leak]:
        """Addresses in messages that the formatter replaced before writing (code to fix, all the same)."""
        return find_leaks(self.raw_candidates, self.emails)

    def summary(self) -> str:
        files = sum(self.files_scanned.values())
        return (
            f"[pii-guard] {self.lines_seen} log lines checked ({len(self.files_scanned)} child log files, "
            f"{files} lines of them) against {len(self.emails)} test emails and reserved test domains"
        )


class _Recorder(logging.Handler):
    def __init__(self, guard: PiiGuard, formatter: logging.Formatter) -> None:
        super().__init__(level=logging.NOTSET)
        self.guard = guard
        self.setFormatter(formatter)
        self.canary_lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            raw = record.getMessage() + (record.exc_text or "")
        except Exception:
            self.guard.problems.append(f"could not format a record of {record.name}")
            return
        if "pii-guard-canary-" in line:
            self.canary_lines.append(line)
        self.guard.record_line("test process", line)
        if "@" in raw:
            self.guard.raw_candidates.append((record.name, raw))


def find_leaks(lines: Iterable[tuple[str, str]], emails: set[str]) -> list[Leak]:
    leaks: list[Leak] = []
    for source, line in lines:
        lowered = line.lower()
        found = {email for email in emails if email in lowered}
        found.update(RESERVED_DOMAIN_EMAIL.findall(lowered))
        leaks.extend(Leak(source, email, line) for email in sorted(found))
    return leaks


def user_post_init(instance: Any, **kwargs: Any) -> None:
    """``post_init`` receiver: remember the email of every user built or loaded in the test process."""
    email = getattr(instance, "email", None)
    if isinstance(email, str) and email:
        GUARD.remember_email(email)


GUARD = PiiGuard()
