"""The in-app inbox: one notice per person, shown in the reader's language, read marks its own only."""

from __future__ import annotations

import pytest

from cityops.core import notifications
from cityops.core.db import Database
from cityops.core.errors import NotFound
from tests.accounts.helpers import user_id


def test_notify_once_per_person_in_each_readers_language(db: Database) -> None:
    me, other = user_id(db, "village1.operator"), user_id(db, "village2.operator")
    with db.session() as session:
        told = notifications.notify(
            session,
            user_ids=[me, me, None, other],
            title="Case %(number)s: %(state_label)s",
            params={"number": "HB-1", "state_label": "Accepted"},
            link="/cases/1",
        )
    assert told == sorted([me, other])
    with db.sessions() as session:
        zh = notifications.list_for(session, user_id=me, locale="zh")
        en = notifications.list_for(session, user_id=me, locale="en")
    assert [n.title for n in zh.items] == ["案件 HB-1：已受理"] and zh.unread == 1
    assert [n.title for n in en.items] == ["Case HB-1: Accepted"]


def test_read_marks_only_ones_own(db: Database) -> None:
    me, other = user_id(db, "village1.operator"), user_id(db, "village2.operator")
    with db.session() as session:
        notifications.notify(session, user_ids=[me], title="one")
        notifications.notify(session, user_ids=[me], title="two")
        notifications.notify(session, user_ids=[other], title="theirs")
    with db.session() as session:
        theirs = notifications.list_for(session, user_id=other, locale="zh").items[0]
        with pytest.raises(NotFound):
            notifications.mark_read(session, user_id=me, notification_id=theirs.id)
        mine = notifications.list_for(session, user_id=me, locale="zh").items
        notifications.mark_read(session, user_id=me, notification_id=mine[0].id)
        assert notifications.unread_count(session, user_id=me) == 1
        assert notifications.mark_all_read(session, user_id=me) == 1
        assert notifications.unread_count(session, user_id=me) == 0
        assert notifications.unread_count(session, user_id=other) == 1


def test_a_notice_whose_placeholders_no_longer_match_is_shown_as_written(db: Database) -> None:
    me = user_id(db, "village1.operator")
    with db.session() as session:
        notifications.notify(session, user_ids=[me], title="Case %(number)s: %(state_label)s", params={})
    with db.sessions() as session:
        assert (
            notifications.list_for(session, user_id=me, locale="en").items[0].title
            == "Case %(number)s: %(state_label)s"
        )
