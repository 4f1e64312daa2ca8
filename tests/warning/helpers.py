"""Helpers of the warning tests: a realistic external CAP message, an area inside the seeded city, and
a warning as an operator would issue it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lxml import etree
from sqlalchemy import select

from cityops.core.db import Database, utcnow
from cityops.places.models import Division
from cityops.warning import cap

WEATHER_SENDER = "hebi.weather.cma.cn"
CAP_NS = {"cap": cap.NS}

# What the Hebi meteorological observatory (鹤壁市气象台) sends for a rainstorm orange warning, in the
# shape of the national early-warning feed: zh-CN and en-US infos, a polygon around the city and its
# GB/T 2260 code. Times are filled in relative to now, so the warning is in force when imported.
RAINSTORM_ORANGE = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>{sent}</sent>
  <status>Actual</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>{references}
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <responseType>Prepare</responseType>
    <urgency>Immediate</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <eventCode><valueName>CMA_EWS</valueName><value>11B03</value></eventCode>
    <effective>{sent}</effective>
    <onset>{sent}</onset>
    <expires>{expires}</expires>
    <senderName>鹤壁市气象台</senderName>
    <headline>鹤壁市气象台发布暴雨{colour}预警信号</headline>
    <description>鹤壁市气象台发布暴雨{colour}预警信号：预计未来3小时内，淇滨区、山城区、鹤山区、浚县、淇县将出现50毫米以上降水，局地可达100毫米以上，并伴有雷电和短时大风，请注意防范。</description>
    <instruction>1.政府及相关部门按照职责做好防暴雨应急工作；2.切断有危险的室外电源，暂停户外作业；3.处于危险地带的单位应当停课、停业；4.做好城市、农田的排涝，注意防范可能引发的山洪、滑坡、泥石流等灾害。</instruction>
    <parameter><valueName>预警级别</valueName><value>{colour}</value></parameter>
    <area>
      <areaDesc>鹤壁市</areaDesc>
      <polygon>{polygon}</polygon>
      <geocode><valueName>GB/T 2260</valueName><value>410600</value></geocode>
    </area>
  </info>
  <info>
    <language>en-US</language>
    <category>Met</category>
    <event>Rainstorm</event>
    <urgency>Immediate</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <expires>{expires}</expires>
    <senderName>Hebi Meteorological Observatory</senderName>
    <headline>Rainstorm {colour_en} warning</headline>
    <instruction>Stop outdoor work, keep away from rivers and slopes.</instruction>
    <area>
      <areaDesc>Hebi</areaDesc>
      <polygon>{polygon}</polygon>
    </area>
  </info>
</alert>
"""
# Around Hebi's five counties (lat,lon; closed).
HEBI_POLYGON = "35.45,113.95 35.45,114.80 36.05,114.80 36.05,113.95 35.45,113.95"
SEVERITY = {
    "blue": ("Minor", "蓝色", "blue"),
    "yellow": ("Moderate", "黄色", "yellow"),
    "orange": ("Severe", "橙色", "orange"),
    "red": ("Extreme", "红色", "red"),
}


def weather_cap(
    *,
    identifier: str = "41060041600000_20260720080000",
    level: str = "orange",
    msg_type: str = "Alert",
    references: str = "",
    sent: datetime | None = None,
    expires: datetime | None = None,
    polygon: str = HEBI_POLYGON,
    sender: str = WEATHER_SENDER,
) -> str:
    sent = sent or utcnow() - timedelta(minutes=10)
    expires = expires or sent + timedelta(hours=6)
    severity, colour, colour_en = SEVERITY[level]
    return RAINSTORM_ORANGE.format(
        identifier=identifier,
        sender=sender,
        sent=cap.cap_time(sent),
        expires=cap.cap_time(expires),
        msg_type=msg_type,
        references=f"\n  <references>{references}</references>" if references else "",
        severity=severity,
        colour=colour,
        colour_en=colour_en,
        polygon=polygon,
    )


def county_code(db: Database) -> str:
    """A county of the seeded city that has an outline."""
    with db.sessions() as session:
        code = session.scalar(
            select(Division.code)
            .where(Division.level == "county", Division.geometry.is_not(None))
            .order_by(Division.code)
        )
    assert code is not None
    return code


def square_in(db: Database, code: str, half: float = 0.01) -> dict[str, Any]:
    """A small GeoJSON square around a division's centroid."""
    with db.sessions() as session:
        division = session.get(Division, code)
        assert (
            division is not None and division.centroid_lon is not None and division.centroid_lat is not None
        )
        x, y = division.centroid_lon, division.centroid_lat
    return {
        "type": "Polygon",
        "coordinates": [
            [
                [x - half, y - half],
                [x + half, y - half],
                [x + half, y + half],
                [x - half, y + half],
                [x - half, y - half],
            ]
        ],
    }


def issue_body(db: Database, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hazard": "rainstorm",
        "level": "blue",
        "division_codes": [county_code(db)],
        "expires": (utcnow() + timedelta(hours=6)).isoformat(),
        "description": "预计未来6小时内淇河流域累计降雨量将达50毫米以上。",
        "instruction": "请注意防范强降雨，远离河道、低洼地带和山体边坡。",
        "instruction_en": "Keep away from rivers, low-lying ground and slopes.",
    }
    body.update(overrides)
    return body


def cap_field(xml: str | bytes, path: str) -> list[str]:
    """Texts at an XPath (prefix cap:) of a CAP document."""
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    return [str(e.text) for e in root.xpath(path, namespaces=CAP_NS)]
