"""The PromQL of the dashboard and the alerts, checked by Prometheus' own promtool: every rendered
PrometheusRule passes `promtool check rules`; every dashboard query parses (wrapped in a throwaway
recording rule); and `promtool test rules` evaluates the alerts on synthetic series, with an
`operation` label on the call metrics to show the queries survive a label they don't group by.

promtool comes from ``scripts/promtool.sh`` (promtool on PATH, else a cached build, else
``go install``); the `promtool` fixture is in conftest.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart_support import CI_DIR, ci_files_with_rules, render_ci
from tests.deploy.promql import dashboard_queries, recording_rules
from tests.deploy.support import CHART, NAMESPACE, RELEASE

DASHBOARD = CHART / "dashboards" / "personalize-consumer.json"
FULLNAME = f"{RELEASE}-personalize-consumer"
JOB = {"namespace": NAMESPACE, "job": FULLNAME}
POD = f"{FULLNAME}-6d8f9c7b5-x2x4q"
#: The alerts with their default values, as a release with a ServiceMonitor renders them.
DEFAULT_RULE_SETS = ("serviceMonitor.enabled=true", "prometheusRule.enabled=true")


def _promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def _check_rules(promtool: str, rules: dict[str, Any], tmp_path: Path) -> str:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    result = _promtool(
        promtool, "check", "rules", "--lint=all", "--lint-fatal", str(path), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _rule_file(manifests: list[Any]) -> dict[str, Any]:
    """The `spec` of the rendered PrometheusRule, which is a Prometheus rules file."""
    (rule,) = [m for m in manifests if m["kind"] == "PrometheusRule"]
    return {"groups": rule["spec"]["groups"]}


# ------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("path", ci_files_with_rules(), ids=lambda p: p.name)
def test_rendered_rules_pass_promtool(helm: str, promtool: str, path: Path, tmp_path: Path) -> None:
    rules = _rule_file(render_ci(helm, path))
    count = sum(len(g["rules"]) for g in rules["groups"])
    assert f"SUCCESS: {count} rules found" in _check_rules(promtool, rules, tmp_path)


def test_default_rules_pass_promtool(helm: str, promtool: str, tmp_path: Path) -> None:
    rules = _rule_file(render_ci(helm, CI_DIR / "required-values.yaml", *DEFAULT_RULE_SETS))
    assert "SUCCESS: 5 rules found" in _check_rules(promtool, rules, tmp_path)


def test_dashboard_queries_parse(promtool: str, tmp_path: Path) -> None:
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    output = _check_rules(promtool, recording_rules(queries), tmp_path)
    assert f"SUCCESS: {len(queries)} rules found" in output


def test_promtool_refuses_what_is_not_promql(promtool: str, tmp_path: Path) -> None:
    """The checks above would be worthless if promtool accepted anything."""
    path = tmp_path / "rules.yaml"
    for expr in ("sum(rate(x[5m])", "rate(x)", "x[$__rate_interval]"):
        path.write_text(
            yaml.safe_dump({"groups": [{"name": "g", "rules": [{"record": "r", "expr": expr}]}]})
        )
        result = _promtool(promtool, "check", "rules", str(path), cwd=tmp_path)
        assert result.returncode != 0, expr


# ------------------------------------------------------------------------------ evaluation


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    merged = {**JOB, "pod": POD, **labels}
    text = ",".join(f'{k}="{v}"' for k, v in merged.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _sent(values: str) -> dict[str, str]:
    return _series("personalize_consumer_events_sent_total", values, operation="put_events")


def _calls(outcome: str, values: str, operation: str = "put_events") -> dict[str, str]:
    name = "personalize_consumer_put_events_calls_total"
    return _series(name, values, outcome=outcome, operation=operation)


def _lag(partition: str, values: str, pod: str = POD) -> dict[str, str]:
    name = "personalize_consumer_consumer_lag_records"
    return _series(name, values, topic="clickstream", partition=partition, pod=pod)


def _expect(alertname: str, at: str, *labels: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alertname,
        "exp_alerts": [{"exp_labels": label_set} for label_set in labels],
    }


ALL_ALERTS = (
    "PersonalizeConsumerLagGrowing",
    "PersonalizeConsumerThrottled",
    "PersonalizeConsumerDeadLetters",
    "PersonalizeConsumerStuck",
    "PersonalizeConsumerRestarting",
)
HEALTHY = [
    _lag("0", "10x60"),
    _lag("1", "20x60"),
    _sent("0+600x60"),
    _calls("accepted", "0+60x60"),
    _calls("accepted", "0+5x60", operation="put_items"),  # a second operation, summed
    _calls("throttled", "0+1x60"),  # under 10 %
    _series("personalize_consumer_records_filtered_total", "0x60"),
    _series("personalize_consumer_records_dead_lettered_total", "3x60", stage="decode"),
    _series(
        "kube_pod_container_status_restarts_total", "1x60", pod=POD, container="consumer", job="ksm"
    ),
]
WARNING = {"severity": "warning", **JOB}

SCENARIOS: list[dict[str, Any]] = [
    {  # a healthy consumer with an old dead-letter and an old restart: nothing fires
        "interval": "1m",
        "input_series": HEALTHY,
        "alert_rule_test": [_expect(name, "55m") for name in ALL_ALERTS],
    },
    {  # falling behind while throttled; a pod that lost partition 0 still exports its old lag
        "interval": "1m",
        "input_series": [
            _lag("0", "2000+100x60"),
            _lag("1", "1000+50x60"),
            _lag("0", "90000x60", pod=f"{FULLNAME}-6d8f9c7b5-oldpd"),
            _sent("0+300x60"),
            _calls("accepted", "0+30x60"),
            _calls("throttled", "0+20x60"),
            _calls("throttled", "0+5x60", operation="put_items"),
        ],
        "alert_rule_test": [
            _expect("PersonalizeConsumerLagGrowing", "40m", WARNING),
            _expect("PersonalizeConsumerThrottled", "40m", WARNING),
            _expect("PersonalizeConsumerThrottled", "10m"),  # not for 15 minutes yet
            _expect("PersonalizeConsumerStuck", "40m"),
        ],
    },
    {  # the first dead-letter of a stage: its counter is born at 1
        "interval": "1m",
        "input_series": [
            *HEALTHY,
            _series("personalize_consumer_records_dead_lettered_total", "_x20 1x40", stage="map"),
        ],
        "alert_rule_test": [
            _expect("PersonalizeConsumerDeadLetters", "25m", {**WARNING, "stage": "map"}),
            _expect("PersonalizeConsumerDeadLetters", "50m"),  # 15 minutes later: quiet again
        ],
    },
    {  # lag and nothing sent, dead-lettered or filtered: stuck; dead-letters mean progress
        "interval": "1m",
        "input_series": [
            _lag("0", "500x60"),
            _sent("100x60"),
            _series("personalize_consumer_records_filtered_total", "7x60"),
        ],
        "alert_rule_test": [
            _expect("PersonalizeConsumerStuck", "40m", {"severity": "critical", **JOB}),
            _expect("PersonalizeConsumerLagGrowing", "40m"),
        ],
    },
    {
        "interval": "1m",
        "input_series": [
            _lag("0", "500x60"),
            _sent("100x60"),
            _series("personalize_consumer_records_dead_lettered_total", "0+2x60", stage="map"),
        ],
        "alert_rule_test": [_expect("PersonalizeConsumerStuck", "40m")],
    },
    {  # restarts of this release's consumer containers only
        "interval": "1m",
        "input_series": [
            _series(
                "kube_pod_container_status_restarts_total",
                "0+1x60",
                pod=POD,
                container="consumer",
                job="kube-state-metrics",
            ),
            _series(
                "kube_pod_container_status_restarts_total",
                "0+1x60",
                pod=f"{FULLNAME}-two-6d8f9c7b5-x2x4q",  # another release, a longer name
                container="consumer",
                job="kube-state-metrics",
            ),
            _series(
                "kube_pod_container_status_restarts_total",
                "0+1x60",
                pod=POD,
                container="istio-proxy",
                job="kube-state-metrics",
            ),
        ],
        "alert_rule_test": [
            _expect(
                "PersonalizeConsumerRestarting",
                "20m",
                {"severity": "warning", "namespace": NAMESPACE, "pod": POD},
            ),
        ],
    },
]


def _without_annotations(rules: dict[str, Any]) -> dict[str, Any]:
    rules = copy.deepcopy(rules)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return rules


def test_alerts_fire_when_they_should(helm: str, promtool: str, tmp_path: Path) -> None:
    rules = _rule_file(render_ci(helm, CI_DIR / "required-values.yaml", *DEFAULT_RULE_SETS))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_without_annotations(rules)))
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": SCENARIOS}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = _promtool(promtool, "test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_annotations_render(helm: str, promtool: str, tmp_path: Path) -> None:
    """The annotations' templates expand (the runbook link too), as Alertmanager would show them."""
    path = CI_DIR / "features-values.yaml"
    rules = _rule_file(render_ci(helm, path))
    values = yaml.safe_load(path.read_text())["prometheusRule"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    (dead,) = [r for g in rules["groups"] for r in g["rules"] if "DeadLetters" in r["alert"]]
    expected = {
        "exp_labels": {**WARNING, **values["alertLabels"], "stage": "map"},
        "exp_annotations": {
            "summary": f"personalize-consumer {NAMESPACE}/{FULLNAME} dead-lettered 1 records at "
            "stage map in the last 15m",
            "description": dead["annotations"]["description"].replace(
                "{{ $labels.namespace }}/{{ $labels.job }}", f"{NAMESPACE}/{FULLNAME}"
            ),
            "runbook_url": values["runbookUrl"] + "#personalizeconsumerdeadletters",
        },
    }
    scenario = {
        "interval": "1m",
        "input_series": [
            _series("personalize_consumer_records_dead_lettered_total", "_x20 1x40", stage="map")
        ],
        "alert_rule_test": [
            {"eval_time": "25m", "alertname": dead["alert"], "exp_alerts": [expected]}
        ],
    }
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [scenario]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = _promtool(promtool, "test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
