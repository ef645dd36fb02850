"""What every server recipe shares: a name, a port, a log, one supervised child."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from harness.process import ChildProcess, KillPolicy


class MissingServerError(Exception):
    """A server binary is not installed; the message names the Debian package."""


def which(binary: str, package: str, extra_dirs: tuple[str, ...] = ()) -> str:
    for directory in extra_dirs:
        candidate = Path(directory) / binary
        if candidate.exists():
            return str(candidate)
    found = shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if not found:
        raise MissingServerError(
            f"{binary} not found: install it with `sudo apt-get install -y {package}` (or run `make setup`)"
        )
    return found


def unprivileged_user(name: str) -> str | None:
    """The account to run a server as when we are root (Postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise MissingServerError(
            f"running as root but there is no {name!r} account to run the server as "
            f"(install the postgresql package, which creates it)"
        ) from None
    return name


def chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


class Server:
    """A named server process on a loopback port."""

    name: str
    port: int
    proc: ChildProcess | None = None
    on_start = None  # Callable[[ChildProcess], None]: told of every child the moment it starts

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.alive() else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    def stop(self, policy: KillPolicy | None = None) -> None:
        if self.proc is not None:
            self.proc.stop(policy)
