"""FastAPI dependencies for the signed-in user, read from `request.state` (set by AuthMiddleware).

The User they return is detached from the request's database session: read its columns freely; to
change it, load it again with `session.get(User, user.id)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from cityops.core.auth.models import User
from cityops.core.auth.roles import PERMISSIONS, has_permission
from cityops.core.errors import Forbidden, Unauthorized


async def optional_user(request: Request) -> User | None:
    user: User | None = getattr(request.state, "user", None)
    return user


async def current_user(request: Request) -> User:
    """The signed-in user; 401 with the reason otherwise (a page redirects to /login)."""
    user: User | None = getattr(request.state, "user", None)
    if user is None:
        raise Unauthorized(getattr(request.state, "auth_error", None) or "not signed in")
    return user


def require_permission(permission: str) -> Callable[[Request], Awaitable[User]]:
    """A dependency returning the signed-in user when their role holds `permission`, else 403:
    `user: Annotated[User, Depends(require_permission("users.manage"))]`."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def dependency(request: Request) -> User:
        user = await current_user(request)
        if not has_permission(user, permission):
            raise Forbidden(f"your role may not do this (needs permission {permission!r})")
        return user

    dependency.__name__ = f"require_{permission.replace('.', '_')}"
    return dependency


CurrentUser = Annotated[User, Depends(current_user)]
OptionalUser = Annotated[User | None, Depends(optional_user)]
