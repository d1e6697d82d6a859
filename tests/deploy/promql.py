"""PromQL of the chart's dashboard and alerts: the metric names a query reads, whether a metric is
always aggregated, Grafana's variables made plain PromQL, and promtool (``scripts/promtool.sh``).

The names are taken lexically (string literals, label matchers, ranges and grouping clauses cut
away; what is left that is neither a function nor a keyword is a metric). Whether a query parses
is promtool's to say: the tests that need it wrap the queries in rule files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from tests.deploy.support import REPO

PROMTOOL_SCRIPT = REPO / "scripts" / "promtool.sh"

#: The one metric not of the consumer's own: kube-state-metrics' container restarts.
KUBE_STATE_METRICS = frozenset({"kube_pod_container_status_restarts_total"})

#: Metrics that may gain an `operation` label: every query must aggregate them.
CALL_METRICS = (
    "personalize_consumer_events_sent_total",
    "personalize_consumer_put_events_calls_total",
    "personalize_consumer_put_events_duration_seconds",
    "personalize_consumer_put_events_retries_total",
    "personalize_consumer_events_per_call",
)

AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk"}
    | {"quantile", "count_values", "limitk", "limit_ratio"}
)
KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"offset", "bool", "atan2", "inf", "nan", "start", "end", "step"}
)
#: Grafana's interval variables, as plain durations for promtool.
GRAFANA_DURATIONS = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "6h"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", flags=re.IGNORECASE
)
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_VALUES = re.compile(r"^label_values\((?P<expr>.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)$")


def exported_metric_names() -> frozenset[str]:
    """The series names the consumer exports, from its own registry (with Prometheus' suffixes).

    Labelled metrics export no sample until a label value is used, so the names come from each
    family's type, not from its samples.
    """
    from consumer.ops.metrics import Metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    names: set[str] = set()
    for family in Metrics().registry.collect():
        for suffix in suffixes.get(family.type, ("",)):
            names.add(family.name + suffix)
    return frozenset(names)


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus sees it: Grafana's interval variables replaced.

    Other variables ($namespace, $pod) only ever appear inside label matchers' strings.
    """
    for variable, duration in GRAFANA_DURATIONS.items():
        expr = expr.replace("${" + variable[1:] + "}", duration).replace(variable, duration)
    return expr


def _bare(expr: str) -> str:
    """The query without strings, label matchers, ranges and grouping clauses."""
    expr = _STRING.sub('""', expr)
    expr = _MATCHERS.sub(" ", expr)
    expr = _RANGE.sub(" ", expr)
    return _GROUPING.sub(" ", expr)


def metric_names(expr: str) -> set[str]:
    """Every metric name a query selects."""
    bare = _bare(grafana_to_promql(expr))
    names = set()
    for match in _IDENT.finditer(bare):
        rest = bare[match.end() :].lstrip()
        name = match.group()
        if rest.startswith("(") or name.lower() in KEYWORDS:
            continue  # a function or aggregation call, or a keyword
        if match.start() > 0 and bare[match.start() - 1].isdigit():
            continue  # the exponent or unit of a number (1e3, 5m)
        names.add(name)
    return names


def unaggregated(expr: str, metrics: tuple[str, ...] = CALL_METRICS) -> list[str]:
    """Selectors of `metrics` that no aggregation encloses (they would break on a new label)."""
    found = []
    for metric in metrics:
        for match in re.finditer(rf"\b{metric}\w*", expr):
            if not _aggregated(expr, match.start()):
                found.append(match.group())
    return found


def _aggregated(expr: str, position: int) -> bool:
    for opening in _enclosing_parens(expr, position):
        before = expr[:opening].rstrip()
        # `sum by (a, b) (...)`: skip the grouping clause to find the operator
        grouping = re.search(r"\b(by|without)\s*\([^()]*\)$", before)
        if grouping:
            before = before[: grouping.start()].rstrip()
        word = re.search(r"([a-zA-Z_]+)$", before)
        if word and word.group(1) in AGGREGATIONS:
            return True
    return False


def _enclosing_parens(expr: str, position: int) -> Iterator[int]:
    """Positions of the opening parentheses around `position`, innermost first."""
    depth = 0
    for i in range(position - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(":
            if depth == 0:
                yield i
            else:
                depth -= 1


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable's selector."""
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((f"panel {panel['id']} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text.strip())
        assert match, f"variable {variable['name']}: not label_values(<selector>, <label>)"
        queries.append((f"variable {variable['name']}", match.group("expr")))
    return queries


def rules_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rule of a PrometheusRule."""
    return [rule for group in manifest["spec"]["groups"] for rule in group["rules"]]


def recording_rules(queries: list[tuple[str, str]]) -> dict[str, Any]:
    """A throwaway rule file with one recording rule per query, for `promtool check rules`."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)}
        for i, (_where, expr) in enumerate(queries)
    ]
    return {"groups": [{"name": "dashboard", "rules": rules}]}
