"""Bad API configuration fails at boot with a system check id."""

from __future__ import annotations

import pytest

from saas.checks import check_api_settings


def ids(settings_changes, settings) -> set[str | None]:
    for name, value in settings_changes.items():
        setattr(settings, name, value)
    return {message.id for message in check_api_settings()}


def test_the_shipped_configuration_passes(settings):
    assert check_api_settings() == []


@pytest.mark.parametrize(
    ("changes", "check_id"),
    [
        (
            {
                "RATE_LIMIT_TIERS": {
                    "anonymous": "ten/60",
                    "free": "1/1",
                    "standard": "1/1",
                    "critical": "1/1",
                }
            },
            "saas.E101",
        ),
        (
            {"RATE_LIMIT_TIERS": {"anonymous": "0/60", "free": "1/1", "standard": "1/1", "critical": "1/1"}},
            "saas.E101",
        ),
        ({"RATE_LIMIT_TIERS": {"anonymous": "1/60", "standard": "1/1", "critical": "1/1"}}, "saas.E102"),
        ({"RATE_LIMIT_FAIL_OPEN_TIERS": ["platinum"]}, "saas.E102"),
        ({"RATE_LIMIT_TRUSTED_PROXIES": ["10.0.0.0/33"]}, "saas.E103"),
        ({"IDEMPOTENCY_RETENTION_HOURS": 2}, "saas.E104"),
        ({"IDEMPOTENCY_LEASE_SECONDS": 0}, "saas.E105"),
        ({"ADMIN_LOGIN_RATE_PER_ACCOUNT": "5"}, "saas.E101"),
    ],
)
def test_bad_values_are_reported(settings, changes, check_id):
    assert check_id in ids(changes, settings)
