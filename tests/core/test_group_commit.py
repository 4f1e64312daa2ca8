"""Group commit: concurrent submitters share transactions, and each gets its own answer or error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityops.core.db import Database
from cityops.core.errors import CityopsError, ValidationFailed
from cityops.core.events import OutboxEntry
from cityops.core.group_commit import GroupCommit


def write_entries(session: Session, names: Sequence[str]) -> list[OutboxEntry | CityopsError]:
    """Each name becomes an outbox row; "bad" is refused, a repeated name breaks the unique key."""
    out: list[OutboxEntry | CityopsError] = []
    for name in names:
        if name == "bad":
            out.append(ValidationFailed("bad name", field="name"))
            continue
        entry = OutboxEntry(event_id=name, topic="test", payload={"name": name})
        session.add(entry)
        out.append(entry)
    session.flush()
    return out


def queue(db: Database) -> GroupCommit[str, OutboxEntry, str]:
    return GroupCommit(db, name="test", write=write_entries,
                       answer=lambda _session, name, entry: f"{name}#{entry.id}")


def stored(db: Database) -> list[str]:
    with db.sessions() as session:
        return sorted(session.scalars(select(OutboxEntry.event_id)))


async def submit_all(group: GroupCommit[str, OutboxEntry, str], names: list[str]) -> list[object]:
    return await asyncio.gather(*(group.submit(name) for name in names), return_exceptions=True)


def test_concurrent_items_share_transactions_and_each_gets_its_answer(empty_db: Database) -> None:
    group = queue(empty_db)
    names = [f"e{i:03d}" for i in range(100)]
    answers = asyncio.run(submit_all(group, names))
    assert [str(a).split("#")[0] for a in answers] == names
    assert len({str(a).split("#")[1] for a in answers}) == 100  # each its own row
    assert stored(empty_db) == names
    assert group.batches < 20  # not one transaction per item


def test_a_refused_item_gets_its_error_and_the_others_are_written(empty_db: Database) -> None:
    answers = asyncio.run(submit_all(queue(empty_db), ["a", "bad", "b"]))
    assert answers[0] != answers[2] and str(answers[0]).startswith("a#")
    assert isinstance(answers[1], ValidationFailed) and answers[1].field == "name"
    assert stored(empty_db) == ["a", "b"]


def test_a_batch_that_fails_as_a_whole_is_written_item_by_item(empty_db: Database) -> None:
    """A repeated unique key fails the shared INSERT; the batch is written again one item at a time,
    so only the repeat fails and nothing else is lost."""
    answers = asyncio.run(submit_all(queue(empty_db), ["x", "y", "x", "z"]))
    failed = [a for a in answers if isinstance(a, Exception)]
    assert len(failed) == 1 and "UNIQUE" in str(failed[0])
    assert stored(empty_db) == ["x", "y", "z"]
