"""Person names the small spaCy model misses: context cues, name lexicons, case heuristics.

Rules, strongest first (each yields a PERSON span without the cue word):

1. a title: "Dr. Okafor", "Mrs Kaur", "Auntie Ama Boateng", "Great-aunt Rose";
2. an introduction: "my name is sofia herrera", "call me Kofi", "I'm Lucy", "this is Marcus Bell";
3. a relation: "my sister Emily", "my therapist rebecca", "her husband Arjun";
4. capitalised (or ALL CAPS) word sequences backed by the name lexicons: a known given name
   ("Priya", "KWAME") followed by a family name or an unknown capitalised word, a family name
   first ("Nguyen Van An", "Chen Jing"), or two or three capitalised words the English vocabulary
   does not know ("Oluwaseun Adeyemi");
5. a single known given name that is not an everyday word ("Priya", not "Will", "May", "Grace"),
   or an unknown capitalised word next to a social verb ("texted Ngozi", "Ngozi says");
6. lower case: a known given name followed by a known family name ("priya sharma"), or a known
   given name after a social verb ("texted kwame");
7. propagation: a part of a name found above, written again alone in the same text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from presidio_analyzer import LocalRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from privacy.deid import lexicon as L
from privacy.deid.types import PERSON

_TOKEN = re.compile(r"[^\W\d_](?:[\w'\u2019\-]*[^\W_])?|\d+|[^\w\s]", re.UNICODE)

_TITLE = re.compile(
    r"(?:\b(?:Dr|Mr|Mrs|Ms|Mx|Miss|Prof|Sr|Sra|Srta|Mme|Mlle|Herr|Frau|Sir|Dame|Rev|Revd|Fr|"
    r"Pastor|Imam|Rabbi|Sheikh|Chief|Officer|Judge|Capt|Captain|Coach|Nurse|Doctor|Professor|"
    r"DR|MR|MRS|MS|PROF)\.?|\b(?i:dr|mr|mrs|ms|prof)\.)\s+$"
)
#: A title in lower case ("dr. patel", "my gp dr okafor"): the next word must look like a name.
_LOWER_TITLE = re.compile(r"\b(?i:dr|mr|mrs|ms|mx|prof|doctor|nurse|sister)\.?\s+$")
_RELATION_WORDS = (
    r"wife|husband|partner|boyfriend|girlfriend|fianc[ée]e?|spouse|son|daughter|child|kid|baby|"
    r"mother|mom|mum|mam|mama|mommy|mummy|father|dad|daddy|papa|parent|brother|bro|sister|sis|"
    r"sibling|twin|cousin|aunt|auntie|aunty|uncle|niece|nephew|grandmother|grandma|gran|granny|"
    r"nan|nana|nanna|grandfather|grandpa|grandad|granddad|abuela|abuelo|tia|tía|tio|tío|"
    r"friend|bestie|mate|buddy|pal|flatmate|roommate|housemate|neighbou?r|colleague|coworker|"
    r"co-worker|boss|manager|supervisor|therapist|counsel+or|psychiatrist|psychologist|doctor|"
    r"gp|nurse|social\s+worker|case\s*worker|key\s*worker|support\s+worker|sponsor|mentor|"
    r"teacher|tutor|coach|pastor|priest|imam|rabbi|landlord|landlady|ex|"
    r"(?:mother|father|sister|brother|son|daughter)-in-law|step(?:mother|father|mum|mom|dad|"
    r"son|daughter|sister|brother)|god(?:mother|father|son|daughter)|classmate|teammate|carer|"
    r"caregiver|nanny|babysitter|lawyer|solicitor|midwife|dentist|pharmacist|vicar|chaplain"
)
_RELATION = re.compile(
    r"(?i:\b(?:my|our|his|her|their|your|the|a)\s+(?:(?:best|old|new|ex|little|big|older|"
    r"younger|late|dear|step|half|twin|baby|eldest|youngest|oldest|lovely|former|current)"
    r"[\s-]+)*(?:" + _RELATION_WORDS + r"))\s*,?\s+$"
)
_RELATION_TITLE = re.compile(
    r"(?:\b(?i:auntie|aunty|aunt|uncle|grandma|grandpa|granny|gran|nana|nanna|grandad|granddad|"
    r"abuela|abuelo|tia|tía|tio|tío|cousin|baba|mama|papa|sister|brother|father|mother))\s+$"
)
_STRONG_INTRO = re.compile(
    r"(?i:\b(?:my\s+name\s+is|my\s+name's|name's|name\s+is|i\s+am\s+called|i'm\s+called|"
    r"call\s+me|they\s+call\s+me|named|signed|sincerely|regards|love\s+from))\s*[,:]?\s+$"
)
_WEAK_INTRO = re.compile(r"(?i:\b(?:this\s+is|i\s+am|i'm|im|it's|it\s+is|i\s+was))\s*,?\s+$")
_SOCIAL_VERB_BEFORE = re.compile(
    r"(?i:\b(?:with|told|tell|telling|asked|ask|asking|called|calling|texted|text|texting|"
    r"emailed|email|emailing|messaged|message|messaging|met|meet|meeting|saw|seeing|visited|"
    r"visit|visiting|hugged|hug|thanked|thank|miss|missed|missing|loved|hate|hated|avoided|"
    r"avoid|avoiding|trust|trusted|phoned|rang|ring|ringing|invited|invite|dm'd|dmed|"
    r"ran\s+into|bumped\s+into|heard\s+from|spoke\s+to|spoke\s+with|talked\s+to|talking\s+to|"
    r"talked\s+with|talk\s+to|argued\s+with|fought\s+with|broke\s+up\s+with|dating|dated|"
    r"married|divorced|dear|hi|hello|hey|thanks|"
    r"thinking\s+about|worried\s+about|comparing\s+me\s+to|compared\s+me\s+to|"
    r"texted|replied\s+to|wrote\s+to|write\s+to|waiting\s+for|waited\s+for|cc|"
    r"pick\s+up|picked\s+up|drove|took|blocked|unfollowed|followed|stalking|"
    r"reach|contact|ask\s+for|forgive|forgave|blame|blamed|kissed|kiss|left|leave|"
    r"helped|help|called\s+on|sent|send|lent|paid|owe|owes|owed|protect|stop|"
    r"mentioned|introduced))\s+$"
)
_SOCIAL_VERB_AFTER = re.compile(
    r"^(?:'s\s+|\u2019s\s+)?\s*(?:said|says|told|tells|asked|asks|called|calls|texted|texts|came|"
    r"comes|visited|visits|thinks|thought|wants|wanted|keeps|kept|left|sent|sends|brought|"
    r"brings|gave|gives|drove|drives|helped|helps|invited|laughed|cried|hugged|noticed|"
    r"listened|lent|remembered|replied|messaged|emailed|rang|phoned|knows|knew|promised|"
    r"offered|agreed|shouted|yelled|smiled|stayed|walked|sat|picked|dropped|hates|loves|"
    r"misses|missed|prayed|moved|lives|lived|works|worked|got|gets|and\s+i|and\s+me|"
    r"is\s+worried|was\s+worried|is\s+the|was\s+the|never|always|still|just|finally|"
    r"wrote|writes|answered|answers|asked|lost|died|passed|quit|bought|made|makes|"
    r"cooked|fixed|covered|sent|paid|says|hugs|hit|hurt|shouts|ignored|ignores|blocked|"
    r"from\s+(?:work|school|church|group|therapy|the)|at\s+(?:work|the|school|church))\b",
    re.IGNORECASE,
)
_NOT_NAME_UPPER = frozenset({"I", "OK", "TV", "GP", "NHS", "PHQ", "GAD", "CBT", "DBT", "ER", "A"})


@dataclass
class _Tok:
    text: str
    start: int
    end: int

    @property
    def is_word(self) -> bool:
        return self.text[0].isalpha()

    @property
    def base(self) -> str:
        """The word without a possessive "'s"."""
        t = self.text
        if len(t) > 3 and t[-2:] in ("'s", "\u2019s"):
            return t[:-2]
        return t

    @property
    def base_end(self) -> int:
        return self.start + len(self.base)

    @property
    def shape(self) -> str:
        b = self.base
        letters = [c for c in b if c.isalpha()]
        if not letters:
            return "other"
        if all(c.isupper() for c in letters):
            return "upper" if len(letters) > 1 else "initial"
        if letters[0].isupper():
            return "cap"
        if all(c.islower() for c in letters):
            return "lower"
        return "mixed"

    @property
    def key(self) -> str:
        return L.fold(self.base)


@dataclass(frozen=True)
class _Found:
    start: int
    end: int
    score: float
    rule: str


class PersonRecognizer(LocalRecognizer):
    """Heuristic PERSON recognizer (see the module docstring).

    ``english_vocab``: lower-case English words (the model's WordNet lemmas), used to tell a
    name nobody has listed ("Ngozi") from an ordinary capitalised word ("Therapy").
    """

    def __init__(self, english_vocab: Iterable[str] = ()) -> None:
        self.english_vocab = frozenset(english_vocab)
        self.recognizer_name: str = "VigilPersonRecognizer"
        super().__init__(
            supported_entities=[PERSON], supported_language="en", name=self.recognizer_name
        )

    def load(self) -> None:
        """Lexicons are loaded lazily (and cached) by :mod:`privacy.deid.lexicon`."""

    # --- word classes -------------------------------------------------------------------------
    def _is_first(self, tok: _Tok) -> bool:
        return L.is_first_name(tok.base)

    def _is_unambiguous_first(self, tok: _Tok) -> bool:
        return self._is_first(tok) and not L.is_common_word(tok.base)

    def _is_surname(self, tok: _Tok) -> bool:
        key = tok.key
        return L.is_surname(tok.base) and key not in L.STOP_WORDS

    def _is_unknown(self, tok: _Tok) -> bool:
        """A word the English vocabulary does not know (and not a stop or common word)."""
        key = tok.key
        if len(key) < 2 or L.is_common_word(key) or key in L.NOT_A_PERSON:
            return False
        parts = [p for p in key.split("-") if p]
        return bool(parts) and not any(
            L.in_vocabulary(p, self.english_vocab, L.INFLECTIONS) for p in parts
        )

    def _is_nameish(self, tok: _Tok) -> bool:
        return self._is_first(tok) or self._is_surname(tok) or self._is_unknown(tok)

    @staticmethod
    def _blocked(tok: _Tok) -> bool:
        key = tok.key
        return key in L.NOT_A_PERSON or tok.base in _NOT_NAME_UPPER

    # --- sequences ----------------------------------------------------------------------------
    def _sequence(self, toks: list[_Tok], i: int, text: str) -> int:
        """End index (exclusive) of a run of name-shaped tokens starting at ``i``."""
        shape = toks[i].shape
        j = i + 1
        words = 1
        while j < len(toks) and words < 4:
            prev, tok = toks[j - 1], toks[j]
            if prev.base != prev.text:  # a possessive ends the name
                break
            if tok.text == "." and prev.shape == "initial" and tok.start == prev.end:
                j += 1  # the full stop of an initial: "John F. Kennedy"
                continue
            if text[prev.end : tok.start] != " " or not tok.is_word:
                break
            if tok.shape == "initial" and tok.base != "I":
                j += 1
                words += 1
                continue
            if tok.key in L.NAME_PARTICLES and tok.shape in ("lower", "cap"):
                if j + 1 < len(toks) and toks[j + 1].shape in ("cap", "upper"):
                    j += 1
                    continue
                break
            if shape == "upper":
                if tok.shape != "upper" or tok.key in L.STOP_WORDS:
                    break
                if not (self._is_surname(tok) or self._is_unknown(tok)):
                    break
            elif shape in ("cap", "initial", "mixed"):
                if tok.shape not in ("cap", "mixed", "upper"):
                    break
                if tok.key in {"and", "or", "the", "of", "to", "in", "on", "at", "for"}:
                    break
                if tok.key in L.PLACE_OR_ORG_WORDS and not self._surname_not_place(
                    toks, i, j, text
                ):
                    break
            else:  # lower: only given name + family name
                if not (tok.shape == "lower" and self._is_surname(tok)):
                    break
                if L.is_common_word(tok.key) or tok.key in L.PLACE_OR_ORG_WORDS:
                    break
            j += 1
            words += 1
        return j

    def _surname_not_place(self, toks: list[_Tok], i: int, j: int, text: str) -> bool:
        """A place-like family name after a given name, then a verb: "Ji-woo Park said"."""
        tok = toks[j]
        if not (self._is_surname(tok) and self._is_unambiguous_first(toks[i])) or j != i + 1:
            return False
        return bool(_SOCIAL_VERB_AFTER.match(text[tok.end : tok.end + 40]))

    def _followed_by_place_word(self, toks: list[_Tok], j: int) -> bool:
        return j < len(toks) and toks[j].key in L.PLACE_OR_ORG_WORDS and toks[j].shape != "lower"

    # --- the rules ----------------------------------------------------------------------------
    def find(self, text: str) -> list[_Found]:
        toks = [_Tok(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]
        found: list[_Found] = []
        i = 0
        while i < len(toks):
            tok = toks[i]
            if not tok.is_word or (self._blocked(tok) and tok.shape == "lower"):
                i += 1
                continue
            before = text[max(0, tok.start - 60) : tok.start]
            hit = self._judge(toks, i, text, before)
            if hit is None:
                i += 1
                continue
            end_index, score, rule = hit
            first, last = toks[i], toks[end_index - 1]
            found.append(_Found(first.start, last.base_end, score, rule))
            i = end_index
        found.extend(self._propagate(text, toks, found))
        return found

    def _judge(
        self, toks: list[_Tok], i: int, text: str, before: str
    ) -> tuple[int, float, str] | None:
        tok = toks[i]
        shape = tok.shape
        j = self._sequence(toks, i, text)
        seq = toks[i:j]
        n = len(seq)
        after = text[seq[-1].end : seq[-1].end + 40]

        if _TITLE.search(before) and shape != "lower" and not self._blocked(tok):
            return j, 0.95, "title"
        if (
            shape == "lower"
            and _LOWER_TITLE.search(before)
            and not self._blocked(tok)
            and tok.key not in L.STOP_WORDS
            and not L.is_common_word(tok.key)
            and (self._is_surname(tok) or self._is_first(tok) or self._is_unknown(tok))
        ):
            return i + 1, 0.85, "lower-title"
        if _RELATION_TITLE.search(before) and shape in ("cap", "upper") and not self._blocked(tok):
            return j, 0.9, "relation-title"
        if _STRONG_INTRO.search(before) and not self._blocked(tok):
            if shape == "lower":
                j = self._lower_run(toks, i, text)
            return j, 0.9, "introduction"
        if _RELATION.search(before) and not self._blocked(tok):
            if shape in ("cap", "upper", "mixed"):
                return j, 0.9, "relation"
            if shape == "lower" and self._is_unambiguous_first(tok):
                return j, 0.75, "relation"
            return None
        if _WEAK_INTRO.search(before) and shape == "lower" and self._is_unambiguous_first(tok):
            j = i + 1
            while j < len(toks) and j - i < 3 and toks[j].shape == "lower":
                nxt = toks[j]
                if text[toks[j - 1].end : nxt.start] != " " or nxt.key in L.STOP_WORDS:
                    break
                if not (self._is_surname(nxt) or self._is_unknown(nxt)):
                    break
                j += 1
            return j, 0.7, "weak-introduction"
        if (
            _WEAK_INTRO.search(before)
            and shape in ("cap", "upper")
            and not self._blocked(tok)
            and (self._is_unambiguous_first(tok) or self._is_unknown(tok) or n > 1)
            and (n > 1 or self._is_first(tok) or not self._looks_like_sentence_start(before))
        ):
            return j, 0.8, "weak-introduction"

        if self._blocked(tok):
            return None
        place_next = self._followed_by_place_word(toks, j)
        if shape in ("cap", "upper", "mixed") and n >= 2 and not place_next:
            if tok.key in L.PLACE_PREFIXES and not self._is_unambiguous_first(tok):
                return None
            rest = seq[1:]
            if self._is_first(tok) and any(
                self._is_surname(t) or self._is_unknown(t) for t in rest
            ):
                return j, 0.9, "given+family"
            if self._is_first(tok) and shape == "upper" and self._is_unambiguous_first(tok):
                return j, 0.85, "given+family"
            in_vocab = tok.key in self.english_vocab
            if (
                self._is_surname(tok)
                and not L.is_common_word(tok.key)
                and not in_vocab
                and any(self._is_nameish(t) or t.shape == "initial" for t in rest)
            ):
                return j, 0.8, "family+given"
            social = bool(_SOCIAL_VERB_BEFORE.search(before)) or bool(
                _SOCIAL_VERB_AFTER.match(after)
            )
            if all(self._is_unknown(t) for t in seq) and (shape != "upper" or social):
                return j, 0.6, "unknown-pair"
            if self._is_surname(seq[-1]) and self._is_unknown(tok):
                return j, 0.7, "unknown+family"
            # A run like "Grace Period Ltd": try the first word alone below.
            j, seq, n = i + 1, seq[:1], 1
            place_next = self._followed_by_place_word(toks, j)
        if shape in ("cap", "upper") and n == 1 and not place_next:
            social = bool(_SOCIAL_VERB_BEFORE.search(before)) or bool(
                _SOCIAL_VERB_AFTER.match(after)
            )
            if self._is_unambiguous_first(tok) and (
                shape == "cap" or social or not L.in_vocabulary(tok.key, self.english_vocab)
            ):
                # ALL CAPS words are often ordinary ones ("5 MILES"): a given name that is also
                # an English word needs a social cue there ("CALLED JOHN").
                return j, 0.75, "given-name"
            if (
                shape == "cap"
                and social
                and (self._is_unknown(tok) or self._is_surname(tok))
                and not L.is_common_word(tok.key)
            ):
                return j, 0.6, "social-context"
            return None
        if shape == "lower":
            if self._is_unambiguous_first(tok) and n >= 2:
                return j, 0.7, "lower-given+family"
            run_end = self._lower_name_run(toks, i, text)
            run = toks[i:run_end]
            if not run:
                return None
            after_run = text[run[-1].end : run[-1].end + 40]
            social = bool(_SOCIAL_VERB_BEFORE.search(before)) or bool(
                _SOCIAL_VERB_AFTER.match(after_run)
            )
            if not social:
                return None
            if len(run) >= 2 and any(self._is_unknown(t) for t in run):
                return run_end, 0.6, "lower-unknown-social-context"
            if self._is_unambiguous_first(tok):
                return i + 1, 0.6, "lower-social-context"
        return None

    def _lower_name_run(self, toks: list[_Tok], i: int, text: str) -> int:
        """Lower-case words that could be a name: unknown to English, or in the name lists."""
        j = i
        while j < len(toks) and j - i < 3:
            tok = toks[j]
            if not tok.is_word or tok.shape != "lower" or L.is_common_word(tok.key):
                break
            if tok.key in L.NOT_A_PERSON or tok.key in L.PLACE_OR_ORG_WORDS:
                break
            if not (self._is_unknown(tok) or self._is_first(tok) or self._is_surname(tok)):
                break
            if j > i and text[toks[j - 1].end : tok.start] != " ":
                break
            j += 1
        return j

    @staticmethod
    def _looks_like_sentence_start(before: str) -> bool:
        stripped = before.rstrip()
        return not stripped or stripped[-1] in ".!?\n"

    def _lower_run(self, toks: list[_Tok], i: int, text: str) -> int:
        """After "my name is": up to three lower-case words that are not function words."""
        j = i
        while j < len(toks) and j - i < 3:
            tok = toks[j]
            if not tok.is_word or tok.key in L.STOP_WORDS:
                break
            if j > i and text[toks[j - 1].end : tok.start] != " ":
                break
            j += 1
        return max(j, i + 1)

    def _propagate(self, text: str, toks: list[_Tok], found: list[_Found]) -> list[_Found]:
        """A part of a found multi-word name, written again alone, is the same person."""
        parts: set[str] = set()
        for f in found:
            words = [t for t in toks if f.start <= t.start and t.end <= f.end + 2 and t.is_word]
            if len(words) < 2:
                continue
            for t in words:
                if len(t.key) > 2 and t.key not in L.STOP_WORDS and t.key not in L.NAME_PARTICLES:
                    parts.add(t.key)
        if not parts:
            return []
        covered = [(f.start, f.end) for f in found]
        extra: list[_Found] = []
        for t in toks:
            if t.key in parts and t.shape in ("cap", "upper"):
                if any(s <= t.start < e for s, e in covered):
                    continue
                extra.append(_Found(t.start, t.base_end, 0.8, "propagated"))
        return extra

    # --- presidio -----------------------------------------------------------------------------
    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if entities and PERSON not in entities:
            return []
        return [
            RecognizerResult(
                entity_type=PERSON,
                start=f.start,
                end=f.end,
                score=f.score,
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: self.recognizer_name,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    "rule": f.rule,
                },
            )
            for f in self.find(text)
        ]
