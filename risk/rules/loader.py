"""Load versioned rule sets (one JSON file per version in ``risk/rules/sets/``) and hash them.

Pure (no Django): the app loads every file once at start-up (``RiskConfig.ready``), so a malformed
rule set stops the service from starting rather than failing at the first alert. Each set is
identified by its version and the SHA-256 of the file's bytes; alerts record both.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from risk.rules.engine import (
    BASELINE_SIGNALS,
    CRISIS_CATEGORIES,
    EVENT_TYPES,
    FUNCTIONS,
    TIER_RANK,
    Bounds,
    EngineError,
    Rule,
    RuleSet,
    Tier,
)

SETS_DIR = Path(__file__).resolve().parent / "sets"
_VERSION = re.compile(r"^v[0-9]+(\.[0-9]+)?$")
_RULE_ID = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
_LIST_VOCABULARIES = {
    "categories": CRISIS_CATEGORIES,
    "baseline_signals": BASELINE_SIGNALS,
    "signals": BASELINE_SIGNALS,
    "allowed_tiers": tuple(TIER_RANK),
}


def _is_type(value: Any, expected: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return expected is bool
    return isinstance(value, expected)


def _rule(data: Any, *, where: str) -> Rule:
    if not isinstance(data, dict):
        raise EngineError(f"{where}: a rule must be an object")
    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise EngineError(f"{where}: id must be a lower-case identifier")
    where = f"{where} ({rule_id})"
    spec = FUNCTIONS.get(data.get("function", ""))
    if spec is None:
        raise EngineError(f"{where}: unknown function")
    tier = data.get("tier")
    if tier is None and data["function"] != "model_tier":
        raise EngineError(f"{where}: tier is required")
    if tier is not None and tier not in TIER_RANK:
        raise EngineError(f"{where}: unknown tier")
    reads = data.get("reads")
    if not isinstance(reads, list) or not reads:
        raise EngineError(f"{where}: reads must list the event kinds the rule reads")
    for kind in reads:
        if kind not in EVENT_TYPES or kind not in spec.kinds:
            raise EngineError(f"{where}: cannot read {kind}")
    params = data.get("params", {})
    types = spec.param_types
    if (
        not isinstance(params, dict)
        or not set(spec.params) <= set(params)
        or not set(params) <= set(types)
    ):
        optional = f" (optional: {sorted(spec.optional)})" if spec.optional else ""
        raise EngineError(f"{where}: params must be exactly {sorted(spec.params)}{optional}")
    for name, value in params.items():
        if not _is_type(value, types[name]):
            raise EngineError(f"{where}: {name} has the wrong type")
        vocabulary = _LIST_VOCABULARIES.get(name)
        if vocabulary is not None and not set(value) <= set(vocabulary):
            raise EngineError(f"{where}: {name} has unknown values")
        limit = spec.limits.get(name)
        if limit is not None and not limit.minimum <= value <= limit.maximum:
            raise EngineError(f"{where}: {name} must be within {limit.minimum} and {limit.maximum}")
    overridable: dict[str, Bounds] = {}
    raw_overridable = data.get("overridable", {})
    if not isinstance(raw_overridable, dict):
        raise EngineError(f"{where}: overridable must be an object")
    for name, bounds in raw_overridable.items():
        if name not in params or types[name] not in (int, (int, float)):
            raise EngineError(f"{where}: only numeric parameters may be overridable")
        if not (isinstance(bounds, dict) and set(bounds) == {"min", "max"}):
            raise EngineError(f"{where}: overridable {name} needs min and max")
        low, high = bounds["min"], bounds["max"]
        if not (_is_type(low, (int, float)) and _is_type(high, (int, float)) and low <= high):
            raise EngineError(f"{where}: overridable {name} bounds are malformed")
        if not low <= params[name] <= high:
            raise EngineError(f"{where}: {name} lies outside its own bounds")
        limit = spec.limits.get(name)
        if limit is not None and not limit.minimum <= low <= high <= limit.maximum:
            raise EngineError(f"{where}: overridable {name} bounds exceed its limits")
        overridable[name] = Bounds(float(low), float(high))
    deterministic = data.get("deterministic", False)
    if not isinstance(deterministic, bool):
        raise EngineError(f"{where}: deterministic must be true or false")
    return Rule(
        id=rule_id,
        function=data["function"],
        tier=Tier(tier) if tier is not None else None,
        reads=frozenset(reads),
        params=params,
        deterministic=deterministic,
        overridable=overridable,
        description=str(data.get("description", "")),
    )


def rule_set_parse(raw: bytes, *, expected_version: str | None = None) -> RuleSet:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EngineError("a rule set must be JSON") from None
    if not isinstance(data, dict):
        raise EngineError("a rule set must be a JSON object")
    version = data.get("version")
    if not isinstance(version, str) or not _VERSION.match(version):
        raise EngineError("version must look like v1 or v1.2")
    if expected_version is not None and version != expected_version:
        raise EngineError(f"{expected_version}.json declares version {version}")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise EngineError(f"{version}: rules must be a non-empty list")
    rules = tuple(_rule(item, where=f"{version} rule {i}") for i, item in enumerate(raw_rules))
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        raise EngineError(f"{version}: rule ids must be unique")
    return RuleSet(
        version=version,
        sha256=hashlib.sha256(raw).hexdigest(),
        title=str(data.get("title", "")),
        rules=rules,
    )


def rule_set_load(path: Path) -> RuleSet:
    return rule_set_parse(path.read_bytes(), expected_version=path.stem)


@functools.cache
def rule_sets(directory: Path = SETS_DIR) -> dict[str, RuleSet]:
    """Every rule set in ``directory`` by version (loaded, validated and hashed once)."""
    found = {path.stem: rule_set_load(path) for path in sorted(directory.glob("*.json"))}
    if not found:
        raise EngineError(f"no rule sets in {directory.name}")
    return found


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version[1:].split("."))


def rule_set_newest(sets: dict[str, RuleSet]) -> RuleSet:
    """The newest version among ``sets`` (by number: v10 after v9, v1.2 after v1)."""
    return sets[max(sets, key=_version_key)]
