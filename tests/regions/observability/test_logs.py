"""JSON log lines: context fields, names, and the safety net for personal data."""

from __future__ import annotations

import json
import logging
import sys

from regions.observability.context import route_var, task_var
from regions.observability.logs import JsonFormatter, PlainFormatter, logging_config, scrub
from regions.request_context import request_id_var


def record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("duplicate key (email)=(Dana.Doe@example.test)")
        except ValueError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("saas.things", logging.INFO, __file__, 1, msg, args, exc_info)
    made.__dict__.update(extra)
    return made


def formatted(made: logging.LogRecord) -> dict[str, object]:
    return json.loads(JsonFormatter("%(levelname)s %(name)s %(message)s").format(made))  # type: ignore[no-any-return]


def test_a_line_is_one_json_object_with_region_and_the_current_context(settings):
    id_token, route_token = request_id_var.set("req-0123456789"), route_var.set("api/v1/orgs/<slug:org_slug>")
    task_token = task_var.set(("saas.send", "task-1"))
    try:
        line = formatted(record("created %s", "org", user_id="7f1c", duration_ms=3.5))
    finally:
        task_var.reset(task_token)
        route_var.reset(route_token)
        request_id_var.reset(id_token)
    assert line["level"] == "INFO"
    assert line["logger"] == "saas.things"
    assert line["message"] == "created org"
    assert line["region"] == settings.REGION == "eu-west-1"
    assert line["request_id"] == "req-0123456789"
    assert line["route"] == "api/v1/orgs/<slug:org_slug>"
    assert (line["task_name"], line["task_id"]) == ("saas.send", "task-1")
    assert (line["user_id"], line["duration_ms"]) == ("7f1c", 3.5)
    assert str(line["timestamp"]).endswith("+00:00")


def test_outside_a_request_only_the_region_is_added():
    line = formatted(record("tick"))
    assert line["region"] == "eu-west-1"
    assert not {"request_id", "route", "task_name"} & line.keys()


def test_fields_that_carry_arguments_or_requests_are_dropped():
    # Celery's task log records carry the args/kwargs/return value as ``data``.
    line = formatted(
        record("Task t[1] succeeded", data={"args": ["x"], "return_value": "y"}, request=object())
    )
    assert "data" not in line
    assert "request" not in line


def test_email_addresses_never_reach_the_line_message_exception_or_fields():
    line = json.dumps(
        formatted(
            record("Not Found: /users/%s", "Alice.Smith+x@Example.test", exc=True, peer="bob@example.org")
        )
    )
    assert "@" not in line
    assert '"message": "Not Found: /users/[email]"' in line
    assert '"peer": "[email]"' in line
    plain = PlainFormatter("%(message)s").format(record("login %s", "carol@example.com", exc=True))
    assert "carol@example.com" not in plain
    assert "example.test" not in plain.lower()
    assert "region=eu-west-1" in plain


def test_scrub_keeps_what_is_not_an_address():
    text = "celery@worker-1 ready; eu-west-1-0@host; user 8a2f…; a@b"
    assert scrub(text) == text
    assert scrub("to: x.y@mail.example.co.uk.") == "to: [email]."


def test_logging_config_uses_our_formatter_for_every_line():
    config = logging_config(level="INFO", fmt="json")
    assert config["formatters"]["default"]["()"] == "regions.observability.logs.JsonFormatter"
    assert config["root"] == {"handlers": ["console"], "level": "INFO"}
    # Django's own console handler (a second, plain line in DEBUG) is replaced.
    assert config["loggers"]["django"]["handlers"] == []
