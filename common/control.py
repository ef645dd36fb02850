"""Client of the harness's control API (harness/control.py serves it): lets `gauntlet
chaos` and the fault injector in another process act on a stack that a harness
supervises. Every request carries the control token from the (owner-only) state file.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class ControlError(Exception):
    pass


def call(control_url: str, token: str, operation: str, timeout: float = 60.0, **args) -> dict:
    """Client side: run one operation on the supervising harness."""
    req = urllib.request.Request(
        f"{control_url}/{operation}", data=json.dumps(args).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", "")
        except ValueError:
            message = exc.reason
        raise ControlError(f"{operation}: {message}") from None
    except OSError as exc:
        raise ControlError(f"cannot reach the harness at {control_url} ({exc}); is `gauntlet up` still running?") from None
