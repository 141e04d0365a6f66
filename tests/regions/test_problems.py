"""Problem details for errors raised outside DRF views."""

from __future__ import annotations

import json

from django.test import RequestFactory

from regions.errors import ReadCapacityExhausted
from regions.problems import handler500


def test_handler500_keeps_the_status_and_code_of_an_app_error_raised_in_middleware():
    request = RequestFactory().get("/somewhere")
    try:
        raise ReadCapacityExhausted(headers={"Retry-After": "1"})
    except ReadCapacityExhausted:
        response = handler500(request)
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert json.loads(response.content)["code"] == "read_capacity_exhausted"


def test_handler500_without_an_app_error_is_a_plain_500():
    response = handler500(RequestFactory().get("/"))
    assert response.status_code == 500
    assert json.loads(response.content)["code"] == "internal_error"
