"""Recognizers presidio lacks for diary text: addresses, ids, ages > 89, phones, URLs, dates.

Every recognizer here is pure regular expressions (plus small validators) over the text, so it
behaves the same whatever the NER model does. Names live in :mod:`privacy.deid.names`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import tldextract
from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import EmailRecognizer

from privacy.deid import types as T
from privacy.deid.lexicon import FUNCTION_WORDS, STOP_WORDS, fold, split_words

# --- character classes ---------------------------------------------------------------------------
_UP = "A-Z" + "".join(c for c in map(chr, range(0xC0, 0x250)) if c.isupper())
_LO = "a-z" + "".join(c for c in map(chr, range(0xDF, 0x250)) if c.islower())
#: A capitalised (or ALL CAPS) word: "Baker", "O'Connor", "Al-Sayed", "QUEEN'S", "K".
#: A lone capital must end the word: "M" of "M5V 2T6" is not a word.
CAPWORD = rf"(?:[{_UP}][{_LO}{_UP}'\u2019\-]*[{_LO}{_UP}]|[{_UP}](?![\w'\u2019\-]))"


Validator = Callable[[re.Match[str], str], bool]


@dataclass(frozen=True)
class Rule:
    """One regular expression; ``group`` selects the span to report (0: the whole match)."""

    regex: re.Pattern[str]
    score: float
    entity: str
    group: int | str = 0
    validate: Validator | None = None
    name: str = ""


class RegexRecognizer(LocalRecognizer):
    """A recognizer made of :class:`Rule` objects (a presidio ``LocalRecognizer``)."""

    def __init__(self, *, name: str, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self.recognizer_name: str = name
        entities = sorted({r.entity for r in self.rules})
        super().__init__(supported_entities=entities, supported_language="en", name=name)

    def load(self) -> None:
        """Nothing to load: the rules are compiled at import."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        for rule in self.rules:
            if entities and rule.entity not in entities:
                continue
            for match in rule.regex.finditer(text):
                if rule.validate is not None and not rule.validate(match, text):
                    continue
                start, end = match.span(rule.group)
                # Trim what the patterns may take at the edges.
                while end > start and text[end - 1] in " \t\r\n,;:":
                    end -= 1
                while start < end and text[start] in " \t\r\n,;:":
                    start += 1
                if start < 0 or end <= start:
                    continue
                results.append(
                    RecognizerResult(
                        entity_type=rule.entity,
                        start=start,
                        end=end,
                        score=rule.score,
                        recognition_metadata={
                            RecognizerResult.RECOGNIZER_NAME_KEY: self.recognizer_name,
                            RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            "rule": rule.name,
                        },
                    )
                )
        return results


def _context_before(words: str, window: int = 40) -> Validator:
    """A validator: one of ``words`` (a regex alternation) occurs just before the match."""
    regex = re.compile(rf"\b(?:{words})\b", re.IGNORECASE)

    def check(match: re.Match[str], text: str) -> bool:
        return bool(regex.search(text[max(0, match.start() - window) : match.start()]))

    return check


# --- e-mail: presidio's recognizer with an offline public-suffix check --------------------------
@cache
def offline_tld_extractor() -> tldextract.TLDExtract:
    """tldextract reading the public suffix snapshot bundled in its wheel: no download, no cache."""
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer, validated against the bundled suffix list (never the network).

    The stock recognizer calls ``tldextract.extract``, whose default extractor downloads the
    public suffix list on first use.
    """

    def validate_result(self, pattern_text: str) -> bool:
        # A known public suffix is enough: "stmarys.sch.uk" is itself a suffix (*.sch.uk).
        return offline_tld_extractor()(pattern_text.lower()).suffix != ""


# --- URLs and social handles -------------------------------------------------------------------
_URL_TAIL = r"[^\s<>\"'()\[\]{}]*[^\s<>\"'()\[\]{}.,;:!?]"
_COMMON_TLDS = (
    "com|org|net|edu|gov|mil|int|info|biz|io|co|ai|app|dev|me|ly|tv|fm|blog|online|site|"
    "shop|store|health|care|uk|us|ca|au|nz|ie|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|pl|cz|ru|"
    "ua|in|pk|bd|lk|ng|gh|ke|za|eg|ma|ae|sa|jp|cn|kr|hk|sg|my|ph|vn|th|id|br|mx|ar|cl|eu|xyz"
)
URL_RULES = (
    Rule(re.compile(rf"\bhttps?://{_URL_TAIL}", re.IGNORECASE), 0.9, T.URL, name="url-scheme"),
    Rule(re.compile(rf"\bwww\d{{0,3}}\.{_URL_TAIL}", re.IGNORECASE), 0.85, T.URL, name="url-www"),
    Rule(
        re.compile(
            rf"(?<![\w@.\-/])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+(?:{_COMMON_TLDS})"
            rf"(?:/{_URL_TAIL}|/)?(?![\w@\-]|\.[a-z0-9])",
            re.IGNORECASE,
        ),
        0.6,
        T.URL,
        name="url-bare-domain",
    ),
    Rule(
        re.compile(r"(?<![\w@.\-/])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?(?![\w@])"),
        0.8,
        T.SOCIAL_HANDLE,
        name="handle",
    ),
)


_PLATFORM = (
    r"snapchat|snap|instagram|insta|tiktok|discord|twitter|reddit|kik|telegram|twitch|xbox|"
    r"psn|roblox|tumblr|bluesky|mastodon|youtube|facebook|whatsapp|wechat"
)
_HANDLE_WORDS = r"username|user\s*name|user\s*id|handle|gamertag|gamer\s*tag|screen\s*name"


def _handle_ok(match: re.Match[str], text: str) -> bool:
    """After a bare platform name the handle must look like one ("kayleighann_x", "sam99")."""
    handle = match.group("h")
    if fold(handle) in FUNCTION_WORDS or fold(handle) in STOP_WORDS:
        return False
    if re.search(r"[\d_.#@]", handle):
        return True
    # A plain word only right after "username is" / "handle:" ("my username was hacked": no).
    label = "label" if match.group("label") else "label2"
    if not match.group(label):
        return False
    between = text[match.end(label) : match.start("h")]
    return bool(re.search(r"(?i)\bis\b|[:=]", between))


SOCIAL_HANDLE_RULES = (
    Rule(  # Snapchat, username kayleighann_x / insta: sam.k99 / my discord is shadowfox
        re.compile(
            rf"\b(?i:(?:{_PLATFORM})\b[\s,:]*(?:(?:is|was|it's|its|name|-)[\s,:]+)*"
            rf"(?:(?P<label>{_HANDLE_WORDS})\b[\s,:]*(?:(?:is|was|=)[\s,:]+)*)?|"
            rf"(?P<label2>{_HANDLE_WORDS})\b[\s,:]*(?:(?:is|was|=)[\s,:]+)*)"
            r"(?P<h>@?(?=[\w.]*[A-Za-z])[A-Za-z0-9_](?:[A-Za-z0-9_.]{1,30}[A-Za-z0-9_])?"
            r"(?:#\d{4})?)(?![\w@])"
        ),
        0.8,
        T.SOCIAL_HANDLE,
        group="h",
        validate=_handle_ok,
        name="handle-after-platform",
    ),
    Rule(  # reddit u/throwaway_sad_2024
        re.compile(r"(?<![\w/])/?u/[A-Za-z0-9_\-]{3,20}(?![\w/])"),
        0.85,
        T.SOCIAL_HANDLE,
        name="handle-reddit",
    ),
    Rule(  # Discord: shadowfox#1234
        re.compile(r"(?<![\w#@])[A-Za-z0-9_.]{2,32}#\d{4}(?![\w#])"),
        0.8,
        T.SOCIAL_HANDLE,
        name="handle-discord-tag",
    ),
)

# --- obfuscated e-mail: "dec.joy(at)example.org", "sam [at] mail [dot] com" --------------------
_AT = r"(?:[ \t]*[(\[{<][ \t]*(?i:at)[ \t]*[)\]}>][ \t]*|[ \t]+(?:AT)[ \t]+)"
_DOT = r"(?:\.|[ \t]*[(\[{<][ \t]*(?i:dot)[ \t]*[)\]}>][ \t]*|[ \t]+DOT[ \t]+)"
EMAIL_RULES = (
    Rule(
        re.compile(
            rf"(?<![\w.\-+])[A-Za-z0-9][\w.+\-]*{_AT}[A-Za-z0-9][A-Za-z0-9\-]*"
            rf"(?:{_DOT}[A-Za-z0-9][A-Za-z0-9\-]*)*{_DOT}(?:{_COMMON_TLDS}|(?i:{_COMMON_TLDS}))"
            r"(?![\w\-])"
        ),
        0.8,
        T.EMAIL_ADDRESS,
        name="email-obfuscated",
    ),
)


# --- ages over 89 (HIPAA Safe Harbor: ages 90 and above are identifiers) ----------------------
_OLD = r"(?:9\d|1[0-4]\d)"  # 90..149
_NOT_AN_AGE_AFTER = re.compile(
    r"\s*(?:%|percent|per\s?cent|°|degrees?|mg|kg|g\b|lbs?|pounds|points?|mph|km|miles?|"
    r"minutes?|mins?|seconds?|secs?|hours?|hrs?|days?|weeks?|months?|times|steps|pages|"
    r"dollars|euros|quid|bucks|out\s+of|/)",
    re.IGNORECASE,
)
_PERSONISH_BEFORE = re.compile(
    r"\b(?:she|he|they|i|i'm|im|i\s+am|who|grand\w*|gran|granny|nan|nana|nanna|mum|mom|dad|"
    r"mother|father|aunt\w*|uncle|great[-\s]\w+|neighbou?r|patient|widow\w*|husband|wife|"
    r"partner|friend|man|woman|lady|gentleman|[A-Z][a-z]+)\b[^.!?]{0,25}$"
)


def _age_not_measure(match: re.Match[str], text: str) -> bool:
    return not _NOT_AN_AGE_AFTER.match(text, match.end())


def _age_after_person(match: re.Match[str], text: str) -> bool:
    if not _age_not_measure(match, text):
        return False
    before = text[max(0, match.start() - 45) : match.start()]
    return bool(_PERSONISH_BEFORE.search(before))


AGE_RULES = (
    Rule(
        re.compile(
            rf"\b{_OLD}(?:\s*-\s*|\s+)?(?:years?|yrs?|y/?o)\b(?:[\s-]*old)?",
            re.IGNORECASE,
        ),
        0.95,
        T.AGE,
        name="age-years-old",
    ),
    Rule(re.compile(rf"\b{_OLD}\s*yo\b", re.IGNORECASE), 0.9, T.AGE, name="age-yo"),
    Rule(
        re.compile(rf"\b(?:aged|age)\s*:?\s*{_OLD}\b", re.IGNORECASE),
        0.95,
        T.AGE,
        validate=_age_not_measure,
        name="age-aged",
    ),
    Rule(
        re.compile(rf"\b{_OLD}(?:st|nd|rd|th)\s+birthday\b", re.IGNORECASE),
        0.9,
        T.AGE,
        name="age-birthday",
    ),
    Rule(
        re.compile(
            rf"\b(?:turned|turns|turning|reached|reaches|reach|is|was|being|now|she's|he's|"
            rf"i'm|am|at)\s+(?:almost\s+|nearly\s+|over\s+|just\s+)?(?P<age>{_OLD})\b(?![.,]\d)",
            re.IGNORECASE,
        ),
        0.7,
        T.AGE,
        group="age",
        validate=_age_after_person,
        name="age-is-n",
    ),
)


# --- medical record, account and other identifying numbers -------------------------------------
_ID_VALUE = (
    r"(?P<value>(?=[A-Za-z0-9\-/ ]*\d)"
    r"(?:\d{3}[ \-]\d{3}[ \-]\d{4}"  # NHS style 943 476 5919
    r"|[A-Za-z]{0,4}[\-/]?\d[\dA-Za-z]*(?:[\-/][\dA-Za-z]+)*))"
)
#: Between a label and its value: blanks, commas and words like "is", "no.", "#" (written so
#: that each character can be matched one way only: no catastrophic backtracking).
_ID_SEP = r"[\s,]*(?:(?:is|was|:|#|no\.?|number|num\.?|nr\.?|=)[\s,]*)*"
MRN_LABELS = (
    r"mrn|m\.r\.n\.?|medical\s+record(?:\s+(?:number|no\.?|num|#|id))?|hospital\s+(?:number|no\.?|id)|"
    r"patient\s+(?:id|identifier|number|no\.?)|nhs\s+(?:number|no\.?)|chi\s+(?:number|no\.?)|"
    r"chart\s+(?:number|no\.?)|health\s+(?:card|plan|insurance)\s+(?:number|no\.?|id)|"
    r"case\s+(?:number|no\.?|id)|record\s+(?:number|no\.?)|medicare\s+(?:number|no\.?|id)|"
    r"medicaid\s+(?:number|no\.?|id)|beneficiary\s+(?:number|no\.?|id)|"
    r"unit\s+number|urn|hospital\s+record"
)
ACCOUNT_LABELS = (
    r"account(?:\s+(?:number|no\.?|num|#|id))?|acct\.?|a/c|bank\s+account|"
    r"member(?:ship)?\s+(?:id|number|no\.?)|policy\s+(?:number|no\.?|id)|"
    r"insurance\s+(?:id|number|no\.?)|subscriber\s+(?:id|number)|customer\s+(?:id|number|no\.?)|"
    r"reference\s+(?:number|no\.?)|ref\.?\s+(?:number|no\.?)|claim\s+(?:number|no\.?|id)|"
    r"sort\s+code|routing\s+(?:number|no\.?)|iban|"
    r"licen[cs]e\s+(?:number|no\.?)|passport\s+(?:number|no\.?)|vehicle\s+registration|"
    r"registration\s+(?:number|no\.?)|serial\s+(?:number|no\.?)|employee\s+(?:id|number)|"
    r"student\s+(?:id|number)|benefits?\s+(?:id|number|reference)"
)


#: UK National Insurance number (HMRC): two letters, six digits, A-D; spaces optional.
_NINO_SHAPE = r"[A-Z]{2}[ \t]?\d{2}[ \t]?\d{2}[ \t]?\d{2}[ \t]?[A-D]"
NINO_LABELS = (
    r"national\s+insurance(?:\s+(?:number|no\.?|num|#))?|n\.?i\.?\s+(?:number|no\.?|num|#)|"
    r"nino|ni\s*no\.?"
)
#: DVLA driving licence number: 5 of the surname (9-padded), 6 digits, 2 initials (9-padded),
#: a digit, 2 check letters ("MORGA657054SM9IJ").
_UK_LICENCE_SHAPE = r"[A-Z9]{5}\d[0156]\d{4}[A-Z9]{2}\d[A-Z]{2}"
LICENCE_LABELS = (
    r"driv(?:ing|er'?s?)\s+licen[cs]e(?:\s+(?:number|no\.?|num|#|id))?|"
    r"licen[cs]e(?:\s+(?:number|no\.?|num|#|id))?|dl\s*(?:number|no\.?|#)"
)
_LICENCE_VALUE = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){4,19}"


def _licence_value_ok(match: re.Match[str], text: str) -> bool:
    value = match.group("value")
    digits = sum(c.isdigit() for c in value)
    letters = sum(c.isalpha() for c in value)
    return digits >= 6 or (digits >= 3 and letters >= 1)


def _id_value_ok(match: re.Match[str], text: str) -> bool:
    value = match.group("value")
    digits = sum(c.isdigit() for c in value)
    return digits >= 4 and len(value) <= 24


ID_RULES = (
    Rule(
        re.compile(rf"\b(?i:{MRN_LABELS}){_ID_SEP}{_ID_VALUE}"),
        0.95,
        T.MEDICAL_RECORD_NUMBER,
        group="value",
        validate=_id_value_ok,
        name="mrn",
    ),
    Rule(
        re.compile(rf"\b(?i:{ACCOUNT_LABELS}){_ID_SEP}{_ID_VALUE}"),
        0.9,
        T.ACCOUNT_NUMBER,
        group="value",
        validate=_id_value_ok,
        name="account",
    ),
    Rule(  # NHS 485 777 3456 (the bare "NHS" label; "NHS number" is in MRN_LABELS)
        re.compile(r"\b(?i:nhs)[\s:#]*(?P<value>\d{3}[ \-]?\d{3}[ \-]?\d{4})(?![\w\-])"),
        0.95,
        T.MEDICAL_RECORD_NUMBER,
        group="value",
        name="nhs-bare-label",
    ),
    Rule(  # My NI number is QQ 12 34 56 C / national insurance QQ123456C
        re.compile(rf"\b(?i:{NINO_LABELS}){_ID_SEP}(?P<value>(?i:{_NINO_SHAPE}))(?![\w\-])"),
        0.95,
        T.UK_NINO,
        group="value",
        name="nino-with-label",
    ),
    Rule(  # AB 12 34 56 C without a label: only valid prefixes, capitals
        re.compile(
            r"(?<![\w\-])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
            r"[ \t]?\d{2}[ \t]?\d{2}[ \t]?\d{2}[ \t]?[A-D](?![\w\-])"
        ),
        0.6,
        T.UK_NINO,
        name="nino",
    ),
    Rule(  # SIN 046 454 286 / social insurance number: 046-454-286
        re.compile(
            r"(?:\bSIN\b|\b(?i:s\.i\.n\.|sin\s+(?:number|no\.?|#)|social\s+insurance"
            r"(?:\s+(?:number|no\.?|#))?))"
            rf"{_ID_SEP}(?P<value>\d{{3}}[ \-]?\d{{3}}[ \-]?\d{{3}})(?![\w\-])"
        ),
        0.95,
        T.CA_SIN,
        group="value",
        name="ca-sin-with-label",
    ),
    Rule(  # driving licence MORGA657054SM9IJ (DVLA layout)
        re.compile(rf"(?<![\w\-])(?P<value>{_UK_LICENCE_SHAPE})(?![\w\-])"),
        0.95,
        T.UK_DRIVING_LICENCE,
        group="value",
        name="uk-driving-licence",
    ),
    Rule(  # driving licence / licence: D1234567, 123-456-789 (other layouts, after a label)
        re.compile(rf"\b(?i:{LICENCE_LABELS}){_ID_SEP}(?P<value>{_LICENCE_VALUE})(?![\w\-])"),
        0.9,
        T.ACCOUNT_NUMBER,
        group="value",
        validate=_licence_value_ok,
        name="licence-with-label",
    ),
    # Safe Harbor's "any other unique identifying number": long digit runs nothing else claimed.
    Rule(
        re.compile(r"(?<![\w\-./])\d(?:[\- ]?\d){6,}(?![\w\-]|[./]\d)"),
        0.3,
        T.ID_NUMBER,
        validate=lambda m, t: 7 <= sum(c.isdigit() for c in m.group(0)) <= 20,
        name="long-number",
    ),
    Rule(
        re.compile(r"(?<![\w\-])[A-Z]{1,3}-?\d{6,12}(?![\w\-])"),
        0.3,
        T.ID_NUMBER,
        name="letters-digits-id",
    ),
)


# --- phone numbers (formats phonenumbers' strict matcher misses) -------------------------------
_EXT = r"(?:[ \t]*(?:x|ext\.?|extension|#)[ \t]*\d{1,6})?(?![\w\-])"
_PHONE_CONTEXT = (
    r"call|called|calling|phone|phoned|number|num|no|tel|telephone|mobile|mob|cell|cellphone|"
    r"text|texted|ring|rang|reach|contact|whatsapp|fax|line|dial|dialled|dialed|voicemail"
)


def _digits_between(low: int, high: int) -> Validator:
    def check(match: re.Match[str], text: str) -> bool:
        return low <= sum(c.isdigit() for c in match.group(0)) <= high

    return check


def _all(*validators: Validator) -> Validator:
    def check(match: re.Match[str], text: str) -> bool:
        return all(v(match, text) for v in validators)

    return check


PHONE_RULES = (
    Rule(
        re.compile(r"(?<![\w+])\+\d{1,3}(?:[ \t.\-]?\(0\))?(?:[ \t.\-]?\(?\d{1,5}\)?){2,6}" + _EXT),
        0.75,
        T.PHONE_NUMBER,
        validate=_digits_between(8, 20),
        name="phone-international",
    ),
    Rule(
        re.compile(
            r"(?<![\w+])(?:(?:\+?1|001)[ \t.\-]?)?(?:\(\d{3}\)[ \t.\-]?|\d{3}[ \t.\-])"
            r"\d{3}[ \t.\-]\d{4}(?!\d)" + _EXT
        ),
        0.7,
        T.PHONE_NUMBER,
        name="phone-nanp",
    ),
    Rule(
        re.compile(r"(?<![\w+])\(\d{3}\)\d{3}-?\d{4}(?!\d)" + _EXT),
        0.7,
        T.PHONE_NUMBER,
        name="phone-nanp-compact",
    ),
    Rule(
        re.compile(r"(?<![\w+])\(0\d{2,4}\)[ \t]?\d{3,4}[ \t\-]?\d{2,4}(?![\w\-])"),
        0.65,
        T.PHONE_NUMBER,
        validate=_digits_between(10, 11),
        name="phone-uk-parenthesised",
    ),
    Rule(
        re.compile(r"(?<![\w+])0\d{2,4}[ \t\-]?\d{3,4}[ \t\-]?\d{3,4}(?![\w\-])"),
        0.6,
        T.PHONE_NUMBER,
        validate=_digits_between(10, 11),
        name="phone-uk-national",
    ),
    Rule(
        re.compile(r"(?<![\w+\-.])[2-9]\d{9}(?!\d)" + _EXT),
        0.35,
        T.PHONE_NUMBER,
        name="phone-bare-10",
    ),
    Rule(  # any 9 to 12 digits, maybe in two or three groups, right after a phone word
        re.compile(r"(?<![\w+\-./])\d{2,12}(?:[ \-]\d{2,8}){0,2}(?![\w\-]|[./]\d)" + _EXT),
        0.6,
        T.PHONE_NUMBER,
        validate=_all(_digits_between(9, 12), _context_before(_PHONE_CONTEXT, 25)),
        name="phone-digits-after-phone-word",
    ),
    Rule(
        re.compile(r"(?<![\w+\-./])\d{3}[ .\-]\d{4}(?![\d\-]|[./]\d)" + _EXT),
        0.6,
        T.PHONE_NUMBER,
        validate=_context_before(_PHONE_CONTEXT, 40),
        name="phone-local-7",
    ),
)

# --- credit cards: 4-6-5 American Express layout that presidio's pattern misses -----------------
_CARD_CONTEXT = r"card|credit|debit|visa|mastercard|amex|american\s+express|discover|cc"


def _luhn_ok(match: re.Match[str], text: str) -> bool:
    digits = [int(c) for c in match.group(0) if c.isdigit()]
    if not 12 <= len(digits) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


CARD_RULES = (
    Rule(
        re.compile(r"(?<![\w\-])3[47]\d{2}[ \-]\d{6}[ \-]\d{5}(?![\w\-])"),
        0.9,
        T.CREDIT_CARD,
        validate=_luhn_ok,
        name="card-amex-4-6-5",
    ),
    Rule(  # 12 to 19 digits (Maestro starts at 12), Luhn-valid, after a card word
        re.compile(r"(?<![\w\-])\d{4}(?:[ \-]?\d{4}){1,3}[ \-]?\d{0,7}(?![\w\-])"),
        0.95,
        T.CREDIT_CARD,
        validate=_all(_luhn_ok, _context_before(_CARD_CONTEXT, 50)),
        name="card-luhn-with-context",
    ),
    Rule(  # Mastercard 2-series (2221-2720), which presidio's pattern does not cover
        re.compile(r"(?<![\w\-])2[2-7]\d{2}(?:[ \-]?\d{4}){3}(?![\w\-])"),
        0.85,
        T.CREDIT_CARD,
        validate=_luhn_ok,
        name="card-mastercard-2-series",
    ),
)

# --- US social security numbers written with context --------------------------------------------
SSN_RULES = (
    Rule(
        re.compile(
            r"\b(?i:ssn|social\s+security(?:\s+(?:number|no\.?|#))?|ss#)"
            r"[\s,]*(?:(?:is|was|:|#|number|no\.?)[\s,]*)*"
            r"(?P<value>\d{3}[ \-.]?\d{2}[ \-.]?\d{4})(?![\w\-])"
        ),
        0.95,
        T.US_SSN,
        group="value",
        name="ssn-with-context",
    ),
    Rule(
        re.compile(r"(?<![\w\-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w\-])"),
        0.6,
        T.US_SSN,
        name="ssn-dashed",
    ),
)


# --- dates (specific calendar dates; months, weekdays, years and durations alone are not PHI) --
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAY = r"(?:mon|tues?|wed(?:nes)?|thu(?:rs?)?|fri|sat(?:ur)?|sun)(?:day)?\.?"
_DAY = r"(?:[12]\d|3[01]|0?[1-9])"
_ORD = r"(?:st|nd|rd|th)"
_ORD_WORD = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|"
    r"twenty[\s-](?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)|thirtieth|"
    r"thirty[\s-]first)"
)
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_DAY_ANY = rf"(?:{_DAY}{_ORD}?|{_ORD_WORD})"
DATE_RULES = (
    Rule(  # (Tuesday,) (the) 3rd (of) March (2025)
        re.compile(
            rf"(?i)\b(?:{_WEEKDAY},?\s+)?(?:the\s+)?{_DAY_ANY}\s+(?:of\s+)?{_MONTH}(?![a-z])"
            rf"(?:,?\s+{_YEAR}\b)?"
        ),
        0.9,
        T.DATE_TIME,
        name="date-day-month",
    ),
    Rule(  # (Saturday,) March 3rd(, 2025) / Jan. 5, 2024 / March the 3rd
        re.compile(
            rf"(?i)\b(?:{_WEEKDAY},?\s+)?{_MONTH}\s+(?:the\s+)?{_DAY_ANY}(?![\d:]|\s*(?:am|pm)\b)"
            rf"(?:,?\s+{_YEAR}\b)?"
        ),
        0.9,
        T.DATE_TIME,
        validate=lambda m, t: (
            not re.match(r"(?i)may\s+\d", m.group(0))
            or bool(re.search(rf"(?i){_ORD}\b|{_YEAR}", m.group(0)))
        ),
        name="date-month-day",
    ),
    Rule(  # March 2019
        re.compile(rf"(?i)\b{_MONTH}\s+(?:of\s+)?{_YEAR}\b"),
        0.8,
        T.DATE_TIME,
        validate=lambda m, t: not re.match(r"(?i)may\s", m.group(0)) or m.group(0)[0] == "M",
        name="date-month-year",
    ),
    Rule(  # Tuesday the 4th / Friday 13th
        re.compile(rf"(?i)\b{_WEEKDAY},?\s+(?:the\s+)?{_DAY}{_ORD}\b"),
        0.85,
        T.DATE_TIME,
        name="date-weekday-ordinal",
    ),
    Rule(  # on the 9th
        re.compile(
            rf"(?i)\b(?:on|since|until|till|by|from|before|after)\s+(?P<d>the\s+{_DAY}{_ORD})\b"
        ),
        0.6,
        T.DATE_TIME,
        group="d",
        name="date-the-ordinal",
    ),
    Rule(  # 3/4/2025, 04/11/25, 12.05.2024, 3-4-2025
        re.compile(r"(?<![\w./\-])\d{1,2}([/.\-])\d{1,2}\1(?:\d{4}|\d{2})(?![\w/\-]|\.\d)"),
        0.85,
        T.DATE_TIME,
        name="date-numeric-dmy",
    ),
    Rule(  # 2025-03-04, 2025/01/09
        re.compile(r"(?<![\w./\-])(?:19|20)\d\d([/.\-])\d{1,2}\1\d{1,2}(?![\w/\-]|\.\d)"),
        0.9,
        T.DATE_TIME,
        name="date-numeric-ymd",
    ),
    Rule(  # on 4/15, by 5/6
        re.compile(
            r"(?i)\b(?:on|by|since|until|till|from|before|after|due|dated|date)\s+"
            r"(?P<d>(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01]))(?![\w/])"
        ),
        0.7,
        T.DATE_TIME,
        group="d",
        name="date-numeric-md",
    ),
)


# --- street and postal addresses ----------------------------------------------------------------
# USPS Publication 28, appendix C1 (street suffixes: full names and standard abbreviations),
# plus British, Irish and Indian street words.
_SUFFIXES = sorted(
    set(
        split_words(
            """
            alley allee ally aly anex annex anx arcade arc avenue av ave avn bayou byu
            beach bch bend bnd bluff bluffs blf blfs bottom btm boulevard blvd boul
            branch brnch bridge brg brook brooks brk brks burg burgs bypass byp camp cmp
            canyon cyn cape cpe causeway cswy center centers centre ctr ctrs circle
            circles cir cirs cliff cliffs clf clfs club clb common commons cmn cmns
            corner corners cor cors course crse court courts ct cts cove coves creek crk
            crescent cres crest crst crossing xing crossroad crossroads xrd xrds curve
            curv dale dam divide fall dvd drive drives dr drs estate estates est ests
            expressway expy extension extensions falls fls ferry field fields fld flds
            flat flats flt flts ford fords frd frds forest frst forge forges frg frgs
            fork forks frk frks fort freeway fwy garden gardens gdn gdns gateway gtwy
            glen glens gln glns green greens grn grns grove groves grv grvs harbor
            harbors harbour hbr hbrs haven hvn heights hts highway hwy hill hills hl hls
            hollow holw inlet inlt island islands isle junction junctions jct jcts key
            keys knoll knolls knl knls lake lakes lk lks land landing lndg lane ln light
            lights lgt lgts loaf lock locks lck lcks lodge ldg loop mall manor manors
            mnr mnrs meadow meadows mdw mdws mews mill mills ml mls mission msn motorway
            mtwy mount mt mountain mountains mtn mtns neck nck orchard orch oval
            overpass opas park parks parkway parkways pkwy pass passage psge path pike
            pine pines pne pnes place pl plain plains pln plns plaza plz point points pt
            pts port ports prt prts prairie radial radl ramp ranch rnch rapid rapids rpd
            rpds rest rst ridge ridges rdg rdgs river riv road roads rd rds route rte
            row rue run shoal shoals shl shls shore shores shr shrs skyway skwy spring
            springs spg spgs spur spurs square squares sq sqs station stravenue stra
            stream strm street streets st sts str summit smt terrace ter terr throughway
            trwy trace trce track trak trafficway trfy trail trails trl trailer trlr
            tunnel tunl turnpike tpke underpass upas union unions valley valleys vly
            vlys viaduct vdct view views vw vws village villages vlg vlgs ville vista
            vis vsta walk walks wall way ways well wells wl wls close cl parade pde rise
            circus wynd brae gate yard fold chase drove croft market broadway quay wharf
            embankment prospect villas villa vihar nagar marg colony enclave layout bagh
            puram chowk
            """
        )
    ),
    key=len,
    reverse=True,
)
#: "Via" (USPS: viaduct) only when capitalised: "21 Clark Via", never "3 Advil via".
_SUFFIX = r"(?:(?i:" + "|".join(re.escape(s) for s in _SUFFIXES) + r")|Via|VIA)\b\.?"
_STRONG_SUFFIX_WORDS = split_words(
    """
    street st road rd avenue ave lane ln drive boulevard blvd terrace
    crescent close grove gardens parade mews way place court square
    """
)
#: Suffixes written with a capital (no house number: "on Elm Street", not "at her place").
_STRONG_SUFFIX = (
    "(?:"
    + "|".join(
        f"{w.title()}|{w.upper()}" for w in sorted(_STRONG_SUFFIX_WORDS, key=len, reverse=True)
    )
    + r")\b\.?"
)
#: Suffixes trusted in lower-case text after an address cue ("i live at 18 church street").
_CUE_SUFFIX = (
    r"(?i:street|st|road|rd|avenue|ave|lane|ln|drive|dr|boulevard|blvd|court|ct|place|pl|"
    r"square|sq|terrace|crescent|close|grove|gardens|parade|mews|way|row|hill|walk|rise|circle|"
    r"highway|hwy|parkway|trail|loop|plaza)\b\.?"
)
_DIR = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West|NORTH|SOUTH|EAST|WEST)\.?"
_NUM = r"(?:[A-Z]-?\d{1,4}|\d{1,6}[A-Za-z]?(?:[-/]\d{1,5}[A-Za-z]?)?)"
_PARTICLE = (
    r"(?:de|la|le|les|des|du|del|della|di|da|dos|das|do|of|the|on|upon|y|e|von|van|der|den|"
    r"am|an|im|al|el|st\.?|saint|ste)"
)
_STREET_WORD = rf"(?:{CAPWORD}|\d{{1,3}}(?:st|nd|rd|th|ST|ND|RD|TH))"
_STREET_NAME = rf"{_STREET_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_STREET_WORD}){{0,3}}"
_UNIT_WORD = (
    r"(?i:apt|apartment|suite|ste|unit|flat|studio|fl|floor|room|rm|bldg|building|lot|"
    r"house|block|blk)\b"
)
_UNIT = rf"(?:,?[ \t]*(?:{_UNIT_WORD}\.?[ \t]*#?[ \t]*|#[ \t]*)[A-Za-z0-9][A-Za-z0-9\-]{{0,5}}\b)"
_UNIT_PREFIX = (
    rf"(?:(?:{_UNIT_WORD}|(?i:plot|house))\.?[ \t]*#?[ \t]*[A-Za-z0-9][A-Za-z0-9\-]{{0,5}},?[ \t]+)"
)
_CITY = rf"(?:{CAPWORD}(?:[ \t]+{CAPWORD}){{0,2}})"
_STATE = (
    r"(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|"
    r"S[CD]|T[NX]|UT|V[AT]|W[AIVY]|PR|GU|VI|AS|FM|MH|MP|PW|A[AEP])"
)
_ZIP = r"\d{5}(?:-\d{4})?"
_UK_POSTCODE = r"(?:GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[ABD-HJLNP-UW-Z]{2})"
#: Any case, for use after a cue only ("my postcode is ls6 2ab").
_UK_POSTCODE_ANY_CASE = r"(?i:gir ?0aa|[a-z]{1,2}\d[a-z\d]?[ \t]?\d[abd-hjlnp-uw-z]{2})(?![\w\-])"
_CA_POSTCODE = r"(?:[A-Z]\d[A-Z][ \t]?\d[A-Z]\d)"  # M5V 2T6
_CA_PROVINCE = r"(?:AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT)"
_EIRCODE = r"(?:[A-Z]\d[\dW][ \t]?[A-Z\d]{4})"  # D02 X285, D6W 1234
_NL_POSTCODE = r"(?:\d{4}[ \t]?[A-Z]{2})"  # 1017 GC: only in a tail or after a cue
#: A postcode in an address tail; a Dutch one may be followed by its city ("1017 GC Amsterdam").
_POSTCODE = (
    rf"(?:(?:{_UK_POSTCODE}|{_CA_POSTCODE}|{_EIRCODE})(?![\w\-])"
    rf"|{_NL_POSTCODE}(?![\w\-])(?:[ \t]+{_CITY})?)"
)
_TAIL = (
    r"(?:"
    # , Springfield, IL 62704
    rf"(?:,[ \t]*|[ \t]*\n[ \t]*|[ \t]+){_CITY},?[ \t]+{_STATE}[ \t]+{_ZIP}\b"
    rf"|,[ \t]*{_CITY}[ \t]+\d{{6}}\b"  # , New Delhi 110057
    # , Leeds LS6 2AB / , Toronto, ON M5V 2T6 / , Dublin D02 X285 / , Amsterdam 1017 GC
    rf"|(?:,[ \t]*|[ \t]+)(?:{_CITY},?[ \t]+)?(?:{_CA_PROVINCE},?[ \t]+)?{_POSTCODE}"
    rf"|,[ \t]*\d{{4,5}}[ \t]+{_CITY}"  # , 75019 Paris
    rf"|,[ \t]*(?!(?:{_DIR}|I|I'm|I've|I'd|I'll)\b){_CITY}"  # , Victoria Island
    r")"
)
_MEASURE_WORDS = frozenset(
    split_words(
        """
        mile miles km kms kilometre kilometres kilometer kilometers metre metres meter
        meters minute minutes min mins hour hours hr hrs second seconds day days week weeks
        month months year years time times step steps block blocks floor floors flight
        flights stop stops people persons kids children pieces page pages mg kg lbs pounds
        dollars euros percent more less lot lots bit occasion occasions different separate
        """
    )
)


def _street_words_ok(match: re.Match[str], text: str) -> bool:
    """Reject "5 miles down the road": name words must not be function or measure words."""
    name = match.groupdict().get("name") or ""
    words = [w for w in re.split(r"[ \t]+", name) if w]
    particles = 0
    for word in words:
        w = fold(word).strip(".'\u2019")
        if re.fullmatch(_PARTICLE, w):
            particles += 1
            continue
        if w in FUNCTION_WORDS or w in {"i", "i'm"}:
            return False
        if w in _MEASURE_WORDS and not word[:1].isupper():  # "5 miles down", not "Miles Highway"
            return False
    return particles < len(words)


_ADDRESS_CONTEXT = (
    r"(?i:(?:live|living|lives|lived|stay|staying|stays|stayed|moved|moving|move)\s+(?:at|to|into|in)|"
    r"address(?:\s+is|:)?|house\s+(?:at|on)|flat\s+(?:at|on)|home\s+(?:at|on)|"
    r"(?:send|sent|ship|shipped|deliver|delivered|mail|mailed|post|posted|forward)\s+"
    r"(?:it\s+|this\s+|them\s+|everything\s+|my\s+mail\s+)?to)"
)

_LOWER_WORD = r"[A-Za-z][\w'\u2019\-]*"
_LOWER_UNIT_PREFIX = (
    r"(?:(?i:flat|apt|apartment|unit|studio|suite|room)\.?[ \t]*#?[ \t]*"
    r"[A-Za-z0-9][A-Za-z0-9\-]{0,5},?[ \t]+)"
)
#: "flat 4b 18 church street, apt 2" (any case; used after a cue only).
_LOWER_ADDRESS = (
    rf"{_LOWER_UNIT_PREFIX}?{_NUM},?[ \t]+(?P<name>{_LOWER_WORD}(?:[ \t]+{_LOWER_WORD}){{0,3}})"
    rf"[ \t]+{_CUE_SUFFIX}{_UNIT}?"
)
#: ", leeds ls6 2ab" / " hu5 2aa" after a lower-case street.
_LOWER_POSTCODE_TAIL = rf"(?:,?[ \t]+(?:[A-Za-z][a-z'\-]+,?[ \t]+)?{_UK_POSTCODE_ANY_CASE})"
#: Suffixes trusted after a bare "at"/"on" in lower case ("at 9 mill lane").
_AT_SUFFIX = (
    r"(?i:street|st|road|rd|lane|ln|avenue|ave|drive|close|crescent|terrace|grove|gardens|mews|"
    r"boulevard|blvd)\b\.?"
)
#: Ordinary words that follow an address but are not a town: "at 5 mill lane alone".
_NOT_A_TOWN = split_words(
    """
    alone again now today tonight yesterday tomorrow still anymore forever currently
    temporarily together permanently mostly sometimes usually instead though too either
    with without since until till because but and or so then there here home please thanks
    """
)


def _town_word_ok(match: re.Match[str], text: str) -> bool:
    """The word after a lower-case street is a town, not "now", "alone" or "with"."""
    word = fold(match.group("city")).strip("'\u2019")
    return not (
        word in _NOT_A_TOWN
        or word in FUNCTION_WORDS
        or word in STOP_WORDS
        or word.endswith(("ly", "ing", "ed"))
    )


ADDRESS_RULES = (
    Rule(  # 221B Baker Street / Flat 3, 45 Queen's Road / 1600 Pennsylvania Ave NW, Apt 2
        re.compile(
            rf"(?<![\w\-/.]){_UNIT_PREFIX}?{_NUM},?[ \t]+(?:{_DIR}[ \t]+)?(?P<name>{_STREET_NAME})"
            rf"[ \t]+{_SUFFIX}(?:[ \t]+{_DIR}(?![\w]))?{_UNIT}?{_TAIL}?"
        ),
        0.85,
        T.ADDRESS,
        validate=_street_words_ok,
        name="address-number-street",
    ),
    Rule(  # Flat 48, Kate Islands / Studio 18, Roberts Flats, West Lynda, S7 4YA
        re.compile(
            r"(?<![\w\-/.])(?i:flat|studio|apartment|apt|unit|suite)\.?[ \t]*"
            r"\d{1,4}[A-Za-z]?,[ \t]*"
            rf"(?P<name>{_STREET_NAME})[ \t]+{_SUFFIX}{_TAIL}?"
        ),
        0.85,
        T.ADDRESS,
        validate=_street_words_ok,
        name="address-unit-street",
    ),
    Rule(  # 9 Kingsway / 3 Southgate: single compound street word
        re.compile(
            rf"(?<![\w\-/.]){_UNIT_PREFIX}?{_NUM}[ \t]+(?P<name>[{_UP}][{_LO}]+(?:way|gate|side))\b"
            rf"{_UNIT}?{_TAIL}?"
        ),
        0.7,
        T.ADDRESS,
        name="address-number-compound",
    ),
    Rule(  # 12 rue de la Paix / 88 Calle de Alcalá / Via Roma 12
        re.compile(
            rf"(?<![\w\-/.])(?:{_NUM},?[ \t]+)?(?i:rue|avenue|av\.|boulevard|bd|place|chemin|"
            rf"allée|allee|impasse|quai|cours|calle|c/|avenida|avda\.?|paseo|plaza|carrer|"
            rf"carretera|camino|via|viale|piazza|corso|vicolo|rua|travessa|largo|praça|praca|"
            rf"ulica|ul\.|aleja|al\.|plac|osiedle|strada|calea|bulevardul)[ \t]+"
            rf"(?P<name>(?:{_PARTICLE}[ \t]+){{0,3}}{_STREET_NAME})"
            r"(?:,?[ \t]*\d{1,5}[A-Za-z]?\b)?"
            rf"{_TAIL}?"
        ),
        0.8,
        T.ADDRESS,
        validate=lambda m, t: bool(re.search(r"\d", m.group(0))) and _street_words_ok(m, t),
        name="address-continental",
    ),
    Rule(  # Hauptstraße 12 / Keizersgracht 123 / Drottninggatan 5
        re.compile(
            rf"(?<![\w\-])[{_UP}][\w\-]*(?i:straße|strasse|str\.|weg|gasse|platz|allee|ring|"
            rf"damm|ufer|chaussee|steig|pfad|straat|laan|gracht|plein|kade|singel|gatan|vägen|"
            rf"vagen|gata|vej|gade|veien|gate|utca|ulice)[ \t]+\d{{1,4}}[a-zA-Z]?\b{_TAIL}?"
        ),
        0.8,
        T.ADDRESS,
        name="address-germanic",
    ),
    Rule(  # P.O. Box 4521 / PO Box 77, Leeds LS1 1AA
        re.compile(
            rf"\b(?i:p\.?[ \t]?o\.?[ \t]*box|post[ \t]+office[ \t]+box|postal[ \t]+box|"
            rf"private[ \t]+bag|postfach|apartado(?:[ \t]+postal)?)"
            rf"[ \t]*#?[ \t]*\d{{1,7}}\b{_TAIL}?"
        ),
        0.9,
        T.ADDRESS,
        name="address-po-box",
    ),
    Rule(  # PSC 4115, Box 7815, APO AE 41031 / USNS Smith, FPO AP 12345
        re.compile(
            r"\b(?:(?:PSC|CMR|Unit)[ \t]+\d{3,5},?[ \t]+Box[ \t]+\d{1,5}"
            r"|(?:USNS|USNV|USS|USCGC)[ \t]+[A-Z][a-z]+)"
            r"(?:,?\s+(?:APO|FPO|DPO)[ \t]+A[AEP][ \t]+\d{5})?"
        ),
        0.85,
        T.ADDRESS,
        name="address-military",
    ),
    Rule(  # 3-2-1 Nishi-Shinjuku (Japanese chome-ban-go)
        re.compile(rf"(?<![\w\-/.])\d{{1,2}}-\d{{1,2}}-\d{{1,3}}[ \t]+{CAPWORD}{_TAIL}?"),
        0.6,
        T.ADDRESS,
        name="address-chome",
    ),
    Rule(  # lower case after an address cue: "i live at flat 4b 18 church street, leeds ls6 2ab"
        re.compile(rf"{_ADDRESS_CONTEXT}[ \t]+(?P<addr>{_LOWER_ADDRESS}{_LOWER_POSTCODE_TAIL}?)"),
        0.75,
        T.ADDRESS,
        group="addr",
        validate=_street_words_ok,
        name="address-after-cue",
    ),
    Rule(  # ... and the town after it: "i live at 22 albert street leeds"
        re.compile(
            rf"{_ADDRESS_CONTEXT}[ \t]+(?P<addr>{_LOWER_ADDRESS},?[ \t]+"
            rf"(?P<city>[A-Za-z][a-z'\u2019\-]{{2,}}))(?![\w\-])"
        ),
        0.7,
        T.ADDRESS,
        group="addr",
        validate=_all(_street_words_ok, _town_word_ok),
        name="address-after-cue-town",
    ),
    Rule(  # lower case after at/on: "dad's at 9 mill lane now"
        re.compile(
            rf"\b(?i:at|on)[ \t]+(?P<addr>{_NUM}[ \t]+(?P<name>[a-z][\w'\u2019\-]*"
            rf"(?:[ \t]+[a-z][\w'\u2019\-]*)?)[ \t]+{_AT_SUFFIX}{_LOWER_POSTCODE_TAIL}?)"
        ),
        0.6,
        T.ADDRESS,
        group="addr",
        validate=_street_words_ok,
        name="address-lower-after-at",
    ),
    Rule(  # on Elm Street / at Queen's Road (no house number)
        re.compile(
            rf"\b(?i:on|at|in|off|near|along|down|up|to|from|past|onto|into|opposite|via|"
            rf"round|around|towards)[ \t]+(?P<addr>(?P<name>{CAPWORD}(?:[ \t]+{CAPWORD}){{0,2}})"
            rf"[ \t]+{_STRONG_SUFFIX})"
        ),
        0.5,
        T.ADDRESS,
        group="addr",
        validate=_street_words_ok,
        name="address-street-name",
    ),
    Rule(  # Springfield, IL 62704 / Lake Jessica, NV 12345
        re.compile(rf"\b{_CITY},[ \t]*{_STATE}[ \t]+{_ZIP}\b"),
        0.75,
        T.ADDRESS,
        name="address-city-state-zip",
    ),
    Rule(  # UK postcode on its own
        re.compile(rf"(?<![\w\-]){_UK_POSTCODE}(?![\w\-])"),
        0.6,
        T.ADDRESS,
        name="address-uk-postcode",
    ),
    Rule(  # zip 90210 / my zip code is 10027 / postcode: ls6 2ab / eircode D02 X285
        re.compile(
            r"\b(?i:zip(?:\s*code)?|post\s*code|postal\s+code|eircode)"
            r"(?:['\u2019]s|\s+(?i:is|was))?\s*:?\s*"
            rf"(?P<z>(?:{_NL_POSTCODE}|(?i:{_CA_POSTCODE}|{_EIRCODE}))(?![\w\-])"
            rf"|{_UK_POSTCODE_ANY_CASE}|\d{{4,5}}(?:-\d{{4}})?(?![\w\-]))"
        ),
        0.8,
        T.ADDRESS,
        group="z",
        name="address-zip-with-context",
    ),
    Rule(  # "i'm in ls6 2ab", "she lives near m14 5rt": a lower-case UK postcode after in/at
        re.compile(
            r"\b(?i:in|at|near|around|from|to|nr)[ \t]+"
            rf"(?P<z>(?<![\w\-]){_UK_POSTCODE_ANY_CASE})"
        ),
        0.6,
        T.ADDRESS,
        group="z",
        name="address-uk-postcode-after-preposition",
    ),
    Rule(  # Canadian postcode on its own, written with its space: "M5V 2T6"
        re.compile(r"(?<![\w\-])[A-Z]\d[A-Z][ \t]\d[A-Z]\d(?![\w\-])"),
        0.6,
        T.ADDRESS,
        name="address-ca-postcode",
    ),
)


def diary_recognizers() -> list[LocalRecognizer]:
    """Fresh instances of the regex recognizers defined here (names are separate)."""
    return [
        OfflineEmailRecognizer(),
        RegexRecognizer(name="VigilUrlHandleRecognizer", rules=URL_RULES),
        RegexRecognizer(name="VigilHandleRecognizer", rules=SOCIAL_HANDLE_RULES),
        RegexRecognizer(name="VigilObfuscatedEmailRecognizer", rules=EMAIL_RULES),
        RegexRecognizer(name="VigilAgeRecognizer", rules=AGE_RULES),
        RegexRecognizer(name="VigilIdentifierRecognizer", rules=ID_RULES),
        RegexRecognizer(name="VigilPhoneRecognizer", rules=PHONE_RULES),
        RegexRecognizer(name="VigilCardRecognizer", rules=CARD_RULES),
        RegexRecognizer(name="VigilSsnRecognizer", rules=SSN_RULES),
        RegexRecognizer(name="VigilDateRecognizer", rules=DATE_RULES),
        RegexRecognizer(name="VigilAddressRecognizer", rules=ADDRESS_RULES),
    ]
