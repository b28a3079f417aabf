"""Regression tests for the de-identification defects found in review (D1-D6 and the low ones).

Synthetic text only. Each case failed before its fix; the "survives" lists guard against
over-redaction of clinical meaning.
"""

from __future__ import annotations

import pytest

from privacy.deid import DenyList, deidentify
from privacy.deid.engine import _deny_matches as deny_matches
from privacy.deid.engine import fold_with_offsets
from privacy.deid.lexicon import is_drug_name

pytestmark = pytest.mark.usefixtures("deid_engine")


def _found(text: str) -> set[tuple[str, str]]:
    return {(s.entity_type, text[s.start : s.end]) for s in deidentify(text).spans}


def _assert_redacted(text: str, entity_type: str, phi: str) -> None:
    result = deidentify(text)
    got = {(s.entity_type, text[s.start : s.end]) for s in result.spans}
    assert (entity_type, phi) in got, got
    assert phi not in result.text


# --- D1: postcodes after a street are not cut inside a word; CA, IE and NL postcodes -------------
@pytest.mark.parametrize(
    "text, address",
    [
        pytest.param(
            "45 Queen Street, Toronto ON M5V 2T6 now",
            "45 Queen Street, Toronto ON M5V 2T6",
            id="ca-postcode-after-province",
        ),
        pytest.param(
            "Moved to 45 Queen Street, Toronto, ON M5V 2T6.",
            "45 Queen Street, Toronto, ON M5V 2T6",
            id="ca-postcode-comma-province",
        ),
        pytest.param(
            "52 Rue Saint-Denis, Montréal H2X 3K8",
            "52 Rue Saint-Denis, Montréal H2X 3K8",
            id="ca-postcode-accented-city",
        ),
        pytest.param(
            "12 Oak Lane, Dublin D02 X285", "12 Oak Lane, Dublin D02 X285", id="eircode-tail"
        ),
        pytest.param(
            "Sent to 7 Mill Road, Cork T12 W8KX today.",
            "7 Mill Road, Cork T12 W8KX",
            id="eircode-tail-letters",
        ),
        pytest.param(
            "9 Mill Lane, Utrecht 3511 LX is the flat.",
            "9 Mill Lane, Utrecht 3511 LX",
            id="nl-postcode-after-city",
        ),
    ],
)
def test_address_tail_keeps_the_whole_postcode(text: str, address: str) -> None:
    _assert_redacted(text, "ADDRESS", address)


@pytest.mark.parametrize(
    "text, postcode",
    [
        pytest.param("Our postcode is D02 X285.", "D02 X285", id="eircode-after-postcode"),
        pytest.param("my eircode is d02 x285", "d02 x285", id="eircode-lower"),
        pytest.param("postcode: 1017 GC", "1017 GC", id="nl-after-postcode"),
        pytest.param("The card said M5V 2T6 on it.", "M5V 2T6", id="ca-postcode-alone"),
    ],
)
def test_postcodes_after_a_cue(text: str, postcode: str) -> None:
    _assert_redacted(text, "ADDRESS", postcode)


# --- D3: lower-case UK postcodes and addresses -------------------------------------------------
@pytest.mark.parametrize(
    "text, address",
    [
        pytest.param("my postcode is ls6 2ab", "ls6 2ab", id="postcode-cue"),
        pytest.param("i'm in ls6 2ab", "ls6 2ab", id="postcode-after-in"),
        pytest.param(
            "i live at 22 albert street leeds ls6 2ab",
            "22 albert street leeds ls6 2ab",
            id="street-city-postcode",
        ),
        pytest.param(
            "the address is 14 park road, hull hu5 2aa",
            "14 park road, hull hu5 2aa",
            id="street-comma-city-postcode",
        ),
        pytest.param(
            "i live at flat 4b 22 albert street leeds",
            "flat 4b 22 albert street leeds",
            id="unit-prefix-and-town",
        ),
        pytest.param("dad's at 9 mill lane now", "9 mill lane", id="at-number-street"),
        pytest.param("she's on 14 station road today", "14 station road", id="on-number-street"),
    ],
)
def test_lower_case_uk_addresses(text: str, address: str) -> None:
    _assert_redacted(text, "ADDRESS", address)


# --- D4: ZIP after "zip code is" ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("my zip code is 10027", id="zip-code-is"),
        pytest.param("my zip is 10027", id="zip-is"),
        pytest.param("our zipcode's 10027", id="zipcode-s"),
        pytest.param("Zip code was 10027-1234.", id="zip-plus-4-was"),
    ],
)
def test_zip_after_zip_code_is(text: str) -> None:
    result = deidentify(text)
    assert "10027" not in result.text
    assert [s.entity_type for s in result.spans] == ["ADDRESS"]


# --- D5 / D6: national identifiers get their own types -----------------------------------------
@pytest.mark.parametrize(
    "text, entity_type, value",
    [
        pytest.param("My NI number is QQ 12 34 56 C", "UK_NINO", "QQ 12 34 56 C", id="ni-spaced"),
        pytest.param("national insurance QQ123456C", "UK_NINO", "QQ123456C", id="ni-compact"),
        pytest.param("ni no. ab 12 34 56 d", "UK_NINO", "ab 12 34 56 d", id="ni-lower"),
        pytest.param("The form had JG 10 37 62 A on it.", "UK_NINO", "JG 10 37 62 A", id="ni-bare"),
        pytest.param(
            "driving licence MORGA657054SM9IJ",
            "UK_DRIVING_LICENCE",
            "MORGA657054SM9IJ",
            id="uk-driving-licence",
        ),
        pytest.param(
            "my driver's license is D1234567", "ACCOUNT_NUMBER", "D1234567", id="us-licence"
        ),
        pytest.param("NHS 4857773456", "MEDICAL_RECORD_NUMBER", "4857773456", id="nhs-bare-label"),
        pytest.param(
            "NHS: 485 777 3456 on the letter",
            "MEDICAL_RECORD_NUMBER",
            "485 777 3456",
            id="nhs-bare-label-spaced",
        ),
        pytest.param("SIN 046 454 286", "CA_SIN", "046 454 286", id="ca-sin"),
        pytest.param(
            "social insurance number: 046-454-286", "CA_SIN", "046-454-286", id="ca-sin-words"
        ),
    ],
)
def test_national_identifiers(text: str, entity_type: str, value: str) -> None:
    _assert_redacted(text, entity_type, value)


def test_one_ni_number_written_two_ways_gets_one_placeholder() -> None:
    result = deidentify("NI number JG 10 37 62 A, or JG103762A on the old form.")
    assert result.text == "NI number <UK_NINO_1>, or <UK_NINO_1> on the old form."


# --- D2: the deny-list ignores accents, typographic apostrophes and hyphen/space variants -------
DENY = DenyList.build(names=["Chloé Brook", "Siobhán O'Neill-Brown", "Ọláolúwa Adébáyọ̀"])


@pytest.mark.parametrize(
    "text, surface",
    [
        pytest.param("then chloe brook came round", "chloe brook", id="unaccented-full-name"),
        pytest.param("chloe went out", "chloe", id="unaccented-given-name"),
        pytest.param("CHLOE rang", "CHLOE", id="unaccented-all-caps"),
        pytest.param("Chloe\u0301 rang", "Chloe\u0301", id="decomposed-accent-in-text"),
        pytest.param("I saw O\u2019Neill-Brown.", "O\u2019Neill-Brown", id="curly-apostrophe"),
        pytest.param("oneill-brown again", "oneill-brown", id="no-apostrophe"),
        pytest.param("ONeill Brown again", "ONeill Brown", id="space-for-hyphen"),
        pytest.param("olaoluwa said hi", "olaoluwa", id="yoruba-dots-and-tones"),
        pytest.param("Olaoluwa Adebayo called", "Olaoluwa Adebayo", id="yoruba-full-name"),
        pytest.param("ﬁne, Ọláolúwa came", "Ọláolúwa", id="offsets-after-ligature"),
    ],
)
def test_deny_list_folds_accents_and_apostrophes(text: str, surface: str) -> None:
    # The deny-list alone (not the name recognizers): offsets point into the original text.
    got = [text[c.start : c.end] for c in deny_matches(DENY, text) if c.entity_type == "PERSON"]
    assert surface in got, got
    result = deidentify(text, deny_list=DENY)
    assert surface not in result.text


def test_deny_list_word_parts_still_need_a_capital() -> None:
    deny = DenyList.build(names=["Chloé Brook"])
    result = deidentify("We sat by the brook. Brook waved.", deny_list=deny)
    assert result.text.startswith("We sat by the brook. <PERSON_1> waved.")


def test_fold_with_offsets_maps_every_character_back() -> None:
    folded, origin = fold_with_offsets("ﬁÇé\u2019x")
    assert folded == "fiCe'x"
    assert origin == [0, 0, 1, 2, 3, 4]


# --- low: social handles without @, lower-case titles, obfuscated e-mail -----------------------
@pytest.mark.parametrize(
    "text, entity_type, value",
    [
        pytest.param(
            "Snapchat, username kayleighann_x",
            "SOCIAL_HANDLE",
            "kayleighann_x",
            id="snapchat-username",
        ),
        pytest.param(
            "reddit u/throwaway_sad_2024", "SOCIAL_HANDLE", "u/throwaway_sad_2024", id="reddit"
        ),
        pytest.param("Discord: shadowfox#1234", "SOCIAL_HANDLE", "shadowfox#1234", id="discord"),
        pytest.param("my insta is sam.k99 now", "SOCIAL_HANDLE", "sam.k99", id="insta"),
        pytest.param("my username is moonchild", "SOCIAL_HANDLE", "moonchild", id="username-is"),
        pytest.param("dr. patel said so", "PERSON", "patel", id="dr-dot-lower"),
        pytest.param("dr smith said so", "PERSON", "smith", id="dr-lower"),
        pytest.param("my gp dr. okafor", "PERSON", "okafor", id="gp-dr-lower"),
        pytest.param("my doctor okafor is kind", "PERSON", "okafor", id="doctor-lower"),
        pytest.param(
            "dec.joy(at)example.org", "EMAIL_ADDRESS", "dec.joy(at)example.org", id="email-at"
        ),
        pytest.param(
            "write to sam [at] mail [dot] com please",
            "EMAIL_ADDRESS",
            "sam [at] mail [dot] com",
            id="email-at-dot",
        ),
    ],
)
def test_handles_lower_titles_and_obfuscated_email(text: str, entity_type: str, value: str) -> None:
    _assert_redacted(text, entity_type, value)


# --- low: medicine names are clinical information, not names or places -------------------------
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Took all my Pregabalin at once.", id="pregabalin"),
        pytest.param("Mirtazapine made me sleepy.", id="mirtazapine"),
        pytest.param("Lamotrigine rash again.", id="lamotrigine"),
        pytest.param("Amoxicillin for the chest.", id="amoxicillin"),
        pytest.param("Took 30 Sertraline and some Paracetamol.", id="sertraline-paracetamol"),
        pytest.param("Quetiapine's side effects are awful.", id="possessive"),
    ],
)
def test_medicine_names_survive(text: str) -> None:
    assert deidentify(text).text == text


def test_overdose_sentence_keeps_the_substances_but_not_the_date() -> None:
    text = "Took all my Pregabalin and 20 Zopiclone on May 3rd at 4pm, called 116 123."
    assert deidentify(text).text == (
        "Took all my Pregabalin and 20 Zopiclone on <DATE_TIME_1> at 4pm, called 116 123."
    )


def test_drug_name_lookup() -> None:
    assert is_drug_name("Pregabalin") and is_drug_name("sertraline/quetiapine")
    assert not is_drug_name("Priya") and not is_drug_name("Pregabalin Sarah")


def test_deny_list_beats_the_medicine_allow_list() -> None:
    deny = DenyList.build(locations=["Lithium"])  # a place called that, registered by the clinic
    assert deidentify("Back in Lithium again.", deny_list=deny).text == (
        "Back in <LOCATION_1> again."
    )


# --- over-redaction guards for the new rules ---------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("In 2024 AD things changed.", id="year-ad"),
        pytest.param("Took 2 tablets at 8pm, NHS 111 said wait.", id="nhs-111"),
        pytest.param("my licence was suspended for 6 months", id="licence-no-number"),
        pytest.param("Snapchat is making me anxious.", id="platform-word"),
        pytest.param("I deleted snapchat because of her.", id="platform-lower"),
        pytest.param("my username was hacked", id="username-was"),
        pytest.param("the dr said to rest", id="dr-said"),
        pytest.param("dr appointment tomorrow", id="dr-appointment"),
        pytest.param("dr will see me in May", id="dr-will"),
        pytest.param("I was at home at 5 and in bed by 9 pm.", id="at-in-times"),
        pytest.param("on 2 occasions road rage scared me", id="on-number-occasions"),
        pytest.param("Sin is a word my mum used a lot.", id="sin-word"),
        pytest.param("Called Samaritans on 116 123 at 2 am.", id="helpline"),
    ],
)
def test_new_rules_leave_ordinary_text_alone(text: str) -> None:
    assert deidentify(text).text == text


def test_word_after_a_lower_case_address_is_kept_unless_a_town() -> None:
    result = deidentify("i live at 22 albert street alone")
    assert result.text == "i live at <ADDRESS_1> alone"
