"""The signed-in user's in-app notices (cityops.core.notifications): JSON under /api/notifications
and the page /notifications. Only one's own notices: another user's answers 404."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from cityops.core import notifications
from cityops.core.auth.deps import CurrentUser
from cityops.core.deps import SessionDep, UnitOfWorkRoute
from cityops.core.i18n import locale_of
from cityops.core.notifications import NotificationPage, NotificationRead
from cityops.core.templating import render

router = APIRouter(route_class=UnitOfWorkRoute)
MAX_ID = 2_147_483_647
PAGE_SIZE = 50
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID)]
Unread = Annotated[bool, Query(description="Only the unread ones")]


class UnreadCount(BaseModel):
    unread: int


@router.get("/api/notifications", response_model=NotificationPage, tags=["notifications"])
def list_notifications(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    unread: Unread = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> NotificationPage:
    """Your notices, newest first, in your language."""
    return notifications.list_for(
        session, user_id=user.id, locale=locale_of(request), unread_only=unread, limit=limit, offset=offset
    )


@router.get("/api/notifications/unread-count", response_model=UnreadCount, tags=["notifications"])
def unread_count(session: SessionDep, user: CurrentUser) -> UnreadCount:
    return UnreadCount(unread=notifications.unread_count(session, user_id=user.id))


@router.post("/api/notifications/read-all", response_model=UnreadCount, tags=["notifications"])
def read_all(session: SessionDep, user: CurrentUser) -> UnreadCount:
    notifications.mark_all_read(session, user_id=user.id)
    return UnreadCount(unread=0)


@router.post(
    "/api/notifications/{notification_id}/read",
    response_model=NotificationRead,
    responses={404: {"description": "No such notification of yours"}},
    tags=["notifications"],
)
def read_one(
    notification_id: NotificationId, request: Request, session: SessionDep, user: CurrentUser
) -> NotificationRead:
    row = notifications.mark_read(session, user_id=user.id, notification_id=notification_id)
    return notifications.to_read(row, locale=locale_of(request))


@router.get("/notifications", response_class=HTMLResponse, include_in_schema=False)
def notifications_page(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    unread: Unread = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> HTMLResponse:
    page = notifications.list_for(
        session,
        user_id=user.id,
        locale=locale_of(request),
        unread_only=unread,
        limit=PAGE_SIZE,
        offset=offset,
    )
    return render(
        request,
        "accounts/notifications.html",
        {
            "page": page,
            "unread_only": unread,
            "query": "unread=true" if unread else "",
            "offset": offset,
            "page_size": PAGE_SIZE,
            "pages": max(1, math.ceil(page.total / PAGE_SIZE)),
            "page_no": offset // PAGE_SIZE + 1,
        },
    )


@router.get("/notifications/badge", response_class=HTMLResponse, include_in_schema=False)
def badge(request: Request, session: SessionDep, user: CurrentUser) -> HTMLResponse:
    """The top bar's unread count (loaded by htmx, so pages do not pay for it)."""
    count = notifications.unread_count(session, user_id=user.id)
    return render(request, "accounts/_notifications_badge.html", {"unread": count})


@router.post("/notifications/{notification_id}/read", include_in_schema=False)
def open_notification(notification_id: NotificationId, session: SessionDep, user: CurrentUser) -> Response:
    """Mark read and go where the notice points (its own case page, usually)."""
    row = notifications.mark_read(session, user_id=user.id, notification_id=notification_id)
    target = (
        row.link
        if row.link and row.link.startswith("/") and not row.link.startswith("//")
        else "/notifications"
    )
    return RedirectResponse(target, status_code=303)


@router.post("/notifications/read-all", include_in_schema=False)
def read_all_form(session: SessionDep, user: CurrentUser) -> Response:
    notifications.mark_all_read(session, user_id=user.id)
    return RedirectResponse("/notifications", status_code=303)
