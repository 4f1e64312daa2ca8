"""Translations: gettext catalogues (English msgids) compiled in memory from the .po files at start-up.

The catalogues live in src/cityops/web/i18n/<locale>/LC_MESSAGES/: messages.po for the shell and one
<package>.po per package that adds text, merged into one catalogue per locale (so engineers of different
packages never edit the same file). Compiling them in memory with Babel means the repository holds no
.mo files and a translator only edits .po files.
The locale of a request comes from `?lang=` (remembered in the `lang` cookie), then the cookie, then the
signed-in user's preferred locale, then settings.default_locale (Chinese).
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Literal, cast, get_args

from babel.messages import mofile, pofile
from babel.messages.catalog import Catalog
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Locale = Literal["zh", "en"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
LOCALE_NAMES: dict[Locale, str] = {"zh": "中文", "en": "English"}
# BCP 47 tags for <html lang> and for the browser's number/date formatting.
HTML_LANG: dict[Locale, str] = {"zh": "zh-CN", "en": "en"}
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600
I18N_DIR = Path(__file__).resolve().parent.parent / "web" / "i18n"
DOMAIN = "messages"


def N_(message: str) -> str:
    """Mark text for extraction without translating it now (labels defined at import time);
    translate it where it is shown, e.g. `{{ _(item.label) }}`."""
    return message


def catalogue_paths(locale: str) -> list[Path]:
    """messages.po first, then the packages' files in name order."""
    folder = I18N_DIR / locale / "LC_MESSAGES"
    main = folder / f"{DOMAIN}.po"
    others = sorted(p for p in folder.glob("*.po") if p != main)
    return ([main] if main.is_file() else []) + others


def load_catalogue(locale: str) -> Catalog:
    """All .po files of a locale merged into one Babel catalogue (plural rules from the locale)."""
    merged = Catalog(locale=locale, domain=DOMAIN)
    for path in catalogue_paths(locale):
        with path.open("rb") as handle:
            part = pofile.read_po(handle, locale=locale, domain=DOMAIN)
        for message in part:
            if message.id:
                merged[message.id] = message
    return merged


@lru_cache(maxsize=len(LOCALES))
def gettext_for(locale: str) -> gettext.NullTranslations:
    """The translations for a locale; an unknown locale or a missing catalogue gives the English msgids."""
    if locale not in LOCALES or not catalogue_paths(locale):
        return gettext.NullTranslations()
    catalog = load_catalogue(locale)
    buffer = BytesIO()
    # Fuzzy entries are unchecked guesses; leave them out like msgfmt does.
    mofile.write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def normalise(value: str | None) -> Locale | None:
    """'zh', 'zh-CN', 'zh_Hans', 'EN' -> a supported locale, or None."""
    if not value:
        return None
    head = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return head if head in LOCALES else None


def default_locale(request: Request) -> Locale:
    settings = getattr(request.app.state, "settings", None)
    return cast(Locale, getattr(settings, "default_locale", "zh"))


def locale_of(request: Request) -> Locale:
    """The request's locale: `?lang=`, then the `lang` cookie, then the signed-in user's preferred
    locale, then settings.default_locale."""
    user = getattr(request.state, "user", None)
    return (normalise(request.query_params.get("lang")) or normalise(request.cookies.get(LANG_COOKIE))
            or normalise(getattr(user, "locale", None)) or default_locale(request))


class LocaleCookieMiddleware:
    """Remember an explicit `?lang=` choice in a cookie, so the next pages keep the language.
    Plain ASGI: Starlette's BaseHTTPMiddleware cancels the endpoint when the client goes away."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        asked = normalise(request.query_params.get("lang"))
        if not asked or request.cookies.get(LANG_COOKIE) == asked:
            await self.app(scope, receive, send)
            return
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        cookie = Response()
        cookie.set_cookie(LANG_COOKIE, asked, max_age=LANG_COOKIE_MAX_AGE_S, httponly=True, samesite="lax",
                          secure=bool(getattr(settings, "secure_cookies", False)))
        set_cookie = cookie.raw_headers[-1]

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), set_cookie]
            await send(message)

        await self.app(scope, receive, send_with_cookie)
