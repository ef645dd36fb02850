"""The shipped scenarios, found by name; imports nothing of Locust (importing a
locustfile patches the process for gevent)."""

from __future__ import annotations

from pathlib import Path

SCENARIOS_DIR = Path(__file__).resolve().parent


def known_scenarios() -> list[str]:
    """Names of the locustfiles in this folder: those with a top-level install call."""
    return sorted(p.stem for p in SCENARIOS_DIR.glob("*.py") if not p.stem.startswith("_") and _is_locustfile(p))


def resolve_scenario(text: str) -> Path:
    """A locustfile path, or the name of a shipped scenario; ValueError naming the known ones."""
    path = Path(text)
    if path.is_file():
        return path.resolve()
    named = SCENARIOS_DIR / f"{text.removesuffix('.py')}.py"
    if "/" not in text and named.is_file():
        return named
    raise ValueError(f"no scenario {text!r}: give a locustfile path or one of {', '.join(known_scenarios())}")


def _is_locustfile(path: Path) -> bool:
    try:
        return any(line.startswith("install(") for line in path.read_text().splitlines())
    except OSError:
        return False
