"""A generated stress set (Faker) to measure how the de-identifier generalises.

Not a test and not a training source: the recognizers and lexicons never use Faker's lists. It
mimics how independent held-out sets are usually produced (presidio-research style templates
filled with Faker values: names, street addresses, phones, e-mails, dates, cards, SSNs).

    .venv/bin/python -m tests.privacy.deid.faker_check [--n 600] [--seed 7] [--errors]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from typing import Any

import django


def build(n: int, seed: int) -> list[dict[str, Any]]:
    from faker import Faker

    random.seed(seed)
    Faker.seed(seed)
    name_locales = [
        "en_US",
        "en_GB",
        "es_MX",
        "es_ES",
        "en_IN",
        "yo_NG",
        "tw_GH",
        "pl_PL",
        "cs_CZ",
        "vi_VN",
        "it_IT",
        "de_DE",
        "fr_FR",
        "pt_BR",
        "id_ID",
        "fil_PH",
        "zu_ZA",
    ]
    fakers = {loc: Faker(loc) for loc in name_locales}
    us, gb = fakers["en_US"], fakers["en_GB"]
    ja = Faker("ja_JP")

    def person() -> str:
        loc = random.choice([*name_locales, "ja"])
        if loc == "ja":
            value = f"{ja.first_romanized_name()} {ja.last_romanized_name()}"
        else:
            f = fakers[loc]
            value = random.choice([f.name, lambda: f"{f.first_name()} {f.last_name()}"])()
        r = random.random()
        if r < 0.1:
            value = value.lower()
        elif r < 0.2:
            value = value.upper()
        return value

    date_formats = [
        "%B %d, %Y",
        "%d/%m/%Y",
        "%m/%d/%Y",
        "%Y-%m-%d",
        "%d %B %Y",
        "%b %d",
        "%A, %B %d",
        "%d.%m.%Y",
        "%B %dth",
    ]

    generators = {
        "PERSON": person,
        "ADDRESS": lambda: random.choice(
            [
                us.address,
                us.street_address,
                gb.address,
                gb.street_address,
                lambda: f"{us.street_address()}, {us.city()}, {us.state_abbr()} {us.zipcode()}",
            ]
        )().replace("\n", ", "),
        "PHONE_NUMBER": lambda: random.choice(
            [
                us.phone_number,
                gb.phone_number,
                fakers["en_IN"].phone_number,
                fakers["de_DE"].phone_number,
            ]
        )(),
        "EMAIL_ADDRESS": lambda: random.choice([us.email, us.free_email, gb.company_email])(),
        "DATE_TIME": lambda: us.date_between("-80y", "today").strftime(random.choice(date_formats)),
        "CREDIT_CARD": lambda: us.credit_card_number(),
        "US_SSN": us.ssn,
    }
    templates = {
        "PERSON": [
            "My name is {}.",
            "{} called me today.",
            "I met {} at the group.",
            "Dinner with {} was nice.",
            "I keep thinking about {}.",
            "{} said I should rest.",
            "Please tell {} I am fine.",
            "I'm {} and I feel low.",
        ],
        "ADDRESS": [
            "I live at {}.",
            "Send the letter to {}.",
            "We moved to {} last year.",
            "My address is {}.",
            "The clinic is at {}.",
        ],
        "PHONE_NUMBER": [
            "Call me on {}.",
            "My number is {}.",
            "You can reach me at {} tonight.",
            "Her phone is {}.",
        ],
        "EMAIL_ADDRESS": ["My email is {}.", "Write to {} please.", "I emailed {} yesterday."],
        "DATE_TIME": ["I was born on {}.", "The appointment is on {}.", "It happened on {}."],
        "CREDIT_CARD": ["My credit card number is {}.", "They charged card {} twice.", "Card: {}"],
        "US_SSN": [
            "My SSN is {}.",
            "Social security number {} was on the form.",
            "His social security number is {}.",
        ],
    }
    rows: list[dict[str, Any]] = []
    kinds = list(generators)
    for index in range(n):
        first = random.choice(kinds)
        parts = [first]
        if random.random() < 0.35:
            parts.append(random.choice(kinds))
        text = ""
        spans: list[dict[str, Any]] = []
        for kind in parts:
            template = random.choice(templates[kind])
            value = generators[kind]()
            before, after = template.split("{}")
            if text:
                text += " "
            text += before
            start = len(text)
            text += value
            spans.append({"start": start, "end": len(text), "entity_type": kind})
            text += after
        rows.append({"id": f"FK-{index:04d}", "text": text, "spans": spans})
    return rows


def _vanilla() -> Any:
    """Stock presidio with the same offline spaCy model, for comparison."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from privacy.deid.engine import SPACY_MODEL
    from privacy.deid.evaluation import Span

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            # presidio's own default NER configuration (conf/default.yaml)
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": {
                    "PER": "PERSON",
                    "PERSON": "PERSON",
                    "NORP": "NRP",
                    "FAC": "LOCATION",
                    "LOC": "LOCATION",
                    "GPE": "LOCATION",
                    "LOCATION": "LOCATION",
                    "ORG": "ORGANIZATION",
                    "ORGANIZATION": "ORGANIZATION",
                    "DATE": "DATE_TIME",
                    "TIME": "DATE_TIME",
                },
                "low_confidence_score_multiplier": 0.4,
                "low_score_entity_names": [],
                "labels_to_ignore": [
                    "ORGANIZATION",
                    "CARDINAL",
                    "EVENT",
                    "LANGUAGE",
                    "LAW",
                    "MONEY",
                    "ORDINAL",
                    "PERCENT",
                    "PRODUCT",
                    "QUANTITY",
                    "WORK_OF_ART",
                ],
            },
        }
    )
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])

    def predict(text: str) -> tuple[str, list[Span], bool]:
        results = analyzer.analyze(text=text, language="en")
        spans = [Span(r.start, r.end, r.entity_type) for r in results]
        return "", spans, False

    return predict


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--errors", action="store_true")
    parser.add_argument(
        "--vanilla",
        action="store_true",
        help="measure stock presidio (default recognizers, same small spaCy model) instead",
    )
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from privacy.deid.evaluation import Example, Span, evaluate, format_report

    examples = [
        Example(
            r["id"],
            r["text"],
            tuple(Span(s["start"], s["end"], s["entity_type"]) for s in r["spans"]),
        )
        for r in build(args.n, args.seed)
    ]
    name = f"faker stress set (n={args.n}, seed={args.seed})"
    report = evaluate(examples, _vanilla() if args.vanilla else None, name=name)
    sys.stdout.write(format_report(report) + "\n")
    if args.errors:
        texts = {e.id: e.text for e in examples}
        for miss in report.misses:
            sys.stdout.write(
                f"  {miss.kind:<8} {miss.entity_type:<14} {miss.surface!r:<40} "
                f"| {texts[miss.example_id]}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
