"""User tokens and the publisher key.

A user token is `<user>.<hex HMAC-SHA256(secret, user)>`: stateless, so every replica
can verify a token issued for any other replica without shared session state.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from sut.defects import Defects

_NONE = Defects()

USER_RE = re.compile(r"^[A-Za-z0-9_:@-]{1,64}\Z")


def user_token(secret: str, user: str) -> str:
    return f"{user}.{_mac(secret, user)}"


def verify_user_token(secret: str, token: str | None, defects: Defects = _NONE) -> str | None:
    """The user the token was issued for, or None for a missing, malformed or forged token."""
    if not token or "." not in token:
        return None
    user, _, mac = token.rpartition(".")
    if not USER_RE.match(user):
        return None
    if defects.accept_any_token:  # defect: the MAC is never checked
        return user
    # compare_digest: a byte-by-byte compare would leak the MAC through timing. On
    # bytes, because on text it raises for anything non-ASCII (a hostile token).
    return user if hmac.compare_digest(_bytes(mac), _mac(secret, user).encode()) else None


def bearer(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <x>` header, else None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def is_publisher(publisher_key: str, authorization: str | None, defects: Defects = _NONE) -> bool:
    presented = bearer(authorization)
    if defects.accept_any_token:  # defect: any bearer credential will do
        return presented is not None
    return presented is not None and hmac.compare_digest(_bytes(presented), publisher_key.encode())


def _bytes(text: str) -> bytes:
    """Any text as bytes, lone surrogates included (they cannot match a hex MAC anyway)."""
    return text.encode("utf-8", "surrogatepass")


def _mac(secret: str, user: str) -> str:
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()
