"""`bench/run.py --smoke` end to end against the session's broker.

Checks that every scenario runs and reports numbers of the right shape; never how fast anything
was (that depends on the machine: `bench/README.md` has the measured numbers).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CALL_SCENARIOS = {"dense", "dense-http", "naive", "sparse", "live", "hot", "hot-baseline"}
TARGETS = {
    "dense (HTTPS): events per consumer CPU-second",
    "sparse (HTTPS): events per consumer CPU-second",
    "live: produce -> accepted latency",
    "micro: decode+map+validate events/s per core",
    "dense events/s vs naive events/s",
    "peak RSS, flat (soak)",
    "hot: other sessions all accepted, with / without the hot session",
}


def test_smoke_run_reports_every_scenario(kafka_bootstrap: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    command = [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke"]
    command += ["--bootstrap", kafka_bootstrap, "--out", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"

    report = json.loads(out.read_text())
    scenarios = report["scenarios"]
    assert set(scenarios) == {"micro", *CALL_SCENARIOS}
    assert scenarios["micro"]["events_per_s"] > 0
    for name, result in scenarios.items():  # the machine's speed around each (bench/vmspeed.py)
        assert len(result["vm_speed"]) == 2, name  # before and after
        for reading in result["vm_speed"]:
            assert reading["python"] > 0 and reading["wakeup_us"] > 0, name
    for name in sorted(CALL_SCENARIOS):
        result = scenarios[name]
        assert result["events"] > 0, name
        assert result["events_per_s"] > 0, name
        assert 1 <= result["events_per_call"] <= 10, (name, result["events_per_call"])
        assert result["consumer_cpu_s_per_1k_events"] > 0, name
        assert result["peak_rss_mb"] > 0, name
        assert result["latency_ms"]["p50"] <= result["latency_ms"]["p99"], name
        assert result["tls"] is (name != "dense-http"), name
        threads = result["consumer_thread_cpu_s"]
        assert set(threads) == {"poll_loop", "librdkafka", "crt", "other", "threads"}, name
    for name in ("dense", "dense-http", "sparse", "hot", "hot-baseline"):
        assert scenarios[name]["events"] == scenarios[name]["records"], name
    assert scenarios["dense-http"]["records"] == scenarios["dense"]["records"]
    assert scenarios["sparse"]["events_per_call"] == 1
    assert scenarios["naive"]["events_per_call"] == 1

    hot, baseline = scenarios["hot"]["hot"], scenarios["hot-baseline"]["hot"]
    assert hot["other_records"] == baseline["other_records"] > 0
    assert hot["hot_records"] == scenarios["hot"]["records"] * hot["share"]
    assert baseline["hot_records"] == 0
    assert scenarios["hot-baseline"]["records"] == baseline["other_records"]
    assert hot["others_accepted_s"] > 0 and baseline["others_accepted_s"] > 0

    targets = {t["name"]: t for t in report["targets"]}
    assert set(targets) == TARGETS
    assert targets["hot: other sessions all accepted, with / without the hot session"]["value"]
    assert targets["live: produce -> accepted latency"]["passed"] is None  # smoke: 250/s offered
    for row in ("| dense ", "| dense-http ", "| hot ", "| hot-baseline "):
        assert row in done.stdout, row
