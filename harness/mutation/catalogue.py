"""Mutant patch files: what each one is, and whether it applies.

A mutant file is a unified diff (as `git diff` writes it) with a header above the
first `diff --git` line, which `git apply` ignores:

    Kind: commit order
    Bug: publishers no longer serialise their inserts, so ids can commit out of order

`Kind` groups mutants in the table (what sort of bug), `Bug` says what is wrong in a
sentence. Both are required: a table of bare file names teaches nobody anything.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

HEADER_FIELDS = ("kind", "bug")
_FIELD = re.compile(r"^(\w+):\s*(.+?)\s*$")
_TOUCHED = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


class MutantError(ValueError):
    """A mutant file that cannot be used (one line, for exit code 2)."""


@dataclass(frozen=True)
class Mutant:
    name: str          # the file name without .patch
    path: Path
    kind: str
    bug: str
    files: tuple[str, ...]  # project paths the patch changes


def parse(path: Path) -> Mutant:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MutantError(f"{path}: cannot read: {exc}") from None
    head, sep, _ = text.partition("diff --git ")
    if not sep:
        raise MutantError(f"{path}: not a patch (no 'diff --git' line)")
    fields: dict[str, str] = {}
    for line in head.splitlines():
        match = _FIELD.match(line)
        if match:
            fields[match.group(1).lower()] = match.group(2)
    missing = [f for f in HEADER_FIELDS if f not in fields]
    if missing:
        raise MutantError(f"{path}: header lacks {', '.join(m.capitalize() + ':' for m in missing)} "
                          "(see harness/mutation/catalogue.py)")
    files = tuple(sorted({b for _, b in _TOUCHED.findall(text)}))
    return Mutant(path.stem, path, fields["kind"], fields["bug"], files)


def load(directory: Path, only: list[str] | None = None) -> list[Mutant]:
    """Every *.patch in `directory`, by name; `only` picks some by name (or name prefix)."""
    if not directory.is_dir():
        raise MutantError(f"mutants directory {directory} does not exist")
    mutants = [parse(p) for p in sorted(directory.glob("*.patch"))]
    if not mutants:
        raise MutantError(f"no *.patch files in {directory}")
    if only:
        picked = [m for m in mutants if any(m.name == o or m.name.startswith(o) for o in only)]
        unknown = [o for o in only if not any(m.name == o or m.name.startswith(o) for m in mutants)]
        if unknown:
            raise MutantError(f"no mutant named {', '.join(unknown)} in {directory}")
        mutants = picked
    return mutants


def _git_apply(mutant: Mutant, tree: Path, *extra: str) -> subprocess.CompletedProcess:
    # The ceiling keeps git from finding a repository above the copy, where `git apply`
    # would take paths relative to that repository's top instead of to the copy.
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": str(tree.resolve().parent)}
    return subprocess.run(["git", "apply", *extra, str(mutant.path.resolve())], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=30)


def check_applies(mutant: Mutant, tree: Path) -> str | None:
    """Why the patch does not apply cleanly to `tree`, or None when it does."""
    done = _git_apply(mutant, tree, "--check")
    if done.returncode == 0:
        return None
    return " ".join((done.stderr or done.stdout).split())[:300] or f"git apply exited {done.returncode}"


def apply(mutant: Mutant, tree: Path) -> None:
    done = _git_apply(mutant, tree)
    if done.returncode != 0:
        raise MutantError(f"{mutant.name}: does not apply: {' '.join(done.stderr.split())[:300]}")
