"""Celery: the request id crosses the broker into a real worker's log lines; task outcome metrics."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import pytest
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from regions.devstack.processes import ManagedProcess, free_port, wait_until
from regions.observability.middleware import RequestContextMiddleware
from regions.request_context import current_request_id, request_id_var
from regions.tasks import HEARTBEAT_KEY, heartbeat
from saas.celery import app as celery_app


def json_log_lines(worker: ManagedProcess) -> list[dict[str, Any]]:
    lines = []
    for raw in worker.log_path.read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


def task_samples(port: int) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/internal/metrics", timeout=5) as response:
        text = response.read().decode()
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.labels.get("region") == "eu-west-1", sample
            if sample.name == "saas_celery_tasks_total":
                out[(sample.labels["task"], sample.labels["outcome"])] = sample.value
            if sample.name == "saas_celery_task_duration_seconds_count":
                out[(sample.labels["task"], "runs")] = sample.value
    return out


@pytest.mark.slow
def test_request_id_flows_from_a_request_into_a_real_workers_task_log_line(celery_worker):
    port = free_port()
    worker = celery_worker("eu-west-1", CELERY_METRICS_PORT=str(port))
    token = uuid.uuid4().hex
    request_id = f"req-{uuid.uuid4()}"

    def view(request: HttpRequest) -> HttpResponse:
        heartbeat.delay(token)  # published while the request is being served
        return HttpResponse("queued")

    response = RequestContextMiddleware(view)(RequestFactory().get("/queue", HTTP_X_REQUEST_ID=request_id))
    assert response["X-Request-ID"] == request_id
    assert current_request_id() is None

    wait_until(lambda: cache.get(HEARTBEAT_KEY.format(token=token)) is not None, timeout=30, what="the task")

    def task_line() -> dict[str, Any] | None:
        return next(
            (line for line in json_log_lines(worker) if line.get("request_id") == request_id),
            None,
        )

    wait_until(lambda: task_line() is not None, timeout=10, what="the task's log line")
    line = task_line()
    assert line is not None
    assert line["task_name"] == "regions.heartbeat"
    assert line["region"] == "eu-west-1"
    assert "succeeded" in line["message"]
    assert "data" not in line  # Celery's args/return value stay out of the line

    # Task outcomes, exported by the worker's parent from its prefork children.
    wait_until(
        lambda: task_samples(port).get(("regions.heartbeat", "succeeded"), 0) >= 1, timeout=10, what="metric"
    )
    before = task_samples(port)
    celery_app.send_task("regions.heartbeat", args=[])  # unchecked here: a TypeError in the worker
    failed_before = before.get(("regions.heartbeat", "failed"), 0)
    wait_until(
        lambda: task_samples(port).get(("regions.heartbeat", "failed"), 0) == failed_before + 1,
        timeout=20,
        what="the failure to be counted",
    )
    after = task_samples(port)
    assert after[("regions.heartbeat", "runs")] == before[("regions.heartbeat", "runs")] + 1
    # Tasks published outside a request carry no request id.
    failed = [line for line in json_log_lines(worker) if "raised unexpected" in line.get("message", "")]
    assert failed and all("request_id" not in line for line in failed)


def test_an_eager_task_keeps_the_callers_request_id(settings):
    token = request_id_var.set("req-eager-000001")
    try:
        heartbeat.apply(args=(uuid.uuid4().hex,))
        assert current_request_id() == "req-eager-000001"
    finally:
        request_id_var.reset(token)
