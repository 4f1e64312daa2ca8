"""`cityops users ...` and `cityops tokens ...`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from sqlalchemy.orm import Session

from cityops.config import get_settings
from cityops.core.errors import CityopsError

users_app = typer.Typer(help="User accounts: list (incl. the demo accounts), create, disable, reset.",
                        no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for other systems (Authorization: Bearer <token>).",
                         no_args_is_help=True)


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """A committed session on the configured database; platform errors become precise CLI errors."""
    from sqlalchemy.exc import OperationalError

    from cityops.core.db import Database

    db = Database(get_settings().database_url)
    try:
        with db.session() as session:
            yield session
    except CityopsError as exc:
        field = f" ({exc.field})" if exc.field else ""
        fail(f"{exc.message}{field}")
    except OperationalError as exc:
        fail(f"database not ready: {exc.orig}; run `cityops db upgrade` first")
    finally:
        db.dispose()


def _org_levels(session: Session) -> dict[int, tuple[str, str]]:
    from sqlalchemy import select

    from cityops.core.auth.models import OrgUnit

    return {row.id: (row.level, row.division_code)
            for row in session.execute(select(OrgUnit.id, OrgUnit.level, OrgUnit.division_code))}


@users_app.command("list")
def list_users(
    demo: bool = typer.Option(False, "--demo", help="Only the documented demo accounts, with the password."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    role: str | None = typer.Option(None, help="Only this role."),
    limit: int = typer.Option(200, min=1, help="At most this many rows."),
) -> None:
    """List accounts: username, role, level, division (and, with --demo, the demo password)."""
    from sqlalchemy import func, select

    from cityops.accounts.demo import DEMO_NOTES, DEMO_PASSWORD, demo_accounts_in
    from cityops.core.auth.models import User
    from cityops.core.auth.roles import ROLES
    from cityops.core.auth.scope import division_level

    if role is not None and role not in ROLES:
        fail(f"--role: unknown role {role!r}; one of: {', '.join(ROLES)}")
    with unit_of_work() as session:
        levels = _org_levels(session)
        if demo:
            users = demo_accounts_in(session)
            others = session.scalar(select(func.count()).select_from(User).where(User.is_demo.is_(True))) or 0
            others -= len(users)
        else:
            stmt = select(User).order_by(User.username).limit(limit)
            if role:
                stmt = stmt.where(User.role == role)
            users = list(session.scalars(stmt))
            others = 0
        rows = []
        for u in users:
            if role and u.role != role:
                continue
            division = u.scope_code or (levels[u.org_unit_id][1] if u.org_unit_id in levels else None)
            level = division_level(division) if division else "-"
            row = {"username": u.username, "role": u.role, "level": level, "division": division,
                   "display_name": u.display_name, "active": u.is_active}
            if demo:
                row["password"] = DEMO_PASSWORD
                row["note"] = DEMO_NOTES.get(u.username, "")
            rows.append(row)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if demo and not rows:
        typer.echo("no demo accounts; run `cityops seed` (never in production)")
        return
    if demo:
        typer.echo(f"demo accounts (password for all: {DEMO_PASSWORD}):")
    header = ("username", "role", "level", "division", *(("note",) if demo else ()))
    widths = [max([len(h)] + [len(str(r[h] or "-")) for r in rows]) for h in header]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for r in rows:
        typer.echo("  ".join(str(r[h] or "-").ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    if demo and others > 0:
        typer.echo(f"plus {others} generated staff accounts with the same password: op.<division code> "
                   "(every centre), handler.<department> (every department), grid.<grid code> (the grids of "
                   "villages 1 and 2)")


@users_app.command("create")
def create_user(
    username: str = typer.Argument(..., help="Login name: 3-40 lower-case letters, digits, '.', '_', '-'."),
    role: str = typer.Option(..., help="grid_worker, centre_operator, department_handler, inspector, leader, "
                                       "admin, enterprise_user or citizen."),
    display_name: str = typer.Option(..., "--name", help="Name shown in the pages."),
    org_unit: str | None = typer.Option(None, help="Org unit code, e.g. centre-410611 or dept-police."),
    scope: str | None = typer.Option(None, help="Division code of the user's scope, e.g. 410611100201."),
    phone: str | None = typer.Option(None, help="Mobile or landline number."),
    id_number: str | None = typer.Option(None, help="Resident ID number (18 characters)."),
    locale: str = typer.Option("zh", help="zh or en."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="10+ characters, letters and digits (prompted if omitted)."),
) -> None:
    """Create an account; every field is checked and the first problem is named."""
    from cityops.accounts import service

    with unit_of_work() as session:
        user = service.create_user(session, username=username, display_name=display_name, role=role,
                                   password=password, org_unit_code=org_unit, scope_code=scope, phone=phone,
                                   id_number=id_number, locale=locale, settings=get_settings())
        typer.echo(f"created user {user.username} (id {user.id}, {user.role})")


@users_app.command("disable")
def disable_user(username: str = typer.Argument(..., help="The account to disable.")) -> None:
    """Disable an account: its sessions and tokens stop working at once."""
    from cityops.accounts import service

    with unit_of_work() as session:
        service.set_active(session, username=username, active=False)
    typer.echo(f"disabled {username}")


@users_app.command("enable")
def enable_user(username: str = typer.Argument(..., help="The account to enable.")) -> None:
    """Enable a disabled account again."""
    from cityops.accounts import service

    with unit_of_work() as session:
        service.set_active(session, username=username, active=True)
    typer.echo(f"enabled {username}")


@users_app.command("set-password")
def set_password(
    username: str = typer.Argument(..., help="The account."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="The new password (prompted if omitted)."),
) -> None:
    """Reset an account's password."""
    from cityops.accounts import service

    with unit_of_work() as session:
        service.set_password(session, username=username, password=password)
    typer.echo(f"password of {username} changed")


@tokens_app.command("create")
def create_token(
    username: str = typer.Argument(..., help="The account the token acts as."),
    name: str = typer.Option("api", help="What the token is for, e.g. the calling system."),
    days: int = typer.Option(90, min=1, max=3650, help="Days until the token expires."),
) -> None:
    """Issue a token and print it once (only its hash is stored)."""
    from cityops.accounts import service

    with unit_of_work() as session:
        created = service.create_token(session, actor=None, username=username, name=name, days=days)
    typer.echo(created.token)
    expires = created.expires_at.date().isoformat() if created.expires_at else "never"
    typer.secho(f"token {created.prefix}… for {username} ({name}), expires {expires}; store it now, "
                "it is not shown again", err=True)


@tokens_app.command("revoke")
def revoke_token(prefix: str = typer.Argument(..., help="The token prefix, e.g. cot_AbCdEfGh.")) -> None:
    """Revoke a token at once."""
    from cityops.accounts import service

    with unit_of_work() as session:
        row = service.revoke_token(session, actor=None, prefix=prefix)
    typer.echo(f"revoked {row.prefix}")


@tokens_app.command("list")
def list_tokens(
    username: str | None = typer.Argument(None, help="Only this account's tokens."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List tokens (prefix, name, owner, expiry, state); never the tokens themselves."""
    from cityops.accounts import service

    with unit_of_work() as session:
        tokens = service.list_tokens(session, viewer=None, username=username)
    rows = [t.model_dump(mode="json") for t in tokens]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for t in tokens:
        state = "revoked" if t.revoked_at else "active"
        expires = t.expires_at.date().isoformat() if t.expires_at else "never"
        typer.echo(f"{t.prefix}  user {t.user_id}  {t.name}  expires {expires}  {state}")
