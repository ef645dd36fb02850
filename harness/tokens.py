"""Client-side credentials for the reference SUT's protocol (DESIGN: user token = user + HMAC)."""

from __future__ import annotations

import hashlib
import hmac


def user_token(secret: str, user: str) -> str:
    digest = hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()
    return f"{user}.{digest}"
