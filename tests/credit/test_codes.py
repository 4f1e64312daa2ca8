"""The unified social credit code (GB 32100-2015): every authority accepted, every fault named."""

from __future__ import annotations

import pytest
from stdnum.cn import uscc
from stdnum.exceptions import InvalidFormat

from cityops.credit import codes, service
from tests.credit.helpers import BUILT, PUBLISHED


@pytest.mark.parametrize("code", PUBLISHED)
def test_published_codes_are_valid(code: str) -> None:
    assert codes.check(code).code == code
    assert uscc.is_valid(code)  # python-stdnum agrees where its first 8 characters are digits


@pytest.mark.parametrize("code", sorted(BUILT.values()))
def test_codes_of_every_authority_are_valid(code: str) -> None:
    found = codes.check(code)
    assert found.authority.code == code[0] and found.type_code == code[1] and found.division == code[2:8]


def test_the_kinds_of_the_register_follow_authority_and_type() -> None:
    assert codes.check("91110000710926094P").kind == "enterprise"
    assert codes.check("92340602MA2PBMEM24").kind == "individual"
    assert codes.check(BUILT["93"]).kind == "cooperative"
    assert codes.check(BUILT["51"]).kind == "social_org" and codes.check(BUILT["53"]).kind == "social_org"
    assert {codes.check(BUILT[k]).kind for k in ("N1", "N2", "N3", "Y1", "A1", "11", "31")} == {"other"}
    names = codes.check(BUILT["N2"]).type_names
    assert names == ("村级集体经济组织", "village-level collective economic organisation")


def test_python_stdnum_refuses_valid_codes_whose_authority_is_a_letter() -> None:
    """The reason codes.check does not call uscc.validate: python-stdnum 2.2 wants 8 digits first. When
    this test fails python-stdnum accepts them: let codes.check use uscc.validate and drop its own
    length, character and check-digit checks."""
    for key in ("N1", "N2", "N3", "Y1", "A1"):
        code = BUILT[key]
        with pytest.raises(InvalidFormat):
            uscc.validate(code)
        assert uscc.calc_check_digit(code[:17]) == code[17]  # its check character is right
        assert codes.is_valid(code)


def test_spaces_hyphens_small_letters_and_full_width_digits_are_forgiven() -> None:
    assert codes.check(" 91310115-ma1k3btp2b ").code == "91310115MA1K3BTP2B"
    assert codes.check("91110000710926０94P").code == "91110000710926094P"  # as typed with a Chinese IME


def reason(raw: str) -> tuple[str, str]:
    with pytest.raises(codes.InvalidCode) as caught:
        codes.check(raw)
    assert caught.value.field == "code" and caught.value.status == 422
    return caught.value.reason, caught.value.message


def test_a_wrong_length_is_refused() -> None:
    assert reason("9111000071092609") == (
        "length",
        "a unified social credit code has 18 characters, this one 16",
    )
    assert reason("")[0] == "length"
    assert reason("91110000710926094PX")[0] == "length"


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_the_excluded_letters_are_refused(letter: str) -> None:
    found, message = reason(f"91110000710926{letter}94P")
    assert found == "character"
    assert message.startswith(f"character 15 ('{letter}') is not allowed: the letters I, O, S, V, Z")


def test_other_characters_are_refused() -> None:
    assert reason("9111000071092609#P") == (
        "character",
        "character 17 ('#') is not allowed: only digits and capital letters are used",
    )
    assert reason("9111000071092609ÄP")[0] == "character"


def test_an_unknown_authority_is_refused() -> None:
    found, message = reason("B1110000710926094P")
    assert found == "authority"
    assert message.startswith(
        "unknown registration authority code 'B' (character 1); known: 1, 2, 3, 4, 5, 6, 7, 8, 9, A, N, Y"
    )


@pytest.mark.parametrize(
    ("head", "known"), [("94", "1, 2, 3"), ("N4", "1, 2, 3, 9"), ("Y2", "1"), ("59", None)]
)
def test_an_entity_type_unknown_to_its_authority_is_refused(head: str, known: str | None) -> None:
    first17 = head + "410611MA0000000"
    code = first17 + codes.check_character(first17)
    if known is None:  # 59 (民政, other) exists
        assert codes.is_valid(code)
        return
    found, message = reason(code)
    assert found == "type" and message.endswith(f"known: {known}")


@pytest.mark.parametrize("division", ["AB0000", "990000", "000000"])
def test_characters_3_to_8_must_be_a_division_code(division: str) -> None:
    first17 = f"91{division}MA0000000"
    found, message = reason(first17 + codes.check_character(first17))
    assert found == "division" and division in message


def test_a_wrong_check_character_is_refused_with_the_expected_one() -> None:
    assert reason("91110000710926094Q") == ("check_digit", "wrong check character: 'Q' given, 'P' expected")
    assert reason(BUILT["N2"][:17] + "0")[0] == "check_digit"


def test_check_code_answers_what_the_code_says() -> None:
    valid = service.check_code(BUILT["N2"])
    assert valid.valid and valid.kind == "other" and valid.authority == "农业"
    assert valid.entity_type == "村级集体经济组织" and valid.division == "410622"
    invalid = service.check_code("91110000710926094Q")
    assert not invalid.valid and invalid.reason == "check_digit" and "'P' expected" in (invalid.message or "")


def test_the_organisation_code_check_character_of_gb_11714() -> None:
    # The identifiers of published codes carry it (positions 9-17).
    for code in PUBLISHED:
        assert codes.organisation_check(code[8:16]) == code[16]
