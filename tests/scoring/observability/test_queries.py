"""jobs/monitor/*.kql read the log lines' fields by name: each field they read exists in the line."""

from __future__ import annotations

import re
from pathlib import Path

from distilgpt2_scoring.observability.gauges import EngineGauges
from distilgpt2_scoring.observability.record import RequestRecord

QUERIES = Path(__file__).resolve().parents[3] / "jobs" / "monitor"


def test_every_field_a_query_reads_is_in_the_record_or_the_gauges_line():
    record_fields = set(RequestRecord().fields())
    gauge_fields = set(EngineGauges(0, 0, None, 0.0, 1.0).fields())
    queries = sorted(QUERIES.glob("*.kql"))
    assert len(queries) == 3
    for query in queries:
        text = query.read_text()
        read = {(m.group(1), m.group(2)) for m in re.finditer(r"\b([rg])\.(\w+)", text)}
        assert read
        for variable, name in read:
            assert name in (record_fields if variable == "r" else gauge_fields), f"{query.name} reads {name}"
        marker = '"textgen": "request"' if "r = parse_json" in text else '"textgen": "engine"'
        assert marker in text
