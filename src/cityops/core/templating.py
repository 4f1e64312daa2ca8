"""Server-rendered pages: one Jinja2 environment, the navigation registry and the error page.

Templates are found in the shared layout folder (src/cityops/web/templates) and in every package's own
`templates/` folder (src/cityops/<pkg>/templates/<pkg>/page.html, rendered as "<pkg>/page.html").
The package folders are found by scanning the cityops folder, so core never imports a domain package.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import escape
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from cityops.core.errors import CityopsError
from cityops.core.i18n import HTML_LANG, LOCALE_NAMES, LOCALES, N_, gettext_for, locale_of

log = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parent.parent
LAYOUT_DIR = PACKAGE_DIR / "web" / "templates"
LOGIN_PATH = "/login"


# --- navigation registry ----------------------------------------------------------------------

@dataclass(frozen=True)
class NavItem:
    key: str
    label: str  # English msgid; shown through the catalogue
    href: str
    order: int = 100
    # None: every signed-in user sees it; otherwise the permission the user must hold.
    permission: str | None = None
    # One sentence (English msgid) for the home page's card; None shows the label only.
    description: str | None = None


_nav: dict[str, NavItem] = {}
_nav_lock = threading.Lock()


def register_nav(item: NavItem) -> NavItem:
    """Add a navigation item. Registering the same item again is harmless; a different item under a
    key already taken is a programming error."""
    with _nav_lock:
        existing = _nav.get(item.key)
        if existing is not None and existing != item:
            raise ValueError(f"navigation key {item.key!r} is already registered as {existing!r}")
        _nav[item.key] = item
    return item


def nav_items() -> list[NavItem]:
    """Every registered item, in display order."""
    return sorted(_nav.values(), key=lambda item: (item.order, item.key))


def _auth_attr(name: str) -> Any:
    """An attribute of cityops.core.auth, imported late because auth itself renders pages."""
    try:
        auth = importlib.import_module("cityops.core.auth")
    except ImportError:
        return None
    return getattr(auth, name, None)


def _permission_checker() -> Callable[[Any, str], bool] | None:
    checker = _auth_attr("has_permission")
    return checker if callable(checker) else None


def role_of(user: Any) -> Any:
    """The Role (code, label...) of a user, for the user menu; None when unknown."""
    roles = _auth_attr("ROLES")
    code = getattr(user, "role", None)
    return roles.get(code) if roles is not None and code is not None else None


def visible_nav(user: Any) -> list[NavItem]:
    """The items a user may see: none before sign-in, then those whose permission the user holds."""
    if user is None:
        return []
    checker = _permission_checker()
    return [item for item in nav_items()
            if item.permission is None or (checker is not None and checker(user, item.permission))]


# --- environment ------------------------------------------------------------------------------

def template_dirs() -> list[Path]:
    """The shared layout first, then each package's templates folder, in name order."""
    dirs = [LAYOUT_DIR]
    for candidate in sorted(PACKAGE_DIR.glob("*/templates")):
        if candidate.is_dir() and candidate.resolve() != LAYOUT_DIR:
            dirs.append(candidate)
    return dirs


def fmt_dt(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M", *, tz: str = "Asia/Shanghai") -> str:
    """A UTC timestamp shown in the display timezone; naive values are taken as UTC."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


@pass_context
def _fmt_dt_filter(context: Context, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    settings = context.get("settings")
    return fmt_dt(value, fmt, tz=getattr(settings, "display_timezone", "Asia/Shanghai"))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader([str(d) for d in template_dirs()]),
        autoescape=select_autoescape(("html", "htm", "xml", "svg"), default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # {% trans %} blocks call the per-request gettext in the context with keyword arguments.
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    env.filters["fmt_dt"] = _fmt_dt_filter
    return env


def _gettext_callables(locale: str) -> dict[str, Callable[..., str]]:
    """Jinja "newstyle" gettext: `_('Hello %(name)s', name=x)`. Unlike Jinja's own, the message is
    escaped as well as the variables, so `_(text_from_a_user)` is safe and a catalogue holds no markup."""
    translations = gettext_for(locale)

    @pass_context
    def _gettext(context: Context, message: str, /, **variables: Any) -> str:
        text = translations.gettext(message)
        if context.eval_ctx.autoescape:
            text = escape(text)
        return text % variables

    @pass_context
    def _ngettext(context: Context, singular: str, plural: str, n: int, /, **variables: Any) -> str:
        variables.setdefault("num", n)
        text = translations.ngettext(singular, plural, n)
        if context.eval_ctx.autoescape:
            text = escape(text)
        return text % variables

    return {"_": _gettext, "gettext": _gettext, "ngettext": _ngettext}


def csrf_token_for(request: Request) -> str:
    """The session's CSRF token, from cityops.core.auth."""
    make = _auth_attr("csrf_token")
    return str(make(request)) if callable(make) else ""


def lang_url(request: Request, locale: str) -> str:
    """The current page in another language."""
    url = request.url.include_query_params(lang=locale)
    return url.path + ("?" + url.query if url.query else "")


def base_context(request: Request) -> dict[str, Any]:
    locale = locale_of(request)
    user = getattr(request.state, "user", None)
    context: dict[str, Any] = {
        "request": request,
        "locale": locale,
        "html_lang": HTML_LANG.get(locale, locale),
        "languages": [(code, LOCALE_NAMES[code], lang_url(request, code)) for code in LOCALES],
        "user": user,
        "user_role": role_of(user) if user is not None else None,
        "csrf_token": csrf_token_for(request),
        "nav": visible_nav(user),
        "settings": getattr(request.app.state, "settings", None),
    }
    context.update(_gettext_callables(locale))
    return context


def render(request: Request, template_name: str, context: Mapping[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    """Render a page with the layout's context (user, nav, translations, csrf token, settings)."""
    values = base_context(request)
    if context:
        values.update(context)
    html = environment().get_template(template_name).render(values)
    return HTMLResponse(html, status_code=status_code)


# --- error pages ------------------------------------------------------------------------------

ERROR_TITLES: dict[int, str] = {
    400: N_("Bad request"),
    401: N_("Please sign in"),
    403: N_("Access denied"),
    404: N_("Page not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    422: N_("Invalid input"),
    429: N_("Too many requests"),
    500: N_("Something went wrong"),
}
# Reasons the framework and app.py give in English; the error page shows them translated.
FRAMEWORK_REASONS = (N_("Not Found"), N_("Method Not Allowed"), N_("internal error; it has been logged"))


def login_redirect(request: Request) -> RedirectResponse:
    """Send a visitor without a session to the login page, back here afterwards."""
    target = request.url.path + ("?" + request.url.query if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", status_code=303)


def render_error(request: Request, status: int, message: str) -> Response:
    """The HTML error page: a translated title, the reason and a way home; never a stack trace.
    A page that needs a signed-in user (401) redirects to the login page instead."""
    if status == 401 and request.method in ("GET", "HEAD") and request.url.path != LOGIN_PATH:
        return login_redirect(request)
    title = ERROR_TITLES.get(status, ERROR_TITLES[500] if status >= 500 else ERROR_TITLES[400])
    try:
        return render(request, "error.html", {"status": status, "title": title, "message": message},
                      status_code=status)
    except Exception:
        # The error page itself failed (e.g. a broken template): still answer with a page.
        log.exception("error page failed for status %s", status)
        body = f"<!doctype html><title>{status}</title><h1>{status}</h1><p><a href='/'>cityops</a></p>"
        return HTMLResponse(body, status_code=status)


def form_error(exc: ValidationError) -> str:
    """A pydantic error as one line naming the field, for a page."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def form_refusal(session: Session, exc: ValidationError | CityopsError, *,
                 record_page: bool) -> tuple[str, int]:
    """What a form page shows again when its action is refused: the reason and the status, after
    rolling back what the action began. Not signed in is raised (the sign-in redirect), and so is a
    missing record when the form belongs to that record's page (`record_page`): there is no page to show."""
    if isinstance(exc, ValidationError):
        return form_error(exc), 422
    if exc.status == 401 or (record_page and exc.status == 404 and exc.field is None):
        raise exc
    session.rollback()
    return exc.message, exc.status
