"""CAP 1.2 on its own: the shipped schema, writing messages that validate, and reading input with
errors that name what is wrong and where."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from cityops.warning import cap, hazards
from tests.warning.helpers import HEBI_POLYGON, WEATHER_SENDER, cap_field, weather_cap

SENT = datetime(2026, 7, 20, 0, 0, tzinfo=UTC)  # 08:00 in Hebi


def test_the_official_schema_ships_unchanged_with_its_notice() -> None:
    data = cap.XSD_PATH.read_bytes()
    assert (
        hashlib.sha256(data).hexdigest() == "f6c6ed7537a463968b7b36110f7e8bba1f86ad2257a8b84619d7dce530e57401"
    )
    assert b"Copyright OASIS Open 2010 All Rights Reserved" in data
    provenance = (cap.XSD_PATH.parent / "PROVENANCE.md").read_text()
    assert "OASIS" in provenance and "f6c6ed75" in provenance


def test_times_carry_the_china_offset_never_z() -> None:
    assert cap.cap_time(SENT) == "2026-07-20T08:00:00+08:00"
    assert cap.cap_time(SENT + timedelta(microseconds=999_999)) == "2026-07-20T08:00:00+08:00"
    with pytest.raises(ValueError, match="naive"):
        cap.cap_time(datetime(2026, 7, 20))


@pytest.mark.parametrize(
    ("level", "severity"),
    [("blue", "Minor"), ("yellow", "Moderate"), ("orange", "Severe"), ("red", "Extreme")],
)
def test_levels_map_to_cap_severity_and_back(level: str, severity: str) -> None:
    assert hazards.LEVELS[level].severity == severity
    assert hazards.BY_SEVERITY[severity].code == level
    assert cap.level_named(hazards.LEVELS[level].colour_zh) == hazards.LEVELS[level]


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("橙色", "orange"),
        ("橙色预警", "orange"),
        ("Ⅱ级", "orange"),
        ("II", "orange"),
        ("red", "red"),
        ("Ⅰ", "red"),
        ("特别严重", "red"),
        ("一般", "blue"),
        ("IV级", "blue"),
        ("Yellow", "yellow"),
    ],
)
def test_level_parameters_are_read_in_their_usual_spellings(text: str, level: str) -> None:
    found = cap.level_named(text)
    assert found is not None and found.code == level
    assert cap.level_named("purple") is None


def test_hazards_are_recognised_in_imported_events() -> None:
    assert hazards.hazard_named("暴雨橙色预警").code == "rainstorm"
    assert hazards.hazard_named("暴雨引发城市内涝").code == "waterlogging"
    assert hazards.hazard_named("Flood").code == "flood"
    assert hazards.hazard_named("地质灾害气象风险预警").code == "landslide"
    assert hazards.hazard_named("沙尘暴").code == "other"


def _alert(**overrides: object) -> cap.Alert:
    info = cap.Info(
        language="zh-CN",
        categories=("Met",),
        event="暴雨",
        urgency="Immediate",
        severity="Severe",
        certainty="Likely",
        expires=SENT + timedelta(hours=6),
        headline="暴雨橙色预警",
        parameters=(("level", "orange"),),
        areas=(
            cap.Area(
                "淇滨区",
                (((114.1, 35.7), (114.2, 35.7), (114.2, 35.8), (114.1, 35.7)),),
                geocodes=(("GB/T 2260", "410611"),),
            ),
        ),
    )
    values: dict[str, object] = {
        "identifier": "cityops.hebi.test-1",
        "sender": "cityops.hebi",
        "sent": cap.cap_time(SENT),
        "msg_type": "Alert",
        "infos": (info,),
    }
    values.update(overrides)
    return cap.Alert(**values)  # type: ignore[arg-type]


def test_a_written_message_validates_and_reads_back() -> None:
    xml = cap.to_xml(_alert())
    assert cap.schema().validate(cap.parse_xml(xml))
    assert cap_field(xml, "/cap:alert/cap:sent") == ["2026-07-20T08:00:00+08:00"]
    assert cap_field(xml, "//cap:expires") == ["2026-07-20T14:00:00+08:00"]
    # CAP polygons are lat,lon pairs; the ring is closed.
    assert cap_field(xml, "//cap:polygon") == ["35.7,114.1 35.7,114.2 35.8,114.2 35.7,114.1"]
    back = cap.parse(xml)
    assert back.identifier == "cityops.hebi.test-1" and back.sent_at == SENT
    info = back.main_info
    assert info is not None and cap.level_of(info) == hazards.LEVELS["orange"]
    assert info.areas[0].geocodes == (("GB/T 2260", "410611"),)


def test_writing_refuses_what_the_schema_refuses() -> None:
    with pytest.raises(cap.CapError, match="msgType"):
        cap.to_xml(_alert(msg_type="Notice"))


def test_a_realistic_weather_bureau_message_parses() -> None:
    alert = cap.parse(weather_cap(sent=SENT))
    assert alert.sender == WEATHER_SENDER and alert.msg_type == "Alert"
    zh, en = alert.info_in("zh"), alert.info_in("en")
    assert zh is not None and en is not None
    assert zh.sender_name == "鹤壁市气象台" and zh.headline == "鹤壁市气象台发布暴雨橙色预警信号"
    assert cap.level_of(zh) == hazards.LEVELS["orange"]
    assert zh.expires == SENT + timedelta(hours=6)
    assert len(zh.areas[0].polygons[0]) == 5
    assert cap.division_codes(zh.areas) == ["410600"]


def _problems(document: str | bytes) -> list[cap.Problem]:
    with pytest.raises(cap.CapError) as caught:
        cap.parse(document)
    assert caught.value.status == 422
    return caught.value.problems


def test_not_well_formed_xml_is_refused_with_its_line() -> None:
    [problem] = _problems(weather_cap(sent=SENT).replace("</headline>", "</headlin>", 1))
    assert "not well-formed XML" in problem.message
    assert problem.line == 22


def test_a_schema_violation_names_the_element_and_line() -> None:
    problems = _problems(
        weather_cap(sent=SENT).replace("<urgency>Immediate</urgency>", "<urgency>Now</urgency>", 1)
    )
    assert problems[0].path == "/alert/info[1]/urgency[1]"
    assert problems[0].line == 14
    assert "'Now' is not an element of the set" in problems[0].message
    assert "urn:oasis" not in problems[0].message  # the namespace is left out of the message


def test_a_time_without_numeric_offset_is_refused() -> None:
    problems = _problems(weather_cap(sent=SENT).replace("2026-07-20T08:00:00+08:00", "2026-07-20T00:00:00Z"))
    assert problems[0].path == "/alert/sent[1]"
    assert "pattern" in problems[0].message


def test_expiry_before_sending_is_refused() -> None:
    problems = _problems(weather_cap(sent=SENT, expires=SENT - timedelta(hours=1)))
    assert problems[0].path == "/alert/info[1]/expires[1]"
    assert "expires (2026-07-20T07:00:00+08:00) is not after the message was sent" in problems[0].message
    assert any(p.path == "/alert/info[2]/expires[1]" for p in problems)  # every info is checked


def test_an_open_polygon_is_refused() -> None:
    problems = _problems(
        weather_cap(sent=SENT, polygon="35.45,113.95 35.45,114.80 36.05,114.80 36.05,113.95")
    )
    assert problems[0].path == "/alert/info[1]/area[1]/polygon[1]"
    assert "not closed" in problems[0].message


def test_a_polygon_of_three_points_is_refused() -> None:
    problems = _problems(weather_cap(sent=SENT, polygon="35.45,113.95 35.45,114.80 35.45,113.95"))
    assert "at least 4 points" in problems[0].message and "has 3" in problems[0].message


def test_a_polygon_point_that_is_not_lat_lon_is_refused() -> None:
    problems = _problems(
        weather_cap(sent=SENT, polygon=HEBI_POLYGON.replace("35.45,113.95 ", "113.95;35.45 ", 1))
    )
    assert "point 1 '113.95;35.45' is not a WGS84 'lat,lon' pair" in problems[0].message


def test_an_unknown_severity_without_a_level_is_refused() -> None:
    document = weather_cap(sent=SENT).replace("<severity>Severe</severity>", "<severity>Unknown</severity>")
    document = document.replace(
        "<parameter><valueName>预警级别</valueName><value>橙色</value></parameter>", ""
    )
    problems = _problems(document)
    assert problems[0].path == "/alert/info[1]/severity[1]"
    assert "severity Unknown names no warning level" in problems[0].message


def test_a_level_contradicting_the_severity_is_refused() -> None:
    document = weather_cap(sent=SENT).replace("<severity>Severe</severity>", "<severity>Minor</severity>", 1)
    assert "contradicts the level parameter '橙色'" in _problems(document)[0].message


def test_an_update_must_reference_what_it_changes() -> None:
    problems = _problems(weather_cap(sent=SENT, msg_type="Update"))
    assert "must reference" in problems[0].message
    bad = _problems(weather_cap(sent=SENT, msg_type="Update", references="only-an-identifier"))
    assert "reference 'only-an-identifier' is not 'sender,identifier,sent'" in bad[0].message


def test_test_messages_and_acks_carry_no_warning() -> None:
    assert (
        "only Actual"
        in _problems(weather_cap(sent=SENT).replace("<status>Actual", "<status>Test"))[0].message
    )
    ack = weather_cap(sent=SENT).replace("<msgType>Alert", "<msgType>Ack")
    assert "only Alert, Update and Cancel" in _problems(ack)[0].message


def test_identifiers_with_spaces_are_refused() -> None:
    problems = _problems(weather_cap(sent=SENT, identifier="hebi rain 1"))
    assert problems[0].path == "/alert/identifier[1]" and "no spaces" in problems[0].message


def test_entities_and_doctypes_are_refused_and_never_expanded() -> None:
    body = weather_cap(sent=SENT).split("\n", 1)[1]  # without the XML declaration
    xxe = (
        '<?xml version="1.0"?>\n<!DOCTYPE alert [<!ENTITY secret SYSTEM "file:///etc/passwd">]>\n'
        + body.replace("<scope>Public</scope>", "<scope>Public</scope><note>&secret;</note>")
    )
    problems = _problems(xxe)
    assert "DOCTYPE is not allowed" in problems[0].message
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
        "<identifier>&c;</identifier></alert>"
    )
    assert "DOCTYPE" in _problems(bomb)[0].message


def test_other_documents_are_told_what_a_cap_message_is() -> None:
    problems = _problems("<rss><channel/></rss>")
    assert "a CAP 1.2 message is <alert> in urn:oasis:names:tc:emergency:cap:1.2" in problems[0].message
    assert "empty" in _problems(b"  ")[0].message
    assert "at most" in _problems(b"<a>" + b" " * (cap.MAX_BYTES + 1) + b"</a>")[0].message


def test_the_error_message_lists_the_first_problems_and_counts_the_rest() -> None:
    document = weather_cap(
        sent=SENT,
        expires=SENT - timedelta(hours=1),
        polygon="35.45,113.95 35.45,114.80 36.05,114.80 36.05,113.95",
    )
    with pytest.raises(cap.CapError) as caught:
        cap.parse(document)
    assert caught.value.message.startswith("invalid CAP: line ")
    assert "(and 1 more)" in caught.value.message
    errors = caught.value.to_dict()["detail"]["errors"]
    assert len(errors) == 4 and all(e["line"] and e["path"] for e in errors)
