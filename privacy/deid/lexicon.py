"""Word lists the recognizers share: name lexicons (data/*.txt) and hand-made stop lists.

The name lists are US Census 1990 names (public domain, via the MIT-licensed ``names`` package)
plus a hand-curated multicultural list; see ``data/README.md``. Nothing here is downloaded.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"


def fold(word: str) -> str:
    """Lower-case and strip accents: "Wiśniewska" -> "wisniewska", "ZOË" -> "zoe"."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    folded = "".join(c for c in decomposed if not unicodedata.combining(c))
    return folded.replace("ł", "l").replace("đ", "d").replace("ø", "o").replace("\u2019", "'")


def _load(name: str) -> frozenset[str]:
    words: set[str] = set()
    with (DATA_DIR / name).open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                words.add(fold(line))
    return frozenset(words)


@cache
def first_names() -> frozenset[str]:
    return _load("first_names.txt")


@cache
def surnames() -> frozenset[str]:
    return _load("surnames.txt")


@cache
def drug_names() -> frozenset[str]:
    """Generic medicine names (data/drug_names.txt): never a PERSON or a LOCATION."""
    return _load("drug_names.txt")


def is_drug_name(span: str) -> bool:
    """``span`` is one or more medicine names ("Pregabalin", "Sertraline/Quetiapine")."""
    words = [w.strip("'\u2019.,") for w in re.split(r"[\s/+&]+|\band\b", fold(span))]
    words = [re.sub(r"'s$", "", w) for w in words if w]
    return bool(words) and all(w in drug_names() for w in words)


def split_words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``."""
    return frozenset(text.split())


#: Given names that are also everyday English words: a name only with more evidence (a title,
#: "my sister ...", a following surname), never on their own ("Will I get better", "May was
#: hard", "by the Grace of God", "felt a flicker of joy").
AMBIGUOUS_NAME_WORDS = split_words(
    """
    will may june april august summer autumn winter spring dawn eve sky rain storm stormy
    grace hope faith joy joy rose ruby amber hazel olive pearl violet iris ivy lily daisy holly
    jasmine heather crystal diamond honey candy ginger brandy sherry sage sunny rusty dusty
    misty windy chance chase frank grant guy major miss man son bill bob buck bud buddy pat sue
    don dick art rich rob nick jack ray lance wade ward clay dale glen cliff reed lane drew dean
    gene jay max sonny prince king queen royal noble precious princess lady merry cherry berry
    page porter forest sterling golden young long china india america paris florida asia nevada
    sunday monday january september destiny liberty trinity harmony patience prudence mercy
    charity genesis karma echo moon star sun season sparkle marine angel christian german irish
    norman roman carol carry chin desire else foster hang hue many ok see so soon tiny velvet
    love angle alpha brain coral dot earnest ebony fawn garland gay glory jade jewel junior kit
    lacy lean loan manual marry marvel peg raven sandy scarlet shin tawny wan yen yon blue
    happy summer lucky sonny early rocky ember harley bliss heaven haven justice journey
    story true trust valor verity wisdom zion born blossom bunny fairy lady lucky magic
    harmony melody serenity unity victory hunter archer baker carter cooper fletcher mason
    miller porter sawyer taylor tanner walker weaver parker palmer page gay rock stone
    rich penny sandy brook river rivers forest field fields hill hills wood woods north
    south west east best bell bill wells mark marks price sharp strong dear early grey gray
    green brown white black young little small short long hart love best booker can
    al ed mo jo lou
    """
)

#: Function words: never part of a name or a street name.
FUNCTION_WORDS = split_words(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each even ever
    every few for from further had has have having he her here hers herself him himself his
    how i if in into is it its itself just let me more most much must my myself no nor not now
    of off on once only or other ought our ours ourselves out over own same she should so some
    such than that the their theirs them themselves then there these they this those through
    to too under until up upon very was we were what when where which while who whom why with
    would you your yours yourself yourselves yet still never always often sometimes maybe
    perhaps really quite again already else instead though although however anyway anyhow
    i'm i've i'd i'll it's he's she's we're we've they're they've you're you've don't can't
    didn't won't isn't wasn't couldn't shouldn't wouldn't that's there's what's let's im ive
    """
)

#: Everyday diary words: never a name on their own, and they stop a name.
STOP_WORDS = FUNCTION_WORDS | split_words(
    """
    today tonight tomorrow yesterday morning evening afternoon night week weekend month year
    day days weeks months years hours minutes time times oh okay ok yes yeah hi hello hey dear
    thanks thank please sorry god lord jesus christ allah amen mum mom dad mam mummy mommy
    daddy papa mama nan nana nanny gran granny grandma grandpa grandad granddad grandmother
    grandfather auntie aunty aunt uncle sister brother wife husband partner son daughter baby
    kids kid child children friend friends everyone everybody someone somebody nobody anyone
    anybody people doctor therapist nurse counsellor counselor psychiatrist teacher boss
    manager team group clinic hospital work school church home house flat room office
    felt feel feeling feels said says told asked called texted went came got get go going
    gone made make saw see seen met meet left take took gave give
    new old good bad better worse best worst great little big small first last next
    another one two three four five six seven eight nine ten
    """
)

MONTHS = split_words(
    """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    """
)

WEEKDAYS = split_words(
    """
    monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs
    fri sat sun
    """
)

#: A capitalised word after which the preceding capitalised words name a place or an
#: organisation, not a person ("Victoria Island", "Baker Street", "Rosewood Clinic").
PLACE_OR_ORG_WORDS = split_words(
    """
    street st road rd avenue ave lane ln drive dr boulevard blvd court ct place pl square sq
    terrace crescent close grove gardens way row hill parade mews walk rise circle highway
    parkway trail loop plaza pike alley green park vale view mountain mountains ridge heights
    point crossing estate estates meadow meadows path bridge island islands isle city town
    county village district borough state province region valley lake river bay beach coast
    harbour harbor port airport station centre center hospital clinic surgery practice
    university college school academy institute church chapel cathedral mosque temple
    synagogue bank group team company ltd inc llc plc corporation council ministry department
    hotel inn cafe café restaurant bar pub club gym mall market store shop library museum
    theatre theater cinema stadium hall house lodge tower towers building apartments
    foundation trust service services unit ward therapy program programme project
    """
)

#: Prefixes that start place names rather than personal names ("New Delhi", "San Diego").
PLACE_PREFIXES = split_words(
    "new san santa st saint los las el la le fort port mount mt lake north south east west"
)

#: Words that are never a person even when a model says so.
NOT_A_PERSON = (
    STOP_WORDS
    | MONTHS
    | WEEKDAYS
    | split_words(
        """
        dr mr mrs ms mx prof sir madam miss dame rev fr sr sra srta mme mlle herr frau
        god lord jesus christ allah buddha mary's heaven hell satan bible quran koran
        phq phq-9 gad gad-7 cbt dbt nhs gp er icu adhd ocd ptsd covid zoom whatsapp facebook
        instagram tiktok twitter snapchat netflix google amazon spotify youtube reddit
        lexapro prozac zoloft sertraline citalopram fluoxetine xanax valium
        """
    )
)

NAME_PARTICLES = split_words(
    "de del della der den di da dos das du van von la le al el bin ben ibn binti bint abu ap"
)


def is_common_word(word: str) -> bool:
    w = fold(word).strip(".'")
    return w in STOP_WORDS or w in AMBIGUOUS_NAME_WORDS or w in MONTHS or w in WEEKDAYS


def is_first_name(word: str) -> bool:
    return fold(word) in first_names()


def is_surname(word: str) -> bool:
    w = fold(word)
    if w in surnames():
        return True
    # Hyphenated and prefixed family names: "Al-Sayed", "El-Amin", "Lopez-Brown".
    if "-" in w:
        parts = [p for p in w.split("-") if p]
        return bool(parts) and all(p in surnames() or p in NAME_PARTICLES for p in parts)
    return False


_STEMS = (
    ("ies", "y"),
    ("ied", "y"),
    ("ing", ""),
    ("ing", "e"),
    ("ed", ""),
    ("ed", "e"),
    ("es", ""),
    ("s", ""),
    ("er", ""),
    ("ly", ""),
)
#: Inflections only (no "-ing", "-er"): "Söding" or "Walker" must not pass for English words.
INFLECTIONS = (("ies", "y"), ("ied", "y"), ("ed", ""), ("ed", "e"), ("es", ""), ("s", ""))


def in_vocabulary(
    word: str, vocabulary: frozenset[str], stems: tuple[tuple[str, str], ...] = _STEMS
) -> bool:
    """``word`` or a crude stem of it ("started" -> "start", "feelings" -> "feeling")."""
    w = fold(word).strip(".,'\u2019")
    if not vocabulary or not w:
        return False
    if w in vocabulary:
        return True
    for suffix, replacement in stems:
        stem = w[: -len(suffix)]
        if w.endswith(suffix) and len(stem) >= 3 and stem + replacement in vocabulary:
            return True
    return False
