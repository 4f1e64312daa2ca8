"""Synthetic credit records for the demo (every one labelled synthetic): about 11 per entity, so about
2,000,000 for the full seed's 178,000 entities, in a plausible mix of kinds — licences by industry,
yearly tax credit grades, commitments, penalties of the three severities with their publicity periods,
abnormal-operation listings, arrears, court enforcement, a few serious dishonesty listings and honours —
each from the department's system that would send it, dated over the last five years (never before the
entity was established) with the status the publicity rules give it today.

Speed matters (millions of rows): the choices are drawn with numpy and the rows inserted in bulk by
`records.insert_synthetic`; a sample of every batch goes through `records.check_record`, the checks a
department's records pass, so the generator cannot drift from the rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from cityops.core.db import Database
from cityops.credit import records
from cityops.credit import repository as repo
from cityops.credit.models import Entity

PER_ENTITY = 2_000_000 / 178_000
BATCH = 50_000
SAMPLE = 200  # records of each batch checked by records.check_record
YEARS = 5
# kind -> share of the records (tax grades are drawn per entity and year, see _tax_grades)
SHARES = {
    "licence": 0.45,
    "commitment": 0.15,
    "penalty": 0.05,
    "abnormal": 0.03,
    "arrears": 0.03,
    "enforcement": 0.01,
    "dishonest": 0.002,
    "honour": 0.04,
}
TAX_SHARE = 0.238
# (source system, department slug) per kind
SOURCES = {
    "licence": ("hebi-samr-licence", "market"),
    "commitment": ("hebi-credit-commitment", "big-data"),
    "penalty": ("hebi-samr-penalty", "market"),
    "abnormal": ("hebi-samr-abnormal", "market"),
    "arrears": ("hebi-hrss-arrears", "hrss"),
    "enforcement": ("hebi-court-enforcement", "court"),
    "dishonest": ("hebi-samr-dishonest", "market"),
    "honour": ("hebi-credit-honour", "big-data"),
    "tax_grade": ("hebi-tax-grade", "tax"),
}
# Licences by industry division (GB/T 4754-2017); others get a general one.
LICENCES = {
    "13": ("食品生产许可证",),
    "14": ("食品生产许可证",),
    "15": ("食品生产许可证",),
    "62": ("食品经营许可证", "小餐饮经营许可证"),
    "52": ("食品经营许可证", "烟草专卖零售许可证"),
    "25": ("危险化学品经营许可证", "特种设备使用登记证"),
    "26": ("危险化学品安全生产许可证", "危险化学品经营许可证", "特种设备使用登记证"),
    "30": ("特种设备使用登记证", "排污许可证"),
    "33": ("特种设备使用登记证",),
    "44": ("特种设备使用登记证", "电力业务许可证"),
    "54": ("道路运输经营许可证",),
    "47": ("建筑业企业资质证书", "安全生产许可证"),
    "48": ("建筑业企业资质证书", "安全生产许可证"),
    "50": ("建筑业企业资质证书",),
    "61": ("公众聚集场所投入使用、营业前消防安全检查合格证", "卫生许可证"),
    "90": ("公众聚集场所投入使用、营业前消防安全检查合格证",),
    "84": ("医疗机构执业许可证", "药品经营许可证"),
    "83": ("办学许可证",),
}
GENERAL_LICENCES = ("卫生许可证", "排污登记回执", "户外广告设置许可")
PENALTY_TITLES = {
    "minor": ("未按规定明码标价", "未按规定公示营业执照", "销售过期食品（货值较小）"),
    "general": ("销售不符合食品安全标准的食品", "虚假宣传", "未取得许可从事经营活动"),
    "serious": ("生产销售假冒伪劣产品", "严重违法排污", "危险化学品违规储存造成事故隐患"),
}
# (severity, share, publicity days choices) within the limits of records.PUBLICITY
PENALTY_MIX = (("minor", 0.5, (None, 90)), ("general", 0.4, (180, 365)), ("serious", 0.1, (730, 1095)))
ABNORMAL_TITLES = (
    "未按规定期限公示年度报告",
    "通过登记的住所或者经营场所无法联系",
    "公示企业信息隐瞒真实情况",
)
ARREARS_TITLES = ("欠缴社会保险费", "欠缴水费", "欠缴电费", "欠缴燃气费")
HONOUR_TITLES = ("守合同重信用企业", "鹤壁市诚信经营示范单位", "河南省文明诚信个体工商户")
COMMITMENT_TITLES = ("信用承诺书（证明事项告知承诺）", "信用承诺书（市场主体注册）", "信用修复承诺书")
TAX_GRADE_MIX = (("A", 0.18), ("B", 0.52), ("M", 0.2), ("C", 0.07), ("D", 0.03))


def _entities(db: Database) -> tuple[list[int], list[str], list[str | None], list[str], list[date | None]]:
    with db.sessions() as session:
        rows = session.execute(
            select(Entity.id, Entity.code, Entity.industry_code, Entity.kind, Entity.established_on)
            .where(Entity.synthetic.is_(True))
            .order_by(Entity.id)
        ).all()
    return (
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
    )


def generate(
    db: Database, *, seed: int, today: date, now: datetime, advance: Callable[[int], None] | None = None
) -> int:
    """Insert the synthetic records of every synthetic entity; how many."""
    ids, codes_, industries_, kinds, established = _entities(db)
    if not ids:
        return 0
    draw = np.random.default_rng(seed)
    with db.sessions() as session:
        units = repo.departments_by_code_or_name(session, {f"dept-{d}" for _s, d in SOURCES.values()})
    unit_of = {
        kind: units[f"dept-{dept}"].id if f"dept-{dept}" in units else None
        for kind, (_s, dept) in SOURCES.items()
    }
    total = round(len(ids) * PER_ENTITY)
    # How long each entity has existed (records are never older), at most five years.
    span = np.array([min((today - e).days if e else YEARS * 365, YEARS * 365) for e in established])
    span = np.maximum(span, 1)
    rows: list[dict[str, Any]] = []
    made = 0
    counters: dict[str, int] = {}

    def emit(kind: str, i: int, title: str, decided: date, **extra: Any) -> None:
        nonlocal made
        source = SOURCES[kind][0]
        counters[source] = counters.get(source, 0) + 1
        status = extra.pop("status", "active")
        publicity = extra.get("publicity_until")
        valid = extra.get("valid_until")
        if status == "active" and ((publicity and publicity < today) or (valid and valid < today)):
            status = "ended"  # as the scheduled job would have ended it
        rows.append(
            {
                "entity_id": ids[i],
                "kind": kind,
                "source": source,
                "source_record_id": f"{source[5:]}-{counters[source]:08d}",
                "org_unit_id": unit_of[kind],
                "title": title,
                "severity": extra.get("severity"),
                "grade": extra.get("grade"),
                "amount": extra.get("amount"),
                "decided_on": decided,
                "valid_until": valid,
                "publicity_until": publicity,
                "status": status,
                "details": {},
                "synthetic": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        made += 1
        if len(rows) >= BATCH:
            flush()

    def flush() -> None:
        _check_sample(rows, codes_, ids, draw, today)
        with db.session() as session:
            records.insert_synthetic(session, rows)
        if advance is not None:
            advance(len(rows))
        rows.clear()

    def pick(n: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        chosen = draw.integers(0, len(ids), size=n)
        back = (draw.random(n) * span[chosen]).astype(np.int64)
        return chosen, back

    for kind, share in SHARES.items():
        n = round(total * share)
        chosen, back = pick(n)
        choice = draw.random(n)
        for i, days, r in zip(chosen.tolist(), back.tolist(), choice.tolist(), strict=True):
            decided = today - timedelta(days=days)
            if kind == "licence":
                titles = LICENCES.get(industries_[i] or "", GENERAL_LICENCES)
                emit(
                    kind,
                    i,
                    titles[int(r * len(titles))],
                    decided,
                    valid_until=decided + timedelta(days=5 * 365),
                )
            elif kind == "penalty":
                severity, _share, periods = _mix(PENALTY_MIX, r)
                period = periods[int(r * 1000) % len(periods)]
                titles = PENALTY_TITLES[severity]
                emit(
                    kind,
                    i,
                    titles[int(r * 997) % len(titles)],
                    decided,
                    severity=severity,
                    amount=int(500 + r * 200_000) if severity != "minor" else None,
                    publicity_until=decided + timedelta(days=period) if period else None,
                )
            elif kind == "abnormal":
                listed = r < 0.6  # still listed; the others were moved out
                emit(
                    kind,
                    i,
                    ABNORMAL_TITLES[int(r * 997) % 3],
                    decided,
                    status="active" if listed else "ended",
                )
            elif kind == "dishonest":
                emit(
                    kind,
                    i,
                    "列入严重违法失信名单",
                    decided,
                    publicity_until=decided + timedelta(days=3 * 365),
                )
            elif kind == "enforcement":
                emit(
                    kind,
                    i,
                    f"被执行人（（{decided.year}）豫06执{int(r * 9000) + 100}号）",
                    decided,
                    amount=int(10_000 + r * 2_000_000),
                    status="active" if r < 0.4 else "ended",
                )
            elif kind == "arrears":
                emit(
                    kind,
                    i,
                    ARREARS_TITLES[int(r * 997) % 4],
                    decided,
                    amount=int(200 + r * 50_000),
                    status="active" if r < 0.5 else "ended",
                )
            elif kind == "honour":
                emit(
                    kind,
                    i,
                    HONOUR_TITLES[int(r * 997) % 3],
                    decided,
                    valid_until=decided + timedelta(days=3 * 365),
                )
            else:  # commitment
                emit(
                    kind,
                    i,
                    COMMITMENT_TITLES[int(r * 997) % 3],
                    decided,
                    valid_until=decided + timedelta(days=365),
                )
    _tax_grades(draw, round(total * TAX_SHARE), kinds, established, today, emit)
    if rows:
        flush()
    return made


def _mix(table: tuple[tuple[str, float, Any], ...], r: float) -> tuple[str, float, Any]:
    upto = 0.0
    for entry in table:
        upto += entry[1]
        if r < upto:
            return entry
    return table[-1]


def _tax_grades(
    draw: np.random.Generator,
    n: int,
    kinds: list[str],
    established: list[date | None],
    today: date,
    emit: Callable[..., None],
) -> None:
    """Yearly tax credit grades (published each April for the year before) of enterprises and
    cooperatives first, then of individual businesses, until n are made."""
    order = sorted(range(len(kinds)), key=lambda i: kinds[i] not in ("enterprise", "cooperative"))
    grades = draw.random(n + 16)
    made = 0
    for i in order:
        start = max((established[i] or today).year + 1, today.year - YEARS)
        for year in range(start, today.year):
            published = date(year + 1, 4, 20)
            if published > today or made >= n:
                continue
            grade = _mix(tuple((g, s, None) for g, s in TAX_GRADE_MIX), float(grades[made]))[0]
            emit("tax_grade", i, f"{year}年度纳税信用级别", published, grade=grade)
            made += 1
        if made >= n:
            return


def _check_sample(
    rows: list[dict[str, Any]], codes_: list[str], ids: list[int], draw: np.random.Generator, today: date
) -> None:
    code_of = dict(zip(ids, codes_, strict=True))
    for k in draw.integers(0, len(rows), size=min(SAMPLE, len(rows))).tolist():
        row = rows[k]
        records.check_record(
            records.RecordIn(
                entity_code=code_of[row["entity_id"]],
                kind=row["kind"],
                source_record_id=row["source_record_id"],
                title=row["title"],
                decided_on=row["decided_on"],
                severity=row["severity"],
                grade=row["grade"],
                amount=row["amount"],
                valid_until=row["valid_until"],
                publicity_until=row["publicity_until"],
                status=row["status"],
            ),
            today=today,
        )
