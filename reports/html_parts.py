"""The building blocks of gauntlet's HTML pages: escaping, numbers, tables, sections,
badges and inline figures, shared by the run report and its sections
(reports/html.py, resources_html.py) and the compare and capacity pages."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np

from reports import plots
from reports.check import Verdict


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def badge(verdict: Verdict | str | None) -> str:
    v = verdict.value if isinstance(verdict, Verdict) else (verdict or "n/a")
    return f'<span class="badge {esc(v)}">{esc(v.upper())}</span>'


def num(value: float | int | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Cells are HTML already (escaped by the caller)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def section(sid: str, title: str, body: str) -> str:
    """A report section; its id is what tools and tests find it by."""
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def figure(fig: Any, alt: str) -> str:
    """A plot as an inline PNG, so the page needs no other file."""
    return f'<figure><img alt="{esc(alt)}" src="{plots.to_data_uri(fig)}"></figure>'
