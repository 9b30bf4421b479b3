"""The Grafana dashboard in examples/grafana/ imports as it is and names only metrics the controller
serves: the names come from scraping /metrics of the controller's real HTTP server, never from a
list kept in this test."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealer._controller.http import HealthServer, Metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "examples" / "grafana" / "sealer-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# PromQL words that are not metric names: keywords, and the clauses whose parentheses hold labels.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
LABEL_CLAUSES = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
SERIES_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


@pytest.fixture(scope="module")
def served() -> Iterator[set[str]]:
    """Every series name the controller's /metrics exposes, from its `# TYPE` lines."""
    server = HealthServer(("127.0.0.1", 0), lambda: (True, "ok"), Metrics())
    server.start()
    try:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
            body = r.read().decode()
    finally:
        server.stop()
    names = set()
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _hash, _type, name, kind = line.split()
            names.add(name)
            names.update(name + s for s in SERIES_SUFFIXES.get(kind, ()))
    assert names, body
    yield names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions (followed by
    `(`), keywords, label names in `{…}` or grouping clauses, durations in `[…]`, strings or
    Grafana variables."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # strings
    text = re.sub(r"\$\{?\w+\}?", "", text)  # $env, ${DS}, $__rate_interval
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = LABEL_CLAUSES.sub("", text)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[m.end() :].lstrip()
        if rest.startswith("(") or m.group() in KEYWORDS:
            continue
        if m.start() > 0 and (text[m.start() - 1].isdigit() or text[m.start() - 1] == "."):
            continue  # the exponent or unit of a number
        names.add(m.group())
    return names


def test_metric_names_are_parsed_out_of_promql() -> None:
    """The parser the dashboard check relies on, on expressions whose names are known."""
    expr = 'sum by (reason, file) (increase(sealer_sync_errors_total{reason=~"unseal|input"}[$__rate_interval]))'
    assert metric_names(expr) == {"sealer_sync_errors_total"}
    assert metric_names("time() - max(sealer_last_success_timestamp_seconds) > 1e3") == {
        "sealer_last_success_timestamp_seconds"
    }
    assert metric_names("a / on (env) group_left b unless c offset 5m") == {"a", "b", "c"}
    assert metric_names('label_values(sealer_key_age_seconds{env="x"}, env)') == {"sealer_key_age_seconds", "env"}


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def expressions(dash: dict[str, Any]) -> list[str]:
    out = [t["expr"] for p in panels(dash) for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        # label_values(METRIC, LABEL): the label is not a metric name
        out.append(re.sub(r"label_values\((.*),\s*\w+\)", r"\1", query))
    return out


def test_the_dashboard_imports_as_is() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert isinstance(dash["schemaVersion"], int) and dash["title"] and dash["uid"]
    [source] = dash["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == ("DS_PROMETHEUS", "datasource", "prometheus")
    graphs = [p for p in panels(dash) if p["type"] != "row"]
    assert graphs
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))
    for p in graphs:
        assert p["datasource"] == DATASOURCE and p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE and t["expr"].strip() and t["refId"], p["title"]
        assert set(p["gridPos"]) == {"h", "w", "x", "y"}
    for var in dash["templating"]["list"]:
        assert var["datasource"] == DATASOURCE


def test_the_dashboard_names_only_metrics_the_controller_serves(served: set[str]) -> None:
    dash = json.loads(DASHBOARD.read_text())
    used: set[str] = set()
    for expr in expressions(dash):
        names = metric_names(expr)
        assert names, expr
        assert names <= served, (expr, names - served)
        used |= names
    # What issue 12 asks the dashboard to show: failed attempts by reason, the expiry figures,
    # and the oldest value per environment.
    wanted = {
        "sealer_sync_errors_total",
        "sealer_values_expiring",
        "sealer_values_expired",
        "sealer_seconds_to_next_expiry",
        "sealer_oldest_secret_age_seconds",
    }
    assert wanted <= used
