"""The session-wide PII guard (tests/harness/pii_guard.py) detects what it must, and knows when it is blind.

These tests use guards of their own: nothing here is logged through the
session's loggers, so the session's guard stays meaningful.
"""

from __future__ import annotations

import logging

from regions.observability.logs import JsonFormatter
from saas.models import User
from tests.harness.pii_guard import GUARD, PiiGuard, _Recorder, find_leaks


def test_a_user_built_in_the_test_process_is_remembered_by_the_session_guard():
    User(email="Remembered.Person@Corp-Mail.io", home_region="eu-west-1")
    assert "remembered.person@corp-mail.io" in GUARD.emails


def test_known_addresses_and_reserved_test_domains_are_found_in_any_case():
    lines = [
        ("a.log", '{"message": "hello REMEMBERED.person@corp-mail.io"}'),
        ("b.log", "signup from someone@signup.example.test done"),
        ("c.log", "nothing to see: celery@worker-1 ready, [email] scrubbed"),
    ]
    leaks = find_leaks(lines, {"remembered.person@corp-mail.io"})
    assert [(leak.source, leak.email) for leak in leaks] == [
        ("a.log", "remembered.person@corp-mail.io"),
        ("b.log", "someone@signup.example.test"),
    ]


def test_child_process_log_files_are_scanned(tmp_path):
    guard = PiiGuard()
    (tmp_path / "web.log").write_text('{"message": "ok"}\n{"message": "user erin@example.com"}\n')
    guard.scan_files(tmp_path.glob("*.log"))
    assert guard.files_scanned == {"web.log": 2}
    assert [leak.email for leak in guard.finish()] == ["erin@example.com"]
    assert guard.problems == []  # nothing was installed, nothing is missing


def test_recorded_lines_are_what_the_formatter_writes_and_raw_leaks_are_reported():
    guard = PiiGuard()
    recorder = _Recorder(guard, JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("tests.pii_guard.isolated")
    logger.propagate = False  # not through the session's handlers
    logger.addHandler(recorder)
    try:
        logger.warning("reset link sent to %s", "frank@example.net")
    finally:
        logger.removeHandler(recorder)
        logger.propagate = True
    assert guard.lines_seen == 1
    assert guard.finish() == []  # the written line says [email]
    assert [leak.email for leak in guard.masked()] == ["frank@example.net"]


def test_a_guard_that_cannot_see_says_so(tmp_path):
    root = logging.getLogger()
    saved = root.handlers[:]
    guard = PiiGuard()
    guard.install()
    assert guard.recorder is not None and guard.problems == []
    root.removeHandler(guard.recorder)  # as a stray dictConfig would
    try:
        guard.finish()
    finally:
        root.handlers[:] = saved
    assert any("detached" in problem for problem in guard.problems)

    blind = PiiGuard()
    root.handlers[:] = []
    try:
        blind.install()
    finally:
        root.handlers[:] = saved
    assert blind.problems == ["the root logger has no formatted handler: nothing to imitate"]


def test_the_session_guard_is_installed_and_saw_its_start_canary():
    assert GUARD.recorder is not None
    assert GUARD.recorder in logging.getLogger().handlers
    assert any("pii-guard-canary-start" in line and "region" in line for line in GUARD.recorder.canary_lines)
    assert GUARD.problems == []
