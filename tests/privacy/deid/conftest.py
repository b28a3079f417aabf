"""The de-identification engine is built once per test session (the spaCy load takes seconds)."""

from __future__ import annotations

from typing import Any

import pytest

from privacy.deid.engine import get_analyzer
from privacy.deid.evaluation import EVAL_SET, TEMPLATED_SET, Report, evaluate, load_set


@pytest.fixture(scope="session")
def deid_engine() -> Any:
    return get_analyzer()


@pytest.fixture(scope="session")
def eval_report(deid_engine: Any) -> Report:
    return evaluate(load_set(EVAL_SET), name="eval_set")


@pytest.fixture(scope="session")
def templated_report(deid_engine: Any) -> Report:
    return evaluate(load_set(TEMPLATED_SET), name="templated_set")
