"""SMART on FHIR scopes (v1 ``.read`` and v2 ``.rs`` forms), pure.

``user/Observation.rs`` lets a user read and search Observations of the patients they may see;
``system/*.rs`` lets an integration client read and search everything of its clinic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(read|\*|[cruds]+)$")


@dataclass(frozen=True)
class Scope:
    context: str
    resource: str  # a resource type or "*"
    read: bool
    search: bool

    def allows(self, resource_type: str, interaction: str) -> bool:
        if self.resource not in ("*", resource_type):
            return False
        return self.read if interaction == "read" else self.search


def scope_parse(text: str) -> Scope | None:
    """One scope, or None when it is not a SMART resource scope (``openid``, junk)."""
    match = _SCOPE.match(text.strip())
    if match is None:
        return None
    context, resource, perms = match.groups()
    if perms in ("read", "*"):
        return Scope(context, resource, True, True)
    return Scope(context, resource, "r" in perms, "s" in perms)


def scopes_parse(text: str) -> tuple[Scope, ...]:
    return tuple(s for s in (scope_parse(t) for t in text.split()) if s is not None)


def scopes_allow(scopes: tuple[Scope, ...], resource_type: str, interaction: str) -> bool:
    return any(s.allows(resource_type, interaction) for s in scopes)


def scopes_narrow(requested: str, allowed: str) -> str:
    """The requested scopes that ``allowed`` covers (an empty request asks for all of them)."""
    allowed_scopes = scopes_parse(allowed)
    if not requested.strip():
        return " ".join(allowed.split())
    kept = []
    for text in requested.split():
        scope = scope_parse(text)
        if scope is None:
            continue
        types = [scope.resource] if scope.resource != "*" else ["*"]
        if all(
            any(
                a.resource in ("*", t)
                and a.context == scope.context
                and (a.read or not scope.read)
                and (a.search or not scope.search)
                for a in allowed_scopes
            )
            for t in types
        ):
            kept.append(text)
    return " ".join(kept)
