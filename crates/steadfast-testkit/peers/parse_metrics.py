"""Parses an OpenMetrics text exposition (what Rust's prometheus-client writes) from
stdin with the official Python client's strict OpenMetrics parser
(prometheus_client.openmetrics.parser, pinned in scripts/requirements.txt), and prints
every sample as JSON: [{"family", "type", "name", "labels", "value"}, ...]."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({
            "family": family.name,
            "type": family.type,
            "name": s.name,
            "labels": s.labels,
            "value": s.value,
        })
json.dump(samples, sys.stdout)
