"""What a run did, read back from the metrics: printed at exit and by the demo."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from consumer.ops.metrics import NS, Metrics
from consumer.records import TP, Stage


@dataclass
class RunSummary:
    consumed: int = 0
    sent_events: int = 0
    calls: int = 0
    retries: int = 0
    throttles: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    committed: dict[TP, int] = field(default_factory=dict)
    #: Catalog records done without a call, by reason: tombstone, superseded.
    skipped: Counter[str] = field(default_factory=Counter)
    replay: bool = False  # a replay leaves what still fails where it is: not dead-lettered again

    @classmethod
    def of(cls, metrics: Metrics, committed: dict[TP, int]) -> RunSummary:
        stages = {
            stage.value: int(v)
            for stage in Stage
            if (v := metrics.value(f"{NS}_records_dead_lettered_total", stage=stage.value))
        }
        return cls(
            consumed=int(metrics.total(f"{NS}_records_consumed_total")),
            sent_events=int(metrics.total(f"{NS}_events_sent_total")),
            calls=int(metrics.value(f"{NS}_put_events_calls_total", outcome="accepted")),
            retries=int(metrics.total(f"{NS}_put_events_retries_total")),
            throttles=int(metrics.value(f"{NS}_put_events_calls_total", outcome="throttled")),
            dead_lettered=Counter(stages),
            committed=dict(committed),
            skipped=Counter(
                {
                    reason: int(v)
                    for reason in ("superseded", "tombstone")
                    if (v := metrics.value(f"{NS}_records_skipped_total", reason=reason))
                }
            ),
        )

    def line(self) -> str:
        by_stage = ", ".join(f"{k}={v}" for k, v in sorted(self.dead_lettered.items())) or "none"
        return (
            f"consumed={self.consumed} sent={self.sent_events} calls={self.calls} "
            f"retries={self.retries} throttled={self.throttles} "
            f"{'still_failing' if self.replay else 'dead_lettered'}="
            f"{sum(self.dead_lettered.values())} ({by_stage}) "
            f"committed_offsets={sum(self.committed.values())} "
            f"over {len(self.committed)} partitions"
            + "".join(f" {k}={v}" for k, v in sorted(self.skipped.items()))
        )
