"""The response to a warning: its area resolved to grids and villages, the grid workers and village heads
told once per message, the emergency plan's tasks as cases (escalation adding, never repeating), lifting
closing the open ones, evacuation figures and the history export."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from shapely import from_wkb
from shapely.geometry import shape
from sqlalchemy import delete, select, update

from cityops.cases.models import Case, CaseEvent
from cityops.core.auth.models import OrgUnit, User
from cityops.core.db import Database, utcnow
from cityops.core.events import Envelope, EventBus, OutboxEntry, ProcessedEvent
from cityops.core.notifications import Notification, to_read
from cityops.places import service as places_service
from cityops.places.models import Division, Grid
from cityops.warning import plans, response, service
from cityops.warning.models import HazardWarning, WarningMessage, WarningNotice, WarningTarget, WarningTask
from cityops.warning.schemas import WarningCreate
from tests.accounts.helpers import login, logout
from tests.accounts.test_cli import env_for, run
from tests.cases.helpers import act
from tests.warning.helpers import issue_body, square_in

XINZHEN = "410621104"  # 浚县新镇镇, on the Wei: villages of the shipped plan's red evacuation list
VILLAGE1 = "410611100203"  # where the demo accounts village1.operator and village1.grid work
VILLAGE2 = "410611101001"


def issue(client: TestClient, db: Database, **overrides: Any) -> dict[str, Any]:
    login(client, "admin")
    created = client.post("/api/warnings", json=issue_body(db, **overrides))
    assert created.status_code == 201, created.text
    logout(client)
    body: dict[str, Any] = created.json()
    return body


def change(client: TestClient, warning_id: int, action: str, body: dict[str, Any]) -> dict[str, Any]:
    login(client, "admin")
    changed = client.post(f"/api/warnings/{warning_id}/{action}", json=body)
    assert changed.status_code == 200, changed.text
    logout(client)
    found: dict[str, Any] = changed.json()
    return found


def tasks(db: Database, warning_id: int) -> list[tuple[WarningTask, Case]]:
    with db.sessions() as session:
        return [
            (task, case)
            for task, case in session.execute(
                select(WarningTask, Case)
                .join(Case, Case.id == WarningTask.case_id)
                .where(WarningTask.warning_id == warning_id)
                .order_by(WarningTask.id)
            )
        ]


def items(db: Database, warning_id: int) -> list[str]:
    return sorted({task.item.split(".", 1)[1] for task, _ in tasks(db, warning_id)})


def villages_of(db: Database, code: str) -> list[str]:
    with db.sessions() as session:
        return sorted(
            session.scalars(
                select(Division.code).where(Division.level == "village", Division.code.like(f"{code}%"))
            )
        )


def grids_of(db: Database, code: str) -> list[str]:
    with db.sessions() as session:
        return sorted(session.scalars(select(Grid.code).where(Grid.village_code.like(f"{code}%"))))


def notices_of(db: Database, username: str) -> list[Notification]:
    with db.sessions() as session:
        return list(
            session.scalars(
                select(Notification)
                .join(User, User.id == Notification.user_id)
                .where(User.username == username, Notification.link.like("/warnings/%"))
                .order_by(Notification.id)
            )
        )


def redeliver(db: Database, topic: str) -> None:
    """Deliver the warning events of a topic once more, as a broker would after a lost acknowledgement:
    the outbox rows unpublished again and the subscribers' idempotency records gone."""
    with db.session() as session:
        ids = list(session.scalars(select(OutboxEntry.event_id).where(OutboxEntry.topic == topic)))
        assert ids
        session.execute(delete(ProcessedEvent).where(ProcessedEvent.event_id.in_(ids)))
        session.execute(update(OutboxEntry).where(OutboxEntry.event_id.in_(ids)).values(published_at=None))


def test_a_red_flood_warning_sends_evacuation_tasks_to_the_plans_villages_at_their_grids(
    client: TestClient, db: Database
) -> None:
    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    plan = plans.registry().plan_for("flood")
    assert plan is not None
    evacuate = next(item for _, item in plan.items_up_to("red") if item.code == "evacuate_low_lying")
    listed = [v for v in villages_of(db, XINZHEN) if evacuate.covers(v)]
    assert len(listed) == 8  # 新镇, 新码头, 耿湾, 前胡岸, 后胡岸 and the three streets of 淇门

    with db.sessions() as session:
        targets = session.scalars(
            select(WarningTarget).where(WarningTarget.warning_id == warning["id"])
        ).all()
        alert = session.scalar(select(WarningMessage).where(WarningMessage.warning_id == warning["id"]))
        assert alert is not None
        units = {u.id: u.code for u in session.scalars(select(OrgUnit))}
    assert sorted(t.code for t in targets if t.kind == "village") == villages_of(db, XINZHEN)
    assert sorted(t.code for t in targets if t.kind == "grid") == grids_of(db, XINZHEN)

    found = tasks(db, warning["id"])
    evacuations = [(t, c) for t, c in found if t.item == "flood.evacuate_low_lying"]
    assert sorted(t.target_code for t, _ in evacuations) == listed
    for task, case in evacuations:
        assert case.type_code == "warning_task" and case.category == "evacuate" and case.status == "reported"
        assert case.village_code == task.target_code
        assert case.grid_code is not None and case.grid_code in grids_of(db, task.target_code)
        assert units[case.org_unit_id or 0] == f"centre-{task.target_code}"  # the village's own centre
        assert case.deadline_at == alert.sent_at + timedelta(minutes=60)
        assert case.title.startswith("转移低洼村庄群众：") and case.fields["warning_id"] == warning["id"]
        assert task.level == "red"
    # A red warning does what the levels below it do too, once per target.
    per_item = {
        item: sum(1 for t, _ in found if t.item == f"flood.{item}") for item in items(db, warning["id"])
    }
    villages = len(villages_of(db, XINZHEN))
    assert per_item == {
        "patrol_river_banks": len(grids_of(db, XINZHEN)),
        "check_reservoirs_culverts": villages,
        "prepare_shelters": villages,
        "preposition_rescue": 1,
        "evacuate_low_lying": 8,
        "open_shelters": 1,
    }
    departments = {t.item: units[c.org_unit_id or 0] for t, c in found if t.target_code.startswith("dept-")}
    assert departments == {
        "flood.preposition_rescue": "dept-emergency",
        "flood.open_shelters": "dept-emergency",
    }
    patrol = next(c for t, c in found if t.item == "flood.patrol_river_banks")
    assert patrol.deadline_at == alert.sent_at + timedelta(minutes=120)


def target_codes(db: Database, warning_id: int) -> list[str]:
    with db.sessions() as session:
        return sorted(
            session.scalars(
                select(WarningTarget.code).where(
                    WarningTarget.warning_id == warning_id, WarningTarget.removed_at.is_(None)
                )
            )
        )


def test_an_area_covers_the_grids_it_overlaps_but_not_the_slivers_of_an_outline(
    client: TestClient, db: Database
) -> None:
    # Given by code: exactly the village and its grids, though its simplified outline spills over.
    by_code = issue(client, db, level="blue", division_codes=[VILLAGE1])
    assert target_codes(db, by_code["id"]) == sorted([VILLAGE1, *grids_of(db, VILLAGE1)])

    # Drawn: each grid the area covers by 5 % of the grid (or of the area), and no other.
    drawn = issue(
        client, db, level="blue", division_codes=[], area=square_in(db, XINZHEN, 0.02), area_desc="新镇周边"
    )
    area = shape(drawn["area"])
    with db.sessions() as session:
        grids = {code: from_wkb(wkb) for code, wkb in session.execute(select(Grid.code, Grid.geometry))}
    covered = {
        code
        for code, grid in grids.items()
        if grid.intersection(area).area >= 0.05 * min(grid.area, area.area) and grid.intersects(area)
    }
    found = target_codes(db, drawn["id"])
    assert covered and sorted(covered) == [c for c in found if len(c) == 15]
    assert sorted({c[:12] for c in covered}) == [c for c in found if len(c) == 12]
    assert len({c[:12] for c in covered}) > 1  # the square reaches across several villages


def test_each_person_is_told_once_per_message_even_when_the_event_comes_twice(
    client: TestClient, db: Database
) -> None:
    warning = issue(client, db, level="blue", division_codes=[VILLAGE1])
    for username in ("village1.grid", "village1.operator"):
        [notice] = notices_of(db, username)
        shown = to_read(notice, locale="zh")
        assert shown.title == "【预警】暴雨蓝色预警发布"
        assert "鹤壁市城市运行管理中心发布暴雨蓝色预警" in shown.body  # the headline
        assert "防御指引：请注意防范强降雨" in shown.body  # the instructions
        assert shown.link == f"/warnings/{warning['id']}"
        assert to_read(notice, locale="en").title == "Blue Rainstorm warning issued"
    assert notices_of(db, "village2.grid") == []  # another village
    before = tasks(db, warning["id"])
    assert [t.item for t, _ in before] == ["flood.patrol_river_banks"] * len(grids_of(db, VILLAGE1))

    redeliver(db, "warning.issued")
    client.app.state.bus.drain()  # type: ignore[attr-defined]
    with db.session() as session:  # and the handler called once more by hand, past deliver_once
        [entry] = session.scalars(select(OutboxEntry).where(OutboxEntry.topic == "warning.issued")).all()
        envelope = Envelope(entry.event_id, entry.topic, entry.payload, entry.created_at)
        index = places_service.build_index(session)
        response.notify_changed(session, envelope, index=index)
        response.tasks_on_change(session, envelope, index=index, registry=plans.registry())
    assert [len(notices_of(db, u)) for u in ("village1.grid", "village1.operator")] == [1, 1]
    assert [c.id for _, c in tasks(db, warning["id"])] == [c.id for _, c in before]

    # A new message is news: raised to red, everyone is told again, once.
    change(client, warning["id"], "update", {"level": "red"})
    redeliver(db, "warning.updated")
    client.app.state.bus.drain()  # type: ignore[attr-defined]
    for username in ("village1.grid", "village1.operator"):
        notices = notices_of(db, username)
        assert len(notices) == 2
        assert to_read(notices[-1], locale="zh").title == "【预警升级】暴雨预警升级为红色"
    with db.sessions() as session:
        rows = session.execute(select(WarningNotice.user_id, WarningNotice.role, WarningNotice.level)).all()
    # The grid's workers and the village centre's operators (the seed has two of each here), per message.
    assert Counter((role, level) for _, role, level in rows) == {
        ("grid_worker", "blue"): 2,
        ("grid_worker", "red"): 2,
        ("village_head", "blue"): 2,
        ("village_head", "red"): 2,
    }
    assert len(rows) == len({(user, level) for user, _, level in rows})


def test_escalation_from_blue_to_red_adds_the_missing_tasks_and_repeats_none(
    client: TestClient, db: Database
) -> None:
    warning = issue(client, db, hazard="flood", level="blue", division_codes=[XINZHEN])
    blue = tasks(db, warning["id"])
    assert items(db, warning["id"]) == ["patrol_river_banks"]

    change(client, warning["id"], "update", {"level": "red"})
    red = tasks(db, warning["id"])
    assert items(db, warning["id"]) == [
        "check_reservoirs_culverts",
        "evacuate_low_lying",
        "open_shelters",
        "patrol_river_banks",
        "prepare_shelters",
        "preposition_rescue",
    ]
    assert [c.id for _, c in red[: len(blue)]] == [c.id for _, c in blue]
    keys = [(t.item, t.target_code) for t, _ in red]
    assert len(keys) == len(set(keys))
    assert sum(1 for t, _ in red if t.item == "flood.patrol_river_banks") == len(grids_of(db, XINZHEN))
    # The yellow and orange items came with the red message, and are due after it.
    with db.sessions() as session:
        update_message = session.scalars(
            select(WarningMessage)
            .where(WarningMessage.warning_id == warning["id"])
            .order_by(WarningMessage.id)
        ).all()[-1]
    check = next(c for t, c in red if t.item == "flood.check_reservoirs_culverts")
    assert check.deadline_at == update_message.sent_at + timedelta(minutes=90)

    # Extending, lowering or the same event again hands out nothing new.
    change(client, warning["id"], "extend", {"expires": (utcnow() + timedelta(hours=12)).isoformat()})
    change(client, warning["id"], "update", {"level": "yellow"})
    redeliver(db, "warning.updated")
    client.app.state.bus.drain()  # type: ignore[attr-defined]
    assert [c.id for _, c in tasks(db, warning["id"])] == [c.id for _, c in red]


def test_the_bulk_hand_out_opens_only_the_missing_tasks_each_once(client: TestClient, db: Database) -> None:
    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN])
    first = tasks(db, warning["id"])
    assert len({c.number for _, c in first}) == len(first) > 100  # one case each, numbers unique
    with db.sessions() as session:
        reported = set(
            session.scalars(
                select(OutboxEntry.payload["case_id"].as_integer()).where(
                    OutboxEntry.topic == "cases.reported"
                )
            )
        )
    assert {c.id for _, c in first} <= reported  # each case announced through the outbox
    # Two tasks lost (as if their cases had been refused): the next hand-out opens those two only.
    lost = [first[0][0], first[-1][0]]
    with db.session() as session:
        session.execute(delete(WarningTask).where(WarningTask.id.in_([t.id for t in lost])))
    with db.session() as session:
        found = session.get(HazardWarning, warning["id"])
        message = session.scalars(
            select(WarningMessage).where(WarningMessage.warning_id == warning["id"])
        ).one()
        assert found is not None
        index = places_service.build_index(session)
        active = response.active_targets(session, found.id)
        opened = response.hand_out_tasks(
            session, found, message, active, index=index, registry=plans.registry(), now=utcnow()
        )
        again = response.hand_out_tasks(
            session, found, message, active, index=index, registry=plans.registry(), now=utcnow()
        )
    assert len(opened) == 2 and again == []
    now = tasks(db, warning["id"])
    assert sorted((t.item, t.target_code) for t, _ in now) == sorted(
        (t.item, t.target_code) for t, _ in first
    )
    assert {c.id for _, c in now} - {c.id for _, c in first} == set(opened)
    for task, case in now:
        if case.id in opened:
            assert case.fields == {
                "warning_id": warning["id"],
                "plan_item": task.item,
                "target": task.target_code,
            }
            assert case.status == "reported" and case.org_unit_id is not None and case.deadline_at is not None


def test_lifting_a_warning_closes_its_open_tasks_with_the_reason(client: TestClient, db: Database) -> None:
    warning = issue(client, db, hazard="rainstorm", level="yellow", division_codes=[VILLAGE1])
    found = {t.item: c for t, c in tasks(db, warning["id"])}
    patrol, check = found["flood.patrol_river_banks"], found["flood.check_reservoirs_culverts"]
    login(client, "village1.grid")  # the grid worker acknowledges the patrol and reports it done
    seen = client.get(f"/api/cases/{patrol.id}").json()
    assert "accept" in seen["allowed_actions"] and "cancel" not in seen["allowed_actions"]
    accepted = act(client, seen, "accept")
    act(client, accepted, "resolve", result="河道巡查完毕，未见险情")
    logout(client)
    login(client, "village1.operator")  # the village acknowledges the check
    act(client, client.get(f"/api/cases/{check.id}").json(), "accept")
    logout(client)

    change(client, warning["id"], "cancel", {"reason": "降雨过程结束"})
    with db.sessions() as session:
        cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_([patrol.id, check.id])))}
        last = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == check.id).order_by(CaseEvent.id.desc())
        ).first()
    assert cases[patrol.id].status == "resolved"  # done before the warning ended: left to be closed
    assert cases[check.id].status == "closed" and cases[check.id].closed_at is not None
    assert last is not None and last.action == "cancel" and last.data["reason"] == "预警已解除：降雨过程结束"
    lifted = notices_of(db, "village1.operator")[-1]
    shown = to_read(lifted, locale="zh")
    assert shown.title == "【预警解除】暴雨黄色预警解除" and "解除原因：降雨过程结束" in shown.body


def test_an_expired_warning_closes_its_tasks_and_an_area_cut_closes_theirs(
    client: TestClient, db: Database
) -> None:
    warning = issue(client, db, level="blue", division_codes=[VILLAGE1, VILLAGE2])
    by_village = {c.village_code for _, c in tasks(db, warning["id"])}
    assert by_village == {VILLAGE1, VILLAGE2}

    change(client, warning["id"], "update", {"division_codes": [VILLAGE1]})
    with db.sessions() as session:
        left = session.scalars(select(WarningTarget.code).where(WarningTarget.removed_at.is_not(None))).all()
    assert set(left) == {VILLAGE2, *grids_of(db, VILLAGE2)}
    statuses = {(c.village_code, c.status) for _, c in tasks(db, warning["id"])}
    assert statuses == {(VILLAGE1, "reported"), (VILLAGE2, "closed")}

    with db.session() as session:
        assert service.expire_due(session, now=utcnow() + timedelta(days=1)) == 1
    with db.sessions() as session:
        reasons = set(
            session.scalars(
                select(CaseEvent.data["reason"].as_string()).where(
                    CaseEvent.action == "cancel",
                    CaseEvent.case_id.in_([c.id for _, c in tasks(db, warning["id"])]),
                )
            )
        )
    assert reasons == {"已不在预警区域内", "预警已到期解除"}
    assert {c.status for _, c in tasks(db, warning["id"])} == {"closed"}


def test_evacuation_figures_per_village_add_up_and_stay_in_scope(client: TestClient, db: Database) -> None:
    warning = issue(client, db, hazard="flood", level="red", division_codes=[XINZHEN, VILLAGE1])
    xinzhen, mamatou = f"{XINZHEN}201", f"{XINZHEN}202"
    url = f"/api/warnings/{warning['id']}/evacuations"
    login(client, f"op.{xinzhen}")  # the village's responsible person
    first = client.post(url, json={"village_code": xinzhen, "evacuated": 120, "sheltered": 80})
    assert first.status_code == 201, first.text
    again = client.post(
        url, json={"village_code": xinzhen, "evacuated": 150, "sheltered": 90, "note": "全部转移"}
    )
    assert again.json()["evacuated"] == 150  # running totals: the latest report holds
    elsewhere = client.post(url, json={"village_code": mamatou, "evacuated": 10})
    assert elsewhere.status_code == 404, elsewhere.text  # another village: outside the operator's scope
    logout(client)
    login(client, "village1.grid")
    mine = client.post(url, json={"village_code": VILLAGE1, "evacuated": 35, "sheltered": 35})
    assert mine.status_code == 201, mine.text
    assert mine.json() == {
        "evacuated": 35,
        "sheltered": 35,
        "villages": [
            {
                "village_code": VILLAGE1,
                "village_name": "董庄村民委员会",
                "evacuated": 35,
                "sheltered": 35,
                "reports": 1,
                "reported_at": mine.json()["villages"][0]["reported_at"],
            }
        ],
    }  # as the grid worker sees them: their own village only
    too_many = client.post(url, json={"village_code": VILLAGE1, "evacuated": 5, "sheltered": 6})
    assert too_many.status_code == 422 and too_many.json()["field"] == "sheltered"
    logout(client)

    login(client, "admin")
    outside = client.post(url, json={"village_code": VILLAGE2, "evacuated": 1})
    assert outside.status_code == 422 and outside.json()["field"] == "village_code"
    read = client.get(f"/api/warnings/{warning['id']}/response").json()
    assert read["evacuations"]["evacuated"] == 150 + 35 and read["evacuations"]["sheltered"] == 90 + 35
    assert [(v["village_code"], v["reports"]) for v in read["evacuations"]["villages"]] == [
        (VILLAGE1, 1),
        (xinzhen, 2),
    ]
    assert read["grids"] == len(grids_of(db, XINZHEN)) + len(grids_of(db, VILLAGE1))
    assert read["villages"] == len(villages_of(db, XINZHEN)) + 1
    assert read["tasks_by_status"] == {"reported": len(read["tasks"])}
    assert (
        read["people_notified"] >= read["villages"]
    )  # every village's operator, and village 1's grid worker
    [alert] = read["notices"]
    assert alert["msg_type"] == "Alert" and alert["level"] == "red" and alert["grid_workers"] == 2
    logout(client)

    login(client, "village1.operator")  # the response as village 1 sees it
    mine_only = client.get(f"/api/warnings/{warning['id']}/response").json()
    assert {
        t["target_code"][:12] for t in mine_only["tasks"] if not t["target_code"].startswith("dept-")
    } == {VILLAGE1}
    assert mine_only["evacuations"]["evacuated"] == 35
    assert len(mine_only["targets"]) == len(read["targets"])  # the area itself is public


def test_the_history_export_and_the_cli_give_the_lifecycle_and_the_response(
    client: TestClient, db: Database, tmp_path: Path, template_db: Path
) -> None:
    warning = issue(client, db, level="blue", division_codes=[VILLAGE1])
    change(client, warning["id"], "update", {"level": "red"})
    [patrol] = [c for t, c in tasks(db, warning["id"]) if t.item == "flood.patrol_river_banks"]
    login(client, "village1.grid")
    act(client, client.get(f"/api/cases/{patrol.id}").json(), "accept")
    assert (
        client.post(
            f"/api/warnings/{warning['id']}/evacuations",
            json={"village_code": VILLAGE1, "evacuated": 42, "sheltered": 30},
        ).status_code
        == 201
    )
    logout(client)
    change(client, warning["id"], "cancel", {"reason": "雨停"})

    login(client, "admin")
    exported = client.get(f"/api/warnings/{warning['id']}/history.xlsx")
    assert exported.status_code == 200, exported.text
    book = load_workbook(io.BytesIO(exported.content), read_only=True)
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert rows[0] == list(response.HISTORY_HEADERS)
    kinds = [r[1] for r in rows[1:]]
    assert [r[2] for r in rows[1:] if r[1] == "预警消息"] == ["Alert", "Update", "Cancel"]
    assert [r[3] for r in rows[1:] if r[1] == "预警消息"] == ["蓝色", "红色", "红色"]
    assert [r[6] for r in rows[1:] if r[1] == "通知"] == [
        4,
        4,
        4,
    ]  # the grid's 2 workers, the village's 2 heads
    task_rows = [r for r in rows[1:] if r[1] == "任务" and str(r[4]).startswith(patrol.number)]
    assert [r[5] for r in task_rows] == ["已上报", "已受理", "已结案"], task_rows
    assert task_rows[-1][7] == "预警已解除：雨停"
    [evacuation] = [r for r in rows[1:] if r[1] == "转移"]
    assert evacuation[4] == "董庄村民委员会" and evacuation[6] == 42 and "30" in evacuation[7]
    assert kinds.count("任务") >= 4
    times = [r[0] for r in rows[1:]]
    assert times == sorted(times)

    cli_env = env_for(tmp_path, template_db)
    cli_db = Database(cli_env["CITYOPS_DATABASE_URL"])
    try:
        bus = EventBus(cli_db)
        response.subscribe(bus, places_service.build_index)
        cli_db.after_commit.append(bus.after_commit)
        with cli_db.session() as session:
            data = WarningCreate(**issue_body(cli_db, level="orange", division_codes=[VILLAGE1]))
            made = service.issue(
                session, data=data, actor=None, issuer=service.Issuer("cityops.hebi", "鹤壁")
            )
            made_id = made.id
    finally:
        cli_db.dispose()
    printed = run(cli_env, "warnings", "history", str(made_id), "--json")
    assert printed.returncode == 0, printed.stderr
    found = json.loads(printed.stdout)
    assert [e["event"] for e in found["lifecycle"]] == ["Alert"]
    assert {e["kind"] for e in found["response"]} == {"notice", "task"}
    assert [e["event"] for e in found["response"] if e["kind"] == "notice"] == ["Alert"]
    table = run(cli_env, "warnings", "history", str(made_id))
    assert table.returncode == 0 and "+08:00" in table.stdout and "预警消息" in table.stdout
    missing = run(cli_env, "warnings", "history", "424242")
    assert missing.returncode == 1 and "no warning with id 424242" in missing.stderr
