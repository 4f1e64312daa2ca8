"""Passwords, signed cookies, CSRF tokens, masking and the role registry."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner

from cityops.core.auth import ROLES, can_view_pii, has_permission, mask_id_number, mask_phone
from cityops.core.auth.roles import PERMISSIONS, get_role
from cityops.core.auth.security import (
    SESSION_SALT,
    CookieInvalid,
    csrf_for,
    hash_password,
    sign,
    tokens_match,
    unsign,
    verify_password,
)

SECRET = "s" * 40


def test_passwords_are_argon2_hashes_that_verify_only_the_right_password() -> None:
    hashed = hash_password("correct horse 42")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert verify_password(hashed, "correct horse 42")
    assert not verify_password(hashed, "correct horse 43")
    assert not verify_password("not a hash", "correct horse 42")


def test_a_tampered_or_foreign_cookie_is_refused() -> None:
    signed = sign(SECRET, SESSION_SALT, "key-123")
    assert unsign(SECRET, SESSION_SALT, signed, 60) == "key-123"
    tampered = signed[:-2] + ("AA" if not signed.endswith("AA") else "BB")
    with pytest.raises(CookieInvalid, match="tampered"):
        unsign(SECRET, SESSION_SALT, tampered, 60)
    with pytest.raises(CookieInvalid, match="tampered"):
        unsign("another secret" * 3, SESSION_SALT, signed, 60)
    with pytest.raises(CookieInvalid, match="tampered"):
        unsign(SECRET, "another salt", signed, 60)


def test_an_old_cookie_has_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    an_hour_ago = int(time.time()) - 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: an_hour_ago)
    signed = sign(SECRET, SESSION_SALT, "key-123")
    monkeypatch.undo()
    assert unsign(SECRET, SESSION_SALT, signed, 7200) == "key-123"
    with pytest.raises(CookieInvalid, match="expired"):
        unsign(SECRET, SESSION_SALT, signed, 1800)


def test_csrf_tokens_are_bound_to_the_session_and_the_secret() -> None:
    token = csrf_for(SECRET, "session-a")
    assert tokens_match(token, csrf_for(SECRET, "session-a"))
    assert not tokens_match(token, csrf_for(SECRET, "session-b"))
    assert not tokens_match(token, csrf_for("x" * 40, "session-a"))
    assert not tokens_match(token, None)
    assert not tokens_match(token, "")


@pytest.mark.parametrize(("phone", "masked"), [
    ("13812345678", "138****5678"),
    ("0392-3312345", "039****2345"),
    ("12345", "*****"),
    (None, None),
])
def test_phone_masking(phone: str | None, masked: str | None) -> None:
    assert mask_phone(phone) == masked


def test_id_number_masking_keeps_region_and_last_four() -> None:
    assert mask_id_number("41061119900101123X") == "410611********123X"
    assert mask_id_number(None) is None


def test_roles_are_data_with_known_permissions() -> None:
    assert set(ROLES) == {"grid_worker", "centre_operator", "department_handler", "inspector", "duty_officer",
                          "leader", "admin", "enterprise_user", "citizen"}
    for role in ROLES.values():
        assert role.permissions <= set(PERMISSIONS)
        assert role.name_zh and role.name_en
    with pytest.raises(TypeError):
        ROLES["hacker"] = ROLES["admin"]  # type: ignore[index]
    with pytest.raises(KeyError, match="unknown role"):
        get_role("hacker")


class _U:
    def __init__(self, role: str) -> None:
        self.role = role


def test_only_admins_and_centre_operators_see_personal_information() -> None:
    assert {code for code in ROLES if can_view_pii(_U(code))} == {"admin", "centre_operator"}
    assert has_permission(_U("admin"), "users.manage")
    assert not has_permission(_U("leader"), "users.manage")
    assert not has_permission(None, "users.read")
