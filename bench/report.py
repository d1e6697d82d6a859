"""Reading the results: the targets each run is held to, and the Markdown table printed at the
end (and pasted into bench/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """One goal the consumer is held to, and how this run did against it."""

    name: str
    goal: str
    value: str
    passed: bool | None  # None: not measured in this run


def targets(scenarios: dict[str, dict[str, Any]]) -> list[Target]:
    """Every target, measured or not: an unmeasured one shows as n/a rather than missing."""
    out: list[Target] = []
    dense, naive = scenarios.get("dense"), scenarios.get("naive")
    micro, soak = scenarios.get("micro"), scenarios.get("soak")
    failed = bool(dense and "error" in dense)
    per_cpu = dense.get("events_per_consumer_cpu_s") if dense else None
    out.append(
        Target(
            "dense: events per consumer CPU-second",
            ">= 10,000",
            f"{per_cpu:,.0f}" if per_cpu else "not run",
            per_cpu >= 10_000 if per_cpu else None,
        )
    )
    ratio = None
    if dense and naive and naive.get("events_per_s") and dense.get("events_per_s"):
        ratio = dense["events_per_s"] / naive["events_per_s"]
    out.append(
        Target(
            "dense events/s vs naive events/s",
            ">= 50x",
            f"{ratio:,.1f}x" if ratio else "not run",
            ratio >= 50 if ratio else None,
        )
    )
    rate = micro.get("events_per_s") if micro else None
    out.append(
        Target(
            "decode+map events/s per core",
            ">= 60,000",
            f"{rate:,.0f}" if rate else "not run",
            rate >= 60_000 if rate else None,
        )
    )
    if soak and "rss" in soak:
        rss = soak["rss"]
        flat = rss["growth"] <= 0.10
        value = (
            f"peak {soak['peak_rss_mb']:.0f} MB over {soak['events']:,} events; "
            f"{rss['first_mb']:.0f} -> {rss['last_mb']:.0f} MB ({rss['growth']:+.1%})"
        )
        passed = soak["peak_rss_mb"] <= 200 and flat and soak["events"] >= 1_000_000
        out.append(Target("peak RSS, flat (soak)", "<= 200 MB, growth <= 10%", value, passed))
    else:
        peak = f"dense peak {dense['peak_rss_mb']:.0f} MB; " if dense and not failed else ""
        out.append(Target("peak RSS, flat (soak)", "<= 200 MB", f"{peak}use --soak", None))
    return out


def _fmt(value: Any, spec: str, scale: float = 1.0) -> str:
    """A cell: `-` for what was not measured."""
    if value is None:
        return "-"
    return format(value * scale, spec)


COLUMNS: tuple[tuple[str, str, str, float], ...] = (
    # (header, key, format, scale)
    ("events", "events", ",", 1),
    ("events/s", "events_per_s", ",.0f", 1),
    ("ev/call", "events_per_call", ".2f", 1),
    ("calls/s", "calls_per_s", ",.0f", 1),
    ("CPU s/1k ev", "consumer_cpu_s_per_1k_events", ".3f", 1),
    ("ev/CPU-s", "events_per_consumer_cpu_s", ",.0f", 1),
    ("peak RSS MB", "peak_rss_mb", ".0f", 1),
    ("p50 ms", "p50", ",.0f", 1),
    ("p99 ms", "p99", ",.0f", 1),
    ("consumer CPU", "consumer_cpu_pct", ".0f", 1),
    ("endpoint CPU", "endpoint_cpu_pct", ".0f", 1),
    ("broker CPU", "broker_cpu_pct", ".0f", 1),
)


def table(scenarios: dict[str, dict[str, Any]]) -> str:
    """Markdown table, one row per scenario (CPU columns in % of one core)."""
    headers = ["scenario", *(c[0] for c in COLUMNS)]
    rows: list[list[str]] = []
    for name, result in scenarios.items():
        flat = {**result, **(result.get("latency_ms") or {})}
        if "error" in result:
            rows.append([name, "failed", *("-" for _ in COLUMNS[1:])])
            continue
        if name == "micro":
            flat = {"events": result["records"], "events_per_s": result["events_per_s"]}
        row = [name]
        for _header, key, spec, scale in COLUMNS:
            text = _fmt(flat.get(key), spec, scale)
            row.append(text + ("%" if key.endswith("_pct") and text != "-" else ""))
        rows.append(row)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + (":" if i else "-")) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def thread_lines(scenarios: dict[str, dict[str, Any]]) -> str:
    """One line per scenario: the consumer's CPU by kind of thread (not in the table: too wide)."""
    lines = []
    for name, result in scenarios.items():
        cpu = result.get("consumer_thread_cpu_s")
        if cpu is None:
            continue
        per_event = _fmt(result.get("poll_loop_cpu_us_per_event"), ",.0f")
        per_call = _fmt(result.get("other_threads_cpu_us_per_call"), ",.0f")
        lines.append(
            f"{name}: CPU by thread: poll loop {cpu['poll_loop']:.1f} s ({per_event} µs/event), "
            f"senders & other {cpu['other']:.1f} s ({per_call} µs/call), "
            f"librdkafka {cpu['librdkafka']:.1f} s, {cpu['threads']} threads"
        )
    return "\n".join(lines)


def target_lines(found: list[Target]) -> str:
    """One PASS/MISS/n/a line per target, printed under the table."""
    marks = {True: "PASS", False: "MISS", None: "n/a "}
    return "\n".join(f"{marks[t.passed]}  {t.name}: {t.value} (target {t.goal})" for t in found)
