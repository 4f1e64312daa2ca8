"""The credit evaluation (信用评价): a transparent, configurable score and risk class A-D for every entity,
the history of class changes, and supervision tags from industry and records.

The model is data (credit/data/scoring.yaml, validated with the line and field of a mistake). One
function, `evaluate`, computes points record by record over numpy arrays: the recompute runs it once
over every record of the city (one SELECT of the needed columns, no ORM objects, one bulk UPDATE), and
the inspector view runs it over one entity's records to explain the score by them, so the explanation
is the very computation that set the class.

A record's points: its rule's points x 0.5^(age / half-life) x its status factor, zero when older than
max_age_days or superseded by a newer record of a latest-only kind; the points of a kind are capped;
score = clamp(base + sum, min, max); the class is the first whose threshold the score reaches."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from sqlalchemy import Connection, and_, bindparam, delete, insert, or_, select
from sqlalchemy.orm import Session

from cityops.core.db import Database, table_of, utcnow
from cityops.core.errors import ValidationFailed
from cityops.core.scheduler import Job
from cityops.core.yaml_config import ConfigFileError, load_yaml_file
from cityops.credit import industries
from cityops.credit.models import (
    PENALTY_SEVERITIES,
    RECORD_KINDS,
    RECORD_STATUSES,
    RISK_CLASSES,
    ClassChange,
    CreditRecord,
    Entity,
    EntityTag,
)
from cityops.credit.records import TAX_GRADES, today_of

CONFIG_PATH = Path(__file__).resolve().parent / "data" / "scoring.yaml"
KIND_INDEX = {k: i for i, k in enumerate(RECORD_KINDS)}
STATUS_INDEX = {s: i for i, s in enumerate(RECORD_STATUSES)}  # active, ended, repaired, revoked
ENDED = STATUS_INDEX["ended"]
HISTORY_PAGE = 50
MAX_RULES = 120  # the recompute packs a rule's number into 7 bits


# --- the model ------------------------------------------------------------------------------------


class ScoringConfigError(ConfigFileError):
    """scoring.yaml cannot be used; the message names the line and field."""


def _record_kind(value: str) -> str:
    if value not in RECORD_KINDS:
        raise ValueError(f"unknown record kind {value!r}; known: {', '.join(RECORD_KINDS)}")
    return value


RecordKind = Annotated[str, AfterValidator(_record_kind)]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: RecordKind
    severity: str | None = None
    grade: str | None = None
    points: float = Field(ge=-100, le=100)
    # None: the model's half-life; 0: no decay.
    half_life_days: int | None = Field(default=None, ge=0, le=36_500)

    @model_validator(mode="after")
    def _qualifiers(self) -> Rule:
        if self.severity is not None:
            if self.kind != "penalty":
                raise ValueError("only a penalty rule has a severity")
            if self.severity not in PENALTY_SEVERITIES:
                raise ValueError(f"severity must be one of {', '.join(PENALTY_SEVERITIES)}")
        if self.grade is not None:
            if self.kind != "tax_grade":
                raise ValueError("only a tax_grade rule has a grade")
            if self.grade not in TAX_GRADES:
                raise ValueError(f"grade must be one of {', '.join(TAX_GRADES)}")
        return self

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.kind, self.severity, self.grade)


class TagRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(min_length=1, max_length=30)
    industries: list[str] = []
    kinds: list[RecordKind] = []
    words: list[str] = []

    @field_validator("industries")
    @classmethod
    def _industries(cls, value: list[str]) -> list[str]:
        known = industries.registry().divisions
        for code in value:
            if code not in known or len(code) != 2:
                raise ValueError(f"{code!r} is no GB/T 4754-2017 division (two digits, 01-97)")
        return value

    @model_validator(mode="after")
    def _something(self) -> TagRule:
        if not self.industries and not self.kinds:
            raise ValueError("a tag needs industries, record kinds or both")
        if self.words and not self.kinds:
            raise ValueError("words match the titles of records: give their kinds")
        return self


class ScoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: float = Field(ge=0, le=1000)
    min: float = Field(ge=0)
    max: float = Field(gt=0, le=1000)
    classes: dict[str, float]
    half_life_days: int = Field(ge=1, le=36_500)
    max_age_days: int = Field(ge=1, le=36_500)
    status_factors: dict[str, float]
    latest_only: list[RecordKind] = []
    rules: list[Rule] = Field(max_length=MAX_RULES)
    caps: dict[RecordKind, float] = {}
    tags: list[TagRule] = []
    _rule_index: dict[tuple[str, str | None, str | None], int] = PrivateAttr(default_factory=dict)

    @field_validator("classes")
    @classmethod
    def _classes(cls, value: dict[str, float]) -> dict[str, float]:
        if list(value) != list(RISK_CLASSES[:-1]):
            raise ValueError(
                f"give the lowest score of classes {', '.join(RISK_CLASSES[:-1])}, in that order "
                f"(below the last: {RISK_CLASSES[-1]})"
            )
        scores = list(value.values())
        if any(a <= b for a, b in itertools.pairwise(scores)):
            raise ValueError("each class's lowest score must be below the one of the class before")
        return value

    @field_validator("status_factors")
    @classmethod
    def _status_factors(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(RECORD_STATUSES):
            raise ValueError(f"give a factor for each status: {', '.join(RECORD_STATUSES)}")
        if any(not 0 <= f <= 1 for f in value.values()):
            raise ValueError("status factors lie between 0 and 1")
        return value

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: list[Rule]) -> list[Rule]:
        seen: set[tuple[str, str | None, str | None]] = set()
        for rule in value:
            if rule.key in seen:
                raise ValueError(f"two rules for {'/'.join(k for k in rule.key if k)}")
            seen.add(rule.key)
        return value

    @field_validator("caps")
    @classmethod
    def _caps(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, cap in value.items():
            if cap == 0:
                raise ValueError(f"the cap of {kind} is 0: remove its rules instead")
        return value

    @model_validator(mode="after")
    def _range(self) -> ScoringConfig:
        if not self.min <= self.base <= self.max:
            raise ValueError("base must lie between min and max")
        if not all(self.min < t <= self.max for t in self.classes.values()):
            raise ValueError("class thresholds must lie above min and at most max")
        self._rule_index = {rule.key: i for i, rule in enumerate(self.rules)}
        return self

    def rule_for(self, kind: str, severity: str | None, grade: str | None) -> int:
        """The index of the rule a record falls under (the most specific), -1 for none."""
        return self._rule_index.get(
            (kind, severity, None) if severity else (kind, None, grade) if grade else (kind, None, None),
            self._rule_index.get((kind, None, None), -1),
        )


def load_config(path: Path | None = None) -> ScoringConfig:
    """The model of a file (default: the shipped scoring.yaml); ScoringConfigError with the line."""
    return _load(path or CONFIG_PATH)


@lru_cache(maxsize=8)
def _load(path: Path) -> ScoringConfig:
    return load_yaml_file(
        path, ScoringConfig, expected="a mapping (base, classes, rules, ...)", error=ScoringConfigError
    )


@dataclass(frozen=True)
class _Tables:
    """The model as arrays indexed by rule."""

    points: np.ndarray[Any, np.dtype[np.float64]]
    half_life: np.ndarray[Any, np.dtype[np.float64]]
    kind: np.ndarray[Any, np.dtype[np.int64]]
    status_factor: np.ndarray[Any, np.dtype[np.float64]]
    latest_only: np.ndarray[Any, np.dtype[np.bool_]]
    cap: np.ndarray[Any, np.dtype[np.float64]]


def _tables(config: ScoringConfig) -> _Tables:
    # One extra slot at the end stands for "no rule" (index -1).
    rules = [*config.rules, None]
    cap = np.full(len(RECORD_KINDS), np.nan)
    for kind, value in config.caps.items():
        cap[KIND_INDEX[kind]] = value
    return _Tables(
        points=np.array([r.points if r else 0.0 for r in rules]),
        half_life=np.array(
            [
                float(r.half_life_days if r.half_life_days is not None else config.half_life_days)
                if r
                else 0.0
                for r in rules
            ]
        ),
        kind=np.array([KIND_INDEX[r.kind] if r else 0 for r in rules], dtype=np.int64),
        status_factor=np.array([config.status_factors[s] for s in RECORD_STATUSES]),
        latest_only=np.array([k in config.latest_only for k in RECORD_KINDS]),
        cap=cap,
    )


# --- the computation --------------------------------------------------------------------------------


@dataclass
class Inputs:
    """Records as parallel arrays: the entity's position (0..entities-1), the record's rule (-1: none;
    its kind is the rule's), its effective status (an active record past its publicity period counts as
    ended), its age in days and its id (the highest first among records of a latest-only kind decided
    the same day)."""

    entity: np.ndarray[Any, np.dtype[np.int64]]
    rule: np.ndarray[Any, np.dtype[np.int64]]
    status: np.ndarray[Any, np.dtype[np.int64]]
    age: np.ndarray[Any, np.dtype[np.int64]]
    record_id: np.ndarray[Any, np.dtype[np.int64]]


@dataclass
class Result:
    """Per record: the rule's points, the decay and status factors, whether it is too old or
    superseded, and its points; per entity: points by kind after the caps, the score and the class."""

    rule_points: np.ndarray[Any, np.dtype[np.float64]]
    decay: np.ndarray[Any, np.dtype[np.float64]]
    status_factor: np.ndarray[Any, np.dtype[np.float64]]
    too_old: np.ndarray[Any, np.dtype[np.bool_]]
    superseded: np.ndarray[Any, np.dtype[np.bool_]]
    points: np.ndarray[Any, np.dtype[np.float64]]
    by_kind: np.ndarray[Any, np.dtype[np.float64]]  # entities x kinds, capped
    raw_by_kind: np.ndarray[Any, np.dtype[np.float64]]
    score: np.ndarray[Any, np.dtype[np.float64]]
    risk_class: np.ndarray[Any, np.dtype[np.str_]]


def evaluate(config: ScoringConfig, inputs: Inputs, entities: int) -> Result:
    """Scores and classes of `entities` entities from their records (see the module's docstring)."""
    t = _tables(config)
    rule = inputs.rule
    rule_points = t.points[rule]  # -1 picks the "no rule" slot: 0 points
    half_life = t.half_life[rule]
    age = np.maximum(inputs.age, 0).astype(np.float64)
    decay = np.where(half_life > 0, np.exp2(-age / np.where(half_life > 0, half_life, 1.0)), 1.0)
    status_factor = t.status_factor[inputs.status]
    too_old = inputs.age > config.max_age_days
    kind = t.kind[rule]  # a record without a rule gets 0 points whatever its kind
    superseded = np.zeros(len(rule), dtype=bool)
    latest = t.latest_only[kind] & (rule >= 0)
    if latest.any():
        # Among an entity's records of a latest-only kind, all but the newest (smallest age, then the
        # highest id) are superseded.
        pos = np.flatnonzero(latest)
        order = np.lexsort((-inputs.record_id[pos], inputs.age[pos], kind[pos], inputs.entity[pos]))
        sorted_pos = pos[order]
        group = inputs.entity[sorted_pos] * len(RECORD_KINDS) + kind[sorted_pos]
        first = np.ones(len(sorted_pos), dtype=bool)
        first[1:] = group[1:] != group[:-1]
        superseded[sorted_pos[~first]] = True
    points = rule_points * decay * status_factor
    points[too_old | superseded] = 0.0
    kinds = len(RECORD_KINDS)
    raw = np.bincount(inputs.entity * kinds + kind, weights=points, minlength=entities * kinds)
    raw_by_kind = raw.astype(np.float64).reshape(entities, kinds)
    by_kind = raw_by_kind.copy()
    for k in np.flatnonzero(~np.isnan(t.cap)):
        cap = t.cap[k]
        by_kind[:, k] = np.maximum(by_kind[:, k], cap) if cap < 0 else np.minimum(by_kind[:, k], cap)
    score = np.round(np.clip(config.base + by_kind.sum(axis=1), config.min, config.max), 1)
    thresholds = list(config.classes.values())
    risk_class = np.select([score >= th for th in thresholds], list(config.classes), default=RISK_CLASSES[-1])
    return Result(
        rule_points,
        decay,
        status_factor,
        too_old,
        superseded,
        points,
        by_kind,
        raw_by_kind,
        score,
        risk_class,
    )


def risk_class_of(config: ScoringConfig, score: float) -> str:
    for name, threshold in config.classes.items():
        if score >= threshold:
            return name
    return RISK_CLASSES[-1]


def summaries(by_kind: np.ndarray[Any, np.dtype[np.float64]]) -> list[str]:
    """What moved each score (a row of points by kind), largest first: "penalty -10.0; honour +5.0" (at
    most three kinds)."""
    values = np.round(by_kind, 1)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :3]
    top = np.take_along_axis(values, order, axis=1)
    out = []
    for kinds, points in zip(order.tolist(), top.tolist(), strict=True):
        parts = [f"{RECORD_KINDS[k]} {v:+.1f}" for k, v in zip(kinds, points, strict=True) if v != 0]
        out.append("; ".join(parts) or "no records")
    return out


# --- one entity explained ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One record's part of a score."""

    record: CreditRecord
    rule_points: float
    decay: float
    status_factor: float
    points: float
    reason: str  # English; the page builds its own sentence from the fields


@dataclass(frozen=True)
class Explanation:
    base: float
    lines: list[Line]
    caps: list[tuple[str, float, float]]  # (kind, cap, points taken off or given back)
    score: float
    risk_class: str
    thresholds: dict[str, float]
    today: date


def effective_status(record: CreditRecord, today: date) -> int:
    if record.status == "active" and record.publicity_until is not None and record.publicity_until < today:
        return ENDED
    return STATUS_INDEX[record.status]


def inputs_of(config: ScoringConfig, records: Sequence[CreditRecord], today: date) -> Inputs:
    """One entity's records as arrays (entity position 0)."""
    return Inputs(
        entity=np.zeros(len(records), dtype=np.int64),
        rule=np.array([config.rule_for(r.kind, r.severity, r.grade) for r in records], dtype=np.int64),
        status=np.array([effective_status(r, today) for r in records], dtype=np.int64),
        age=np.array([(today - r.decided_on).days for r in records], dtype=np.int64),
        record_id=np.array([r.id for r in records], dtype=np.int64),
    )


def _reason(config: ScoringConfig, record: CreditRecord, i: int, result: Result, rule: int, age: int) -> str:
    if rule < 0:
        return "no rule for this kind of record"
    if result.too_old[i]:
        return f"decided more than {config.max_age_days} days ago"
    if result.superseded[i]:
        return f"a newer {record.kind} record replaces it"
    return (
        f"{result.rule_points[i]:+g} x decay {result.decay[i]:.2f} ({age} days) x status "
        f"{result.status_factor[i]:g}"
    )


def explain(config: ScoringConfig, records: Sequence[CreditRecord], *, today: date) -> Explanation:
    """An entity's score and class today, record by record."""
    inputs = inputs_of(config, records, today)
    result = evaluate(config, inputs, 1)
    lines = [
        Line(
            record=r,
            rule_points=float(result.rule_points[i]),
            decay=float(result.decay[i]),
            status_factor=float(result.status_factor[i]),
            points=round(float(result.points[i]), 2),
            reason=_reason(config, r, i, result, int(inputs.rule[i]), int(inputs.age[i])),
        )
        for i, r in enumerate(records)
    ]
    caps = [
        (
            RECORD_KINDS[k],
            config.caps[RECORD_KINDS[k]],
            round(float(result.by_kind[0, k] - result.raw_by_kind[0, k]), 2),
        )
        for k in range(len(RECORD_KINDS))
        if abs(result.by_kind[0, k] - result.raw_by_kind[0, k]) > 1e-9
    ]
    return Explanation(
        base=config.base,
        lines=lines,
        caps=caps,
        score=float(result.score[0]),
        risk_class=str(result.risk_class[0]),
        thresholds=dict(config.classes),
        today=today,
    )


# --- recompute everything ---------------------------------------------------------------------------------


@dataclass
class RecomputeResult:
    entities: int = 0
    records: int = 0
    changes: int = 0  # class changes
    written: int = 0  # entities whose score or class changed
    classes: dict[str, int] = field(default_factory=dict)
    tags: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def _literal(value: str) -> str:
    """A SQL string literal of a value from a fixed set (kinds, statuses, dates we format)."""
    assert "'" not in value
    return f"'{value}'"


def _rule_case(config: ScoringConfig) -> str:
    """The SQL of `rule_for`: the most specific rule first, then the kind's own, else -1."""
    whens = []
    for i, rule in enumerate(config.rules):
        if rule.severity:
            whens.append((0, f"kind = 'penalty' AND severity = {_literal(rule.severity)}", i))
        elif rule.grade:
            whens.append((0, f"kind = 'tax_grade' AND grade = {_literal(rule.grade)}", i))
        else:
            whens.append((1, f"kind = {_literal(rule.kind)}", i))
    whens.sort(key=lambda w: w[0])
    if not whens:
        return "-1"
    return "CASE " + " ".join(f"WHEN {cond} THEN {i}" for _o, cond, i in whens) + " ELSE -1 END"


def _records_sql(config: ScoringConfig, today: date, dialect: str) -> str:
    """One row per record: the entity, one packed integer (age in days x 1024 + (rule + 1) x 8 + effective
    status) and the id. Three integers a row is what makes reading two million records fast (the covering
    index ix_credit_records_scoring answers it without touching the table)."""
    day = _literal(today.isoformat())
    age = (
        f"MAX(0, CAST(julianday({day}) - julianday(decided_on) AS INTEGER))"
        if dialect == "sqlite"
        else f"GREATEST(0, DATE {day} - decided_on)"
    )
    status = (
        f"CASE status WHEN 'active' THEN (CASE WHEN publicity_until < {day} THEN {ENDED} ELSE 0 END) "
        + " ".join(f"WHEN {_literal(s)} THEN {i}" for s, i in STATUS_INDEX.items() if s != "active")
        + " END"
    )
    packed = f"{age} * {PACK_AGE} + ({_rule_case(config)} + 1) * {PACK_RULE} + {status}"
    return f"SELECT entity_id, {packed}, id FROM credit_records"


PACK_AGE, PACK_RULE = 1024, 8  # room for 127 rules (MAX_RULES) and 8 statuses
RECORD_DTYPE = np.dtype([("entity", "i8"), ("packed", "i8"), ("id", "i8")])


def _read(
    conn: Connection, config: ScoringConfig, today: date
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(entity ids sorted, their current classes and scores, the records as a structured array)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute("SELECT id, risk_class, score FROM credit_entities ORDER BY id")
        entities = cursor.fetchall()
        cursor.execute(_records_sql(config, today, conn.dialect.name))
        rows = np.fromiter(cursor, dtype=RECORD_DTYPE)
    finally:
        cursor.close()
    ids = np.array([e[0] for e in entities], dtype=np.int64)
    old = np.array([e[1] or "" for e in entities], dtype="U1")
    old_score = np.array([e[2] if e[2] is not None else np.nan for e in entities], dtype=np.float64)
    return ids, old, old_score, rows


def _write(conn: Connection, rows: list[tuple[str, float, int]], at: datetime) -> None:
    """Set the class and score (and the classification time `at`) of the entities given: the rows go into
    a temporary table (COPY on PostgreSQL, executemany on SQLite) and one UPDATE ... FROM sets them all,
    much faster than an UPDATE per entity."""
    if not rows:
        return
    raw: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with raw.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE credit_scores_new (id integer, risk_class varchar(1), "
                "score double precision) ON COMMIT DROP"
            )
            with cursor.copy("COPY credit_scores_new (risk_class, score, id) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                "UPDATE credit_entities e SET risk_class = n.risk_class, score = n.score, "
                "classified_at = %s FROM credit_scores_new n WHERE e.id = n.id",
                (at,),
            )
        return
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS credit_scores_new (risk_class TEXT, score REAL, "
        "id INTEGER PRIMARY KEY)"
    )
    conn.exec_driver_sql("DELETE FROM credit_scores_new")
    conn.exec_driver_sql("INSERT INTO credit_scores_new (risk_class, score, id) VALUES (?, ?, ?)", rows)
    conn.exec_driver_sql(
        "UPDATE credit_entities SET risk_class = n.risk_class, score = n.score, classified_at = ? "
        "FROM credit_scores_new n WHERE n.id = credit_entities.id",
        (_sqlite_time(at),),
    )
    conn.exec_driver_sql("DELETE FROM credit_scores_new")


def _history(conn: Connection, rows: list[tuple[int, str | None, str, float, str]], at: datetime) -> None:
    """Add class changes (entity, from, to, score, reason) at one time; on SQLite through the driver's
    executemany (a first evaluation writes one for every entity)."""
    if conn.dialect.name != "sqlite":
        conn.execute(
            insert(table_of(ClassChange)),
            [
                {"entity_id": e, "from_class": f, "to_class": t, "score": s, "changed_at": at, "reason": r}
                for e, f, t, s, r in rows
            ],
        )
        return
    stamp = _sqlite_time(at)
    conn.exec_driver_sql(
        "INSERT INTO credit_class_changes (entity_id, from_class, to_class, score, changed_at, reason) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(e, f, t, s, stamp, r) for e, f, t, s, r in rows],
    )


def _sqlite_time(at: datetime) -> str:
    """A timestamp as SQLAlchemy stores UTC datetimes in SQLite (naive UTC text)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def recompute(
    session: Session,
    *,
    config: ScoringConfig | None = None,
    now: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> RecomputeResult:
    """Score and classify every entity from its records, record each class change with a summary of its
    reasons, and refresh the supervision tags. Flushes; the caller commits."""
    config = config or load_config()
    now = now or utcnow()
    today = today_of(now)
    step = progress or (lambda _name: None)
    out = RecomputeResult()
    started = time.perf_counter()
    conn = session.connection()
    ids, old, old_score, rows = _read(conn, config, today)
    out.seconds["read"] = time.perf_counter() - started
    step("read")
    mark = time.perf_counter()
    position = np.searchsorted(ids, rows["entity"])
    if len(rows) and (position >= len(ids)).any():
        raise ValidationFailed("credit records of unknown entities")  # the foreign key forbids it
    packed = rows["packed"]
    inputs = Inputs(
        entity=position,
        rule=(packed % PACK_AGE) // PACK_RULE - 1,
        status=packed % PACK_RULE,
        age=packed // PACK_AGE,
        record_id=rows["id"],
    )
    result = evaluate(config, inputs, len(ids))
    changed = np.flatnonzero(result.risk_class != old)
    # Scores are kept to 0.1: an entity whose score and class stay as they are is not written again.
    moved = np.flatnonzero(
        (result.risk_class != old) | ~np.isclose(result.score, old_score, rtol=0, atol=1e-9)
    )
    out.seconds["score"] = time.perf_counter() - mark
    step("score")
    mark = time.perf_counter()
    scores = result.score.tolist()
    classes = result.risk_class.tolist()
    _write(conn, [(classes[i], scores[i], int(ids[i])) for i in moved.tolist()], now)
    if len(changed):
        _history(
            conn,
            [
                (int(ids[i]), old_class or None, classes[i], scores[i], reason)
                for i, old_class, reason in zip(
                    changed.tolist(), old[changed].tolist(), summaries(result.by_kind[changed]), strict=True
                )
            ],
            now,
        )
    out.seconds["write"] = time.perf_counter() - mark
    step("write")
    mark = time.perf_counter()
    out.tags = refresh_tags(session, config)
    out.seconds["tags"] = time.perf_counter() - mark
    step("tags")
    out.entities, out.records, out.changes, out.written = len(ids), len(rows), len(changed), len(moved)
    values, counts = np.unique(result.risk_class, return_counts=True)
    out.classes = {str(v): int(c) for v, c in zip(values, counts, strict=True)}
    out.seconds["total"] = time.perf_counter() - started
    return out


def refresh_tags(session: Session, config: ScoringConfig) -> int:
    """Replace every tag from industry and records by those the model gives now (manual tags stay, and a
    manual tag is not given again); the number of tags from industry and records. One pass over the
    entities and one over the records in force of the tagging kinds; titles are matched once each."""
    conn = session.connection()
    table = table_of(EntityTag)
    by_division: dict[str, list[str]] = {}
    for rule in config.tags:
        for division in rule.industries:
            by_division.setdefault(division, []).append(rule.tag)
    existing = {
        (e, t): source
        for e, t, source in conn.execute(select(table.c.entity_id, table.c.tag, table.c.source)).all()
    }
    rows: dict[tuple[int, str], str] = {}
    if by_division:
        industry = select(Entity.id, Entity.industry_code).where(Entity.industry_code.in_(list(by_division)))
        for entity_id, code in conn.execute(industry).all():
            for tag in by_division[code or ""]:
                rows.setdefault((entity_id, tag), "industry")
    kinds = sorted({k for rule in config.tags for k in rule.kinds})
    if kinds:
        matched: dict[tuple[str, str], list[str]] = {}

        def tags_for(kind: str, title: str) -> list[str]:
            found = matched.get((kind, title))
            if found is None:
                found = matched[(kind, title)] = [
                    rule.tag
                    for rule in config.tags
                    if kind in rule.kinds and (not rule.words or any(w in title for w in rule.words))
                ]
            return found

        # Only the records some tag wants come back (the database matches the words).
        wanted = or_(
            *(
                and_(
                    CreditRecord.kind.in_(rule.kinds),
                    or_(*(CreditRecord.title.contains(w) for w in rule.words)),
                )
                if rule.words
                else CreditRecord.kind.in_(rule.kinds)
                for rule in config.tags
                if rule.kinds
            )
        )
        query = select(CreditRecord.entity_id, CreditRecord.kind, CreditRecord.title).where(
            CreditRecord.status == "active", CreditRecord.kind.in_(kinds), wanted
        )
        for entity_id, kind, title in conn.execute(query).all():  # fetchall: far faster than row by row
            for tag in tags_for(kind, title):
                rows.setdefault((entity_id, tag), "record")
    # Only the differences are written: most tags stay from one day to the next.
    gone = [
        {"e": e, "t": t}
        for (e, t), source in existing.items()
        if source != "manual" and rows.get((e, t)) != source
    ]
    if gone:
        conn.execute(
            delete(table).where(table.c.entity_id == bindparam("e"), table.c.tag == bindparam("t")), gone
        )
    new = [
        {"entity_id": e, "tag": t, "source": source}
        for (e, t), source in rows.items()
        if existing.get((e, t)) not in (source, "manual")
    ]
    if new:
        conn.execute(insert(table), new)
    return sum(1 for key in rows if existing.get(key) != "manual")


def recompute_job(*, interval_s: int = 24 * 3600) -> Job:
    """'credit.recompute' for the scheduler: every score, class and tag once a day."""

    def run(db: Database, now: datetime) -> RecomputeResult:
        with db.session() as session:
            return recompute(session, now=now)

    return Job("credit.recompute", interval_s, run, lease_s=1800)


# --- reading ------------------------------------------------------------------------------------------


def tags_of(session: Session, entity_id: int) -> list[EntityTag]:
    return list(
        session.scalars(select(EntityTag).where(EntityTag.entity_id == entity_id).order_by(EntityTag.tag))
    )


def history_of(session: Session, entity_id: int, *, limit: int = HISTORY_PAGE) -> list[ClassChange]:
    """An entity's class changes, newest first."""
    return list(
        session.scalars(
            select(ClassChange)
            .where(ClassChange.entity_id == entity_id)
            .order_by(ClassChange.changed_at.desc(), ClassChange.id.desc())
            .limit(limit)
        )
    )
