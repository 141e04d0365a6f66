"""The API's JSON parser: DRF's, with too-deep nesting a 400 like any malformed body."""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # See regions.jsonbody: a 100 kB body of `[` would otherwise be a 500.
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
