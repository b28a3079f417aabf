"""Request parsers for the API.

:class:`VigilJSONParser` is DRF's JSON parser with every way a body can fail to decode mapped to a
``ParseError`` (400 ``malformed_request`` in the one error shape). DRF's own parser turns only
``ValueError`` (bad syntax, invalid UTF-8) into a ``ParseError``; ``json.load`` raises
``RecursionError`` on deeply nested arrays or objects (``[[[[...``), which used to escape as a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

NESTING_MESSAGE = "JSON parse error - the document is nested too deeply."


class VigilJSONParser(JSONParser):
    """JSON parser that answers 400, never 500, for any undecodable body."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # The stack is already unwound here; the message names no part of the body.
            raise ParseError(NESTING_MESSAGE) from None
        except ValueError as exc:  # DRF catches these; kept for any decoder path it misses
            raise ParseError(f"JSON parse error - {exc}") from None
