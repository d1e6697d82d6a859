"""One measured run, summarized: counts from the endpoint, usage from `wait4`, and over the
window (first to last acceptance) rates, each process's CPU and per-second timelines."""

from __future__ import annotations

from typing import Any

from endpoint import Monitor, Sample
from processes import Exited


def summarize(
    name: str, records: int, exited: Exited, stats: dict[str, int], monitor: Monitor
) -> dict[str, Any]:
    """The scenario's result dict; rates only over the window, so start-up and group join do
    not count against throughput."""
    events, calls = stats["accepted_events"], stats["accepted_calls"]
    window = monitor.window()
    result: dict[str, Any] = {
        "scenario": name,
        "records": records,
        "events": events,
        "calls": calls,
        "wall_s": exited.wall_s,
        "consumer_cpu_s": exited.cpu_s,
        "consumer_system_cpu_s": exited.system_cpu_s,
        "peak_rss_mb": exited.max_rss_mb,
        "events_per_call": events / calls if calls else None,
        "consumer_cpu_s_per_1k_events": exited.cpu_s * 1000 / events if events else None,
        "events_per_consumer_cpu_s": events / exited.cpu_s if exited.cpu_s else None,
        "endpoint_stats": stats,
        "rss_samples": monitor.rss,
    }
    result.update(_thread_cpu(monitor, exited, events, calls))
    if window is not None:
        first, last = window
        seconds = max(last.t - first.t, 0.001)
        result.update(
            window_s=seconds,
            events_per_s=events / seconds,
            calls_per_s=calls / seconds,
            window_consumer_cpu_s_per_1k_events=_per_1k(first, last, "consumer_cpu", events),
            consumer_cpu_pct=_busy(first, last, "consumer_cpu", seconds),
            endpoint_cpu_pct=_busy(first, last, "endpoint_cpu", seconds),
            broker_cpu_pct=_busy(first, last, "broker_cpu", seconds),
        )
        (
            result["events_per_second_timeline"],
            result["consumer_cpu_pct_timeline"],
        ) = _timeline(monitor.samples, first.t)
    return result


def _thread_cpu(monitor: Monitor, exited: Exited, events: int, calls: int) -> dict[str, Any]:
    """The consumer's CPU per kind of thread, over its whole life, and per event (the poll loop)
    or per accepted call (the CRT's event loops, and the other threads: the PutEvents senders
    when they are Python threads)."""
    kinds = monitor.threads.kinds() if monitor.threads is not None else None
    if kinds is None:
        return {}
    return {
        "consumer_thread_cpu_s": kinds.as_dict(),
        # wait4's total minus the threads' sum: CPU after a thread's last reading (at most ~1 s
        # before it ended) plus each thread's rounding down to clock ticks.
        "consumer_thread_cpu_unseen_s": round(exited.cpu_s - kinds.total, 2),
        "poll_loop_cpu_us_per_event": kinds.poll_loop * 1e6 / events if events else None,
        "crt_cpu_us_per_call": kinds.crt * 1e6 / calls if calls else None,
        "other_threads_cpu_us_per_call": kinds.other * 1e6 / calls if calls else None,
    }


def _timeline(samples: list[Sample], start: float) -> tuple[list[int], list[int]]:
    """Per whole second since `start`: events accepted, and the consumer's CPU (% of a core).

    Shows what bounds each phase: CPU near 100% is the interpreter's limit (one core, the
    GIL); a low, flat rate at low CPU is a session waiting on its own calls."""
    events: list[int] = []
    cpu: list[float] = []
    previous: Sample | None = None
    for sample in samples:
        if sample.t < start:
            continue
        second = int(sample.t - start)
        events.extend([0] * (second + 1 - len(events)))
        cpu.extend([0.0] * (second + 1 - len(cpu)))
        if previous is not None:
            events[second] += sample.events - previous.events
            if sample.consumer_cpu is not None and previous.consumer_cpu is not None:
                cpu[second] += sample.consumer_cpu - previous.consumer_cpu
        previous = sample
    return events, [round(c * 100) for c in cpu]


def _per_1k(first: Sample, last: Sample, attribute: str, events: int) -> float | None:
    """CPU seconds of one process per 1,000 events, over the window only."""
    before, after = getattr(first, attribute), getattr(last, attribute)
    if before is None or after is None or not events:
        return None
    return float(after - before) * 1000 / events


def _busy(first: Sample, last: Sample, attribute: str, seconds: float) -> float | None:
    """CPU of one process over the window, in % of one core (None if it was not seen)."""
    before, after = getattr(first, attribute), getattr(last, attribute)
    if before is None or after is None:
        return None
    return float(after - before) / seconds * 100
