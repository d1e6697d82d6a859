"""Reading the results: the targets each run is held to, and the Markdown table printed at the
end (and pasted into bench/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hot import ratio as hot_ratio


@dataclass(frozen=True)
class Target:
    """One goal the consumer is held to, and how this run did against it."""

    name: str
    goal: str
    value: str
    passed: bool | None  # None: not measured in this run


#: The live latency targets hold at this offered rate (a smoke run offers less: not judged).
LIVE_TARGET_RATE = 2_000.0


def targets(scenarios: dict[str, dict[str, Any]]) -> list[Target]:
    """Every target, measured or not: an unmeasured one shows as n/a rather than missing. All
    come from this run's scenarios, so ratios compare runs on the same machine and broker."""
    dense, naive, sparse = (scenarios.get(n) for n in ("dense", "naive", "sparse"))
    micro, soak = scenarios.get("micro"), scenarios.get("soak")
    out = [
        _at_least("dense (HTTPS): events per consumer CPU-second", dense, 10_000),
        _at_least("sparse (HTTPS): events per consumer CPU-second", sparse, 3_000),
        _live(scenarios.get("live")),
        _at_least("micro: decode+map+validate events/s per core", micro, 40_000, "events_per_s"),
    ]
    ratio = None
    if dense and naive and naive.get("events_per_s") and dense.get("events_per_s"):
        ratio = dense["events_per_s"] / naive["events_per_s"]
    out.append(
        Target(
            "dense events/s vs naive events/s",
            ">= 100x",
            f"{ratio:,.1f}x" if ratio else "not run",
            ratio >= 100 if ratio else None,
        )
    )
    out.append(_soak(soak, dense))
    out.append(_hot(scenarios.get("hot"), scenarios.get("hot-baseline")))
    return out


def _at_least(
    name: str,
    result: dict[str, Any] | None,
    goal: float,
    key: str = "events_per_consumer_cpu_s",
) -> Target:
    value = result.get(key) if result else None
    text = f"{value:,.0f}" if value else "not run"
    return Target(name, f">= {goal:,.0f}", text, value >= goal if value else None)


def _live(live: dict[str, Any] | None) -> Target:
    """p50 <= 0.4 s and p99 <= 1.5 s from produce to accepted, judged only at 2,000/s offered."""
    name, goal = "live: produce -> accepted latency", "p50 <= 0.4 s, p99 <= 1.5 s"
    latency = live.get("latency_ms") if live else None
    if not live or not latency:
        return Target(name, goal, "not run", None)
    offered = live.get("offered_per_s") or 0.0
    p50, p99 = latency["p50"] / 1000, latency["p99"] / 1000
    value = f"p50 {p50:.2f} s, p99 {p99:.2f} s at {offered:,.0f} events/s offered"
    if offered < LIVE_TARGET_RATE:
        return Target(name, goal, f"{value} (judged at {LIVE_TARGET_RATE:,.0f}/s)", None)
    return Target(name, goal, value, p50 <= 0.4 and p99 <= 1.5)


def _soak(soak: dict[str, Any] | None, dense: dict[str, Any] | None) -> Target:
    name = "peak RSS, flat (soak)"
    if soak and "rss" in soak:
        rss = soak["rss"]
        flat = rss["growth"] <= 0.10
        value = (
            f"peak {soak['peak_rss_mb']:.0f} MB over {soak['events']:,} events; "
            f"{rss['first_mb']:.0f} -> {rss['last_mb']:.0f} MB ({rss['growth']:+.1%})"
        )
        passed = soak["peak_rss_mb"] <= 200 and flat and soak["events"] >= 1_000_000
        return Target(name, "<= 200 MB, growth <= 10%", value, passed)
    ran = dense and "error" not in dense
    peak = f"dense peak {dense['peak_rss_mb']:.0f} MB; " if dense and ran else ""
    return Target(name, "<= 200 MB", f"{peak}use --soak", None)


def _hot(hot: dict[str, Any] | None, baseline: dict[str, Any] | None) -> Target:
    """The other sessions' time to all accepted, with the hot session over without it."""
    name = "hot: other sessions all accepted, with / without the hot session"
    found = hot_ratio(hot, baseline)
    if found is None:
        return Target(name, "<= 1.2x", "not run", None)
    assert hot is not None and baseline is not None
    with_hot, without = hot["hot"]["others_accepted_s"], baseline["hot"]["others_accepted_s"]
    value = f"{with_hot:.2f} s / {without:.2f} s = {found:.2f}x"
    return Target(name, "<= 1.2x", value, found <= 1.2)


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
    """One line per scenario: the consumer's CPU by kind of thread (not in the table: too wide),
    and the readings of the machine before and after it (`vmspeed.py`)."""
    lines = []
    for name, result in scenarios.items():
        cpu = result.get("consumer_thread_cpu_s")
        if speed := result.get("vm_speed"):
            before, after = speed
            lines.append(
                f"{name}: machine before/after (vmspeed.py): python {before['python']:.2f} / "
                f"{after['python']:.2f}, wake-up {before['wakeup_us']:.1f} / "
                f"{after['wakeup_us']:.1f} µs"
            )
        if cpu is None:
            continue
        per_event = _fmt(result.get("poll_loop_cpu_us_per_event"), ",.0f")
        crt_call = _fmt(result.get("crt_cpu_us_per_call"), ",.0f")
        per_call = _fmt(result.get("other_threads_cpu_us_per_call"), ",.0f")
        lines.append(
            f"{name}: CPU by thread: poll loop {cpu['poll_loop']:.1f} s ({per_event} µs/event), "
            f"AWS CRT event loop {cpu.get('crt', 0.0):.1f} s ({crt_call} µs/call), "
            f"senders & other {cpu['other']:.1f} s ({per_call} µs/call), "
            f"librdkafka {cpu['librdkafka']:.1f} s, {cpu['threads']} threads"
        )
    return "\n".join(lines)


def target_lines(found: list[Target]) -> str:
    """One PASS/MISS/n/a line per target, printed under the table."""
    marks = {True: "PASS", False: "MISS", None: "n/a "}
    return "\n".join(f"{marks[t.passed]}  {t.name}: {t.value} (target {t.goal})" for t in found)
