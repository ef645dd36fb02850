"""The comparison page's table, from figures with known values (no runs needed)."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path

from test_compare_verdict import effect, figures

from reports.compare_html import render
from reports.compare_plan import ComparePlan
from reports.compare_verdict import answers, recommend
from reports.comparison import Comparison, TargetRow
from reports.delivery import DeliveryOptions
from reports.check import Verdict


class Cells(HTMLParser):
    """{data-metric: {data-broker: text}} of the comparison table."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[str, dict[str, str]] = {}
        self._metric: str | None = None
        self._broker: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr":
            self._metric = a.get("data-metric")
        if tag == "td" and "data-broker" in a:
            self._broker, self._text = a["data-broker"], []

    def handle_data(self, data):
        if self._broker is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._broker is not None and self._metric is not None:
            self.cells.setdefault(self._metric, {})[self._broker] = "".join(self._text).strip()
            self._broker = None


def test_rows_for_faults_checks_and_targets_come_from_every_broker():
    only_first = dataclasses.replace(effect(), fault_id="f0", label="pause postgres", start_s=5.0)
    only_second = dataclasses.replace(effect(), fault_id="f2", label="kill r3", start_s=50.0)
    first = dataclasses.replace(
        figures("postgres", only_first),
        checks=[TargetRow("records", Verdict.PASS, ("ok",))],
        targets=[TargetRow("http_req_duration: p(95)<500", Verdict.PASS, ("12 ms",))])
    second = dataclasses.replace(
        figures("redis"), faults=[effect(), only_second],
        checks=[TargetRow("records", Verdict.PASS, ("ok",)), TargetRow("recovery", Verdict.FAIL, ("slow",))],
        targets=[TargetRow("delivery_lost: count==0", Verdict.FAIL, ("3",))])
    brokers = [first, second]
    plan = ComparePlan(scenario="scenarios/fanout.py", brokers=("postgres", "redis"), repeats=1, seed=1)
    page = render(Comparison(Path("."), plan, brokers, [], DeliveryOptions()), answers(brokers), recommend(brokers))
    reader = Cells()
    reader.feed(page)
    cells = reader.cells
    assert cells["fault_f0"] == {"postgres": cells["fault_f0"]["postgres"], "redis": "—"}
    assert cells["fault_f0"]["postgres"].startswith("lost 0 live")
    assert cells["fault_f1"]["postgres"] == "—" and cells["fault_f1"]["redis"].startswith("lost 0 live")
    assert cells["fault_f2"]["postgres"] == "—" and cells["fault_f2"]["redis"].startswith("lost 0 live")
    assert cells["check_records"] == {"postgres": "PASS", "redis": "PASS"}
    assert cells["check_recovery"] == {"postgres": "—", "redis": "FAIL"}
    assert cells["slo http_req_duration: p(95)<500"] == {"postgres": "PASS 12 ms", "redis": "—"}
    assert cells["slo delivery_lost: count==0"] == {"postgres": "—", "redis": "FAIL 3"}
    fault_rows = [m for m in cells if m.startswith("fault_")]
    assert fault_rows == ["fault_f0", "fault_f1", "fault_f2"]
