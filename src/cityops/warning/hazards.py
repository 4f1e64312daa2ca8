"""The warning levels and hazard types, as frozen registries.

China grades natural-disaster warnings in four levels (突发事件预警级别): IV blue 一般, III yellow 较重,
II orange 严重, I red 特别严重. CAP has no such scale; its `severity` carries them (Minor, Moderate,
Severe, Extreme) and the native level rides along in a `<parameter>`."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from cityops.core.errors import ValidationFailed
from cityops.core.i18n import N_

LevelCode = Literal["blue", "yellow", "orange", "red"]
CapCategory = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]
ResponseType = Literal[
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None"
]


@dataclass(frozen=True)
class Level:
    code: LevelCode
    rank: int  # 1 blue .. 4 red: a higher rank is more severe
    roman: str  # the grade as Chinese documents write it: Ⅳ级 .. Ⅰ级
    colour_zh: str  # 蓝色 .. 红色, as in 暴雨橙色预警
    grade_zh: str  # 一般 .. 特别严重
    label: str  # English msgid, translated where shown
    severity: Literal["Minor", "Moderate", "Severe", "Extreme"]
    response: ResponseType  # CAP responseType unless the hazard says otherwise for red


LEVELS: MappingProxyType[str, Level] = MappingProxyType(
    {
        lv.code: lv
        for lv in (
            Level("blue", 1, "Ⅳ", "蓝色", "一般", N_("Blue"), "Minor", "Monitor"),
            Level("yellow", 2, "Ⅲ", "黄色", "较重", N_("Yellow"), "Moderate", "Prepare"),
            Level("orange", 3, "Ⅱ", "橙色", "严重", N_("Orange"), "Severe", "Prepare"),
            Level("red", 4, "Ⅰ", "红色", "特别严重", N_("Red"), "Extreme", "Avoid"),
        )
    }
)
BY_SEVERITY: MappingProxyType[str, Level] = MappingProxyType({lv.severity: lv for lv in LEVELS.values()})


@dataclass(frozen=True)
class Hazard:
    code: str
    name_zh: str  # also the CAP <event> of the zh-CN info, and matched in imported events
    label: str  # English name: the msgid shown in the UI and the CAP <event> of the en-US info
    category: CapCategory
    keywords: tuple[str, ...] = ()  # further words that name it in an imported <event>
    red_response: ResponseType | None = None


HAZARDS: MappingProxyType[str, Hazard] = MappingProxyType(
    {
        h.code: h
        for h in (
            Hazard("rainstorm", "暴雨", N_("Rainstorm"), "Met", ("强降雨", "大暴雨")),
            Hazard("flood", "洪水", N_("Flood"), "Met", ("洪涝", "山洪", "汛情"), red_response="Evacuate"),
            Hazard("waterlogging", "城市内涝", N_("Urban waterlogging"), "Met", ("内涝", "积水")),
            Hazard(
                "landslide",
                "山体滑坡",
                N_("Landslide"),
                "Geo",
                ("滑坡", "崩塌", "地质灾害"),
                red_response="Evacuate",
            ),
            Hazard("debris_flow", "泥石流", N_("Debris flow"), "Geo", red_response="Evacuate"),
            Hazard("thunderstorm", "雷电", N_("Thunderstorm"), "Met", ("雷雨", "雷暴")),
            Hazard("gale", "大风", N_("Gale"), "Met"),
            Hazard("hail", "冰雹", N_("Hail"), "Met"),
            Hazard("heat", "高温", N_("Heat wave"), "Met"),
            Hazard("cold_wave", "寒潮", N_("Cold wave"), "Met", ("低温",)),
            Hazard("snowstorm", "暴雪", N_("Snowstorm"), "Met", ("道路结冰",)),
            Hazard("fog", "大雾", N_("Fog"), "Met"),
            Hazard("drought", "干旱", N_("Drought"), "Met"),
            Hazard("forest_fire", "森林火险", N_("Forest fire danger"), "Fire", ("森林火灾", "火险")),
            Hazard("other", "其他灾害", N_("Other hazard"), "Other"),
        )
    }
)


def level(code: str) -> Level:
    found = LEVELS.get(code)
    if found is None:
        raise ValidationFailed(f"unknown warning level {code!r}; known: {', '.join(LEVELS)}", field="level")
    return found


def hazard(code: str) -> Hazard:
    found = HAZARDS.get(code)
    if found is None:
        raise ValidationFailed(f"unknown hazard {code!r}; known: {', '.join(HAZARDS)}", field="hazard")
    return found


def hazard_named(event: str) -> Hazard:
    """The hazard an imported CAP <event> names ("暴雨橙色预警", "Rainstorm"); `other` if none does.
    The longest name found wins (城市内涝 over 暴雨 in "暴雨引发城市内涝")."""
    text = event.strip().lower()
    best: tuple[int, Hazard] | None = None
    for candidate in HAZARDS.values():
        for name in (candidate.name_zh, candidate.label.lower(), candidate.code, *candidate.keywords):
            if name and name in text and (best is None or len(name) > best[0]):
                best = (len(name), candidate)
    return best[1] if best is not None else HAZARDS["other"]


def response_for(hazard_: Hazard, level_: Level) -> ResponseType:
    if level_.code == "red" and hazard_.red_response is not None:
        return hazard_.red_response
    return level_.response
