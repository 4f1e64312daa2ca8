"""The unified social credit code (统一社会信用代码, GB 32100-2015), checked part by part.

Eighteen characters from the digits and the capital letters except I, O, S, V and Z:

    position 1     registration authority (登记管理部门): 1 机构编制, 5 民政, 9 工商, N 农业, Y 其他 ...
    position 2     entity type, per authority (机构类别): 9 1 企业, 9 2 个体工商户, 9 3 农民专业合作社 ...
    positions 3-8  the registration authority's division code (GB/T 2260), e.g. 410611 淇滨区
    positions 9-17 the entity's identifier (主体标识码, the GB 11714 organisation code)
    position 18    the check character (GB/T 17710, ISO 7064 MOD 31-3)

The check character is computed by python-stdnum (`stdnum.cn.uscc.calc_check_digit`), but its
`validate()` is not used: python-stdnum 2.2 insists the first 8 characters are digits, so it refuses
every valid code whose authority is a letter (N for rural collective economic organisations, A, Y). A
test in tests/credit shows that refusal; once python-stdnum accepts those codes, `check` can call its
`validate()` for the length, characters and check digit and keep only the authority, type and division
checks here."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from stdnum.cn import uscc

from cityops.core.errors import ValidationFailed

LENGTH = 18
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
EXCLUDED = "IOSVZ"
# GB 11714: the organisation code's own check character, weights of its 8 body characters.
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


@dataclass(frozen=True)
class Authority:
    code: str
    name_zh: str
    name_en: str
    # entity type code -> (Chinese name, English name)
    types: MappingProxyType[str, tuple[str, str]]


def _authority(code: str, zh: str, en: str, **types: tuple[str, str]) -> Authority:
    return Authority(code, zh, en, MappingProxyType({k.removeprefix("t"): v for k, v in types.items()}))


_OTHER = ("其他", "other")
# GB 32100-2015 appendix A, with the codes assigned since (A: the Central Military Commission's
# establishment office; N: rural collective economic organisations, 农经发〔2018〕4号).
AUTHORITIES: MappingProxyType[str, Authority] = MappingProxyType(
    {
        a.code: a
        for a in (
            _authority(
                "1",
                "机构编制",
                "establishment administration",
                t1=("机关", "government organ"),
                t2=("事业单位", "public institution"),
                t3=(
                    "中央编办直接管理机构编制的群众团体",
                    "mass organisation under the central establishment office",
                ),
                t9=_OTHER,
            ),
            _authority(
                "2",
                "外交",
                "foreign affairs",
                t1=("外国常驻新闻机构", "resident foreign news agency"),
                t9=_OTHER,
            ),
            _authority(
                "3",
                "司法行政",
                "justice administration",
                t1=("律师执业机构", "law firm"),
                t2=("公证处", "notary office"),
                t3=("基层法律服务所", "grassroots legal service office"),
                t4=("司法鉴定机构", "forensic expertise institution"),
                t5=("仲裁委员会", "arbitration commission"),
                t9=_OTHER,
            ),
            _authority(
                "4", "文化", "culture", t1=("外国在华文化中心", "foreign cultural centre in China"), t9=_OTHER
            ),
            _authority(
                "5",
                "民政",
                "civil affairs",
                t1=("社会团体", "social group"),
                t2=("民办非企业单位", "private non-enterprise unit"),
                t3=("基金会", "foundation"),
                t9=_OTHER,
            ),
            _authority(
                "6",
                "旅游",
                "tourism",
                t1=("外国旅游部门常驻代表机构", "foreign tourism office"),
                t2=(
                    "港澳台地区旅游部门常驻内地（大陆）代表机构",
                    "Hong Kong, Macao or Taiwan tourism office",
                ),
                t9=_OTHER,
            ),
            _authority(
                "7",
                "宗教",
                "religious affairs",
                t1=("宗教活动场所", "place of religious activity"),
                t2=("宗教院校", "religious school"),
                t9=_OTHER,
            ),
            _authority("8", "工会", "trade unions", t1=("基层工会", "grassroots trade union"), t9=_OTHER),
            _authority(
                "9",
                "工商",
                "market regulation",
                t1=("企业", "enterprise"),
                t2=("个体工商户", "individual business"),
                t3=("农民专业合作社", "farmers' cooperative"),
            ),
            _authority(
                "A",
                "中央军委改革和编制办公室",
                "Central Military Commission establishment office",
                t1=("军队事业单位", "military public institution"),
                t9=_OTHER,
            ),
            _authority(
                "N",
                "农业",
                "agriculture",
                t1=("组级集体经济组织", "group-level collective economic organisation"),
                t2=("村级集体经济组织", "village-level collective economic organisation"),
                t3=("乡镇级集体经济组织", "township-level collective economic organisation"),
                t9=_OTHER,
            ),
            _authority("Y", "其他", "other", t1=_OTHER),
        )
    }
)
# GB/T 2260 province-level codes (the first two digits of a division code); 10 is the national level
# (100000, entities registered by a central authority).
PROVINCES = frozenset(
    (
        "10",
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    )
)
# Which entity kind of the register a code's authority and type make.
KINDS = ("enterprise", "individual", "cooperative", "social_org", "other")


class InvalidCode(ValidationFailed):
    """A code refused, with `reason` one of: length, character, authority, type, division, check_digit."""

    code = "invalid_credit_code"

    def __init__(self, message: str, *, reason: str, field: str = "code") -> None:
        super().__init__(message, field=field, detail={"reason": reason})
        self.reason = reason


@dataclass(frozen=True)
class CreditCode:
    code: str
    authority: Authority
    type_code: str
    division: str  # the registration authority's division code (positions 3-8)
    identifier: str  # positions 9-17

    @property
    def kind(self) -> str:
        return kind_of(self.code)

    @property
    def type_names(self) -> tuple[str, str]:
        return self.authority.types[self.type_code]


def kind_of(code: str) -> str:
    """The register's kind of entity from the first two characters of a (valid) code."""
    head = code[:2]
    if head == "91":
        return "enterprise"
    if head == "92":
        return "individual"
    if head == "93":
        return "cooperative"
    if head[:1] == "5":
        return "social_org"
    return "other"


def compact(code: str) -> str:
    """The code without spaces and hyphens, in capitals (as python-stdnum compacts it)."""
    return str(uscc.compact(code))


def check_character(first17: str) -> str:
    """The check character (position 18) for the first 17 characters."""
    return str(uscc.calc_check_digit(first17))


def organisation_check(body: str) -> str:
    """GB 11714's check character for an 8-character organisation code body (digits and capitals)."""
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body, ORG_WEIGHTS, strict=True))
    rest = 11 - total % 11
    return "X" if rest == 10 else "0" if rest == 11 else str(rest)


def check(raw: str) -> CreditCode:
    """The parts of a valid code; InvalidCode saying exactly what is wrong otherwise."""
    code = compact(raw or "")
    if len(code) != LENGTH:
        raise InvalidCode(
            f"a unified social credit code has {LENGTH} characters, this one {len(code)}", reason="length"
        )
    for position, char in enumerate(code, start=1):
        if char not in ALPHABET:
            why = (
                f"the letters {', '.join(EXCLUDED)} are never used"
                if char in EXCLUDED
                else "only digits and capital letters are used"
            )
            raise InvalidCode(f"character {position} ({char!r}) is not allowed: {why}", reason="character")
    authority = AUTHORITIES.get(code[0])
    if authority is None:
        raise InvalidCode(
            f"unknown registration authority code {code[0]!r} (character 1); known: {', '.join(AUTHORITIES)}",
            reason="authority",
        )
    if code[1] not in authority.types:
        raise InvalidCode(
            f"unknown entity type code {code[1]!r} (character 2) for registration authority "
            f"{code[0]} ({authority.name_zh}); known: {', '.join(authority.types)}",
            reason="type",
        )
    division = code[2:8]
    if not division.isdigit() or division[:2] not in PROVINCES:
        raise InvalidCode(
            f"characters 3-8 ({division}) are not a division code (GB/T 2260: 6 digits "
            "starting with a province's code)",
            reason="division",
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        raise InvalidCode(
            f"wrong check character: {code[17]!r} given, {expected!r} expected", reason="check_digit"
        )
    return CreditCode(
        code=code, authority=authority, type_code=code[1], division=division, identifier=code[8:17]
    )


def is_valid(raw: str) -> bool:
    try:
        check(raw)
    except InvalidCode:
        return False
    return True


def make(authority: str, type_code: str, division: str, identifier: str) -> str:
    """A code from its parts, with its check character (synthetic data, tests)."""
    first17 = f"{authority}{type_code}{division}{identifier}"
    if len(first17) != LENGTH - 1:
        raise ValueError(f"the parts make {len(first17)} characters, not {LENGTH - 1}")
    return first17 + check_character(first17)
