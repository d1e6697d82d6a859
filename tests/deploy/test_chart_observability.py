"""The Grafana dashboard and the PrometheusRule: off by default; the dashboard is valid JSON in a
ConfigMap the Grafana sidecar picks up, with a target on every panel and the selectors it needs;
every query and alert reads only metrics the consumer exports (or kube-state-metrics' restarts),
and aggregates the call metrics so a new label does not break it. Whether the PromQL parses and
what the alerts do is test_chart_promql.py's."""

from __future__ import annotations

import json
from itertools import combinations
from typing import Any

import pytest

from tests.deploy.chart_support import CI_DIR, VALUE_SETS, ci_files_with_rules, render_ci
from tests.deploy.promql import (
    CALL_METRICS,
    KUBE_STATE_METRICS,
    dashboard_queries,
    exported_metric_names,
    metric_names,
    rules_of,
    unaggregated,
)
from tests.deploy.support import CHART, NAMESPACE, RELEASE, Rendered

DASHBOARD_FILE = CHART / "dashboards" / "personalize-consumer.json"
DASHBOARD_CONFIGMAP = f"{RELEASE}-personalize-consumer-dashboard"
OPTIONAL_KINDS = {"PrometheusRule", "KafkaTopic"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def features(helm: str) -> list[Any]:
    return render_ci(helm, CI_DIR / "features-values.yaml")


def _one(manifests: list[Any], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    result: dict[str, Any] = found[0]
    return result


def _queries_of_rules(manifests: list[Any]) -> list[tuple[str, str]]:
    rule = _one(manifests, "PrometheusRule")
    return [(r["alert"], r["expr"]) for r in rules_of(rule)]


# ------------------------------------------------------------------------------ off by default


@pytest.mark.parametrize("name", [n for n in VALUE_SETS if n != "registry"])
def test_nothing_optional_renders_by_default(rendered_sets: dict[str, Rendered], name: str) -> None:
    rendered = rendered_sets[name]
    assert not OPTIONAL_KINDS & {m["kind"] for m in rendered.manifests}
    assert rendered.named("ConfigMap", DASHBOARD_CONFIGMAP) is None


def test_required_ci_values_render_no_optional_object(helm: str) -> None:
    manifests = render_ci(helm, CI_DIR / "required-values.yaml")
    kinds = sorted(m["kind"] for m in manifests)
    assert kinds == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]


# ---------------------------------------------------------------------------------- dashboard


def test_dashboard_configmap_for_the_grafana_sidecar(
    features: list[Any], dashboard: dict[str, Any]
) -> None:
    configmap = _one(features, "ConfigMap", DASHBOARD_CONFIGMAP)
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == NAMESPACE
    assert configmap["metadata"]["annotations"] == {"grafana_folder": "Streaming"}
    (key,) = configmap["data"]
    assert key.endswith(".json")  # the sidecar writes files as named; Grafana reads *.json
    assert json.loads(configmap["data"][key]) == dashboard


def test_dashboard_label_and_namespace_are_yours(helm: str) -> None:
    manifests = render_ci(helm, CI_DIR / "existing-objects-values.yaml")
    meta = _one(manifests, "ConfigMap", DASHBOARD_CONFIGMAP)["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["grafana-dashboard"] == "personalize"
    assert "grafana_dashboard" not in meta["labels"]


def test_dashboard_json_is_sound(dashboard: dict[str, Any]) -> None:
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for panel in panels:
        assert panel.get("targets"), f"panel {panel['id']} {panel['title']!r} has no target"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"panel {panel['id']}: empty query"
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    assert dashboard["uid"] and dashboard["title"]


def test_dashboard_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        return {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }

    for a, b in combinations(dashboard["panels"], 2):
        assert not cells(a) & cells(b), f"{a['title']!r} overlaps {b['title']!r}"


def test_dashboard_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "job", "pod"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"
    assert variables["pod"]["includeAll"] and variables["pod"]["multi"]
    for where, expr in dashboard_queries(dashboard):
        if where.startswith("panel"):
            for selector in ('job=~"$job"', 'pod=~"$pod"', 'namespace=~"$namespace"'):
                assert selector in expr, f"{where}: no {selector}"


@pytest.mark.parametrize(
    ("topic", "metrics"),
    [
        ("events/s sent", {"personalize_consumer_events_sent_total"}),
        ("events per call", {"personalize_consumer_events_per_call_bucket"}),
        ("calls by outcome", {"personalize_consumer_put_events_calls_total"}),
        ("in flight vs limit", {"personalize_consumer_in_flight_calls"}),
        ("in flight vs limit", {"personalize_consumer_in_flight_limit"}),
        ("lag per partition", {"personalize_consumer_consumer_lag_records"}),
        ("dead-letters by stage", {"personalize_consumer_records_dead_lettered_total"}),
        ("commit latency", {"personalize_consumer_commit_duration_seconds_bucket"}),
        ("fetch paused", {"personalize_consumer_fetch_paused"}),
    ],
)
def test_dashboard_has_a_panel_for(
    dashboard: dict[str, Any], topic: str, metrics: set[str]
) -> None:
    used = set().union(*(metric_names(e) for _w, e in dashboard_queries(dashboard)))
    assert metrics <= used, f"no panel reads {metrics} ({topic})"


def test_dashboard_shows_throttling(dashboard: dict[str, Any]) -> None:
    throttled = [e for _w, e in dashboard_queries(dashboard) if 'outcome="throttled"' in e]
    assert throttled, "no panel of throttled calls"


# ------------------------------------------------------------------------ metrics named exist


def test_the_consumer_exports_what_the_readme_lists() -> None:
    """The list the queries are checked against is the consumer's own registry."""
    exported = exported_metric_names()
    assert "personalize_consumer_events_sent_total" in exported
    assert "personalize_consumer_put_events_duration_seconds_bucket" in exported
    assert "personalize_consumer_in_flight_limit" in exported
    assert len(exported) >= 20


def test_dashboard_reads_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    allowed = exported_metric_names()
    for where, expr in dashboard_queries(dashboard):
        names = metric_names(expr)
        assert names, f"{where}: no metric in {expr}"
        assert names <= allowed, f"{where}: not exported: {names - allowed}"


@pytest.mark.parametrize("path", ci_files_with_rules(), ids=lambda p: p.name)
def test_alerts_read_only_exported_metrics(helm: str, path: Any) -> None:
    manifests = render_ci(helm, path)
    allowed = exported_metric_names() | KUBE_STATE_METRICS
    for alert, expr in _queries_of_rules(manifests):
        names = metric_names(expr)
        assert names, f"{alert}: no metric"
        assert names <= allowed, f"{alert}: not exported: {names - allowed}"


def test_queries_aggregate_the_call_metrics(dashboard: dict[str, Any], features: list[Any]) -> None:
    """An `operation` label may come to the call and event metrics: every query sums them."""
    queries = dashboard_queries(dashboard) + _queries_of_rules(features)
    for where, expr in queries:
        assert not unaggregated(expr), f"{where}: {unaggregated(expr)} not aggregated"
    assert unaggregated(f"rate({CALL_METRICS[0]}[5m])")  # the check itself sees a bare one


# ------------------------------------------------------------------------------ alerts


def test_prometheus_rule_alerts(features: list[Any]) -> None:
    rule = _one(features, "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {r["alert"]: r for r in rules_of(rule)}
    assert set(alerts) == {
        "PersonalizeConsumerLagGrowing",
        "PersonalizeConsumerThrottled",
        "PersonalizeConsumerDeadLetters",
        "PersonalizeConsumerStuck",
        "PersonalizeConsumerRestarting",
    }
    assert alerts["PersonalizeConsumerLagGrowing"]["for"] == "10m"
    assert "[10m]" in alerts["PersonalizeConsumerLagGrowing"]["expr"]
    assert "> 0.1" in alerts["PersonalizeConsumerThrottled"]["expr"]
    selector = f'namespace="{NAMESPACE}",job="{RELEASE}-personalize-consumer"'
    for name, alert in alerts.items():
        annotations = alert["annotations"]
        assert annotations["summary"] and len(annotations["description"]) > 80, name
        assert annotations["runbook_url"].endswith("#" + name.lower()), name
        assert alert["labels"]["team"] == "recommendations"
        if name != "PersonalizeConsumerRestarting":
            assert selector in alert["expr"], name
    restarts = alerts["PersonalizeConsumerRestarting"]["expr"]
    assert f'pod=~"{RELEASE}-personalize-consumer-[a-z0-9]+-[a-z0-9]+"' in restarts


def test_alert_values_and_selector_are_yours(helm: str) -> None:
    manifests = render_ci(helm, CI_DIR / "existing-objects-values.yaml")
    rule = _one(manifests, "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    alerts = {r["alert"]: r for r in rules_of(rule)}
    assert "PersonalizeConsumerDeadLetters" not in alerts  # enabled: false
    assert alerts["PersonalizeConsumerLagGrowing"]["for"] == "30m"
    assert "> 50000" in alerts["PersonalizeConsumerLagGrowing"]["expr"]
    assert "> 0.25" in alerts["PersonalizeConsumerThrottled"]["expr"]
    restarts = alerts["PersonalizeConsumerRestarting"]
    assert restarts["labels"]["severity"] == "critical"
    assert "[1h]" in restarts["expr"] and restarts["expr"].endswith("> 5")
    assert (
        'kubernetes_namespace="default",app="personalize-consumer"'
        in (alerts["PersonalizeConsumerStuck"]["expr"])
    )
    assert all("runbook_url" not in a["annotations"] for a in alerts.values())
