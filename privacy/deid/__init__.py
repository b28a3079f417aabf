"""De-identification of diary text (presidio + an offline spaCy model + Vigil's recognizers).

Public API::

    from privacy.deid import deidentify, DenyList
    result = deidentify(text, deny_list=DenyList.build(names=["Alice Example"]))
    result.text      # "<PERSON_1> called <PHONE_NUMBER_1> ..."
    result.spans     # (DeidSpan(entity_type, start, end, score, placeholder), ...)
    result.withheld  # True: the engine failed and result.text is WITHHELD_MARKER

The Django helper ``deny_list_for_patient`` lives in :mod:`privacy.deid.patient` (this package
itself never imports Django). The engine (presidio, spaCy) is imported on first use of
``deidentify``, ``get_analyzer`` or ``warm_up``, so importing the value types stays cheap.
See docs/deid.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from privacy.deid.types import (
    ENTITY_TYPES,
    WITHHELD_MARKER,
    DeidResult,
    DeidSpan,
    DenyList,
    DenyTerm,
)

if TYPE_CHECKING:
    from privacy.deid.engine import deidentify, get_analyzer, warm_up

__all__ = [
    "ENTITY_TYPES",
    "WITHHELD_MARKER",
    "DeidResult",
    "DeidSpan",
    "DenyList",
    "DenyTerm",
    "deidentify",
    "get_analyzer",
    "warm_up",
]

_ENGINE_NAMES = frozenset({"deidentify", "get_analyzer", "warm_up"})


def __getattr__(name: str) -> Any:
    if name in _ENGINE_NAMES:
        from privacy.deid import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'privacy.deid' has no attribute {name!r}")
