"""Secrets: argon2 password hashes, random keys stored only as SHA-256, signed cookies, CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

TOKEN_PREFIX = "cot_"  # cityops token: recognisable in logs and by secret scanners
TOKEN_PREFIX_CHARS = 12  # what we keep in clear to show and revoke a token
SESSION_SALT = "cityops.session"
ANON_SALT = "cityops.anon-csrf"

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against when the username is unknown, so both cases take the same time."""
    return hash_password(secrets.token_urlsafe(16))


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_session_key() -> str:
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_prefix(token: str) -> str:
    return token[:TOKEN_PREFIX_CHARS]


def _serializer(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=salt)


def sign(secret_key: str, salt: str, value: str) -> str:
    return _serializer(secret_key, salt).dumps(value)


class CookieInvalid(Exception):
    """A cookie whose signature fails or whose age is over the limit; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unsign(secret_key: str, salt: str, signed: str, max_age_s: int) -> str:
    try:
        value = _serializer(secret_key, salt).loads(signed, max_age=max_age_s)
    except SignatureExpired:
        raise CookieInvalid("session expired; sign in again") from None
    except BadSignature:
        raise CookieInvalid("session cookie is invalid or has been tampered with") from None
    if not isinstance(value, str):
        raise CookieInvalid("session cookie is invalid or has been tampered with")
    return value


def csrf_for(secret_key: str, key: str) -> str:
    """The synchronizer token of a session (or of an anonymous visitor's nonce): derived with an HMAC,
    so it needs no storage and cannot be computed without the server's secret."""
    digest = hmac.new(secret_key.encode(), b"csrf|" + key.encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(digest).rstrip(b"=").decode()


def tokens_match(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
