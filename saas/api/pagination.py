"""Cursor pagination: stable under inserts, opaque cursors, no counts (no full scans)."""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request

from regions.errors import ValidationFailed


class CreatedCursorPagination(CursorPagination):
    """Newest first. ``?limit=`` (1-100, default 50) and ``?cursor=`` from ``next``/``previous``."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 100
    cursor_query_param = "cursor"

    def get_page_size(self, request: Request) -> int:
        """``limit`` must be an integer from 1 to 100: anything else is a 400, never silently the default."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if re.fullmatch(r"[0-9]{1,4}", raw) is None or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationFailed(
                "One or more fields are invalid.",
                extra={
                    "errors": [
                        {
                            "field": "limit",
                            "message": f"Give an integer from 1 to {self.max_page_size}.",
                            "code": "invalid",
                        }
                    ]
                },
            )
        return int(raw)

    def decode_cursor(self, request: Request) -> Cursor | None:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationFailed(
                "One or more fields are invalid.",
                extra={"errors": [{"field": "cursor", "message": "Invalid cursor.", "code": "invalid"}]},
            ) from None

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = super().get_paginated_response_schema(schema)
        return found
