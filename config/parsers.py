"""Request parsers for the API.

:class:`VigilJSONParser` is DRF's JSON parser with every way a body can fail to decode mapped to a
``ParseError`` (400 ``malformed_request`` in the one error shape). DRF's own parser turns only
``ValueError`` (bad syntax, invalid UTF-8) into a ``ParseError``; ``json.load`` raises
``RecursionError`` on deeply nested arrays or objects (``[[[[...``), which used to escape as a 500.

A repeated name in one object is refused too: ``json.load`` would keep the last value silently,
so ``{"answers": [0, ..., 3], "answers": [0, ..., 0]}`` stored a PHQ-9 whose item 9 read 0 and
raised no alert, while a client, a proxy or a log reader that keeps the first value saw a 3.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import IO, Any, cast

from rest_framework.exceptions import ParseError
from rest_framework.parsers import (  # type: ignore[attr-defined]  # not in the stubs yet
    JSONParser,
    get_encoding,  # refuses bytes-to-bytes codecs (a bz2 "charset" would inflate the body)
)
from rest_framework.utils import json as drf_json

NESTING_MESSAGE = "JSON parse error - the document is nested too deeply."


class DuplicateKey(ValueError):
    """A name repeated within one JSON object (its text is never echoed: it may be patient data)."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise DuplicateKey("a name is repeated within one object")
        out[name] = value
    return out


class VigilJSONParser(JSONParser):
    """JSON parser that answers 400, never 500, for any undecodable body."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            # DRF's JSONParser.parse, with a hook that refuses repeated names.
            return drf_json.load(
                cast(IO[str], codecs.getreader(encoding)(stream)),
                object_pairs_hook=_unique_pairs,
                parse_constant=drf_json.strict_constant if self.strict else None,
            )
        except DuplicateKey:
            raise ParseError("JSON parse error - a name is repeated within one object.") from None
        except RecursionError:
            # The stack is already unwound here; the message names no part of the body.
            raise ParseError(NESTING_MESSAGE) from None
        except ValueError as exc:  # DRF catches these; kept for any decoder path it misses
            raise ParseError(f"JSON parse error - {exc}") from None
