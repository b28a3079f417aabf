"""One text scorer (and one int8 encoder) per test session: loading MiniLM takes seconds."""

from __future__ import annotations

import pytest

from screening.ml.text.encoder import MiniLMEncoder
from screening.ml.text.scorer import TextScorer, get_text_scorer


@pytest.fixture(scope="session")
def scorer() -> TextScorer:
    return get_text_scorer(device="cpu")


@pytest.fixture(scope="session")
def int8_encoder() -> MiniLMEncoder:
    return MiniLMEncoder(device="cpu", quantized=True)
