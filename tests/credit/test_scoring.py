"""The credit evaluation: scores explained record by record, classes from the thresholds, caps, decay and
latest-only kinds; the recompute of everything equals the explanation of each entity; a new record changes
a class and leaves a history row; supervision tags from industry and records; a broken model refused with
its line; `cityops credit recompute`."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cityops.core.db import Database, utcnow
from cityops.credit import records, scoring
from cityops.credit.models import ClassChange, CreditRecord, Entity, EntityTag
from tests.accounts.test_cli import env_for, run

TODAY = date(2026, 6, 1)
MODEL = scoring.load_config()


def record(
    n: int,
    kind: str,
    *,
    days: int = 0,
    severity: str | None = None,
    grade: str | None = None,
    status: str = "active",
    publicity_days: int | None = None,
) -> CreditRecord:
    decided = TODAY - timedelta(days=days)
    return CreditRecord(
        id=n,
        entity_id=1,
        kind=kind,
        source="t",
        source_record_id=str(n),
        title=f"{kind} {n}",
        severity=severity,
        grade=grade,
        decided_on=decided,
        status=status,
        publicity_until=decided + timedelta(days=publicity_days) if publicity_days else None,
    )


def test_no_records_is_the_base_score() -> None:
    found = scoring.explain(MODEL, [], today=TODAY)
    assert (found.score, found.risk_class, found.lines) == (80.0, "B", [])


def test_each_record_explains_its_points_and_the_class_follows_the_thresholds() -> None:
    penalty = scoring.explain(
        MODEL, [record(1, "penalty", severity="general", publicity_days=180)], today=TODAY
    )
    assert [line.points for line in penalty.lines] == [-10.0]
    assert (penalty.score, penalty.risk_class) == (70.0, "C")  # 60 <= 70 < 75
    honours = scoring.explain(MODEL, [record(1, "honour"), record(2, "honour")], today=TODAY)
    assert (honours.score, honours.risk_class) == (90.0, "A")  # exactly A's threshold
    listed = scoring.explain(MODEL, [record(1, "dishonest", days=400, publicity_days=1000)], today=TODAY)
    assert (listed.lines[0].decay, listed.score, listed.risk_class) == (
        1.0,
        35.0,
        "D",
    )  # no decay while listed


def test_decay_status_and_age() -> None:
    old = scoring.explain(
        MODEL, [record(1, "penalty", days=730, severity="general", status="ended")], today=TODAY
    )
    line = old.lines[0]
    assert (line.rule_points, line.decay, line.status_factor, line.points) == (-10.0, 0.5, 0.5, -2.5)
    assert "730 days" in line.reason
    past = scoring.explain(
        MODEL, [record(1, "penalty", days=200, severity="general", publicity_days=180)], today=TODAY
    )
    assert past.lines[0].status_factor == 0.5  # active, but its publicity ended: counts as ended
    repaired = scoring.explain(
        MODEL, [record(1, "penalty", severity="serious", status="repaired")], today=TODAY
    )
    assert (repaired.lines[0].points, repaired.score) == (0.0, 80.0)
    ancient = scoring.explain(MODEL, [record(1, "enforcement", days=2000)], today=TODAY)
    assert ancient.lines[0].points == 0.0 and "more than 1825 days" in ancient.lines[0].reason


def test_caps_and_the_latest_tax_grade() -> None:
    many = [record(n, "penalty", severity="serious", publicity_days=400) for n in range(1, 4)]  # -75
    capped = scoring.explain(MODEL, many, today=TODAY)
    assert capped.caps == [("penalty", -40.0, 35.0)]
    assert (capped.score, capped.risk_class) == (40.0, "D")
    grades = [record(1, "tax_grade", days=400, grade="D"), record(2, "tax_grade", days=35, grade="A")]
    found = scoring.explain(MODEL, grades, today=TODAY)
    assert [line.points for line in found.lines] == [0.0, 8.0]
    assert "newer tax_grade" in found.lines[0].reason and found.score == 88.0


def _entity(db: Database, industry: str | None = None) -> Entity:
    with db.sessions() as session:
        query = select(Entity).order_by(Entity.id)
        if industry:
            query = query.where(Entity.industry_code == industry)
        found = session.scalars(query).first()
    assert found is not None
    return found


def test_the_recompute_equals_each_explanation(db: Database) -> None:
    with db.session() as session:
        result = scoring.recompute(session)
    assert result.entities > 100 and result.records > 1000  # the small seed's synthetic records
    assert sum(result.classes.values()) == result.entities
    today = records.today_of(utcnow())
    with db.sessions() as session:
        sample = list(session.scalars(select(Entity).order_by(Entity.id).limit(40)))
        for entity in sample:
            explained = scoring.explain(MODEL, records.records_of(session, entity.id), today=today)
            assert (entity.score, entity.risk_class) == (explained.score, explained.risk_class), entity.code
        assert len({e.risk_class for e in sample}) >= 2  # the demo's mix gives more than one class


def test_a_record_changes_the_class_and_the_history_keeps_it(db: Database) -> None:
    now = utcnow()
    with db.session() as session:
        scoring.recompute(session, now=now)
    with db.sessions() as session:
        entity = session.scalars(select(Entity).where(Entity.risk_class == "B").order_by(Entity.id)).first()
    assert entity is not None
    with db.sessions() as session:
        before = session.get(Entity, entity.id)
        assert before is not None and before.risk_class is not None
        old_class = before.risk_class
    later = now + timedelta(minutes=5)
    today = records.today_of(later)
    with db.session() as session:
        records.save_records(
            session,
            source="hebi-samr-dishonest",
            actor=None,
            now=later,
            items=[
                records.RecordIn(
                    entity_code=entity.code,
                    kind="dishonest",
                    source_record_id="d-1",
                    title="列入严重违法失信名单",
                    decided_on=today,
                    publicity_until=today + timedelta(days=3 * 365),
                )
            ],
        )
        again = scoring.recompute(session, now=later)
    assert again.changes >= 1
    with db.sessions() as session:
        after = session.get(Entity, entity.id)
        history = scoring.history_of(session, entity.id)
    assert after is not None and after.risk_class == "D" and old_class != "D"
    assert (history[0].from_class, history[0].to_class, history[0].score) == (old_class, "D", after.score)
    assert history[0].changed_at == later and "dishonest -45.0" in history[0].reason
    with db.session() as session:  # nothing changed: no new history row
        scoring.recompute(session, now=later + timedelta(minutes=1))
        rows = session.scalars(select(ClassChange.id).where(ClassChange.entity_id == entity.id)).all()
    assert sorted(rows) == sorted(h.id for h in history)


def test_tags_from_industry_and_records(db: Database) -> None:
    caterer = _entity(db, industry="62")
    other = _entity(db, industry="51")
    today = records.today_of(utcnow())
    with db.session() as session:
        records.save_records(
            session,
            source="hebi-emergency-licence",
            actor=None,
            items=[
                records.RecordIn(
                    entity_code=other.code,
                    kind="licence",
                    source_record_id="l-1",
                    title="危险化学品经营许可证",
                    decided_on=today - timedelta(days=10),
                ),
                records.RecordIn(
                    entity_code=other.code,
                    kind="abnormal",
                    source_record_id="a-1",
                    title="未按规定期限公示年度报告",
                    decided_on=today - timedelta(days=10),
                ),
                records.RecordIn(
                    entity_code=other.code,
                    kind="licence",
                    source_record_id="l-2",
                    title="食品经营许可证",
                    decided_on=today - timedelta(days=10),
                    status="revoked",
                ),
            ],
        )
        session.add(EntityTag(entity_id=other.id, tag="重点关注", source="manual"))
        session.flush()
        scoring.recompute(session)
    with db.sessions() as session:
        caterer_tags = {(t.tag, t.source) for t in scoring.tags_of(session, caterer.id)}
        other_tags = {(t.tag, t.source) for t in scoring.tags_of(session, other.id)}
    assert ("食品经营", "industry") in caterer_tags
    assert {("危险化学品", "record"), ("经营异常", "record"), ("重点关注", "manual")} <= other_tags
    assert "食品经营" not in {t for t, _s in other_tags}  # its food licence was revoked


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("  - {kind: honour, points: 5}", "  - {kind: weather, points: 5}"), "line 44: rules.13.kind"),
        (("  A: 90", "  A: 70"), "line 15: classes"),
        (
            ("  - {kind: licence, points: 1}", "  - {kind: licence, severity: minor, points: 1}"),
            "line 31: rules.0",
        ),
        (('    industries: ["13", "14", "15", "62"]', '    industries: ["13", "X4"]'), "tags.0.industries"),
        (("  ended: 0.5", "  ended: 1.5"), "status_factors"),
    ],
)
def test_a_broken_model_is_refused_with_its_line(tmp_path: Path, change: tuple[str, str], where: str) -> None:
    text = scoring.CONFIG_PATH.read_text(encoding="utf-8")
    assert change[0] in text
    broken = tmp_path / "scoring.yaml"
    broken.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(scoring.ScoringConfigError) as refused:
        scoring.load_config(broken)
    assert str(refused.value).startswith("scoring.yaml line ") and where in str(refused.value)


def test_recompute_by_cli(tmp_path: Path, template_db: Path) -> None:
    env = env_for(tmp_path, template_db)
    done = run(env, "credit", "recompute")
    assert done.returncode == 0, done.stderr
    assert " entities, " in done.stdout and "class changes" in done.stdout
    broken = tmp_path / "bad.yaml"
    broken.write_text("base: 80\n", encoding="utf-8")
    refused = run(env, "credit", "recompute", "--config", str(broken))
    assert refused.returncode == 2 and "bad.yaml line" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.postgres
def test_the_recompute_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """The PostgreSQL paths: the packed read (DATE arithmetic), the COPY and UPDATE ... FROM, the history,
    the tags; the same classes as the explanation of each entity, and a retry of records idempotent."""
    from cityops import all_models
    from cityops.core.db import Base
    from cityops.core.seeding import seed

    all_models.load()
    db = Database(pg_url)
    try:
        Base.metadata.create_all(db.engine)
        seed(db, scale="small", seed=7, quiet=True, files_root=tmp_path / "files")  # runs a recompute
        now = utcnow() + timedelta(days=30)
        today = records.today_of(now)
        with db.sessions() as session:
            code = session.scalars(
                select(Entity.code).where(Entity.risk_class == "B").order_by(Entity.id)
            ).first()
        assert code is not None
        item = records.RecordIn(
            entity_code=code,
            kind="dishonest",
            source_record_id="pg-1",
            title="失信",
            decided_on=today,
            publicity_until=today + timedelta(days=365),
        )
        for expected in ("created", "unchanged"):
            with db.session() as session:
                saved = records.save_records(session, source="hebi-pg", actor=None, items=[item], now=now)
            assert [i.outcome for i in saved.items] == [expected]
        with db.session() as session:
            result = scoring.recompute(session, now=now)
        assert result.written > 0 and result.changes >= 1 and result.tags > 0
        with db.sessions() as session:
            for entity in session.scalars(select(Entity).order_by(Entity.id).limit(40)):
                explained = scoring.explain(MODEL, records.records_of(session, entity.id), today=today)
                assert (entity.score, entity.risk_class) == (explained.score, explained.risk_class)
            changed = session.scalar(select(Entity).where(Entity.code == code))
            assert changed is not None and changed.risk_class == "D" and changed.classified_at == now
            assert scoring.history_of(session, changed.id)[0].to_class == "D"
        with db.session() as session:
            assert records.end_publicity(session, today=today + timedelta(days=400)) >= 1
    finally:
        db.dispose()
