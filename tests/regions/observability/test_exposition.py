"""``/internal/metrics``: access guard, region label on every series, multiprocess gunicorn."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from django.test import override_settings
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from regions import metrics
from regions.devstack.processes import wait_until
from regions.observability.exposition import access_allowed

TOKEN = "t" * 40


def scrape_families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = [(sample.labels, sample.value) for sample in family.samples]
    return families


@pytest.mark.parametrize(
    ("networks", "token", "remote", "authorization", "allowed"),
    [
        (["127.0.0.1/32", "::1/128"], None, "127.0.0.1", None, True),
        (["127.0.0.1/32", "::1/128"], None, "::1", None, True),
        (["127.0.0.1/32", "::1/128"], None, "10.0.0.7", None, False),
        (["10.0.0.0/8"], None, "10.20.30.40", None, True),
        (["10.0.0.0/8"], None, "not-an-ip", None, False),
        (["10.0.0.0/8"], TOKEN, "10.20.30.40", None, False),
        (["10.0.0.0/8"], TOKEN, "10.20.30.40", f"Bearer {TOKEN}", True),
        (["10.0.0.0/8"], TOKEN, "192.168.1.1", f"Bearer {TOKEN}", False),
        ([], TOKEN, "203.0.113.9", f"Bearer {TOKEN}", True),
        ([], TOKEN, "203.0.113.9", f"Bearer {TOKEN[:-1]}x", False),
        ([], TOKEN, "203.0.113.9", f"Basic {TOKEN}", False),
        ([], None, "127.0.0.1", None, False),
    ],
)
def test_every_configured_guard_must_pass(networks, token, remote, authorization, allowed):
    with override_settings(METRICS_ALLOWED_NETWORKS=networks, METRICS_TOKEN=token):
        assert access_allowed(remote_addr=remote, authorization=authorization) is allowed


@pytest.mark.django_db
def test_refused_scrapes_get_a_problem_and_no_metrics(client):
    response = client.get("/internal/metrics", REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "metrics_forbidden"
    with override_settings(METRICS_TOKEN=TOKEN):
        assert client.get("/internal/metrics").status_code == 403
        allowed = client.get("/internal/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert allowed.status_code == 200
    assert b"saas_http_request_duration_seconds" in allowed.content


def declared_metrics() -> list[Counter | Gauge | Histogram]:
    return [value for value in vars(metrics).values() if isinstance(value, Counter | Gauge | Histogram)]


@pytest.mark.django_db
def test_every_declared_metric_is_exported_and_every_series_has_the_region(client):
    declared = declared_metrics()
    assert len(declared) >= 12  # routing, residency, rate limits, requests, tasks, health (and more to come)
    for metric in declared:
        names = [name for name in metric._labelnames if name != "region"]
        values = dict.fromkeys(names, "exported-by-test")
        if isinstance(metric, Counter):
            metrics.labels(metric, **values).inc()
        elif isinstance(metric, Gauge):
            metrics.labels(metric, **values).set(3)
        else:
            metrics.labels(metric, **values).observe(0.2)
    families = scrape_families(client.get("/internal/metrics").content.decode())
    for metric in declared:
        samples = families[metric._name]
        assert any(labels.get(metric._labelnames[-1]) == "exported-by-test" for labels, _ in samples), (
            metric._name
        )
    unlabelled = [
        name for name, samples in families.items() for labels, _ in samples if "region" not in labels
    ]
    assert unlabelled == []
    # Process and runtime collectors, which know nothing of regions, get it too.
    assert families["process_cpu_seconds"][0][0] == {"region": "eu-west-1"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_several_gunicorn_workers_export_one_consistent_sum(harness, region_web, tmp_path):
    """Two workers, each counting its own requests: every scrape (whichever worker answers) sees both."""
    us = harness.region("us-east-1")
    directory = tmp_path / "prometheus"
    server = region_web("us-east-1", workers=2, threads=2, PROMETHEUS_MULTIPROC_DIR=str(directory))
    sent = 0

    def scrape() -> str:
        with urllib.request.urlopen(f"{us.base_url}/internal/metrics", timeout=5) as response:
            return str(response.read().decode())

    def live_count(text: str) -> float:
        return sum(
            value
            for labels, value in scrape_families(text)["saas_http_request_duration_seconds"]
            if labels.get("route") == "health/live" and labels.get("le") == "+Inf"
        )

    before = live_count(scrape())  # the fixture's own readiness polls

    def worker_pids() -> set[str]:
        return {
            m.group(1)
            for p in directory.glob("histogram_*.db")
            if (m := re.match(r"histogram_(\d+)", p.name))
        }

    def both_workers_served() -> bool:
        nonlocal sent
        for _ in range(5):
            with urllib.request.urlopen(f"{us.base_url}/health/live", timeout=5) as response:
                assert response.status == 200
            sent += 1
        return len(worker_pids()) >= 2

    wait_until(both_workers_served, timeout=60, interval=0, what="both gunicorn workers to serve a request")

    scrapes = [scrape() for _ in range(6)]
    assert [live_count(text) for text in scrapes] == [before + sent] * len(scrapes)
    for text in scrapes:
        for name, samples in scrape_families(text).items():
            for labels, _ in samples:
                assert labels.get("region") == "us-east-1", (name, labels)
    assert len(worker_pids()) == 2
    # gunicorn logs JSON like the app, and not its access line (it names the client's IP).
    logged = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
    assert logged and all(line["region"] == "us-east-1" for line in logged)
    assert not [line for line in logged if line["logger"] == "gunicorn.access"]
