"""Warnings through their lifecycle: each step a CAP message that validates against the official schema,
references to every earlier message, the workflow refusing undeclared moves, events in the outbox,
and imports of another sender's CAP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from cityops.core.db import Database, utcnow
from cityops.core.errors import Conflict, InvalidTransition, ValidationFailed
from cityops.core.events import OutboxEntry
from cityops.warning import cap, service
from cityops.warning.models import HazardWarning, WarningMessage
from cityops.warning.schemas import WarningCreate, WarningUpdate
from tests.warning.helpers import WEATHER_SENDER, cap_field, county_code, issue_body, square_in, weather_cap

ISSUER = service.Issuer("cityops.hebi", "鹤壁市城市运行管理中心")


def topics(db: Database) -> list[str]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(OutboxEntry.topic).where(OutboxEntry.topic.like("warning.%")).order_by(OutboxEntry.id)
            )
        )


def issue(db: Database, **overrides: object) -> int:
    with db.session() as session:
        warning = service.issue(
            session, data=WarningCreate(**issue_body(db, **overrides)), actor=None, issuer=ISSUER
        )
        return warning.id


def latest(db: Database, warning_id: int) -> str:
    with db.sessions() as session:
        return service.latest_cap(session, warning_id=warning_id)


def assert_valid(xml: str) -> None:
    """Validates against the official XSD, and reads back through the input checks too."""
    tree = cap.parse_xml(xml)
    assert cap.schema().validate(tree), cap.schema().error_log
    cap.parse(xml)


def test_alert_update_to_red_and_cancel_each_validate_and_reference_all_earlier_messages(
    db: Database,
) -> None:
    warning_id = issue(db)
    alert = latest(db, warning_id)
    assert_valid(alert)
    assert cap_field(alert, "/cap:alert/cap:msgType") == ["Alert"]
    assert cap_field(alert, "/cap:alert/cap:status") == ["Actual"]
    assert cap_field(alert, "/cap:alert/cap:scope") == ["Public"]
    assert cap_field(alert, "/cap:alert/cap:references") == []
    assert cap_field(alert, "//cap:info/cap:language") == ["zh-CN", "en-US"]
    assert cap_field(alert, "//cap:info[1]/cap:severity") == ["Minor"]
    assert cap_field(alert, "//cap:info[1]/cap:event") == ["暴雨"]
    assert cap_field(alert, "//cap:info[1]/cap:headline") == ["鹤壁市城市运行管理中心发布暴雨蓝色预警"]
    assert cap_field(alert, "//cap:info[2]/cap:headline") == ["Blue rainstorm warning"]
    assert cap_field(alert, "//cap:info[1]/cap:parameter/cap:value") == ["blue", "蓝色"]
    assert cap_field(alert, "//cap:info[1]/cap:parameter/cap:valueName") == ["level", "预警级别"]
    assert cap_field(alert, "//cap:info[1]/cap:area/cap:geocode/cap:value") == [county_code(db)]
    [polygon] = cap_field(alert, "//cap:info[1]/cap:area/cap:polygon")[:1]
    pairs = polygon.split(" ")
    assert len(pairs) >= 4 and pairs[0] == pairs[-1]
    lat, lon = (float(v) for v in pairs[0].split(","))
    assert 35 < lat < 37 and 113 < lon < 115  # lat first, as CAP wants
    for moment in cap_field(alert, "/cap:alert/cap:sent") + cap_field(alert, "//cap:expires"):
        assert moment.endswith("+08:00"), moment
    [first_identifier] = cap_field(alert, "/cap:alert/cap:identifier")
    [first_sent] = cap_field(alert, "/cap:alert/cap:sent")
    assert first_identifier.startswith("cityops.hebi.")

    with db.session() as session:
        service.update(
            session, warning_id=warning_id, data=WarningUpdate(level="red", note="雨势加强"), actor=None
        )
    update = latest(db, warning_id)
    assert_valid(update)
    assert cap_field(update, "/cap:alert/cap:msgType") == ["Update"]
    assert cap_field(update, "//cap:info[1]/cap:severity") == ["Extreme"]
    assert cap_field(update, "//cap:info[1]/cap:headline") == ["鹤壁市城市运行管理中心发布暴雨红色预警"]
    assert cap_field(update, "//cap:info[1]/cap:parameter/cap:value") == ["red", "红色"]
    assert cap_field(update, "/cap:alert/cap:references") == [f"cityops.hebi,{first_identifier},{first_sent}"]
    assert cap_field(update, "/cap:alert/cap:note") == ["雨势加强"]
    [update_identifier] = cap_field(update, "/cap:alert/cap:identifier")
    [update_sent] = cap_field(update, "/cap:alert/cap:sent")
    assert update_identifier != first_identifier  # each message its own identifier

    with db.session() as session:
        service.cancel(session, warning_id=warning_id, reason="降雨已结束，险情解除", actor=None)
    cancelled = latest(db, warning_id)
    assert_valid(cancelled)
    assert cap_field(cancelled, "/cap:alert/cap:msgType") == ["Cancel"]
    assert cap_field(cancelled, "/cap:alert/cap:note") == ["降雨已结束，险情解除"]
    assert cap_field(cancelled, "/cap:alert/cap:references") == [
        f"cityops.hebi,{first_identifier},{first_sent} cityops.hebi,{update_identifier},{update_sent}"
    ]
    assert cap_field(cancelled, "//cap:info[1]/cap:responseType") == ["AllClear"]

    with db.sessions() as session:
        read = service.get_warning(session, warning_id=warning_id)
    assert read.status == "cancelled" and read.level == "red" and read.end_reason == "降雨已结束，险情解除"
    assert [m.msg_type for m in read.messages] == ["Alert", "Update", "Cancel"]
    assert read.identifier == first_identifier and read.allowed_actions == []
    assert topics(db) == ["warning.issued", "warning.updated", "warning.cancelled"]


def test_undeclared_moves_are_refused_with_the_allowed_ones(db: Database) -> None:
    warning_id = issue(db)
    with db.session() as session:
        service.cancel(session, warning_id=warning_id, reason="误发", actor=None)
    with (
        db.session() as session,
        pytest.raises(InvalidTransition, match="cancelled cannot update; allowed: none"),
    ):
        service.update(session, warning_id=warning_id, data=WarningUpdate(level="red"), actor=None)
    with db.session() as session, pytest.raises(InvalidTransition, match="cannot issue"):
        service.release(session, warning_id=warning_id, actor=None)
    assert [m.msg_type for m in _messages(db, warning_id)] == ["Alert", "Cancel"]


def test_a_draft_goes_out_only_when_issued_and_is_discarded_without_a_message(db: Database) -> None:
    draft = issue(db, draft=True)
    with db.sessions() as session:
        assert service.get_warning(session, warning_id=draft).allowed_actions == ["discard", "issue"]
        with pytest.raises(Exception, match="no CAP message"):
            service.latest_cap(session, warning_id=draft)
    with (
        db.session() as session,
        pytest.raises(InvalidTransition, match="draft cannot update; allowed: discard, issue"),
    ):
        service.update(session, warning_id=draft, data=WarningUpdate(level="red"), actor=None)
    with db.session() as session:
        service.release(session, warning_id=draft, actor=None)
    assert_valid(latest(db, draft))
    other = issue(db, draft=True)
    with db.session() as session:
        service.cancel(session, warning_id=other, reason="不发布", actor=None)
    assert _messages(db, other) == []
    assert topics(db) == ["warning.issued", "warning.cancelled"]


def test_extend_sends_an_update_with_the_later_expiry(db: Database) -> None:
    warning_id = issue(db)
    with db.sessions() as session:
        before = service.get_warning(session, warning_id=warning_id).expires
    with db.session() as session, pytest.raises(ValidationFailed, match="must be later than"):
        service.extend(session, warning_id=warning_id, expires=before - timedelta(hours=1), actor=None)
    later = before + timedelta(hours=12)
    with db.session() as session:
        service.extend(session, warning_id=warning_id, expires=later, actor=None)
    update = latest(db, warning_id)
    assert_valid(update)
    assert cap_field(update, "/cap:alert/cap:msgType") == ["Update"]
    assert cap_field(update, "//cap:info[1]/cap:expires") == [cap.cap_time(later)]
    assert len(cap_field(update, "/cap:alert/cap:references")[0].split(" ")) == 1


def test_an_update_of_the_area_to_a_drawn_polygon(db: Database) -> None:
    county = county_code(db)
    warning_id = issue(db)
    with db.session() as session:
        service.update(
            session,
            warning_id=warning_id,
            actor=None,
            data=WarningUpdate(area=square_in(db, county), division_codes=[], area_desc="淇河沿岸低洼地带"),
        )
    update = latest(db, warning_id)
    assert_valid(update)
    assert cap_field(update, "//cap:info[1]/cap:area/cap:areaDesc") == ["淇河沿岸低洼地带"]
    assert cap_field(update, "//cap:info[1]/cap:area/cap:geocode") == []
    assert len(cap_field(update, "//cap:info[1]/cap:area/cap:polygon")[0].split(" ")) == 5


def test_bad_areas_and_times_are_refused(db: Database) -> None:
    with pytest.raises(ValidationFailed, match="no division with code '419999'"):
        issue(db, division_codes=["419999"])
    outside = {
        "type": "Polygon",
        "coordinates": [[[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.0]]],
    }
    with pytest.raises(ValidationFailed, match="lies outside"):
        issue(db, division_codes=[], area=outside, area_desc="北京")
    with pytest.raises(ValidationFailed, match="describe the area"):
        issue(db, division_codes=[], area=square_in(db, county_code(db)))
    with pytest.raises(ValidationFailed, match="give the area"):
        issue(db, division_codes=[])
    with pytest.raises(ValidationFailed, match="must be in the future"):
        issue(db, expires=(utcnow() - timedelta(minutes=1)).isoformat())
    with pytest.raises(ValidationFailed, match="unknown hazard 'meteor'"):
        issue(db, hazard="meteor")


def test_warnings_past_their_expiry_expire(db: Database) -> None:
    warning_id = issue(db)
    later = utcnow() + timedelta(hours=7)
    with db.sessions() as session:
        assert service.to_read(session.get(HazardWarning, warning_id), [], now=later).status == "expired"
    with db.session() as session:
        assert service.expire_due(session, now=later) == 1
    with db.sessions() as session:
        assert session.get(HazardWarning, warning_id).status == "expired"  # type: ignore[union-attr]
    with db.session() as session, pytest.raises(InvalidTransition):
        service.cancel(session, warning_id=warning_id, reason="x", actor=None)
    assert topics(db)[-1] == "warning.expired"


def _messages(db: Database, warning_id: int) -> list[WarningMessage]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(WarningMessage)
                .where(WarningMessage.warning_id == warning_id)
                .order_by(WarningMessage.id)
            )
        )


def _import(db: Database, document: str) -> service.ImportResult:
    with db.session() as session:
        return service.import_cap(session, data=document.encode(), actor=None, issuer=ISSUER)


def test_an_external_warning_is_imported_listed_and_followed(db: Database) -> None:
    alert = weather_cap()
    result = _import(db, alert)
    assert result.outcome == "created"
    warning = result.warning
    assert warning.source == "external" and warning.sender == WEATHER_SENDER
    assert warning.sender_name == "鹤壁市气象台" and warning.source_detail == "鹤壁市气象台"
    assert warning.hazard == "rainstorm" and warning.level == "orange" and warning.status == "issued"
    assert warning.headline == "鹤壁市气象台发布暴雨橙色预警信号"
    assert warning.headline_en == "Rainstorm orange warning"
    assert warning.division_codes == ["410600"] and warning.area is not None
    assert warning.allowed_actions == []  # only the sender changes it
    assert latest(db, warning.id) == alert  # kept as it came
    with db.sessions() as session:
        listed = service.list_warnings(session, status="active")
    assert [w.id for w in listed.items] == [warning.id]

    assert _import(db, alert).outcome == "unchanged"  # idempotent on (sender, identifier)
    [sent] = cap_field(alert, "/cap:alert/cap:sent")
    reference = f"{WEATHER_SENDER},41060041600000_20260720080000,{sent}"
    red = weather_cap(
        identifier="41060041600000_20260720090000", level="red", msg_type="Update", references=reference
    )
    updated = _import(db, red)
    assert updated.outcome == "updated" and updated.warning.id == warning.id
    assert updated.warning.level == "red" and updated.warning.status == "issued"
    cancel = weather_cap(identifier="41060041600000_20260720120000", msg_type="Cancel", references=reference)
    cancel = cancel.replace(
        "<scope>Public</scope>", "<scope>Public</scope>\n  <note>降雨减弱，解除预警</note>"
    )
    cancelled = _import(db, cancel)
    assert cancelled.outcome == "cancelled" and cancelled.warning.status == "cancelled"
    assert cancelled.warning.end_reason == "降雨减弱，解除预警"
    assert [m.msg_type for m in cancelled.warning.messages] == ["Alert", "Update", "Cancel"]
    assert topics(db) == ["warning.issued", "warning.updated", "warning.cancelled"]
    with db.session() as session, pytest.raises(Conflict, match="only its sender"):
        service.update(session, warning_id=warning.id, data=WarningUpdate(level="blue"), actor=None)


def test_imports_that_cannot_be_placed_or_followed_are_refused(db: Database) -> None:
    far = "39.0,116.0 39.0,116.1 39.1,116.1 39.0,116.0"
    document = weather_cap(polygon=far).replace("<value>410600</value>", "<value>110000</value>")
    with pytest.raises(cap.CapError, match="lies outside"):
        _import(db, document)
    orphan = weather_cap(
        msg_type="Cancel", references=f"{WEATHER_SENDER},never-seen,2026-07-20T08:00:00+08:00"
    )
    with pytest.raises(cap.CapError, match="references no message imported here"):
        _import(db, orphan)
    own = weather_cap(sender=ISSUER.sender)
    with pytest.raises(cap.CapError, match="this platform's own"):
        _import(db, own)
    with db.sessions() as session:
        assert session.scalar(select(HazardWarning.id)) is None  # nothing stored


def test_an_old_imported_message_is_kept_but_never_in_force(db: Database) -> None:
    sent = utcnow() - timedelta(days=2)
    result = _import(db, weather_cap(sent=sent, expires=sent + timedelta(hours=6)))
    assert result.outcome == "created" and result.warning.status == "expired"
    assert topics(db) == ["warning.expired"]


def test_the_scheduler_job_expires_due_warnings(db: Database) -> None:
    warning_id = issue(db)
    job = service.expiry_job()
    assert job.name == "warning.expiry"
    assert job.run(db, utcnow()) == 0
    assert job.run(db, utcnow() + timedelta(hours=7)) == 1
    with db.sessions() as session:
        assert service.get_warning(session, warning_id=warning_id).status == "expired"
